"""The committed browser files are exactly a fresh esbuild build of js/src, each within
its size budget (the tag's is the README's 2,500 bytes gzipped)."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = {"t.js": 2500, "s.js": 200, "cmp.js": 1000}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_committed_files_match_a_fresh_build(tmp_path: Path) -> None:
    if not (ROOT / "js" / "node_modules" / "esbuild").exists():
        pytest.fail("js/node_modules is missing: run `make test` (it runs npm ci)")
    build = subprocess.run(
        ["node", "build.mjs", "--out", str(tmp_path)],
        cwd=ROOT / "js",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    for name in BUDGETS:
        assert (tmp_path / name).read_bytes() == (
            ROOT / "tracker" / "static" / name
        ).read_bytes(), f"tracker/static/{name} is stale: run `make tag` and commit it"


@pytest.mark.parametrize(("name", "budget"), BUDGETS.items())
def test_each_file_fits_its_gzip_budget(name: str, budget: int) -> None:
    built = (ROOT / "tracker" / "static" / name).read_bytes()
    assert len(gzip.compress(built, 9)) <= budget
