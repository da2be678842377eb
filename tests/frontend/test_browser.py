"""The trading frontend in a real browser against the real stack.

Redis, PostgreSQL, an engine, dbproc, the api, ws and the frontend's same-origin server
(frontend/serve.mjs) run as processes on free ports with throw-away data; the Node script
frontend/e2e/trading.mjs drives Debian's Chromium through playwright-core: sign up, demo
funds, a limit buy seen in open orders and the book, crossed by another user, the trade in
the tape, the candle and the balances updated, a cancel, a stop-limit order and an OCO list
placed from the form and seen in open orders (stop price, waiting, OCO legs, their locks),
and the book under 100 updates a second; then frontend/e2e/portfolio.mjs: the portfolio page
against the api's figures, live after a trade, with its P&L chart. `make frontend` builds
frontend/out first; `make test` does it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio
import yaml

from api.services.order_plans import new_order_id
from ledger.gateway import Gateway
from tests.harness.api import JWT_SECRET, market_manifest
from tests.harness.engine import load_rules, place
from tests.harness.processes import ROOT, Child, free_port, http_status_blocking
from tests.harness.servers import PostgresServer
from tests.harness.stacks import running_stack, start_service
from tests.harness.ws import WsProcess
from xch.schemas import BUY, GTC, LIMIT, SELL, STP_EXPIRE_MAKER, Place

FRONTEND = ROOT / "frontend"
NODE = shutil.which("node") or "node"
CHROMIUM = os.environ.get("EXCHANGE_CHROMIUM", "/usr/bin/chromium")


BURST_RATE = 100
BURST_SECONDS = 3


@dataclass
class Site:
    url: str
    api_url: str
    redis_url: str
    manifest: Path


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[Site]:
    assert (FRONTEND / "out" / "trade" / "index.html").is_file(), "run `make frontend` first"
    directory = tmp_path_factory.mktemp("frontend-stack")
    manifest = market_manifest(directory, "btc-usd", "BTC")
    with ExitStack() as stop:
        stack = stop.enter_context(
            running_stack(
                directory,
                postgres_server,
                [manifest],
                database="frontend",
                # The load step sends 100 orders a second from one address.
                api_env={"EXCHANGE_API_RATE_LIMIT_USER": "1000", "EXCHANGE_API_RATE_LIMIT_IP": "5000"},
            )
        )
        ws = WsProcess(
            stack.redis_url,
            directory / "ws.log",
            env={"EXCHANGE_JWT_SECRET": JWT_SECRET, "EXCHANGE_WS_POSTGRES_DSN": stack.database_url},
        )
        start_service(stop, ws)
        asyncio.run(ws.wait_ready())
        port = free_port()
        command = [NODE, "serve.mjs", "--port", str(port), "--api", stack.api.url]
        command += ["--ws", f"http://127.0.0.1:{ws.port}"]
        server = Child(command, directory / "serve.log", cwd=FRONTEND, new_session=False)
        server.start()
        stop.callback(server.stop)
        # Any answer will do: the server is up.
        server.wait_until(lambda: http_status_blocking(port, "/") != 0, "serve.mjs", 20, 0.1)
        yield Site(f"http://127.0.0.1:{port}", stack.api.url, stack.redis_url, manifest)


async def drive_book(site: Site, buyer: str, seller: str) -> dict[str, float]:
    """BURST_RATE resting orders a second for BURST_SECONDS, enqueued as the api enqueues them
    (lock, then XADD): each one is a depth update for the page. None crosses: bids stay at
    29900-29949, asks at 29960-30009."""
    rules = load_rules(site.manifest)
    client = redis.asyncio.Redis.from_url(site.redis_url)
    gateway = Gateway(client)
    count = BURST_RATE * BURST_SECONDS
    start = time.monotonic()
    try:
        for i in range(count):
            delay = start + i / BURST_RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            buy = i % 2 == 0
            price = (29900 if buy else 29960) + (i // 2) % 50
            order = Place(
                new_order_id(rules.name),
                buyer if buy else seller,
                BUY if buy else SELL,
                LIMIT,
                rules.price_to_ticks(f"{price}.00"),
                rules.qty_to_lots("0.0010"),
                0,
                GTC,
                STP_EXPIRE_MAKER,
                0,
            )
            assert await place(gateway, rules, order) is not None, "not funded"
    finally:
        await client.aclose()
    return {"orders": count, "seconds": round(time.monotonic() - start, 2)}


def test_trading_page_in_chromium(site: Site, tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    # EXCHANGE_SCREENSHOTS=docs/screenshots refreshes the README's pictures.
    screenshots = os.environ.get("EXCHANGE_SCREENSHOTS", str(tmp_path / "screenshots"))
    process = subprocess.Popen(
        [NODE, "e2e/trading.mjs"],
        cwd=FRONTEND,
        env={
            **os.environ,
            "BASE_URL": site.url,
            "API_URL": site.api_url,
            "MARKET": "btc-usd",
            "CHROMIUM": CHROMIUM,
            "SCREENSHOTS": str(Path(screenshots).resolve()),
            "FIGURES": str(figures),
        },
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    output = []
    try:
        # The script asks for the book load with a line `@@burst {"buyer": …, "seller": …}`.
        for line in process.stdout:
            output.append(line)
            if line.startswith("@@burst "):
                users = json.loads(line.removeprefix("@@burst "))
                done = asyncio.run(drive_book(site, users["buyer"], users["seller"]))
                process.stdin.write(json.dumps(done) + "\n")
                process.stdin.flush()
        returncode = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    print("".join(output))
    assert returncode == 0, "".join(output)[-6000:]
    measured = json.loads(figures.read_text())
    assert measured["interactive_ms"] < 2000
    assert measured["book"]["book_renders"] <= measured["book"]["frames"] + 2


def test_portfolio_page_in_chromium(site: Site, tmp_path: Path) -> None:
    """frontend/e2e/portfolio.mjs: trades through the api, then the page shows the api's
    portfolio, follows a further trade through the stream and charts the P&L."""
    screenshots = os.environ.get("EXCHANGE_SCREENSHOTS", str(tmp_path / "screenshots"))
    result = subprocess.run(
        [NODE, "e2e/portfolio.mjs"],
        cwd=FRONTEND,
        env={
            **os.environ,
            "BASE_URL": site.url,
            "API_URL": site.api_url,
            "MARKET": "btc-usd",
            "CHROMIUM": CHROMIUM,
            "SCREENSHOTS": str(Path(screenshots).resolve()),
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert "done" in result.stdout
