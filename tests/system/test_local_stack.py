"""The whole exchange in local mode, driven through its public interfaces only (HTTP,
WebSocket, SQL reads, the `exchange` command), with the engine, api, ws and dbproc each
killed once (kill -9) along the way and restarted by the supervisor.

At the end: the trades in PostgreSQL are exactly those seen on the ws `trade@` streams, each
user's fills from the api are exactly their trades in PostgreSQL, the klines the api serves
match the trades, and for every asset the journal adds up to the deposits.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.harness.processes import ROOT, free_port, port_is_free

MARKETS = ("btc-usd", "eth-usd")
UP_TIMEOUT = 240


@dataclass
class LocalStack:
    state: Path
    env: dict[str, str]

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['EXCHANGE_API_PORT']}/api/v1"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.env['EXCHANGE_WS_PORT']}/ws"

    @property
    def page(self) -> str:
        return f"http://127.0.0.1:{self.env['EXCHANGE_FRONTEND_PORT']}/"

    @property
    def database(self) -> str:
        return f"postgresql://exchange@127.0.0.1:{self.env['EXCHANGE_PG_PORT']}/exchange"

    def exchange(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "launcher.cli", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def supervised(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.state / "run" / "supervisor.json").read_text())
        return state

    async def kill_and_wait(self, name: str, timeout: float = 60) -> None:
        """kill -9 one component and wait until the supervisor has it healthy again."""
        before = self.supervised()[name]
        os.kill(before["pid"], signal.SIGKILL)
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                now = self.supervised()[name]
                if now["pid"] != before["pid"] and now["alive"]:
                    try:
                        if (await client.get(now["health"], timeout=1)).status_code == 200:
                            return
                    except httpx.HTTPError:
                        pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{name} not back in {timeout} s: {self.supervised()[name]}")


PORT_BLOCK = 8
"""Ports per block of numbered ports (one per market: engines' and market makers' health)."""


def stack_ports() -> dict[str, str]:
    """Free ports for the stack's settings. The engines and market makers number theirs from a
    base port, so each base starts a block of free ports no other setting falls into."""
    taken: set[int] = set()

    def block(size: int) -> int:
        while True:
            base = free_port()
            span = range(base, base + size)
            if taken.isdisjoint(span) and all(port_is_free(port) for port in span):
                taken.update(span)
                return base

    names = ("REDIS", "PG", "API", "WS", "DBPROC_HEALTH", "FRONTEND")
    single = {f"EXCHANGE_{name}_PORT": block(1) for name in names}
    numbered = {f"EXCHANGE_{name}_BASE_PORT": block(PORT_BLOCK) for name in ("ENGINE", "MM")}
    return {name: str(port) for name, port in {**single, **numbered}.items()}


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    state = Path(tempfile.mkdtemp(prefix="xch-local-"))
    ports = stack_ports()
    state.chmod(0o755)  # the servers run as another user when the tests run as root
    env = {
        "EXCHANGE_STATE_DIR": str(state),
        **ports,
        "EXCHANGE_TRADERS": "0",  # only this test's users take liquidity
    }
    local = LocalStack(state, env)
    try:
        started = local.exchange("up", timeout=UP_TIMEOUT)
        assert started.returncode == 0, started.stdout + started.stderr
        yield local
    finally:
        stopped = local.exchange("down")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    if request.session.testsfailed == 0:  # else its logs stay for a look
        shutil.rmtree(state)


@dataclass
class TradeWatcher:
    """Subscribes to the trade streams and keeps every trade seen; reconnects after a drop
    (the test trades only once it is subscribed again)."""

    url: str
    seen: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    subscriptions: int = 0

    async def run(self) -> None:
        while True:
            try:
                async with connect(self.url, open_timeout=5) as connection:
                    await self._subscribe(connection)
                    async for raw in connection:
                        self._keep(orjson.loads(raw))
            except (ConnectionClosed, OSError, TimeoutError):
                self.subscribed.clear()
                await asyncio.sleep(0.3)

    async def _subscribe(self, connection: ClientConnection) -> None:
        params = [f"trade@{market}" for market in MARKETS]
        await connection.send(orjson.dumps({"method": "SUBSCRIBE", "params": params, "id": 1}))
        while True:
            message = orjson.loads(await connection.recv())
            if message.get("id") == 1:
                assert message == {"result": None, "id": 1}, message
                self.subscriptions += 1
                self.subscribed.set()
                return
            self._keep(message)

    async def resubscribed_after(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.subscriptions <= count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the trade streams not subscribed again in {timeout} s")
            await asyncio.sleep(0.1)

    def _keep(self, message: dict[str, Any]) -> None:
        if str(message.get("stream", "")).startswith("trade@"):
            data = message["data"]
            self.seen[data["market"], data["trade_id"]] = data


class Trader:
    def __init__(self, client: httpx.AsyncClient, api: str, email: str) -> None:
        self.client, self.api, self.email = client, api, email
        self.headers: dict[str, str] = {}

    async def call(self, method: str, path: str, body: Any = None, retry: bool = True) -> Any:
        """One request; while the api restarts, connection failures are retried."""
        for _ in range(100):
            try:
                response = await self.client.request(
                    method, self.api + path, json=body, headers=self.headers, timeout=10
                )
            except httpx.TransportError:
                if not retry:
                    raise
                await asyncio.sleep(0.2)
                continue
            return response
        raise AssertionError(f"{method} {path}: the api did not come back")

    async def sign_up(self) -> None:
        response = await self.call("POST", "/signup", {"email": self.email, "password": "pw-" * 4})
        assert response.status_code == 201, response.text
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        for asset, amount in (("BTC", "10"), ("ETH", "100"), ("USD", "100000")):
            funded = await self.call("POST", "/faucet", {"asset": asset, "amount": amount})
            assert funded.status_code == 200, funded.text

    async def order(self, **order: str) -> dict[str, Any]:
        response = await self.call("POST", "/order", order)
        assert response.status_code in (200, 202), response.text
        body: dict[str, Any] = response.json()
        return body


async def quoted(trader: Trader, market: str, timeout: float = 60) -> None:
    """Wait until the market maker quotes both sides of `market`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        depth = (await trader.call("GET", f"/depth?market={market}&limit=1")).json()
        if depth["bids"] and depth["asks"]:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"the market maker does not quote {market} after {timeout} s")


async def best(trader: Trader, market: str, side: str) -> Decimal:
    depth = (await trader.call("GET", f"/depth?market={market}&limit=1")).json()
    levels = depth["asks" if side == "buy" else "bids"]
    assert levels, f"the market maker quotes {market}"
    return Decimal(levels[0][0])


async def trade_round(alice: Trader, bob: Trader, market: str, lot: str) -> None:
    """Alice rests a bid inside the spread, Bob sells into it; Bob also takes an ask of the
    market maker; Alice places and cancels one more bid."""
    bid = await best(alice, market, "sell")
    ask = await best(alice, market, "buy")
    price = str((bid + (ask - bid) / 2).quantize(Decimal("0.01")))
    resting = await alice.order(market=market, side="buy", type="limit", price=price, quantity=lot)
    taken = await bob.order(market=market, side="sell", type="limit", price=price, quantity=lot)
    assert taken["status"] in ("filled", "pending"), taken
    assert resting["status"] in ("new", "pending"), resting
    await bob.order(market=market, side="buy", type="market", quantity=lot)
    extra = await alice.order(
        market=market, side="buy", type="limit", price=str(bid - Decimal("5")), quantity=lot
    )
    canceled = await alice.call("DELETE", f"/order/{extra['order_id']}")
    assert canceled.status_code in (200, 202), canceled.text


@pytest.fixture
async def watcher(stack: LocalStack) -> AsyncIterator[TradeWatcher]:
    watching = TradeWatcher(stack.ws)
    task = asyncio.create_task(watching.run())
    try:
        await asyncio.wait_for(watching.subscribed.wait(), 30)
        yield watching
    finally:
        task.cancel()


async def wait_until_stored(stack: LocalStack, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = await asyncpg.connect(stack.database)
        try:
            stored = await conn.fetchval("SELECT count(*) FROM trades")
        finally:
            await conn.close()
        if stored >= count:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{count} trades not stored in {timeout} s")


async def test_the_trading_page_is_served_with_the_api_behind_it(stack: LocalStack) -> None:
    async with httpx.AsyncClient() as client:
        page = await client.get(stack.page, timeout=10)
        assert page.status_code == 200 and "<html" in page.text
        markets = await client.get(stack.page + "api/v1/markets", timeout=10)
        assert markets.status_code == 200
        assert sorted(m["name"] for m in markets.json()) == sorted(MARKETS)


async def test_an_operator_makes_an_admin_with_the_exchange_command(stack: LocalStack) -> None:
    """Sign-up makes no admin; `exchange admin grant` (the local database) does."""
    async with httpx.AsyncClient() as client:
        account = Trader(client, stack.api, "operator-made-admin@example.com")
        await account.sign_up()
        body = {"user_id": "1", "asset": "XYZ", "amount": "1", "reference": "local-admin"}
        refused = await account.call("POST", "/admin/deposit", body)
        assert refused.status_code == 403, refused.text
        granted = stack.exchange("admin", "grant", account.email)
        assert granted.returncode == 0, granted.stderr
        # Past the admin check: refused for the unknown asset, nothing moved.
        admitted = await account.call("POST", "/admin/deposit", body)
        assert admitted.status_code == 400 and admitted.json()["code"] == "unknown_asset"
        assert stack.exchange("admin", "revoke", account.email).returncode == 0
        assert (await account.call("POST", "/admin/deposit", body)).status_code == 403


async def test_trading_survives_every_component_dying_once(
    stack: LocalStack, watcher: TradeWatcher
) -> None:
    async with httpx.AsyncClient() as client:
        alice = Trader(client, stack.api, "alice@example.com")
        bob = Trader(client, stack.api, "bob@example.com")
        await alice.sign_up()
        await bob.sign_up()
        lots = {"btc-usd": "0.0100", "eth-usd": "0.100"}
        for market in MARKETS:
            await quoted(alice, market)
            await trade_round(alice, bob, market, lots[market])

        halted = stack.exchange("market", "apply", "-f", str(halted_manifest(stack.state)))
        assert halted.returncode == 0, halted.stderr
        refused = await alice.call(
            "POST", "/order",
            {"market": "btc-usd", "side": "buy", "type": "market", "quantity": "0.0010"},
        )  # fmt: skip
        assert refused.status_code >= 400 and "halt" in refused.text, refused.text
        resumed = stack.exchange(
            "market", "apply", "-f", str(ROOT / "examples/markets/btc-usd.yaml")
        )
        assert resumed.returncode == 0, resumed.stderr

        for component in ("engine btc-usd", "api", "dbproc", "ws"):
            subscriptions = watcher.subscriptions
            await stack.kill_and_wait(component)
            if component == "ws":
                await watcher.resubscribed_after(subscriptions)
            for market in MARKETS:
                await trade_round(alice, bob, market, lots[market])

        await wait_until_stored(stack, len(watcher.seen))
        await asyncio.sleep(2)  # a last batch on its way to either side
        await check_consistency(stack, watcher, [alice, bob])


def halted_manifest(directory: Path) -> Path:
    text = (ROOT / "examples/markets/btc-usd.yaml").read_text()
    path = directory / "btc-usd-halted.yaml"
    path.write_text(text.replace("trading: Enabled", "trading: Halted"))
    return path


async def check_consistency(stack: LocalStack, watcher: TradeWatcher, users: list[Trader]) -> None:
    conn = await asyncpg.connect(stack.database)
    try:
        stored = {
            (row["market"], row["trade_id"]): row
            for row in await conn.fetch("SELECT * FROM trades")
        }
        # Five rounds of two markets, each at least two trades (a cross and a market buy).
        assert len(stored) >= 20, len(stored)
        assert set(stored) == set(watcher.seen), "ws and PostgreSQL disagree on the trades"
        for key, seen in watcher.seen.items():
            assert Decimal(seen["price"]) == stored[key]["price"]
            assert Decimal(seen["qty"]) == stored[key]["qty"]
        for user in users:
            me = (await user.call("GET", "/balances")).json()  # proves the token still works
            assert me
            fills = (await user.call("GET", "/fills?limit=500")).json()
            mine = {(f["market"], f["trade_id"]) for f in fills}
            user_id = await conn.fetchval("SELECT id::text FROM users WHERE email = $1", user.email)
            expected = {
                key
                for key, row in stored.items()
                if user_id in (row["maker_user"], row["taker_user"])
            }
            assert mine == expected, user.email
        await check_klines(stack, users[0], stored)
        unbalanced = await conn.fetch(
            "SELECT j.asset, j.total, coalesce(t.deposits, 0) AS deposits FROM "
            "(SELECT asset, sum(free_delta + locked_delta) AS total FROM journal "
            " WHERE user_id <> '@external' GROUP BY asset) j "
            "LEFT JOIN (SELECT asset, sum(amount) AS deposits FROM transfers GROUP BY asset) t "
            "ON t.asset = j.asset WHERE j.total <> coalesce(t.deposits, 0)"
        )
        assert unbalanced == [], "the journal does not add up to the deposits"
    finally:
        await conn.close()


async def check_klines(stack: LocalStack, user: Trader, stored: dict[Any, Any]) -> None:
    for market in MARKETS:
        trades = sorted(
            (r for k, r in stored.items() if k[0] == market), key=lambda r: r["trade_id"]
        )
        by_minute: dict[int, list[Any]] = defaultdict(list)
        for row in trades:
            by_minute[int(row["ts"].timestamp()) // 60 * 60_000].append(row)
        klines = (await user.call("GET", f"/klines?market={market}&interval=1m&limit=1000")).json()
        served = {k["open_time"]: k for k in klines}
        assert set(served) == set(by_minute)
        for open_time, rows in by_minute.items():
            candle = served[open_time]
            assert Decimal(candle["open"]) == rows[0]["price"]
            assert Decimal(candle["close"]) == rows[-1]["price"]
            assert Decimal(candle["high"]) == max(r["price"] for r in rows)
            assert Decimal(candle["volume"]) == sum(r["qty"] for r in rows)
