"""Group commit: many requests' events written in one transaction.

``submit(events)`` parks the events in the open batch and returns once the batch that
holds them is committed (and, with SQLite's ``synchronous=FULL``, synced). A batch is
written when it reaches ``batch_max`` events or ``interval`` after its first event
arrived, whichever comes first; while one batch is being written the next one fills, so
under load every transaction carries many requests. The number of waiting events is
bounded: beyond ``queue_max`` a submit fails at once with ``Overloaded`` (503) instead of
growing memory and latency without limit. ``close()`` writes everything still waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from tracker.drops import DropReason
from tracker.errors import StorageError
from tracker.http_errors import Overloaded
from tracker.metrics import Metrics
from tracker.storage.records import WriteItem, WriteResult

log = logging.getLogger("ashiato.writer")

WriteBatch = Callable[[Sequence[WriteItem]], Awaitable[WriteResult]]


class Writer:
    def __init__(
        self,
        write_batch: WriteBatch,
        *,
        metrics: Metrics,
        batch_max: int = 512,
        interval: float = 0.002,
        queue_max: int = 20_000,
    ) -> None:
        self._write_batch = write_batch
        self._metrics = metrics
        self._batch_max = batch_max
        self._interval = interval
        self._queue_max = queue_max
        self._events: list[WriteItem] = []
        self._done: asyncio.Future[None] | None = None
        self._opened = 0.0  # when the open batch received its first event
        self._waiting = 0
        self._wakeup = asyncio.Event()  # a batch is open
        self._full = asyncio.Event()  # the open batch reached batch_max (or we close)
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def waiting(self) -> int:
        """Events accepted but not yet committed (the queue depth)."""
        return self._waiting

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ashiato-writer")

    async def submit(self, events: Sequence[WriteItem]) -> None:
        """Wait until ``events`` are committed; raise ``Overloaded`` if they cannot be."""
        if self._closing:
            raise Overloaded("shutting down", retry_after=2)
        if self._waiting + len(events) > self._queue_max:
            raise Overloaded("write queue is full", retry_after=1)
        if self._done is None:
            self._opened = time.monotonic()
            self._done = asyncio.get_running_loop().create_future()
            # Mark the outcome as seen even if every waiting client has gone away.
            self._done.add_done_callback(lambda f: f.cancelled() or f.exception())
        done = self._done
        self._events.extend(events)
        self._waiting += len(events)
        self._metrics.queue_depth = self._waiting
        self._wakeup.set()
        if len(self._events) >= self._batch_max:
            self._full.set()
        # shield: a client that disconnects must not cancel the batch for everyone.
        await asyncio.shield(done)

    async def close(self) -> None:
        """Stop accepting, write everything that waits, then stop the task."""
        self._closing = True
        self._wakeup.set()
        self._full.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while self._events or not self._closing:
            await self._wakeup.wait()
            if not self._events:
                self._wakeup.clear()
                continue
            await self._fill()
            await self._flush()

    async def _fill(self) -> None:
        """Let the open batch grow until ``interval`` after its first event, or until full.

        Under load the batch filled while the previous commit ran, so its time is already
        up and it is written at once: the interval only adds latency when traffic is light.
        """
        remaining = self._opened + self._interval - time.monotonic()
        if remaining <= 0 or self._full.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._full.wait(), remaining)

    async def _flush(self) -> None:
        events, done = self._events, self._done
        self._events, self._done = [], None
        self._wakeup.clear()
        if not self._closing:
            self._full.clear()
        assert done is not None
        started = time.perf_counter()
        try:
            result = await self._write_batch(events)
        except StorageError as exc:
            log.error("batch of %d events not written: %s", len(events), exc)
            self._metrics.commit_failures += 1
            done.set_exception(Overloaded("database unavailable", retry_after=2))
        except Exception as exc:  # never leave a waiting request hanging
            log.exception("batch of %d events not written", len(events))
            done.set_exception(exc)
        else:
            self._metrics.accepted += result.stored
            self._metrics.dropped[DropReason.NO_CONSENT] += result.refused
            self._metrics.dropped[DropReason.DUPLICATE] += result.duplicates
            done.set_result(None)
        finally:
            self._waiting -= len(events)
            self._metrics.queue_depth = self._waiting
            self._metrics.observe_batch(len(events), time.perf_counter() - started)
