"""The market maker against the real stack: Redis, PostgreSQL, an engine, dbproc and the api,
with `python -m mm` trading through the api as an ordinary user."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import asyncpg
import httpx
import pytest
import yaml

from tests.harness.api import funded
from tests.harness.engine import EXAMPLE
from tests.harness.mm import MakerProcess
from tests.harness.servers import PostgresServer
from tests.harness.stacks import Stack, running_stack
from xch.market import Market

MARKET = Market.model_validate(yaml.safe_load(EXAMPLE.read_text()))
MM_EMAIL = "mm-btc-usd@example.com"
LEVELS = MARKET.spec.market_maker.levels


@pytest.fixture(scope="module")
def maker_stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("mm-stack"),
        postgres_server,
        [EXAMPLE],
        database="mm",
        dbproc_env={"EXCHANGE_DBPROC_BLOCK_MS": "50"},
        api_env={"EXCHANGE_API_RATE_LIMIT_USER": "500", "EXCHANGE_API_RATE_LIMIT_IP": "100000"},
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def maker(maker_stack: Stack) -> Iterator[MakerProcess]:
    """`python -m mm` for btc-usd, signing itself up and taking funds from the faucet."""
    process = MakerProcess(
        MARKET.name,
        EXAMPLE,
        maker_stack.directory / "mm.log",
        env={
            "EXCHANGE_MM_API_URL": maker_stack.api.url,
            "EXCHANGE_MM_REDIS_URL": maker_stack.redis_url,
            "EXCHANGE_MM_EMAIL": MM_EMAIL,
            "EXCHANGE_MM_PASSWORD": "market-maker-password",
            "EXCHANGE_MM_FAUCET": json.dumps({"BTC": "1", "USD": "60000"}),
            "EXCHANGE_MM_INTERVAL_SECONDS": "0.3",
        },
    )
    process.start()
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture
async def http(maker_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=maker_stack.api.url, timeout=10) as client:
        yield client


async def depth(http: httpx.AsyncClient) -> tuple[list[Decimal], list[Decimal]]:
    response = await http.get("/api/v1/depth", params={"market": MARKET.name, "limit": 50})
    assert response.status_code == 200, response.text
    body = response.json()
    return [Decimal(p) for p, _ in body["bids"]], [Decimal(p) for p, _ in body["asks"]]


async def full_ladder(http: httpx.AsyncClient, timeout: float = 20) -> tuple[Decimal, Decimal]:
    """Wait until both sides show all levels; the best bid and ask."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bids, asks = await depth(http)
        if len(bids) >= LEVELS and len(asks) >= LEVELS:
            return bids[0], asks[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no full ladder in {timeout} s: {await depth(http)}")


async def test_quotes_the_configured_levels_and_follows_the_price(
    maker: MakerProcess, http: httpx.AsyncClient
) -> None:
    bid, ask = await full_ladder(http)
    reference = Decimal(MARKET.spec.market_maker.reference_price or "0")
    assert bid < reference < ask
    assert (ask - bid) / reference * 10_000 >= MARKET.spec.market_maker.spread_bps - 1

    taker = await funded(http, USD="100000", BTC="1")
    for _ in range(6):  # buy the asks, again and again: trades at rising prices
        response = await taker.place(
            market=MARKET.name, side="buy", type="market", quantity="0.0300"
        )
        assert response.status_code in (200, 202), response.text
        await asyncio.sleep(0.6)
    await asyncio.sleep(2)
    later_bid, later_ask = await full_ladder(http)
    assert later_bid > bid and later_ask > ask, (bid, ask, later_bid, later_ask)


async def test_never_trades_with_itself_nor_overdraws(
    maker: MakerProcess, maker_stack: Stack, http: httpx.AsyncClient
) -> None:
    await full_ladder(http)
    taker = await funded(http, USD="50000", BTC="2")
    for side in ("sell", "buy", "sell"):
        response = await taker.place(
            market=MARKET.name, side=side, type="market", quantity="0.0200"
        )
        assert response.status_code in (200, 202), response.text
        await asyncio.sleep(0.5)
    conn = await asyncpg.connect(maker_stack.database_url)
    try:
        mm_user = await conn.fetchval("SELECT id::text FROM users WHERE email = $1", MM_EMAIL)
        assert mm_user is not None
        self_trades = await conn.fetchval(
            "SELECT count(*) FROM trades WHERE maker_user = $1 AND taker_user = $1", mm_user
        )
        assert self_trades == 0
        taken = await conn.fetchval("SELECT count(*) FROM trades WHERE taker_user = $1", mm_user)
        assert taken == 0, "post-only quotes never take"
    finally:
        await conn.close()
    log = (maker_stack.directory / "mm.log").read_text()
    assert "insufficient_funds" not in log


async def test_sigterm_cancels_every_quote_and_unlocks_the_funds(
    maker: MakerProcess, maker_stack: Stack, http: httpx.AsyncClient
) -> None:
    await full_ladder(http)
    assert maker.terminate(timeout=30) == 0
    bids, asks = await depth(http)
    assert bids == [] and asks == [], "only the market maker quoted this book"
    signin = await http.post(
        "/api/v1/signin", json={"email": MM_EMAIL, "password": "market-maker-password"}
    )
    token = signin.json()["access_token"]
    balances = await http.get("/api/v1/balances", headers={"Authorization": f"Bearer {token}"})
    assert balances.status_code == 200
    for row in balances.json():
        assert Decimal(row["locked"]) == 0, row
