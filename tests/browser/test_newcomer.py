"""A newcomer's first ten minutes, for real: a fresh clone, ``make run PORT=…``, the demo
page in Chromium (first as headless Chromium announces itself, which the collector drops
as a bot and the page says so; then as an ordinary browser), the form, the console
signed into with the password ``make run`` printed, the lead found there, and the CLI
working afterwards on the same data thanks to the ``.env`` it left.

The clone reuses this suite's virtualenv (``.venv`` a link to it, its install stamp
taken as current, the clone's own code first on ``PYTHONPATH``), so nothing is
installed; everything else is what a newcomer runs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import CHROME_UA, ROOT, free_port
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARTIFACTS = ROOT / "tmp" / "artifacts" / "newcomer"
_MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


@dataclass
class Run:
    clone: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    output: Path
    port: int

    def printed(self) -> str:
        return self.output.read_text(errors="replace")

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"make run ended early:\n{self.printed()}")
        if "Password:" not in self.printed():
            return False
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).is_success
        except httpx.TransportError:
            return False

    def said(self, label: str) -> str:
        found = re.search(rf"^\s*{label}:\s+(\S+)", self.printed(), re.M)
        assert found, f"make run did not print {label}:\n{self.printed()}"
        return found[1]


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("make and git are needed")
    if not (ROOT / ".git").exists():
        pytest.skip("the suite does not run from a git checkout (nothing to clone)")
    venv = Path(sys.prefix)
    if not (venv / "bin" / "ashiato").exists():
        pytest.skip("the suite does not run from a virtualenv with ashiato installed")
    clone = tmp_path_factory.mktemp("newcomer") / "ashiato"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=60)
    (clone / ".venv").symlink_to(venv)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ASHIATO_") and k not in _MAKE_VARIABLES}  # fmt: skip
    env["PYTHONPATH"] = str(clone)
    port, output = free_port(), clone.parent / "make-run.txt"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            ["make", "-o", ".venv/.installed", "run", f"PORT={port}"],
            cwd=clone, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    run = Run(clone, env, process, output, port)
    try:
        wait_until(run.ready, what="make run to print the sign-in and serve", timeout=90)
        yield run
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # make and the server: its process group
        process.wait(timeout=30)
    assert "Traceback" not in run.printed()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_make_run_prints_where_to_go_for_its_port(make_run: Run) -> None:
    base = f"http://127.0.0.1:{make_run.port}"
    assert make_run.said("Demo page") == f"{base}/demo/"
    assert make_run.said("Console") == f"{base}/admin/"
    assert make_run.said("Sign in") == "admin@example.com"
    assert f'src="{base}/t.js"' in make_run.printed()  # the snippet, for this port


def test_headless_chromium_is_told_why_its_events_are_dropped(make_run: Run, browser: Any) -> None:
    context = browser.new_context()  # Chromium's own user agent: HeadlessChrome
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{make_run.port}/demo/")
        assert "HeadlessChrome" in page.evaluate("navigator.userAgent")
        assert "reason bot" in page.locator(".dropped").inner_text()
        shot(page, "demo-headless")
    finally:
        context.close()


def test_a_newcomer_sends_the_form_and_finds_the_lead_in_the_console(
    make_run: Run, browser: Any
) -> None:
    base, email = f"http://127.0.0.1:{make_run.port}", "hanako.newcomer@example.jp"
    context = browser.new_context(user_agent=CHROME_UA, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(make_run.said("Demo page"))
        assert page.locator(".dropped").count() == 0
        shot(page, "demo")
        with page.expect_navigation():
            page.click("a[href^='/demo/?page=pricing']")
        page.fill("input[name=email]", email)
        page.fill("input[name=name]", "Hanako")
        page.fill("input[name=company]", "Example KK")
        with page.expect_navigation():
            page.click("form[data-ashiato] button")
        held = page.locator("body").inner_text()
        assert f"{email}, Hanako, Example KK" in held  # the lead, at the first answer
        assert "?page=pricing" in held  # the browsing before the form is its history
        shot(page, "demo-me")
        page.goto(make_run.said("Console"))
        assert page.url.startswith(f"{base}/admin/signin")
        page.fill("input[name=email]", make_run.said("Sign in"))
        page.fill("input[name=password]", make_run.said("Password"))
        with page.expect_navigation():
            page.click("form button[type=submit]")
        assert page.url == f"{base}/admin/"
        page.goto(f"{base}/admin/leads")
        assert email in page.locator("main").inner_text()
        shot(page, "console-leads")
        assert errors == []
    finally:
        context.close()


def test_the_cli_works_afterwards_on_the_same_data(make_run: Run) -> None:
    listed = subprocess.run(
        [".venv/bin/ashiato", "user", "list"], cwd=make_run.clone, env=make_run.env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "admin@example.com  admin" in listed.stdout
