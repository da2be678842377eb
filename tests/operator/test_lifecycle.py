"""A Market's life with a real engine process: halted by spec, deleted with orders resting.

No kubelet runs here, so the test plays it: it starts `python -m engine` with the manifest
from the ConfigMap the operator made, and reports the Deployment ready.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio

from ledger.gateway import Gateway
from tests.harness.engine import EngineProcess, load_rules, place, read_events, wait_applied
from tests.harness.operator import Kube, OperatorProcess, market_manifest, start_operator, wait_for
from tests.harness.servers import RedisServer
from xch import keys
from xch.schemas import BUY, DEFAULT_STP, GTC, LIMIT, Close, MarketState, OrderDone, Place
from xch.wire import FIELD_COMMAND, decode_command
from xch_operator.handlers import CLOSE_ANNOTATION

USER = "alice"
DEPOSIT = 1_000_000_000  # 1000 USD in minor units (scale 6)


async def _wait(probe: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout} s")


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[list[EngineProcess]]:
    """Engine processes a test starts; terminated at its end."""
    started: list[EngineProcess] = []
    try:
        yield started
    finally:
        for engine in started:
            engine.terminate()


async def start_engine(
    kube: Kube,
    namespace: str,
    name: str,
    redis_server: RedisServer,
    directory: Path,
    engines: list[EngineProcess],
) -> EngineProcess:
    """Run the engine as its Pod would: from the operator's ConfigMap, then report ready."""
    configmap = wait_for(
        lambda: kube.rest.get(f"/api/v1/namespaces/{namespace}/configmaps/market-{name}"),
        what="ConfigMap",
    )
    manifest = directory / f"{name}.yaml"
    manifest.write_text(configmap["data"]["market.yaml"])
    engine = EngineProcess(manifest, redis_server.url, directory / f"engine-{name}.log")
    engines.append(engine)
    engine.start()
    await engine.wait_ready()
    kube.set_ready(namespace, f"engine-{name}")
    return engine


async def test_trading_halt_reaches_the_engine(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    engines: list[EngineProcess],
    tmp_path: Path,
) -> None:
    kube.create_market(namespace, market_manifest("btc-usd", marketMaker={"enabled": False}))
    kube.wait_conditions(namespace, "btc-usd", QueueReady="True", StorageReady="True")
    await start_engine(kube, namespace, "btc-usd", redis_server, tmp_path, engines)
    kube.wait_phase(namespace, "btc-usd", "Ready")
    wait_for(lambda: kube.status(namespace, "btc-usd").get("engineTrading") == "Enabled",
             what="the engine's trading state in the status")  # fmt: skip

    async def trading_states() -> list[str]:
        events = await read_events(redis_client, "btc-usd")
        return [event.trading for event in events if isinstance(event, MarketState)]

    kube.patch_market(namespace, "btc-usd", {"spec": {"trading": "Halted"}})

    async def halted() -> bool:
        return await trading_states() == ["Halted"]

    await _wait(halted, "the engine halted")
    kube.wait_phase(namespace, "btc-usd", "Halted")
    assert kube.status(namespace, "btc-usd")["engineTrading"] == "Halted"

    kube.patch_market(namespace, "btc-usd", {"spec": {"trading": "Enabled"}})

    async def resumed() -> bool:
        return await trading_states() == ["Halted", "Enabled"]

    await _wait(resumed, "the engine resumed")
    wait_for(lambda: kube.status(namespace, "btc-usd").get("engineTrading") == "Enabled",
             what="the engine's report of the resume")  # fmt: skip
    kube.wait_phase(namespace, "btc-usd", "Ready")


@pytest.mark.parametrize("on_delete", ["Retain", "Delete"])
async def test_delete_unlocks_funds_and_keeps_history_as_told(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    pg_conn: asyncpg.Connection,
    engines: list[EngineProcess],
    tmp_path: Path,
    on_delete: str,
) -> None:
    kube.create_market(namespace, market_manifest("btc-usd", retention={"onDelete": on_delete}))
    kube.wait_conditions(namespace, "btc-usd", QueueReady="True", StorageReady="True")
    engine = await start_engine(kube, namespace, "btc-usd", redis_server, tmp_path, engines)
    rules = load_rules(engine.manifest)
    gateway = Gateway(redis_client)
    await gateway.deposit(USER, "USD", DEPOSIT)
    order = Place(order_id="o1", user=USER, side=BUY, type=LIMIT,
                  price=rules.price_to_ticks("30000.00"), qty=rules.qty_to_lots("0.0100"),
                  quote_qty=0, tif=GTC, stp=DEFAULT_STP, locked=0)  # fmt: skip
    assert await place(gateway, rules, order) is not None

    async def resting() -> bool:
        return (await gateway.balances(USER))["USD"].locked == 300_000_000

    await _wait(resting, "the order resting with 300 USD locked")

    kube.delete_market(namespace, "btc-usd")
    wait_for(lambda: kube.get_market(namespace, "btc-usd") is None, timeout=30,
             what=f"finalizer released\n{operator.log_tail()}")  # fmt: skip

    usd = (await gateway.balances(USER))["USD"]
    assert (usd.free, usd.locked) == (DEPOSIT, 0)
    assert kube.deployment(namespace, "engine-btc-usd") is None
    assert kube.deployment(namespace, "mm-btc-usd") is None
    assert not await redis_client.hexists(keys.MARKETS, "btc-usd")
    row = await pg_conn.fetchrow("SELECT deleted_at FROM markets WHERE name = 'btc-usd'")
    if on_delete == "Retain":
        assert row is not None and row["deleted_at"] is not None
        done = [e for e in await read_events(redis_client, "btc-usd") if isinstance(e, OrderDone)]
        assert [(e.order_id, e.reason) for e in done] == [("o1", "market_closed")]
    else:
        assert row is None
        assert not await redis_client.exists(keys.market_events("btc-usd"))


async def test_operator_killed_while_winding_down_finishes_the_same_close(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    operator_kubeconfig: Path,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    storage_dsn: str,
    engines: list[EngineProcess],
    tmp_path: Path,
) -> None:
    kube.create_market(namespace, market_manifest("btc-usd", marketMaker={"enabled": False}))
    kube.wait_conditions(namespace, "btc-usd", QueueReady="True", StorageReady="True")
    engine = await start_engine(kube, namespace, "btc-usd", redis_server, tmp_path, engines)
    rules = load_rules(engine.manifest)
    gateway = Gateway(redis_client)
    await gateway.deposit(USER, "USD", DEPOSIT)
    order = Place(order_id="o1", user=USER, side=BUY, type=LIMIT,
                  price=rules.price_to_ticks("100.00"), qty=rules.qty_to_lots("1.0000"),
                  quote_qty=0, tif=GTC, stp=DEFAULT_STP, locked=0)  # fmt: skip
    entry = await place(gateway, rules, order)
    assert entry is not None
    await wait_applied(redis_client, "btc-usd", entry)

    # The engine stalls, so the operator is caught waiting for its close, and dies there.
    assert engine.process is not None
    engine.process.send_signal(signal.SIGSTOP)
    try:
        kube.delete_market(namespace, "btc-usd")
        wait_for(lambda: CLOSE_ANNOTATION in ((kube.get_market(namespace, "btc-usd") or {})
                                              ["metadata"].get("annotations") or {}),
                 what="the close enqueued and recorded")  # fmt: skip

        def waiting_reported() -> bool:
            status = kube.status(namespace, "btc-usd")
            ready = next(c for c in status["conditions"] if c["type"] == "Ready")
            return bool(
                status["phase"] == "Deleting" and ready["reason"] == "WaitingForEngineClose"
            )

        wait_for(waiting_reported, what="the status says what the deletion waits for")
        ready = next(c for c in kube.status(namespace, "btc-usd")["conditions"]
                     if c["type"] == "Ready")  # fmt: skip
        assert ready["status"] == "False"
        assert "delete Deployment engine-btc-usd" in ready["message"]
        operator.kill()
    finally:
        engine.process.send_signal(signal.SIGCONT)

    second = tmp_path / "second"
    second.mkdir()
    restarted = start_operator(operator_kubeconfig, namespace, redis_server.url, storage_dsn,
                               second)  # fmt: skip
    try:
        wait_for(lambda: kube.get_market(namespace, "btc-usd") is None, timeout=60,
                 what=f"finalizer released\n{restarted.log_tail()}")  # fmt: skip
    finally:
        restarted.terminate()
    usd = (await gateway.balances(USER))["USD"]
    assert (usd.free, usd.locked) == (DEPOSIT, 0)
    commands: Any = await redis_client.xrange(keys.market_input("btc-usd"))
    closes = [e for e in commands if isinstance(decode_command(e[1][FIELD_COMMAND]), Close)]
    assert len(closes) == 1, "the restarted operator waited for the recorded close"


async def test_engine_gone_with_its_namespace_the_operator_closes_the_market(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    engines: list[EngineProcess],
    tmp_path: Path,
) -> None:
    """As when a namespace is deleted: the engine's Pods go at the same time as the Market,
    so no engine is left to apply the close, and the operator applies it itself."""
    kube.create_market(namespace, market_manifest("btc-usd", marketMaker={"enabled": False}))
    kube.wait_conditions(namespace, "btc-usd", QueueReady="True", StorageReady="True")
    engine = await start_engine(kube, namespace, "btc-usd", redis_server, tmp_path, engines)
    rules = load_rules(engine.manifest)
    gateway = Gateway(redis_client)
    await gateway.deposit(USER, "USD", DEPOSIT)
    order = Place(order_id="o1", user=USER, side=BUY, type=LIMIT,
                  price=rules.price_to_ticks("100.00"), qty=rules.qty_to_lots("1.0000"),
                  quote_qty=0, tif=GTC, stp=DEFAULT_STP, locked=0)  # fmt: skip
    entry = await place(gateway, rules, order)
    assert entry is not None
    await wait_applied(redis_client, "btc-usd", entry)

    engine.terminate()
    kube.delete_market(namespace, "btc-usd")
    wait_for(lambda: CLOSE_ANNOTATION in ((kube.get_market(namespace, "btc-usd") or {})
                                          ["metadata"].get("annotations") or {}),
             what="the close enqueued")  # fmt: skip
    assert kube.get_market(namespace, "btc-usd") is not None, "waits while the engine exists"
    kube.rest.delete(f"/apis/apps/v1/namespaces/{namespace}/deployments/engine-btc-usd")

    wait_for(lambda: kube.get_market(namespace, "btc-usd") is None, timeout=60,
             what=f"finalizer released\n{operator.log_tail()}")  # fmt: skip
    usd = (await gateway.balances(USER))["USD"]
    assert (usd.free, usd.locked) == (DEPOSIT, 0)


async def test_deleting_the_namespace_winds_its_markets_down(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    engines: list[EngineProcess],
    tmp_path: Path,
) -> None:
    """The namespace controller deletes the Market and the engine's Deployment (and Pods)
    together; the Market's finalizer still closes the market and releases every lock."""
    kube.create_market(namespace, market_manifest("btc-usd", marketMaker={"enabled": False}))
    kube.wait_conditions(namespace, "btc-usd", QueueReady="True", StorageReady="True")
    engine = await start_engine(kube, namespace, "btc-usd", redis_server, tmp_path, engines)
    rules = load_rules(engine.manifest)
    gateway = Gateway(redis_client)
    await gateway.deposit(USER, "USD", DEPOSIT)
    order = Place(order_id="o1", user=USER, side=BUY, type=LIMIT,
                  price=rules.price_to_ticks("100.00"), qty=rules.qty_to_lots("1.0000"),
                  quote_qty=0, tif=GTC, stp=DEFAULT_STP, locked=0)  # fmt: skip
    entry = await place(gateway, rules, order)
    assert entry is not None
    await wait_applied(redis_client, "btc-usd", entry)

    engine.terminate()  # its Pod goes with the namespace
    kube.rest.delete(f"/api/v1/namespaces/{namespace}")
    wait_for(lambda: kube.rest.get(f"/api/v1/namespaces/{namespace}") is None, timeout=90,
             what=f"namespace gone\n{operator.log_tail()}")  # fmt: skip
    usd = (await gateway.balances(USER))["USD"]
    assert (usd.free, usd.locked) == (DEPOSIT, 0)
    assert not await redis_client.hexists(keys.MARKETS, "btc-usd")
