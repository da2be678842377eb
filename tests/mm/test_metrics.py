"""The market maker's /metrics as `exchange status` summarises them."""

import asyncio

from launcher.cli import _maker_summary
from mm.maker import MakerMetrics
from runtime.health import serve_health
from tests.harness.processes import free_port


async def test_exchange_status_summarises_a_makers_metrics() -> None:
    metrics = MakerMetrics("btc-usd")
    metrics.spread.set(21.5)
    metrics.depth.labels("buy", "100").set(0.15)
    metrics.depth.labels("sell", "100").set(0.14)
    metrics.inventory.labels("BTC").set(1.02)
    metrics.fill_ratio.set(0.125)
    metrics.pnl.set(-3.2)
    port = free_port()
    server = await serve_health("127.0.0.1", port, metrics, lambda: True)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        summary = await asyncio.to_thread(_maker_summary, url)
    finally:
        server.close()
        await server.wait_closed()
    assert summary == (
        "spread 21.5 bps  depth ±1% 0.15/0.14  holds 1.02 BTC  fill ratio 12.5%  P&L -3.20"
    )
    assert await asyncio.to_thread(_maker_summary, f"http://127.0.0.1:{free_port()}/m") == ""
