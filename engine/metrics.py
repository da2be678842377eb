"""Prometheus metrics of one engine, and the small HTTP endpoint that serves them with health.

GET /healthz answers 200 while the process runs; /readyz 200 once it holds the lease and has
recovered (503 before); /metrics the Prometheus text format.
"""

import asyncio
from collections.abc import Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Renders(Protocol):
    """Anything that renders its metrics in the Prometheus text format."""

    def render(self) -> bytes: ...


class EngineMetrics:
    def __init__(self, market: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"market": market}
        self.commands = Counter("engine_commands", "Commands applied", registry=self.registry)
        self.batch_size = Histogram(
            "engine_batch_size",
            "Commands per committed batch",
            registry=self.registry,
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
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
        self.book_orders = Gauge("engine_book_orders", "Resting orders", registry=self.registry)
        self.recoveries = Counter(
            "engine_recoveries", "Times the engine rebuilt its state", registry=self.registry
        )
        self.market_info = Gauge(
            "engine_info", "The market this engine runs", list(labels), registry=self.registry
        )
        self.market_info.labels(**labels).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def serve_health(
    host: str, port: int, metrics: Renders, is_ready: Callable[[], bool]
) -> asyncio.Server:
    """Start the endpoint (any process's: dbproc serves its own metrics through it too); the
    caller closes the returned server."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            parts = request.decode(errors="replace").split()
            path = parts[1] if len(parts) > 1 else ""
            if path == "/healthz":
                status, body = "200 OK", b"ok\n"
            elif path == "/readyz":
                ready = is_ready()
                status, body = (
                    ("200 OK", b"ready\n") if ready else ("503 Service Unavailable", b"not ready\n")
                )
            elif path == "/metrics":
                status, body = "200 OK", metrics.render()
            else:
                status, body = "404 Not Found", b"not found\n"
            head = f"HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
