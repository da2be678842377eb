"""Counters a restored Redis must never repeat (docs/storage.md, "Redis rollback"): the Binance
order numbers, the OCO list numbers and the funds seqs, drawn with a clock floor
(ledger/numbers.py, the Lua prelude's next_number), on a real Redis."""

import asyncio
from typing import Any

import redis.asyncio
from hypothesis import given
from hypothesis import strategies as st

from api.binance.lists import next_list_id
from api.ratelimit import RateLimiter
from ledger.gateway import Gateway
from ledger.numbers import (
    FUNDS_SEQS_PER_MS,
    LIST_NUMBERS_PER_MS,
    ORDER_NUMBERS_PER_MS,
    ORIGIN_MS,
    floor_at,
    next_number,
)
from ledger.scripts import Scripts
from xch import keys
from xch.order_lists import MAX_LIST_NUMBER, list_number
from xch.wire import FUNDS_SEQ

YEAR_MS = 365 * 24 * 3600 * 1000
LIST_LEGS_START = 2**52


@given(
    st.integers(0, 10**6),
    st.lists(st.tuples(st.integers(1, 50), st.integers(0, 1000)), min_size=1, max_size=30),
    st.integers(1, 10_000),
    st.sampled_from([ORDER_NUMBERS_PER_MS, LIST_NUMBERS_PER_MS]),
)
def test_a_counter_restored_to_any_earlier_value_draws_above_everything_drawn(
    start: int, bursts: list[tuple[int, int]], restart_ms: int, per_ms: int
) -> None:
    """Draws at most `per_ms` a millisecond on average; then Redis comes back with the
    counter of any earlier moment, at least a millisecond later: its next draw is new."""
    bursts = [(min(draws, per_ms), gap) for draws, gap in bursts]
    now, current, drawn, held = ORIGIN_MS + start, 0, [], [0]
    for draws, gap in bursts:
        for _ in range(draws):
            current = next_number(current, now, per_ms)
            drawn.append(current)
            held.append(current)
        now += gap + 1
    later = now + restart_ms
    for restored in held:
        assert next_number(restored, later, per_ms) > max(drawn)
    assert drawn == sorted(set(drawn))


def test_numbers_stay_within_their_id_spaces_for_a_century() -> None:
    century = ORIGIN_MS + 100 * YEAR_MS
    assert floor_at(century, ORDER_NUMBERS_PER_MS) < LIST_LEGS_START
    assert floor_at(century, FUNDS_SEQS_PER_MS) < 2**53
    assert floor_at(century, LIST_NUMBERS_PER_MS) < MAX_LIST_NUMBER


async def redis_ms(client: redis.asyncio.Redis) -> int:
    seconds, micros = await client.time()
    return seconds * 1000 + micros // 1000


async def test_a_restored_counter_never_hands_out_a_number_again(
    redis_client: redis.asyncio.Redis,
) -> None:
    """Draw, keep the counters as an older Redis had them, draw on, put them back (what a
    restored AOF does), draw again: every number the api gives out after is new."""
    limiter = RateLimiter(redis_client, 1)
    gateway = Gateway(redis_client)
    scripts = Scripts(redis_client)
    order_seq = keys.market_order_seq("btc-usd")
    counters = (order_seq, keys.LIST_SEQ, keys.FUNDS_SEQ)

    async def draw() -> tuple[int, int, int]:
        _, order = await limiter.hit_numbered(("ip", "x", 10**6), sequence=order_seq)
        listed = list_number(await next_list_id(scripts, "btc-usd"))
        await gateway.deposit("u1", "USD", 1)
        funds: Any = await redis_client.xrevrange(keys.FUNDS, count=1)
        return order, listed, int(funds[0][1][FUNDS_SEQ])

    before = await redis_ms(redis_client)
    first = await draw()
    after = await redis_ms(redis_client)
    for number, per_ms in zip(
        first, (ORDER_NUMBERS_PER_MS, LIST_NUMBERS_PER_MS, FUNDS_SEQS_PER_MS), strict=True
    ):
        assert floor_at(before, per_ms) <= number <= floor_at(after, per_ms)
    saved = [int(value or 0) for value in await redis_client.mget(counters)]
    drawn = [first] + [await draw() for _ in range(20)]
    for key, value in zip(counters, saved, strict=True):
        await redis_client.set(key, value)
    await asyncio.sleep(0.002)
    again = await draw()
    for column, number in enumerate(again):
        assert number > max(numbers[column] for numbers in drawn)
    assert [numbers[0] for numbers in drawn] == sorted({numbers[0] for numbers in drawn})
