// Builds the browser files: js/src/*.js -> ../tracker/static/ (minified IIFEs, ES2017).
//   tag.js  -> t.js    the tag
//   stub.js -> s.js    the snippet's queue stub as a file (pages whose CSP allows no inline script)
//   cmp.js  -> cmp.js  the CMP adapter (IAB TCF, Google Consent Mode), only on sites that read one
//   node build.mjs              write the committed files
//   node build.mjs --out DIR    write them into DIR instead (tests byte-compare them)
//   node build.mjs --check      build in memory; exit 1 if a committed file is stale
// Prints the minified and gzipped sizes; exits 1 when a gzipped size exceeds its budget.
import {build} from 'esbuild';
import {existsSync, readFileSync, writeFileSync} from 'node:fs';
import {dirname, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';
import {parseArgs} from 'node:util';
import {gzipSync} from 'node:zlib';

// Budgets in gzipped bytes (gzip -9). The whole tag, identify and consent included,
// must stay below 2,500; the adapter is loaded only where a site enables it.
const FILES = [
  {src: 'tag.js', out: 't.js', budget: 2500},
  {src: 'stub.js', out: 's.js', budget: 200},
  {src: 'cmp.js', out: 'cmp.js', budget: 1000},
];

const here = dirname(fileURLToPath(import.meta.url));
const committedDir = resolve(here, '../tracker/static');

let args;
try {
  ({values: args} = parseArgs({
    options: {out: {type: 'string'}, check: {type: 'boolean', default: false}},
  }));
} catch (error) {
  console.error(`${error.message}\nusage: node build.mjs [--out DIR | --check]`);
  process.exit(2);
}

let failed = false;
for (const file of FILES) {
  const result = await build({
    entryPoints: [resolve(here, 'src', file.src)],
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
  console.log(`${file.out}: ${code.length} bytes minified, ${gzipped} bytes gzipped ` +
    `(budget ${file.budget})`);
  if (gzipped > file.budget) {
    console.error(`${file.out} is over budget by ${gzipped - file.budget} bytes gzipped`);
    failed = true;
  }
  const committedPath = resolve(committedDir, file.out);
  if (args.check) {
    const committed = existsSync(committedPath) ? readFileSync(committedPath) : null;
    if (!committed || !Buffer.from(code).equals(committed)) {
      console.error(`${committedPath} is not the build of src/${file.src}; run \`npm run build\``);
      failed = true;
    }
  } else {
    const outPath = args.out ? resolve(args.out, file.out) : committedPath;
    writeFileSync(outPath, code);
    console.log(`wrote ${outPath}`);
  }
}
process.exit(failed ? 1 : 0);
