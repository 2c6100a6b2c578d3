"""What the console's browser tests share: a deployment with users of each role, a
webhook receiver, signing in through the real form, screenshots, and watching a page
for dialogs and console errors (a CSP violation is logged as one)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.console import PASSWORD
from tests.servers import CHROME_UA, ROOT, free_port

ARTIFACTS = ROOT / "tmp" / "artifacts" / "console"
"""Screenshots of every page the browser tests visit (kept as test artifacts)."""


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: answers 204, remembers each delivery's headers."""

    port: int = field(default_factory=free_port)
    seen: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ashiato"

    def serve(self) -> ThreadingHTTPServer:
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd


class Watched:
    """A browser page with every dialog, page error and console error recorded (and
    dialogs dismissed, so a script that ran cannot block the test)."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(user_agent=CHROME_UA, accept_downloads=True,
                                           viewport={"width": 1280, "height": 900})  # fmt: skip
        self.page = self.context.new_page()
        self.base = base
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _console(self, message: Any) -> None:
        # An answer's status (a 403 or 400 page the test asks for) is logged as an error
        # too; only script errors and CSP violations count.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def go(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        self.page.wait_for_load_state("load")
        return response

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        self.go("/admin/signin")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", password)
        self.page.click("form button[type=submit]")
        self.page.wait_for_url(self.base + "/admin/")

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()
