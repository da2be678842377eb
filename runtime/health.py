"""The small HTTP endpoint every process serves for its probes and Prometheus.

GET /healthz answers 200 while the process runs; /readyz 200 once the process says it is
ready (503 before); /metrics the Prometheus text format.
"""

import asyncio
from collections.abc import Callable
from typing import Protocol

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Renders(Protocol):
    """Anything that renders its metrics in the Prometheus text format."""

    def render(self) -> bytes: ...


async def serve_health(
    host: str, port: int, metrics: Renders, is_ready: Callable[[], bool]
) -> asyncio.Server:
    """Start the endpoint; the caller closes the returned server."""

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
