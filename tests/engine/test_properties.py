"""Properties of the engine core over random command sequences (docs/engine.md).

Every test runs generated sequences through `engine.replay.ReplaySession` (the api's locking,
the engine, the reference ledger). Hypothesis draws short sequences that shrink to a minimal
failing one; a few long seeded runs (stdlib `random`) reach deeper books.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.commands import ParsedCommand
from engine.core import Engine
from engine.replay import ReplaySession
from engine.snapshot import (
    dump_engine,
    dump_ledger,
    engine_state,
    load_engine,
    load_ledger,
    state_hash,
)
from ledger.reference import Ledger
from tests.engine.brute import BookRow, BruteMatcher
from tests.engine.scenarios.common import check_stops
from tests.engine.strategies import (
    BTC_USD,
    COARSE,
    STOP_TYPES,
    Driver,
    MarketCase,
    outcomes,
    scenarios,
    seeded,
)
from xch.market import MarketRules
from xch.schemas import (
    FEE_ACCOUNT,
    Depth,
    Event,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderTriggered,
    Place,
    PlaceList,
    Side,
    Trade,
)

Balances = dict[tuple[str, str], tuple[int, int]]

RULES = COARSE.rules
CASES = {"coarse": COARSE, "btc-usd": BTC_USD}
SEEDS = (1, 2, 3, 4)
LONG = 4_000  # commands per seeded run


def examples(n: int) -> settings:
    """`n` examples, or more if the loaded profile asks for more (HYPOTHESIS_PROFILE=explore).
    tests/conftest.py loads a derandomized profile with no deadline."""
    return settings(
        max_examples=max(n, settings().max_examples),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ---- views of the state -----------------------------------------------------------------


def balances(ledger: Ledger) -> Balances:
    """Every non-zero balance, as (free, locked)."""
    return {
        (user, asset): (free, locked)
        for user, assets in ledger.snapshot().items()
        for asset, (free, locked) in assets.items()
        if free or locked
    }


def book_rows(engine: Engine) -> tuple[list[BookRow], list[BookRow]]:
    """Resting orders best price first, then time priority, as the brute matcher lists them."""
    sides = []
    for side in (engine.bids, engine.asks):
        sides.append(
            [
                (o.price, o.order_id, o.user, o.remaining, o.locked, o.filled)
                for price in side.prices()
                for o in side.live_orders(price)
            ]
        )
    return sides[0], sides[1]


# ---- invariants -------------------------------------------------------------------------


def check_no_negative(ledger: Ledger) -> None:
    for user, assets in ledger.accounts.items():
        for asset, (free, locked) in assets.items():
            assert free >= 0, (user, asset, free)
            assert locked >= 0, (user, asset, locked)


def check_conservation(ledger: Ledger) -> None:
    totals = ledger.totals()
    for asset in set(totals) | set(ledger.net_deposits):
        assert totals.get(asset, 0) == ledger.net_deposits.get(asset, 0), asset


def check_resting_locks(session: ReplaySession) -> None:
    """Each resting order and waiting stop holds exactly what it still needs (the two legs of
    an OCO list together what the list locked), and nothing else is locked."""
    engine, ledger, rules = session.engine, session.ledger, session.rules
    held: dict[tuple[str, str], int] = {}
    for order in engine.orders.values():
        assert order.remaining > 0, order
        if order.side == "buy":
            needs, asset = order.price * order.remaining * rules.quote_per_tick_lot, rules.quote
        else:
            assert order.side == "sell", order
            needs, asset = order.remaining * rules.base_per_lot, rules.base
        if order.order_id not in engine.siblings:
            assert order.locked == needs, order
        held[order.user, asset] = held.get((order.user, asset), 0) + order.locked
    check_stops(engine, held)
    for user, assets in ledger.accounts.items():
        for asset, (_free, locked) in assets.items():
            assert locked == held.get((user, asset), 0), (user, asset, locked, held)
    assert ledger.locked(FEE_ACCOUNT, rules.base) == ledger.locked(FEE_ACCOUNT, rules.quote) == 0


def check_book(engine: Engine) -> None:
    """Levels agree with their live orders, the index with the levels; never crossed."""
    live: dict[str, Any] = {}
    for side, name in ((engine.bids, "buy"), (engine.asks, "sell")):
        prices = list(side.prices())
        assert sorted(prices, reverse=name == "buy") == prices
        assert len(set(prices)) == len(prices) == len(side.levels)
        assert set(prices) == set(side.levels)
        assert side.best == (prices[0] if prices else None)
        for price in prices:
            level = side.levels[price]
            orders = list(side.live_orders(price))
            assert orders, (name, price)
            assert level.live == len(orders)
            assert level.total == sum(o.remaining for o in orders)
            for order in orders:
                assert order.price == price and order.side == name, order
                assert order.remaining > 0
                assert order.order_id not in live, order
                live[order.order_id] = order
    if engine.bids.best is not None and engine.asks.best is not None:
        assert engine.bids.best < engine.asks.best
    assert engine.orders.keys() == live.keys()
    for order_id, order in engine.orders.items():
        assert live[order_id] is order
    by_user = {(user, oid) for user, orders in engine.by_user.items() for oid in orders}
    assert by_user == {(o.user, o.order_id) for o in engine.orders.values()}


def check_all(session: ReplaySession, command: ParsedCommand, events: list[Event]) -> None:
    check_no_negative(session.ledger)
    check_conservation(session.ledger)
    check_resting_locks(session)
    check_book(session.engine)


class Lifecycle:
    """Every accepted order ends in exactly one order_done, or rests, or waits as a stop; a
    trade's taker is the order being executed: the one just accepted, or the stop that
    triggered last; events in docs order."""

    def __init__(self) -> None:
        self.open: set[str] = set()

    def __call__(self, session: ReplaySession, command: ParsedCommand, events: list[Event]) -> None:
        kinds = [type(e) for e in events]
        if isinstance(command, Place | PlaceList):
            assert kinds and kinds[0] in (OrderAccepted, OrderRejected), kinds
            if kinds[0] is OrderRejected:
                assert set(kinds) == {OrderRejected}, kinds
        accepted: list[str] = []
        executing: str | None = None
        for n, event in enumerate(events):
            if isinstance(event, OrderAccepted):
                assert n == len(accepted), "acceptances come first"
                assert isinstance(command, Place | PlaceList), events
                assert event.order_id not in self.open, event
                accepted.append(event.order_id)
                executing = event.order_id
                self.open.add(event.order_id)
            elif isinstance(event, OrderTriggered):
                assert event.order_id in session.engine.orders or event.order_id in self.open
                assert event.order_id not in session.engine.stops.by_id
                executing = event.order_id
            elif isinstance(event, Trade):
                assert event.taker_order == executing, event
                assert event.maker_order in self.open and event.maker_order != executing
            elif isinstance(event, OrderDone):
                assert event.order_id in self.open, f"order_done for an order not open: {event}"
                self.open.remove(event.order_id)
                if event.status == "filled" and event.order_id != executing:
                    previous = events[n - 1]
                    assert isinstance(previous, Trade), (event, previous)
                    assert previous.maker_order == event.order_id
                if event.order_id == executing:
                    executing = None
            elif isinstance(event, OrderRejected):
                assert set(kinds) == {OrderRejected}, events
        engine = session.engine
        assert self.open == set(engine.orders) | set(engine.stops.by_id)


def check_seq(events: list[Event]) -> None:
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    last_update = 0
    for event in events:
        if isinstance(event, Depth):
            assert event.first_update_id == last_update + 1
            assert event.last_update_id == event.seq
            last_update = event.seq
    trade_ids = [e.trade_id for e in events if isinstance(e, Trade)]
    assert trade_ids == list(range(1, len(trade_ids) + 1))


def rebuilt(rules: MarketRules, events: list[Event]) -> Ledger:
    ledger = Ledger([rules])
    for event in events:
        ledger.apply(event, locked_at_enqueue=False)
    return ledger


def compare_with_brute(rules: MarketRules, commands: list[ParsedCommand], batch: int) -> None:
    driver = Driver(rules, batch)
    brute = BruteMatcher(rules)
    for index, command in enumerate(commands):
        got = outcomes(driver.step(index, command))
        want = brute.submit(command)
        assert got == want, f"command {index}: {command!r}"
        if (index + 1) % batch == 0:
            driver.flush(index)
    assert book_rows(driver.session.engine) == brute.final_book()
    stops = driver.session.engine.stops.by_id.values()
    assert [(stop.order_id, stop.locked) for stop in stops] == brute.final_stops()
    assert balances(driver.session.ledger) == brute.final_balances()
    assert driver.session.engine.trading == brute.trading


def run_split(
    rules: MarketRules, commands: list[ParsedCommand], batch: int, split: int
) -> tuple[list[Event], str]:
    """Run up to `split`, snapshot, restore into a new session, run the rest."""
    first = Driver(rules, batch)
    first.run(commands[:split], final=False)
    engine_bytes = dump_engine(first.session.engine)
    ledger_bytes = dump_ledger(first.session.ledger)
    session = ReplaySession(
        rules, load_engine(rules, engine_bytes), load_ledger([rules], ledger_bytes)
    )
    assert state_hash(session.engine, session.ledger) == state_hash(
        first.session.engine, first.session.ledger
    )
    second = Driver(rules, batch, session)
    events = second.run(commands[split:], start=split)
    return events, state_hash(session.engine, session.ledger)


def encoded(events: list[Event]) -> list[bytes]:
    return [msgspec.json.encode(e) for e in events]


# ---- properties over hypothesis examples -------------------------------------------------

Scenario = tuple[list[ParsedCommand], int]


@examples(200)
@given(scenarios())
def test_no_balance_is_ever_negative(scenario: Scenario) -> None:
    commands, batch = scenario
    Driver(RULES, batch).run(
        commands, hook=lambda session, _c, _e: check_no_negative(session.ledger)
    )


@examples(200)
@given(scenarios())
def test_every_asset_sums_to_deposits_minus_withdrawals(scenario: Scenario) -> None:
    commands, batch = scenario
    driver = Driver(RULES, batch)
    driver.run(commands, hook=lambda session, _c, _e: check_conservation(session.ledger))
    assert FEE_ACCOUNT in driver.session.ledger.accounts or not any(
        isinstance(e, Trade) for e in driver.events
    )


@examples(200)
@given(scenarios())
def test_resting_orders_hold_exactly_what_they_need(scenario: Scenario) -> None:
    commands, batch = scenario
    Driver(RULES, batch).run(commands, hook=lambda session, _c, _e: check_resting_locks(session))


@examples(200)
@given(scenarios())
def test_book_is_consistent_and_never_crossed(scenario: Scenario) -> None:
    commands, batch = scenario
    Driver(RULES, batch).run(commands, hook=lambda session, _c, _e: check_book(session.engine))


@examples(200)
@given(scenarios())
def test_events_are_sequenced_and_every_order_ends_once(scenario: Scenario) -> None:
    commands, batch = scenario
    driver = Driver(RULES, batch)
    lifecycle = Lifecycle()
    events = driver.run(commands, hook=lifecycle)
    check_seq(events)


@examples(200)
@given(scenarios())
def test_events_alone_rebuild_the_balances(scenario: Scenario) -> None:
    commands, batch = scenario
    driver = Driver(RULES, batch)
    events = driver.run(commands)
    ledger = rebuilt(RULES, events)
    assert balances(ledger) == balances(driver.session.ledger)
    assert ledger.net_deposits == driver.session.ledger.net_deposits


@examples(200)
@given(scenarios(), st.integers(0, 10_000))
def test_snapshot_and_restore_midway_changes_nothing(scenario: Scenario, cut: int) -> None:
    commands, batch = scenario
    split = cut % (len(commands) + 1)
    whole = Driver(RULES, batch)
    whole.run(commands[:split], final=False)
    before = len(whole.events)
    whole.run(commands[split:], start=split)
    events, digest = run_split(RULES, commands, batch, split)
    assert encoded(events) == encoded(whole.events[before:])
    assert digest == state_hash(whole.session.engine, whole.session.ledger)


@examples(200)
@given(scenarios())
def test_same_commands_same_events_and_state(scenario: Scenario) -> None:
    commands, batch = scenario
    first, second = Driver(RULES, batch), Driver(RULES, batch)
    first.run(commands)
    second.run(commands)
    assert encoded(first.events) == encoded(second.events)
    assert state_hash(first.session.engine, first.session.ledger) == state_hash(
        second.session.engine, second.session.ledger
    )


@examples(200)
@given(scenarios())
def test_engine_agrees_with_brute_force_matcher(scenario: Scenario) -> None:
    commands, batch = scenario
    compare_with_brute(RULES, commands, batch)


@examples(200)
@given(scenarios())
def test_depth_events_rebuild_the_aggregated_book(scenario: Scenario) -> None:
    """Applying every depth event's levels (0: gone) gives the engine's depth after each
    flush; bids come best first, then asks best first, each price once."""
    commands, batch = scenario
    driver = Driver(RULES, batch)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}

    def follow(events: list[Event]) -> None:
        for event in events:
            if not isinstance(event, Depth):
                continue
            for levels, book, best_first in ((event.bids, bids, -1), (event.asks, asks, 1)):
                prices = [price for price, _ in levels]
                assert prices == sorted(prices, key=lambda p: p * best_first)
                assert len(set(prices)) == len(prices)
                for price, lots in levels:
                    assert lots >= 0
                    if lots:
                        book[price] = lots
                    else:
                        book.pop(price, None)
        engine = driver.session.engine
        assert sorted(bids.items(), reverse=True) == engine.bids.depth()
        assert sorted(asks.items()) == engine.asks.depth()

    for index, command in enumerate(commands):
        driver.step(index, command)
        if (index + 1) % batch == 0:
            follow(driver.flush(index))
    follow(driver.flush(len(commands)))


@examples(200)
@given(
    st.lists(st.tuples(st.integers(10, 20), st.integers(1, 5)), max_size=6),
    st.integers(1, 30),
    st.integers(0, 2_000),
)
def test_engine_never_spends_more_than_an_order_locked(
    asks: list[tuple[int, int]], qty: int, budget: int
) -> None:
    """The engine alone: a market buy by quantity takes any budget and spends within it; what
    it does not spend comes back in its order_done."""
    engine = Engine(RULES)
    for n, (price, lots) in enumerate(asks):
        maker = Place(f"a{n}", f"s{n % 2}", "sell", "limit", price, lots, 0, "GTC", "NONE", 0)
        engine.place_locked(maker, lots * RULES.base_per_lot, str(n), 0)
    assert len(engine.orders) == len(asks)
    engine.take_events()
    taker = Place("t", "buyer", "buy", "market", 0, qty, 0, "GTC", "EXPIRE_MAKER", 0)
    engine.place_locked(taker, budget, "t", 0)
    events = engine.take_events()
    assert isinstance(events[0], OrderAccepted) and events[0].tif == "IOC"
    done = events[-1]
    assert isinstance(done, OrderDone) and done.order_id == "t"
    trades = [e for e in events if isinstance(e, Trade)]
    spent = sum(t.quote_qty for t in trades)
    assert spent + done.unlocked == budget
    assert done.filled_qty == sum(t.qty for t in trades) <= qty
    assert (done.status == "filled") == (done.filled_qty == qty)
    if done.filled_qty < qty and engine.asks.best is not None:
        assert done.unlocked < engine.asks.best * RULES.quote_per_tick_lot


@examples(100)
@given(
    st.sampled_from(["buy", "sell"]),
    st.integers(10, 20),
    st.integers(1, 5),
    st.integers(-50, 50).filter(bool),
)
def test_engine_refuses_a_limit_order_locking_the_wrong_amount(
    side: Side, price: int, qty: int, delta: int
) -> None:
    """The engine alone: a limit order must lock exactly what it needs; less is
    insufficient_funds, more is refused too, and the refusal gives everything back."""
    engine = Engine(RULES)
    needed = price * qty * RULES.quote_per_tick_lot if side == "buy" else qty * RULES.base_per_lot
    locked = max(0, needed + delta)
    order = Place("o", "u1", side, "limit", price, qty, 0, "GTC", "NONE", 0)
    engine.place_locked(order, locked, "1", 0)
    [event] = engine.take_events()
    assert isinstance(event, OrderRejected), event
    assert event.reason == ("insufficient_funds" if locked < needed else "invalid_command")
    assert event.unlocked == locked
    assert not engine.orders


def comparable_state(session: ReplaySession) -> tuple[dict[str, Any], Balances, dict[str, int]]:
    """The engine's whole state but its event counter, and the non-zero balances (zero
    balances apart: see test_refused_place_leaves_state_hash_unchanged)."""
    state = engine_state(session.engine)
    del state["seq"]
    return state, balances(session.ledger), dict(session.ledger.net_deposits)


@examples(200)
@given(scenarios())
def test_rejected_command_changes_nothing(scenario: Scenario) -> None:
    commands, batch = scenario
    driver = Driver(RULES, batch)
    for index, command in enumerate(commands):
        before = comparable_state(driver.session)
        events = driver.step(index, command)
        if events and all(isinstance(e, OrderRejected) for e in events):
            assert comparable_state(driver.session) == before, command
        if (index + 1) % batch == 0:
            driver.flush(index)


def test_refused_place_leaves_state_hash_unchanged() -> None:
    """A refused command leaves no trace but its event: the state (the event counter aside)
    and so the state hash must not change.

    Fails today: a market buy by quantity locks 0 when it has nothing to buy, and
    `Ledger.lock(user, asset, 0)` for an account that never held the asset creates a [0, 0]
    cell, which `dump_ledger` (and `state_hash`) include, even though the engine then refuses
    the order. The same command replayed from the events alone leaves no such cell."""
    session = ReplaySession(RULES)
    order = Place("o1", "u4", "buy", "market", 0, 0, 0, "IOC", "EXPIRE_MAKER", 0)  # no qty
    before = dump_ledger(session.ledger)
    session.submit_parsed(order, "1")
    [event] = session.engine.take_events()
    assert isinstance(event, OrderRejected) and event.reason == "invalid_qty"
    assert dump_ledger(session.ledger) == before, session.ledger.snapshot()


# ---- long seeded runs -------------------------------------------------------------------


@pytest.mark.parametrize("market", sorted(CASES))
@pytest.mark.parametrize("seed", SEEDS)
def test_seeded_run_keeps_every_invariant(market: str, seed: int) -> None:
    case = CASES[market]
    commands = seeded(seed, case, LONG)
    driver = Driver(case.rules, batch=seed)
    lifecycle = Lifecycle()

    def hook(session: ReplaySession, command: ParsedCommand, events: list[Event]) -> None:
        check_all(session, command, events)
        lifecycle(session, command, events)

    events = driver.run(commands, hook=hook)
    check_seq(events)
    assert balances(rebuilt(case.rules, events)) == balances(driver.session.ledger)


@pytest.mark.parametrize("market", sorted(CASES))
@pytest.mark.parametrize("seed", SEEDS)
def test_seeded_run_agrees_with_brute_force(market: str, seed: int) -> None:
    case = CASES[market]
    compare_with_brute(case.rules, seeded(seed, case, LONG), batch=seed)


@pytest.mark.parametrize("market", sorted(CASES))
def test_seeded_run_restores_and_repeats(market: str) -> None:
    case = CASES[market]
    commands = seeded(7, case, LONG)
    whole = Driver(case.rules, batch=2)
    whole.run(commands)
    again = Driver(case.rules, batch=2)
    again.run(commands)
    assert encoded(again.events) == encoded(whole.events)
    digest = state_hash(whole.session.engine, whole.session.ledger)
    for split in (1, LONG // 3, LONG // 2 + 1, len(commands)):
        prefix = Driver(case.rules, batch=2)
        prefix.run(commands[:split], final=False)
        events, restored = run_split(case.rules, commands, 2, split)
        assert encoded(events) == encoded(whole.events[len(prefix.events) :])
        assert restored == digest


def count_cases(case: MarketCase, commands: list[ParsedCommand]) -> Counter[str]:
    driver = Driver(case.rules, batch=1)
    events = driver.run(commands)
    seen: Counter[str] = Counter()
    owners: dict[str, str] = {}  # live orders' users
    for event in events:
        if isinstance(event, OrderRejected):
            seen[event.reason] += 1
            if event.op == "cancel" and owners.get(event.order_id, event.user) != event.user:
                seen["unknown_order/not_owner"] += 1
        elif isinstance(event, OrderDone):
            owners.pop(event.order_id, None)
            seen[f"{event.status}/{event.reason}"] += 1
        elif isinstance(event, Trade):
            seen["trade"] += 1
            if event.taker_unlocked:
                seen["price_improvement"] += 1
            if event.maker_user == event.taker_user:
                seen["self_trade_allowed"] += 1
        elif isinstance(event, OrderTriggered):
            seen["triggered"] += 1
        elif isinstance(event, OrderAccepted):
            owners[event.order_id] = event.user
            seen[f"accepted/{event.type}/{event.tif}/{event.stp}"] += 1
            seen[f"accepted/{event.type}"] += 1
            if event.list_id:
                seen["accepted/list"] += 1
            if event.quote_qty:
                seen["accepted/quote_qty"] += 1
    return seen


@pytest.mark.parametrize("market", sorted(CASES))
def test_generated_sequences_reach_every_case(market: str) -> None:
    """The sequences the properties run over do exercise every rule they are about."""
    case = CASES[market]
    seen = count_cases(case, seeded(1, case, LONG))
    wanted = [
        "trade",
        "price_improvement",
        "self_trade_allowed",
        "filled/",
        "expired/time_in_force",
        "expired/self_trade",
        "canceled/user",
        "canceled/market_closed",
        "insufficient_funds",
        "invalid_command",
        "invalid_price",
        "invalid_qty",
        "duplicate_order",
        "post_only_would_cross",
        "fok_unfillable",
        "unknown_order",
        "unknown_order/not_owner",  # another user's live order: refused as unknown
        "market_halted",
        "accepted/quote_qty",
        "triggered",
        "expired/oco",
        "stop_would_trigger",
        "invalid_stop_price",
        "invalid_order_list",
        "accepted/list",
        *(f"accepted/{stop_type}" for stop_type in STOP_TYPES),
    ]
    if case.rules.min_notional > case.lot_quote - case.band * case.rules.quote_per_tick_lot:
        wanted.append("below_min_notional")
    for tif in ("GTC", "IOC", "FOK", "POST_ONLY"):
        wanted.append(f"accepted/limit/{tif}/EXPIRE_MAKER")
    for stp in ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"):
        wanted.append(f"accepted/market/IOC/{stp}")
    missing = [name for name in wanted if not seen[name]]
    assert not missing, (missing, seen)
    assert not [name for name in seen if name.startswith("accepted/market/GTC/")], seen
