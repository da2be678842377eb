"""Prometheus metrics of one engine (served by `runtime.health.serve_health`)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from engine.stages import StageClock


class EngineMetrics:
    def __init__(self, market: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"market": market}
        self.commands = Counter("engine_commands", "Commands applied", registry=self.registry)
        self.batch_size = Histogram(
            "engine_batch_size",
            "Commands per committed batch",
            registry=self.registry,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
        )
        self.commit_seconds = Histogram(
            "engine_commit_seconds",
            "Latency of the batch commit script",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
        )
        self.snapshot_seconds = Histogram(
            "engine_snapshot_seconds",
            "Time matching stood still to take a snapshot",
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
        )
        self.lag_seconds = Gauge(
            "engine_lag_seconds",
            "Age of the newest input not yet committed",
            registry=self.registry,
        )
        self.events_trimmed = Counter(
            "engine_events_trimmed",
            "Events stream entries trimmed after storage acknowledged them",
            registry=self.registry,
        )
        self.events_unstored = Gauge(
            "engine_events_unstored",
            "Events stream entries storage (dbproc) has not acknowledged; -1 if unknown",
            registry=self.registry,
        )
        self.book_orders = Gauge("engine_book_orders", "Resting orders", registry=self.registry)
        self.recoveries = Counter(
            "engine_recoveries", "Times the engine rebuilt its state", registry=self.registry
        )
        self.market_info = Gauge(
            "engine_info", "The market this engine runs", list(labels), registry=self.registry
        )
        self.market_info.labels(**labels).set(1)
        self.stages = StageClock()
        self.registry.register(self.stages)

    def render(self) -> bytes:
        return generate_latest(self.registry)
