"""Where a batch's time goes: one histogram of nanoseconds per stage of the batch loop.

A stage is timed with two `perf_counter_ns` reads and counted with a `bisect` into fixed
bounds, about half a microsecond per stage and batch and nothing per command, so the clock
stays on in production. Prometheus reads the counts at scrape time as the histogram
`engine_stage_seconds{stage=...}` (`StageClock` is a collector), where `histogram_quantile`
gives each stage's p99 per batch.
"""

from bisect import bisect_left
from collections.abc import Iterator
from time import perf_counter_ns

from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.registry import Collector

READ = 0
"""Waiting for the input stream's XREAD (with nothing to read: the blocking wait itself)."""
PARSE = 1
"""The stream reply into `InputEntry`s."""
DECODE = 2
"""The commands' MessagePack into command structs."""
MATCH = 3
"""The engine applying the batch's commands."""
DEPTH = 4
"""`flush_depth` and the depth key's value."""
SETTLE = 5
"""The batch's events settled into its net balance moves."""
ENCODE = 6
"""The events, the replies and the moves into the commit's arguments."""
COMMIT = 7
"""The commit script's round trip, from sending it to its answer (while the next batch is read
and matched)."""
WAIT = 8
"""The loop waiting for the commit in flight once the next batch is matched: the part of the
commit's round trip the pipeline did not hide."""
SNAPSHOT = 9
"""Matching standing still for a snapshot's fork."""

STAGES = (
    "read", "parse", "decode", "match", "depth", "settle", "encode", "commit", "wait", "snapshot"
)  # fmt: skip

BOUNDS_NS = tuple(
    micros * 1000
    for micros in (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 100_000)
)
"""Upper bounds of the buckets (inclusive, as Prometheus's `le`); the last bucket is +Inf."""


class StageClock(Collector):
    """Per-stage histograms of the time a batch spent in each stage."""

    def __init__(self) -> None:
        self.counts = [[0] * (len(BOUNDS_NS) + 1) for _ in STAGES]
        self.sums_ns = [0] * len(STAGES)
        self._last = perf_counter_ns()
        self.last_ns = 0
        """The time of the latest `lap`."""

    @property
    def last_seconds(self) -> float:
        return self.last_ns / 1e9

    def start(self) -> None:
        """Start timing from now (the next `lap` measures from here)."""
        self._last = perf_counter_ns()

    def lap(self, stage: int) -> None:
        """Count the time since the previous `start` or `lap` to `stage`."""
        now = perf_counter_ns()
        elapsed = now - self._last
        self._last = now
        self.last_ns = elapsed
        self.observe(stage, elapsed)

    def observe(self, stage: int, elapsed_ns: int) -> None:
        self.counts[stage][bisect_left(BOUNDS_NS, elapsed_ns)] += 1
        self.sums_ns[stage] += elapsed_ns

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "engine_stage_seconds",
            "Time of one batch in each stage of the engine's loop",
            labels=["stage"],
        )
        for stage, name in enumerate(STAGES):
            cumulative, buckets = 0, []
            for bound, count in zip((*BOUNDS_NS, None), self.counts[stage], strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound is None else str(bound / 1e9), cumulative))
            family.add_metric([name], buckets, self.sums_ns[stage] / 1e9)
        yield family
