"""Waiting for something to happen: poll a condition until a deadline, instead of
sleeping a fixed time and hoping it happened meanwhile (too short on a busy machine,
too long everywhere else)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    """What was awaited did not happen in time (a test failure, not an error)."""


def wait_for(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    what: str,
    timeout: float = 10.0,
    interval: float = 0.05,
) -> T:
    """``probe()`` every ``interval`` seconds until ``done`` holds for its value, and
    return that value; after ``timeout`` seconds the test fails, naming ``what`` it
    waited for and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise TimedOut(f"timed out after {timeout} s waiting for {what}: {value!r:.300}")
        time.sleep(interval)


def wait_until(
    predicate: Callable[[], T], *, what: str, timeout: float = 10.0, interval: float = 0.05
) -> T:
    """``predicate()`` until it returns something truthy, which is returned."""
    return wait_for(predicate, bool, what=what, timeout=timeout, interval=interval)


async def async_wait_until(
    predicate: Callable[[], T], *, what: str, timeout: float = 10.0, interval: float = 0.001
) -> T:
    """:func:`wait_until` inside an event loop: the other tasks run while it waits."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise TimedOut(f"timed out after {timeout} s waiting for {what}: {value!r:.300}")
        await asyncio.sleep(interval)
    return value


def clock_passes(ms: int) -> int:
    """Wait until this machine's clock (the local server's too) reads past ``ms``
    milliseconds since the epoch, and return the time it reads."""
    return wait_until(
        lambda: (now := int(time.time() * 1000)) > ms and now,
        what=f"the clock to pass {ms} ms",
        interval=0.001,
    )
