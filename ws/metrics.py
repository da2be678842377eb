"""Prometheus metrics of one ws replica (served at /metrics)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WsMetrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.connections = Gauge("ws_connections", "Open connections", registry=registry)
        self.subscriptions = Gauge(
            "ws_subscriptions", "Subscriptions by stream kind", ["kind"], registry=registry
        )
        self.messages_out = Counter(
            "ws_messages_out", "Messages written to clients", registry=registry
        )
        self.dropped = Counter(
            "ws_messages_dropped",
            "Messages dropped because a client's queue was full",
            registry=registry,
        )
        self.slow_clients = Counter(
            "ws_slow_clients",
            "Clients that fell behind, by what was done (resync or disconnect)",
            ["action"],
            registry=registry,
        )
        self.flooding_clients = Counter(
            "ws_flooding_clients",
            "Clients cut off for sending more than max_messages_per_second",
            registry=registry,
        )
        self.protocol_errors = Counter(
            "ws_protocol_errors", "Requests answered with an error", registry=registry
        )
        self.auth_failures = Counter(
            "ws_auth_failures",
            "Refused credentials (a bad JWT, an unknown listen key), by the answer: refused or "
            "throttled (the address must wait)",
            ["outcome"],
            registry=registry,
        )
        self.event_lag = Histogram(
            "ws_event_lag_seconds",
            "From an events entry's commit (its stream id) to its fan-out",
            ["market"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
        )
        self.event_batches = Counter(
            "ws_event_batches", "Events entries read", ["market"], registry=registry
        )
        self.depth_resyncs = Counter(
            "ws_depth_resyncs",
            "Times a market's book was reloaded from its depth key (gap in update ids)",
            ["market"],
            registry=registry,
        )
        self.markets = Gauge("ws_markets", "Markets being read", registry=registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
