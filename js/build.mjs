// Builds the tag: src/tag.js -> ../tracker/static/t.js (minified IIFE, ES2017).
//   node build.mjs              write the committed file
//   node build.mjs --out PATH   write PATH instead (tests byte-compare it with the committed file)
//   node build.mjs --check      build in memory; exit 1 if the committed file is stale
// Prints the minified and gzipped sizes; exits 1 when gzipped size exceeds the budget.
import {build} from 'esbuild';
import {existsSync, readFileSync, writeFileSync} from 'node:fs';
import {dirname, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';
import {parseArgs} from 'node:util';
import {gzipSync} from 'node:zlib';

// The whole tag, identify and consent included, must stay below this (gzip -9).
const GZIP_BUDGET_BYTES = 2500;

const here = dirname(fileURLToPath(import.meta.url));
const committedPath = resolve(here, '../tracker/static/t.js');

let args;
try {
  ({values: args} = parseArgs({
    options: {out: {type: 'string'}, check: {type: 'boolean', default: false}},
  }));
} catch (error) {
  console.error(`${error.message}\nusage: node build.mjs [--out PATH | --check]`);
  process.exit(2);
}

const result = await build({
  entryPoints: [resolve(here, 'src/tag.js')],
  write: false,
  minify: true,
  format: 'iife',
  target: 'es2017',
  legalComments: 'none',
  charset: 'ascii',
  logLevel: 'warning',
});
const code = result.outputFiles[0].contents;

const gzipped = gzipSync(code, {level: 9}).length;
console.log(`t.js: ${code.length} bytes minified, ${gzipped} bytes gzipped ` +
  `(budget ${GZIP_BUDGET_BYTES})`);
let failed = false;
if (gzipped > GZIP_BUDGET_BYTES) {
  console.error(`t.js is over budget by ${gzipped - GZIP_BUDGET_BYTES} bytes gzipped`);
  failed = true;
}

if (args.check) {
  const committed = existsSync(committedPath) ? readFileSync(committedPath) : null;
  if (!committed || !Buffer.from(code).equals(committed)) {
    console.error(`${committedPath} is not the build of src/tag.js; run \`npm run build\``);
    failed = true;
  }
} else {
  const outPath = args.out ? resolve(args.out) : committedPath;
  writeFileSync(outPath, code);
  console.log(`wrote ${outPath}`);
}
process.exit(failed ? 1 : 0);
