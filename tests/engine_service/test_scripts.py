"""The Lua ledger scripts against the Python reference ledger, on a real Redis.

Random sequences of deposits, withdrawals, orders and cancels go both ways: through the
gateway's scripts plus an in-process engine service committing batches, and through
`ReplaySession` (the reference). Balances and supply must agree after every batch.
"""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.commands import FundsRequest
from engine.replay import ReplaySession
from engine.service import EngineService
from engine.store import BatchRecord, MarketStore, new_entries
from ledger.gateway import FundsError, Gateway
from ledger.locks import lock_amount
from tests.harness.engine import EXAMPLE, load_rules
from tests.harness.servers import RedisServer
from xch import keys
from xch.schemas import BUY, SELL, Cancel, CancelAll, Place, Side, StpMode, TimeInForce

RULES = load_rules(EXAMPLE)
USERS = ("ann", "ben", "cat")

deposits = st.tuples(
    st.just("deposit"),
    st.sampled_from(USERS),
    st.sampled_from(("BTC", "USD")),
    st.integers(1, 10**10),
)
withdrawals = st.tuples(
    st.just("withdraw"),
    st.sampled_from(USERS),
    st.sampled_from(("BTC", "USD")),
    st.integers(1, 10**10),
)
places = st.tuples(
    st.just("place"),
    st.sampled_from(USERS),
    st.sampled_from((BUY, SELL)),
    st.integers(2_999_995, 3_000_005),
    st.integers(1, 30),
    st.sampled_from(("GTC", "IOC", "FOK", "POST_ONLY", "market")),
    st.sampled_from(("NONE", "EXPIRE_MAKER", "EXPIRE_TAKER", "EXPIRE_BOTH")),
)
cancels = st.tuples(st.just("cancel"), st.sampled_from(USERS), st.integers(0, 40))
cancel_alls = st.tuples(st.just("cancel_all"), st.sampled_from(USERS))
batch_ends = st.just(("end",))
operations = st.lists(
    st.one_of(deposits, withdrawals, places, places, places, cancels, cancel_alls, batch_ends),
    min_size=1,
    max_size=60,
)


def order_for(op: tuple[object, ...], order_id: str) -> Place:
    _, user, side, price, qty, kind, stp = op
    assert isinstance(user, str) and isinstance(side, str)
    assert isinstance(price, int) and isinstance(qty, int) and isinstance(stp, str)
    # `places` draws the side, time in force and STP mode from the schema's words.
    buy_or_sell, mode = cast(Side, side), cast(StpMode, stp)
    if kind == "market":
        return Place(order_id, user, buy_or_sell, "market", 0, qty, 0, "IOC", mode, 0)
    tif = cast(TimeInForce, kind)
    return Place(order_id, user, buy_or_sell, "limit", price, qty, 0, tif, mode, 0)


async def run_both(url: str, ops: list[tuple[object, ...]]) -> None:
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.flushall()
        await compare(client, ops)
    finally:
        await client.aclose()


async def compare(client: redis.asyncio.Redis, ops: list[tuple[object, ...]]) -> None:
    gateway = Gateway(client)
    service = EngineService(RULES, client, snapshot_every=10**9)
    token = await service.store.acquire_lease(60_000)
    await service.recover()
    reference = ReplaySession(RULES)
    placed: list[Place] = []
    for n, op in enumerate([*ops, ("end",)]):
        kind = op[0]
        if kind in ("deposit", "withdraw"):
            _, user, asset, amount = op
            assert isinstance(user, str) and isinstance(asset, str) and isinstance(amount, int)
            signed = amount if kind == "deposit" else -amount
            try:
                await (gateway.deposit if kind == "deposit" else gateway.withdraw)(
                    user, asset, amount
                )
                moved = True
            except FundsError:
                moved = False
            assert moved == (kind == "deposit" or reference.ledger.free(user, asset) >= amount)
            if moved:
                reference.submit_parsed(FundsRequest(user, asset, signed), str(n))
        elif kind == "place":
            order = order_for(op, f"o{n}")
            amount = lock_amount(RULES, order, reference.engine.asks.totals())
            asset = RULES.quote if order.side == BUY else RULES.base
            entry = await gateway.submit(RULES.name, order, order.user, asset, amount)
            assert (entry is not None) == (reference.ledger.free(order.user, asset) >= amount)
            reference.submit_parsed(order, str(n))
            placed.append(order)
        elif kind == "cancel":
            _, user, index = op
            assert isinstance(user, str) and isinstance(index, int)
            target = placed[index % len(placed)].order_id if placed else "none"
            await gateway.submit(RULES.name, Cancel(target, user), user)
            reference.submit_parsed(Cancel(target, user), str(n))
        elif kind == "cancel_all":
            assert isinstance(op[1], str)
            await gateway.submit(RULES.name, CancelAll(op[1]), op[1])
            reference.submit_parsed(CancelAll(op[1]), str(n))
        else:
            entries = await service.store.read_new(service.applied, 1000, 1)
            if entries:
                await service._run_batch(token, entries)
            await assert_same_balances(gateway, reference)


async def assert_same_balances(gateway: Gateway, reference: ReplaySession) -> None:
    expected = {
        user: {asset: cell for asset, cell in assets.items() if cell != (0, 0)}
        for user, assets in reference.ledger.snapshot().items()
    }
    for user in (*USERS, "@fees"):
        actual = {
            asset: (balance.free, balance.locked)
            for asset, balance in (await gateway.balances(user)).items()
            if (balance.free, balance.locked) != (0, 0)
        }
        assert actual == expected.get(user, {}), user
    supply = {asset: total for asset, total in (await gateway.supply()).items() if total}
    assert supply == {a: t for a, t in reference.ledger.net_deposits.items() if t}


@settings(max_examples=60)
@given(operations)
def test_lua_scripts_settle_exactly_as_the_reference_ledger(
    redis_server: RedisServer, ops: list[tuple[object, ...]]
) -> None:
    asyncio.run(run_both(redis_server.url, ops))


async def test_a_commit_that_would_make_a_balance_negative_writes_nothing(
    redis_client: redis.asyncio.Redis,
) -> None:
    store = MarketStore(redis_client, RULES.name)
    gateway = Gateway(redis_client)
    await gateway.deposit("ann", "USD", 100)
    token = await store.acquire_lease(10_000)
    moves = [("ann", "USD:free", -60), ("ben", "USD:free", 60), ("ann", "USD:free", -60)]
    result = await store.commit(token, "0-0", BatchRecord("1-0", 3), moves, b"e1", b"depth")
    assert result == f"negative:{keys.balances('ann')}:USD:free"
    assert (await gateway.balances("ann"))["USD"].free == 100
    ben = await gateway.balances("ben")
    assert ben == {} or ben["USD"].free == 0  # reverted in the same script
    assert await redis_client.exists(keys.market_events(RULES.name)) == 0
    assert await redis_client.get(keys.market_applied(RULES.name)) is None
    assert await redis_client.llen(keys.market_batches(RULES.name)) == 0


async def test_a_commit_that_would_overflow_a_balance_writes_nothing(
    redis_client: redis.asyncio.Redis,
) -> None:
    store = MarketStore(redis_client, RULES.name)
    gateway = Gateway(redis_client)
    await gateway.deposit("ann", "USD", 2**63 - 10)
    token = await store.acquire_lease(10_000)
    moves = [("ben", "USD:free", 7), ("ann", "USD:free", 100)]  # 2**63 + 90: beyond int64
    result = await store.commit(token, "0-0", BatchRecord("1-0", 1), moves, b"e", b"")
    assert result == f"overflow:{keys.balances('ann')}:USD:free"
    assert (await gateway.balances("ann"))["USD"].free == 2**63 - 10
    assert (await gateway.balances("ben"))["USD"].free == 0  # its move was undone
    assert await redis_client.exists(keys.market_events(RULES.name)) == 0


async def test_locks_and_deposits_beyond_64_bits_are_refused_whole(
    redis_client: redis.asyncio.Redis,
) -> None:
    gateway = Gateway(redis_client)
    await gateway.deposit("ann", "USD", 2**63 - 10)
    with pytest.raises(FundsError, match="amount_too_large"):
        await gateway.deposit("ann", "USD", 11)  # the balance would pass 2**63 - 1
    await gateway.deposit("ben", "USD", 5)
    with pytest.raises(FundsError, match="amount_too_large"):
        await gateway.deposit("cat", "USD", 2**63 - 1)  # the supply would pass it
    with pytest.raises(FundsError, match="amount_too_large"):
        await gateway.submit(RULES.name, Cancel("x", "ann"), "ann", "USD", 2**63)
    cat = await gateway.balances("cat")
    assert cat == {} or (cat["USD"].free, cat["USD"].locked) == (0, 0)  # undone in the script
    assert (await gateway.balances("ann"))["USD"].free == 2**63 - 10
    assert await gateway.supply() == {"USD": 2**63 - 10 + 5}
    assert await redis_client.exists(keys.market_input(RULES.name)) == 0


async def test_a_commit_with_a_stale_token_writes_nothing(
    redis_client: redis.asyncio.Redis,
) -> None:
    store = MarketStore(redis_client, RULES.name)
    old = await store.acquire_lease(10_000)
    assert await store.release_lease(old)
    new = await store.acquire_lease(10_000)
    assert new > old
    result = await store.commit(
        old, "0-0", BatchRecord("1-0", 1), [("ann", "USD:free", 5)], b"e", b""
    )
    assert result == "fenced"
    assert await redis_client.exists(keys.balances("ann"), keys.market_events(RULES.name)) == 0


async def test_a_commit_repeated_after_a_lost_reply_is_refused_as_stale(
    redis_client: redis.asyncio.Redis,
) -> None:
    store = MarketStore(redis_client, RULES.name)
    token = await store.acquire_lease(10_000)
    commit = (token, "0-0", BatchRecord("1-0", 1), [("ann", "USD:free", 5)], b"e", b"")
    assert await store.commit(*commit) == "ok"
    assert await store.commit(*commit) == "stale"  # the same batch, as a retry would send it
    assert (await Gateway(redis_client).balances("ann"))["USD"].free == 5
    assert await redis_client.xlen(keys.market_events(RULES.name)) == 1
    assert await redis_client.llen(keys.market_batches(RULES.name)) == 1


async def test_a_commit_sent_with_a_read_answers_both_even_after_redis_lost_its_scripts(
    redis_client: redis.asyncio.Redis,
) -> None:
    store = MarketStore(redis_client, RULES.name)
    gateway = Gateway(redis_client)
    token = await store.acquire_lease(10_000)
    first = await gateway.submit(RULES.name, Cancel("x", "ann"), "ann")
    second = await gateway.submit(RULES.name, Cancel("y", "ann"), "ann")
    assert first is not None and second is not None
    await redis_client.script_flush()  # as after a restart of Redis: the commit's SHA is unknown
    args = store.commit_args(token, "0-0", BatchRecord(first, 1), [], b"e", b"")
    pending = await store.send_commit(args, first, 10)
    try:
        result, read = await pending.answers()
    finally:
        await pending.close()
    assert result == "ok"
    assert [entry.entry_id for entry in new_entries(read)] == [second]
    assert await redis_client.get(keys.market_applied(RULES.name)) == first.encode()
    pending = await store.send_commit(args, None, 10)  # without a read: its answer alone
    try:
        assert await pending.answers() == ("stale", None)
    finally:
        await pending.close()
