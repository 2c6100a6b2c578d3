"""What the consent and identify browser tests share: watching the beacons a browser
context sends, bounded polling, and reading the tag's traces in the browser."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tests.servers import with_store
from tests.waiting import wait_for
from tracker.storage.records import Event

T = TypeVar("T")
READY = "window.ashiato && window.ashiato.l"


def poll(probe: Callable[[], T], done: Callable[[T], bool], what: str, timeout: float = 10) -> T:
    """``probe()`` until ``done`` holds for its value; fails after ``timeout`` seconds."""
    return wait_for(probe, done, what=what, timeout=timeout)


def stored_events(database_url: str, vid: str) -> list[Event]:
    return with_store(database_url, lambda s: s.visitor_events(vid))


def wait_events(
    database_url: str, vid: str, done: Callable[[list[Event]], bool], what: str
) -> list[Event]:
    return poll(lambda: stored_events(database_url, vid), done, what)


class Beacons:
    """Every request a browser context sends to the collector's ``/collect``, with its
    body decoded into beacons. Playwright delivers request events while it runs a call
    (``page.wait_for_timeout``, ``page.goto``, …), never during ``time.sleep``."""

    def __init__(self, context: Any, collector: str) -> None:
        self.endpoint = f"{collector}/collect"
        self.bodies: list[str] = []
        context.on("request", self._seen)

    def _seen(self, request: Any) -> None:
        if request.url.split("?")[0] == self.endpoint and request.method == "POST":
            self.bodies.append(request.post_data or "")

    @property
    def count(self) -> int:
        return len(self.bodies)

    def beacons(self, start: int = 0) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for body in self.bodies[start:]:
            data = json.loads(body)
            found.extend(data.get("events", [data]))
        return found

    def wait(
        self, page: Any, done: Callable[[list[dict[str, Any]]], bool], what: str, start: int = 0
    ) -> list[dict[str, Any]]:
        """Lets the page run until the beacons sent since request ``start`` satisfy
        ``done``; fails after 10 seconds."""
        deadline = time.monotonic() + 10
        while not done(self.beacons(start)):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            page.wait_for_timeout(50)
        return self.beacons(start)

    def none_during(self, page: Any, ms: int, start: int) -> None:
        """Watch for ``ms`` milliseconds that nothing more than request ``start`` is sent
        (absence cannot be polled for: this is a bounded watch, failing at the first one)."""
        deadline = time.monotonic() + ms / 1000
        while time.monotonic() < deadline:
            assert self.count == start, f"unexpected beacons: {self.beacons(start)}"
            page.wait_for_timeout(50)
        assert self.count == start, f"unexpected beacons: {self.beacons(start)}"


def visitor_cookie(context: Any) -> str | None:
    values = [c["value"] for c in context.cookies() if c["name"] == "_ashiato_vid"]
    assert len(values) <= 1
    return str(values[0]) if values else None


def wait_cookie(context: Any, *, present: bool) -> str | None:
    """The visitor cookie once it is there (or gone): a page's ``document.cookie`` write
    reaches the browser's cookie store asynchronously."""
    what = "the visitor cookie to be " + ("set" if present else "removed")
    return poll(lambda: visitor_cookie(context), lambda v: (v is not None) == present, what, 5)


def tag_storage(page: Any) -> dict[str, str]:
    """The tag's keys in localStorage (``_ashiato_*``)."""
    script = "Object.entries(localStorage).filter(([k]) => k.startsWith('_ashiato'))"
    found: dict[str, str] = page.evaluate(f"Object.fromEntries({script})")
    return found


def open_page(page: Any, url: str) -> None:
    """Navigate and wait until the tag has taken over from the snippet."""
    page.goto(url)
    page.wait_for_function(READY, timeout=5000)


def visit(page: Any, url: str, database_url: str) -> str:
    """Open ``url`` (a page of a notice site) and return the visitor id once its page
    view is stored. The server dates an event by its arrival (less the time it waited in
    the browser), so a slow beacon could be stored after the next page's: waiting keeps
    the order of pages opened one after another certain."""

    def views(events: list[Event]) -> int:
        return sum(e.type == "pageview" and e.url == url for e in events)

    vid = visitor_cookie(page.context)
    before = views(stored_events(database_url, vid)) if vid else 0
    open_page(page, url)
    assert page.url == url
    vid = wait_cookie(page.context, present=True)
    assert vid is not None
    wait_events(database_url, vid, lambda ev: views(ev) > before, f"the page view of {url}")
    return vid
