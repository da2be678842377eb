"""The private `portfolio` stream against a real engine, a real dbproc storing into a real
PostgreSQL, and a real ws process: the first message, then the portfolio after the user's own
fills and after other users' trades move the last price."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio

from ledger.gateway import Gateway
from tests.harness.api import create_database, prepare_database
from tests.harness.dbproc import DbprocProcess
from tests.harness.engine import EngineProcess, place, wait_applied
from tests.harness.servers import PostgresServer, RedisServer
from tests.harness.ws import WsClient, WsProcess
from tests.ws.test_protocol import SECRET
from tests.ws.test_streams import MID, fund, limit, start_market
from xch.auth import issue_token
from xch.schemas import BUY, SELL


def latest(client: WsClient) -> dict[str, Any]:
    messages = client.stream("portfolio")
    return messages[-1] if messages else {}


def position(client: WsClient) -> dict[str, Any]:
    positions = latest(client).get("positions") or [{}]
    result: dict[str, Any] = positions[0]
    return result


async def test_portfolio_stream_follows_fills_and_prices(
    redis_client: redis.asyncio.Redis,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    manifest: Path,
    engines: Callable[[], EngineProcess],
    ws_servers: Callable[..., WsProcess],
    tmp_path: Path,
) -> None:
    dsn = await create_database(postgres_server.url, f"ws_{secrets.token_hex(4)}")
    await prepare_database(dsn, [manifest])
    dbproc = DbprocProcess(
        redis_server.url,
        dsn,
        tmp_path / "dbproc.log",
        env={"EXCHANGE_DBPROC_REGISTRY_POLL_SECONDS": "0.2", "EXCHANGE_DBPROC_BLOCK_MS": "50"},
    )
    rules, server = await start_market(
        redis_client,
        manifest,
        engines,
        ws_servers,
        {"EXCHANGE_WS_POSTGRES_DSN": dsn, "EXCHANGE_WS_PORTFOLIO_SECONDS": "0.2"},
    )
    dbproc.start()
    gateway = Gateway(redis_client)
    alice = await WsClient.open(f"{server.url}?token={issue_token('alice', 'access', SECRET, 60)}")
    anonymous = await WsClient.open(server.url)
    try:
        await dbproc.wait_ready()
        await fund(gateway, ["alice", "bob", "carol"])
        refused = await anonymous.request("SUBSCRIBE", ["portfolio"])
        assert refused["error"]["code"] == 6  # authentication required

        await alice.subscribe("portfolio")
        await alice.collect(lambda c: bool(c.stream("portfolio")))
        assert alice.stream("portfolio")[0] == {
            "type": "portfolio",
            "balances": [
                {
                    "asset": "BTC",
                    "free": "100.00000000",
                    "locked": "0.00000000",
                    "total": "100.00000000",
                    "values": {},  # no trade yet: no price
                },
                {
                    "asset": "USD",
                    "free": "1000000.000000",
                    "locked": "0.000000",
                    "total": "1000000.000000",
                    "values": {"USD": "1000000.000000"},
                },
            ],
            "positions": [],
            "totals": [
                {
                    "asset": "USD",
                    "value": "1000000.000000",
                    "realized_pnl": "0.000000",
                    "unrealized_pnl": "0.000000",
                }
            ],
        }

        # Alice takes 0.5 BTC at 30000 from bob (taker fee 20 bps: 0.001 BTC): 0.499 BTC for
        # 15000 USD; at 30000 they are worth 14970: unrealized -30.
        await place(gateway, rules, limit("b1", "bob", SELL, MID, 5000))
        await place(gateway, rules, limit("a1", "alice", BUY, MID, 5000))
        await alice.collect(lambda c: position(c).get("fills") == 1)
        assert position(alice) == {
            "market": rules.name,
            "base": "BTC",
            "quote": "USD",
            "position": "0.49900000",
            "cost_basis": "15000.000000",
            "average_cost": "30060.120240",
            "realized_pnl": "0.000000",
            "unrealized_pnl": "-30.000000",
            "last_price": "30000.00",
            "fees_base": "0.00100000",
            "fees_quote": "0.000000",
            "fills": 1,
        }

        # Carol and bob trade at 30001: alice's last price and unrealized P&L follow
        # (0.499 * 30001 = 14970.499: -29.501).
        await place(gateway, rules, limit("b2", "bob", SELL, MID + 100, 10))
        await place(gateway, rules, limit("c1", "carol", BUY, MID + 100, 10))
        await alice.collect(lambda c: position(c).get("last_price") == "30001.00")
        assert position(alice)["unrealized_pnl"] == "-29.501000"

        # Alice sells 0.2 BTC into bob's bid at 31000 (fee 20 bps: 12.4 USD): proceeds 6187.6;
        # cost removed 15000 * 0.2 / 0.499 = 6012.024048(09) -> 6012.024048; realized
        # 175.575952; left 0.299 BTC costing 8987.975952, worth 9269 at 31000: 281.024048.
        await place(gateway, rules, limit("b3", "bob", BUY, MID + 100_000, 2000))
        last = await place(gateway, rules, limit("a2", "alice", SELL, MID + 100_000, 2000))
        assert last is not None
        await wait_applied(redis_client, rules.name, last)
        await alice.collect(lambda c: position(c).get("fills") == 2)
        final = position(alice)
        assert (final["position"], final["cost_basis"], final["average_cost"]) == (
            "0.29900000",
            "8987.975952",
            "30060.120240",
        )
        assert (final["realized_pnl"], final["unrealized_pnl"], final["last_price"]) == (
            "175.575952",
            "281.024048",
            "31000.00",
        )
        assert latest(alice)["totals"][0]["realized_pnl"] == "175.575952"
        # Only changes are sent, never the same portfolio twice in a row.
        texts = [str(message) for message in alice.stream("portfolio")]
        assert all(a != b for a, b in itertools.pairwise(texts))
    finally:
        await alice.close()
        await anonymous.close()
        dbproc.terminate()
