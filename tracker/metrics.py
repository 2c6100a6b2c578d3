"""In-process metrics rendered as Prometheus text (no client library needed).

Counters and histograms are plain integers updated on the event loop, so no locks. With
``--workers N`` each process keeps its own; Prometheus sums them per instance.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

from tracker.drops import DropReason

_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(slots=True)
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def render(self, name: str) -> list[str]:
        lines, running = [], 0
        for bound, n in zip(self.buckets, self.counts, strict=False):
            running += n
            lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum {self.total:.6f}")
        lines.append(f"{name}_count {self.count}")
        return lines


@dataclass(slots=True)
class Metrics:
    accepted: int = 0
    dropped: Counter[DropReason] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)
    api_responses: Counter[int] = field(default_factory=Counter)
    queue_depth: int = 0
    commit_failures: int = 0
    rate_limited: Counter[str] = field(default_factory=Counter)
    retention_running: int = 0
    retention_runs: int = 0
    retention_deleted: Counter[str] = field(default_factory=Counter)
    batch_sizes: Histogram = field(default_factory=lambda: Histogram(_BATCH_BUCKETS))
    commit_seconds: Histogram = field(default_factory=lambda: Histogram(_LATENCY_BUCKETS))

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_sizes.observe(size)
        self.commit_seconds.observe(seconds)

    def render(self) -> str:
        out = [
            "# HELP ashiato_events_accepted_total Events committed to the store.",
            "# TYPE ashiato_events_accepted_total counter",
            f"ashiato_events_accepted_total {self.accepted}",
            "# HELP ashiato_events_dropped_total Events not stored, by reason.",
            "# TYPE ashiato_events_dropped_total counter",
            *(
                f'ashiato_events_dropped_total{{reason="{r}"}} {n}'
                for r, n in sorted(self.dropped.items())
            ),
            "# HELP ashiato_http_responses_total Collector (/collect, /p.gif) responses by status.",
            "# TYPE ashiato_http_responses_total counter",
            *(
                f'ashiato_http_responses_total{{code="{c}"}} {n}'
                for c, n in sorted(self.responses.items())
            ),
            "# HELP ashiato_api_responses_total MA/admin API (/api/) responses by status.",
            "# TYPE ashiato_api_responses_total counter",
            *(
                f'ashiato_api_responses_total{{code="{c}"}} {n}'
                for c, n in sorted(self.api_responses.items())
            ),
            "# HELP ashiato_rate_limited_total Requests refused with 429, by limit.",
            "# TYPE ashiato_rate_limited_total counter",
            *(
                f'ashiato_rate_limited_total{{limit="{k}"}} {n}'
                for k, n in sorted(self.rate_limited.items())
            ),
            "# HELP ashiato_writer_queue_depth Events accepted and waiting for a commit.",
            "# TYPE ashiato_writer_queue_depth gauge",
            f"ashiato_writer_queue_depth {self.queue_depth}",
            "# HELP ashiato_writer_commit_failures_total Batches the database refused.",
            "# TYPE ashiato_writer_commit_failures_total counter",
            f"ashiato_writer_commit_failures_total {self.commit_failures}",
            "# HELP ashiato_retention_running 1 while the retention job runs.",
            "# TYPE ashiato_retention_running gauge",
            f"ashiato_retention_running {self.retention_running}",
            "# HELP ashiato_retention_runs_total Completed retention runs.",
            "# TYPE ashiato_retention_runs_total counter",
            f"ashiato_retention_runs_total {self.retention_runs}",
            "# HELP ashiato_retention_deleted_total Items deleted by retention, by data class.",
            "# TYPE ashiato_retention_deleted_total counter",
            *(
                f'ashiato_retention_deleted_total{{class="{c}"}} {n}'
                for c, n in sorted(self.retention_deleted.items())
            ),
            "# HELP ashiato_writer_batch_size Events per committed transaction.",
            "# TYPE ashiato_writer_batch_size histogram",
            *self.batch_sizes.render("ashiato_writer_batch_size"),
            "# HELP ashiato_writer_commit_seconds Time to write and sync one batch.",
            "# TYPE ashiato_writer_commit_seconds histogram",
            *self.commit_seconds.render("ashiato_writer_commit_seconds"),
        ]
        return "\n".join(out) + "\n"
