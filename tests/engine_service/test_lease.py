"""One writer per market: the lease, its fencing token, and handing it over.

Two engines run for one market: only the lease holder is ready and commits; a standby takes
over within the lease's TTL after a kill -9 of the leader, at once after a SIGTERM (the
leader hands the lease back), and a paused leader that wakes up after losing its lease
commits nothing. A commit or snapshot with a stale fencing token writes nothing.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio

from engine.store import BatchRecord, MarketStore, Snapshot
from ledger.gateway import Gateway
from tests.engine_service.load import Load, verify
from tests.engine_service.proxy import ReplyLosingProxy
from tests.harness.engine import EngineProcess, load_rules, wait_applied, write_manifest
from tests.harness.processes import http_status
from tests.harness.servers import RedisServer
from xch import keys
from xch.schemas import Cancel, OrderRejected, SetTrading
from xch.wire import as_text, encode_events

StartEngine = Callable[..., EngineProcess]

TOKEN_LINE = re.compile(r"holding the lease of \S+ with token (\d+)")


def tokens(engine: EngineProcess) -> list[int]:
    """The fencing tokens `engine` acquired, in order, from its log."""
    return [int(token) for token in TOKEN_LINE.findall(engine.log_file.read_text())]


async def lease_token(client: redis.asyncio.Redis, market: str) -> int | None:
    value = await client.get(keys.market_lease(market))
    return None if value is None else int(value)


async def lease_holder(client: redis.asyncio.Redis, market: str) -> str | None:
    value = await client.get(keys.market_lease_holder(market))
    return None if value is None else as_text(value)


async def wait_serving(engine: EngineProcess, timeout: float = 20) -> None:
    """Wait until the process answers /healthz (it runs, ready or not)."""
    deadline = time.monotonic() + timeout
    while await http_status(engine.health_port, "/healthz") != 200:
        assert engine.running(), engine.log_file.read_text()[-3000:]
        assert time.monotonic() < deadline, "engine did not start serving"
        await asyncio.sleep(0.05)


async def probe(load: Load) -> tuple[str, float]:
    """Enqueue a command (a cancel of no order) and note when; its entry id and the time."""
    user = load.names[0]
    return await load.submit(Cancel("probe", user), user), time.monotonic()


async def test_only_the_holder_is_ready_and_commits_and_a_standby_takes_over_a_kill(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    rules = load_rules(manifest)
    ttl = 1.0
    env = {"EXCHANGE_ENGINE_LEASE_TTL_MS": str(int(ttl * 1000)), "EXCHANGE_ENGINE_BATCH_MAX": "50"}
    load = Load(redis_client, rules, seed=11, users=20)
    await load.fund()
    leader = engines(env)
    await leader.wait_ready()
    stop = asyncio.Event()
    generator = asyncio.create_task(load.run(stop, pause=0.004))
    try:
        standby = engines(env)
        await wait_serving(standby)
        # for more than two TTLs under load: one is ready and holds the lease, the other not
        (token,) = tokens(leader)
        until = time.monotonic() + 2.5 * ttl
        while time.monotonic() < until:
            assert await http_status(leader.health_port, "/readyz") == 200
            assert await http_status(standby.health_port, "/readyz") == 503
            assert await lease_token(redis_client, rules.name) == token
            await asyncio.sleep(0.1)
        assert tokens(standby) == []
        committed_by_leader = len(load.submitted)

        killed = time.monotonic()
        leader.kill()
        await standby.wait_ready(timeout=10)
        ready_after = time.monotonic() - killed
        entry_id, _ = await probe(load)
        await wait_applied(redis_client, rules.name, entry_id, timeout=10)
        committed_after = time.monotonic() - killed
        assert ready_after < ttl + 2, ready_after
        assert committed_after < ttl + 2, committed_after
        (new_token,) = tokens(standby)
        assert new_token > token
        assert await lease_token(redis_client, rules.name) == new_token
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await generator
    await wait_applied(redis_client, rules.name, load.last_entry_id)
    assert committed_by_leader > 100 and len(load.submitted) > committed_by_leader + 50
    await verify(redis_client, rules, load.submitted, load.deposits)


async def test_a_sigterm_hands_the_lease_over_well_before_its_ttl(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    rules = load_rules(manifest)
    ttl = 10.0
    env = {"EXCHANGE_ENGINE_LEASE_TTL_MS": str(int(ttl * 1000))}
    load = Load(redis_client, rules, seed=12, users=10)
    await load.fund()
    leader = engines(env)
    await leader.wait_ready()
    stop = asyncio.Event()
    generator = asyncio.create_task(load.run(stop, pause=0.005))
    try:
        standby = engines(env)
        await wait_serving(standby)
        await asyncio.sleep(0.5)
        assert not await standby.ready()
        (token,) = tokens(leader)

        stopped = time.monotonic()
        assert await asyncio.to_thread(leader.terminate) == 0
        # the lease was handed back, not left to expire
        assert await lease_token(redis_client, rules.name) != token
        await standby.wait_ready(timeout=ttl)
        entry_id, _ = await probe(load)
        await wait_applied(redis_client, rules.name, entry_id, timeout=ttl)
        takeover = time.monotonic() - stopped
        assert takeover < ttl / 2, takeover
        assert tokens(standby) == [token + 1]
    finally:
        stop.set()
        await generator
    log = leader.log_file.read_text()
    assert "could not release" not in log and "stopped" in log
    await wait_applied(redis_client, rules.name, load.last_entry_id)
    await verify(redis_client, rules, load.submitted, load.deposits)


async def test_a_paused_leader_that_lost_its_lease_commits_nothing(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    rules = load_rules(manifest)
    env = {"EXCHANGE_ENGINE_LEASE_TTL_MS": "1000", "EXCHANGE_ENGINE_BATCH_MAX": "50"}
    load = Load(redis_client, rules, seed=13, users=20)
    await load.fund()
    leader = engines(env)
    await leader.wait_ready()
    stop = asyncio.Event()
    generator = asyncio.create_task(load.run(stop, pause=0.004))
    try:
        standby = engines(env)
        await wait_serving(standby)
        assert leader.process is not None
        leader.process.send_signal(signal.SIGSTOP)  # a long GC pause, a frozen VM...
        try:
            await standby.wait_ready(timeout=10)
            entry_id, _ = await probe(load)
            await wait_applied(redis_client, rules.name, entry_id, timeout=10)
            await asyncio.sleep(0.3)  # input the paused leader has not seen piles up
        finally:
            leader.process.send_signal(signal.SIGCONT)
        # it wakes up holding a batch and a stale token: fenced, it stands by
        deadline = time.monotonic() + 5
        while "lost the lease" not in leader.log_file.read_text():
            assert time.monotonic() < deadline, leader.log_file.read_text()[-3000:]
            await asyncio.sleep(0.05)
        assert leader.running()
        assert not await leader.ready()
        assert await standby.ready()
        assert await lease_token(redis_client, rules.name) == tokens(standby)[-1]
        await asyncio.sleep(0.5)
        assert not await leader.ready()
    finally:
        stop.set()
        await generator
    await wait_applied(redis_client, rules.name, load.last_entry_id)
    await verify(redis_client, rules, load.submitted, load.deposits)


async def test_a_leader_whose_lease_renewal_hangs_is_not_ready_once_the_lease_may_expire(
    redis_server: RedisServer, engines: StartEngine, manifest: Path, tmp_path: Path
) -> None:
    """Readiness means "holds the lease": a leader whose renewal hangs (no socket timeout:
    a stalled network) must stop answering ready within the TTL, before it learns it lost
    the lease, so that the standby taking over is never ready beside it."""
    ttl = 1.0
    env = {"EXCHANGE_ENGINE_LEASE_TTL_MS": str(int(ttl * 1000))}
    proxy = ReplyLosingProxy(redis_server.url)
    await proxy.start()
    leader = EngineProcess(manifest, proxy.url, tmp_path / "leader.log", env=env)
    leader.start()
    try:
        await leader.wait_ready()
        standby = engines(env)
        await wait_serving(standby)
        proxy.slow[b"renew"] = 3 * ttl
        stalled = time.monotonic()
        while await leader.ready():
            assert time.monotonic() - stalled < ttl + ttl / 3 + 0.5, "still ready"
            await asyncio.sleep(0.02)
        assert "lost the lease" not in leader.log_file.read_text()
        await standby.wait_ready(timeout=10)
        # until its renewal is answered (refused: it stands by), never ready beside the standby
        while "lost the lease" not in leader.log_file.read_text():
            assert time.monotonic() - stalled < 10 * ttl, leader.log_file.read_text()[-3000:]
            assert not await leader.ready()
            await asyncio.sleep(0.05)
        assert await standby.ready() and not await leader.ready()
    finally:
        leader.kill()
        await proxy.close()


async def reported_trading(
    client: redis.asyncio.Redis, market: str, wanted: str, timeout: float
) -> str | None:
    """The trading state the lease holder reports, once it is `wanted` or `timeout` seconds
    have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = await client.get(keys.market_trading(market))
        state = None if value is None else as_text(value)
        if state == wanted or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.02)


async def test_the_lease_names_its_holders_pod_until_it_is_released(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    """The holder key (status.leaseHolder) follows the lease: the leader's POD_NAME with the
    lease's TTL, the standby's once it has taken over, gone when the lease is released; a
    renewal writes it again should it be missing (a lease taken by an engine from before).
    Beside it, the trading state (status.engineTrading) the holder has committed."""
    market = load_rules(manifest).name
    ttl_ms = 1000
    env = {"EXCHANGE_ENGINE_LEASE_TTL_MS": str(ttl_ms)}
    leader = engines({**env, "POD_NAME": "engine-btc-usd-7d9f-leader"})
    await leader.wait_ready()
    standby = engines({**env, "POD_NAME": "engine-btc-usd-7d9f-standby"})
    await wait_serving(standby)
    assert await lease_holder(redis_client, market) == "engine-btc-usd-7d9f-leader"
    holder_ttl = await redis_client.pttl(keys.market_lease_holder(market))
    assert 0 < holder_ttl <= ttl_ms, holder_ttl

    await redis_client.delete(keys.market_lease_holder(market))
    deadline = time.monotonic() + ttl_ms / 1000
    while await lease_holder(redis_client, market) is None:
        assert time.monotonic() < deadline, "a renewal did not name the holder again"
        await asyncio.sleep(0.02)
    assert await lease_holder(redis_client, market) == "engine-btc-usd-7d9f-leader"

    # It reports the trading state it has committed (already once ready): a halt once applied.
    assert await redis_client.get(keys.market_trading(market)) == b"Enabled"
    halt = await Gateway(redis_client).submit(market, SetTrading("Halted"), "operator")
    assert halt is not None
    await wait_applied(redis_client, market, halt)
    # at its next renewal (every third of the TTL)
    assert await reported_trading(redis_client, market, "Halted", ttl_ms / 1000) == "Halted"

    leader.kill()
    await standby.wait_ready(timeout=10)
    assert await lease_holder(redis_client, market) == "engine-btc-usd-7d9f-standby"
    assert await lease_token(redis_client, market) == tokens(standby)[-1]
    # the standby recovered the halt from what was committed, and reported it as it led
    assert await redis_client.get(keys.market_trading(market)) == b"Halted"

    assert await asyncio.to_thread(standby.terminate) == 0
    assert await lease_token(redis_client, market) is None
    assert await lease_holder(redis_client, market) is None
    assert await redis_client.get(keys.market_trading(market)) is None

    # Outside a Pod (no POD_NAME) the holder is the host.
    local = engines({"POD_NAME": ""})
    await local.wait_ready()
    assert await lease_holder(redis_client, market) == socket.gethostname()


FAILOVERS = 3


async def test_failover_with_the_default_lease_ttl(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    """What docs/operations.md promises for a warm standby: kill -9 the leader (default
    3 s TTL), time until the standby leads and has applied a command sent at the kill.
    The lease outlives the leader by 2-3 s (renewed every TTL/3), the standby asks for it
    every TTL/4, then recovers; `-s` prints the figures."""
    rules = load_rules(manifest)
    ttl = 3.0
    load = Load(redis_client, rules, seed=15, users=10)
    await load.fund()
    stop = asyncio.Event()
    leader = engines()
    await leader.wait_ready()
    generator = asyncio.create_task(load.run(stop, pause=0.01))
    times: list[tuple[float, float]] = []
    try:
        for _ in range(FAILOVERS):
            standby = engines()
            await wait_serving(standby)
            await asyncio.sleep(1.0)
            killed = time.monotonic()
            leader.kill()
            entry_id, _ = await probe(load)
            await standby.wait_ready(timeout=ttl + 5)
            ready_after = time.monotonic() - killed
            await wait_applied(redis_client, rules.name, entry_id, timeout=ttl + 5)
            times.append((ready_after, time.monotonic() - killed))
            leader = standby
    finally:
        stop.set()
        await generator
    print("failover after kill -9 (ready s, command applied s):", times)
    for ready_after, applied_after in times:
        assert ready_after <= applied_after < ttl + ttl / 4 + 1.5, times
    await wait_applied(redis_client, rules.name, load.last_entry_id)
    await verify(redis_client, rules, load.submitted, load.deposits)


async def market_state(client: redis.asyncio.Redis) -> dict[str, Any]:
    """Every key's content (not TTLs): what a refused write must leave unchanged."""
    state: dict[str, Any] = {}
    for key in sorted(as_text(k) for k in await client.keys("*")):
        kind = as_text(await client.type(key))
        if kind == "string":
            state[key] = await client.get(key)
        elif kind == "hash":
            state[key] = await client.hgetall(key)
        elif kind == "list":
            state[key] = await client.lrange(key, 0, -1)
        elif kind == "stream":
            state[key] = await client.xrange(key)
        else:
            raise AssertionError(f"unexpected {kind} key {key}")
    return state


async def test_writes_with_a_stale_fencing_token_change_nothing(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    rules = load_rules(manifest)
    load = Load(redis_client, rules, seed=14, users=5)
    await load.fund()
    engine = engines()
    await engine.wait_ready()
    for _ in range(100):
        await load.step()
    await wait_applied(redis_client, rules.name, load.last_entry_id)
    engine.kill()
    # as if it had expired (what the lease script writes beside it expires with it)
    await redis_client.delete(
        keys.market_lease(rules.name),
        keys.market_lease_holder(rules.name),
        keys.market_trading(rules.name),
    )
    store = MarketStore(redis_client, rules.name)
    token = await store.acquire_lease(60_000)
    assert token == tokens(engine)[-1] + 1
    user = load.names[0]
    last = load.last_entry_id
    batch = BatchRecord(f"{int(last.split('-')[0]) + 1}-0", 10**6)
    event = OrderRejected(rules.name, 10**6, batch.last_input_id, 0, "x", user, "buy", "place",
                          3003, "unknown_order", 0)  # fmt: skip
    moves = [(user, keys.free_field(rules.quote), 10**6)]
    previous = await store.applied()
    before = await market_state(redis_client)

    for stale in (token - 1, 0, token + 1):
        result = await store.commit(stale, previous, batch, moves, encode_events([event]), b"x")
        assert result == "fenced"
        snapshot = Snapshot(batch.last_input_id, 10**6, b"state")
        assert await store.save_snapshot(stale, snapshot) == "fenced"
        assert not await store.renew_lease(stale, 60_000)
        assert not await store.release_lease(stale)
    assert await market_state(redis_client) == before

    # without any lease, not even the last holder's token commits
    assert await store.release_lease(token)
    assert (
        await store.commit(token, previous, batch, moves, encode_events([event]), b"x") == "fenced"
    )
    del before[keys.market_lease(rules.name)], before[keys.market_lease_holder(rules.name)]
    assert await market_state(redis_client) == before

    # the same commit with the live token does land
    token = await store.acquire_lease(60_000)
    assert await store.commit(token, previous, batch, moves, encode_events([event]), b"x") == "ok"
    assert as_text(await redis_client.get(keys.market_applied(rules.name))) == batch.last_input_id


async def test_every_sigterm_stops_the_engine_and_frees_its_lease(
    redis_client: redis.asyncio.Redis, engines: StartEngine, tmp_path: Path
) -> None:
    """SIGTERM must end the engine (exit 0, lease released) every time, not most times: an
    engine that shrugs a SIGTERM off keeps leading until it is SIGKILLed, and its successor
    then waits out the lease's TTL. Many engines (one per market) are stopped to catch a
    rare miss."""
    rounds, width = 3, 6
    hung: list[str] = []
    for round_ in range(rounds):
        group = [
            engines({}, write_manifest(tmp_path, name=f"stop-{round_}-{n}")) for n in range(width)
        ]
        for engine in group:
            await engine.wait_ready()
        await asyncio.sleep(0.3)
        for engine in group:
            assert engine.process is not None
            engine.process.send_signal(signal.SIGTERM)
        # An engine that ignores SIGTERM never exits; 10 s leaves room for six interpreters
        # tearing down at once on a shared 2-core machine (3 s was missed at load 10-14 by
        # engines that had logged "stopped" and released their lease).
        codes = await asyncio.gather(*(asyncio.to_thread(exit_code, e, 10) for e in group))
        for engine, code in zip(group, codes, strict=True):
            if code is None:
                hung.append(f"{engine.market} ({engine.log_file})")
                engine.kill()
                continue
            assert code == 0, engine.log_file.read_text()[-2000:]
            assert await lease_token(redis_client, engine.market) is None
    assert not hung, f"{len(hung)} of {rounds * width} engines ignored SIGTERM: {hung}"


def exit_code(engine: EngineProcess, timeout: float) -> int | None:
    """The process's exit code, or None if it still runs after `timeout` seconds."""
    assert engine.process is not None
    try:
        return engine.process.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
