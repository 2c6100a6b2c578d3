"""The committed tag is exactly a fresh esbuild build of js/src, within its size budget."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 2500


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_committed_tag_matches_a_fresh_build(tmp_path: Path) -> None:
    if not (ROOT / "js" / "node_modules" / "esbuild").exists():
        pytest.fail("js/node_modules is missing: run `make test` (it runs npm ci)")
    out = tmp_path / "t.js"
    build = subprocess.run(
        ["node", "build.mjs", "--out", str(out)],
        cwd=ROOT / "js",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    assert out.read_bytes() == (ROOT / "tracker" / "static" / "t.js").read_bytes(), (
        "tracker/static/t.js is stale: run `make tag` and commit it"
    )


def test_tag_fits_its_gzip_budget() -> None:
    tag = (ROOT / "tracker" / "static" / "t.js").read_bytes()
    assert len(gzip.compress(tag, 9)) <= BUDGET
