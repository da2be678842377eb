"""Command sequences over small markets, and a driver that runs them through the engine.

One generator draws every choice from `random.Random`: seeded once for the long runs
(`seeded`), reseeded per command from an integer hypothesis draws (`command_lists`).
Sequences are built so that things collide: three funded users and one that starts with
nothing (self-trades, insufficient funds), prices in a band of about ten ticks (crossing is
frequent), small quantities, every order type (stops and OCO lists too), time in force and
self-trade mode, cancels of
live, finished, unknown and other users' orders, cancel_all, halts and resumes, now and then
a close, deposits and withdrawals, and now and then a value the engine must refuse.

`Driver` is the system under test: `engine.replay.ReplaySession` (the api's locking, the
engine and the reference ledger), fed with `submit_parsed` and flushed with `end_batch`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import msgspec
import yaml
from hypothesis import strategies as st

from engine.commands import FundsRequest, ParsedCommand
from engine.replay import ReplaySession
from xch.market import Market, MarketRules
from xch.schemas import (
    Cancel,
    CancelAll,
    Close,
    Depth,
    Event,
    Funds,
    MarketState,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderTriggered,
    OrderType,
    Place,
    PlaceList,
    SetTrading,
    Side,
    StopType,
    StpMode,
    TimeInForce,
    Trade,
)

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
BTC_USD_YAML = ROOT / "examples" / "markets" / "btc-usd.yaml"

FUNDED_USERS = ("u1", "u2", "u3")
USERS = (*FUNDED_USERS, "u4")  # u4 starts with nothing

SIDES: tuple[Side, ...] = ("buy", "sell")
LIMIT_TIFS: tuple[TimeInForce, ...] = ("GTC", "GTC", "IOC", "FOK", "POST_ONLY")
MARKET_TIFS: tuple[TimeInForce, ...] = ("GTC", "IOC", "FOK")
STPS: tuple[StpMode, ...] = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
# Words outside the schema's Literals (so cast), which the engine must refuse.
BAD_SIDE = cast(Side, "hold")
BAD_TYPE = cast(OrderType, "stop")
BAD_TIF = cast(TimeInForce, "GTD")
BAD_STP = cast(StpMode, "BOGUS")
STATES = ("Enabled",) * 6 + ("CancelOnly", "Halted")
STOP_TYPES: tuple[StopType, ...] = (
    "stop_loss",
    "stop_loss_limit",
    "take_profit",
    "take_profit_limit",
)
KINDS = (
    ("limit",) * 8
    + ("market",) * 3
    + ("stop",) * 3
    + ("cancel",) * 3
    + ("oco", "cancel_all", "deposit", "withdraw", "trading")
)


# ---- markets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketCase:
    """A market and the ranges commands are drawn from (prices in ticks, sizes in lots)."""

    rules: MarketRules
    center: int
    band: int
    max_lots: int

    @property
    def lot_quote(self) -> int:
        """The quote value of one lot at the center price."""
        return self.center * self.rules.quote_per_tick_lot


def market_rules(spec: dict[str, Any], name: str) -> MarketRules:
    manifest = {
        "apiVersion": "exchange.dev/v1alpha1",
        "kind": "Market",
        "metadata": {"name": name},
        "spec": spec,
    }
    return Market.model_validate(manifest).rules()


# Coarse units so that numbers stay small and fees round: a lot is 100 base minor units, a
# tick x lot 5 quote minor units; min notional 50 (prices 5..15 ticks x 1..6 lots straddle it).
COARSE = MarketCase(
    rules=market_rules(
        {
            "base": {"asset": "BTC", "scale": 3},
            "quote": {"asset": "USD", "scale": 2},
            "tickSize": "0.5",
            "lotSize": "0.1",
            "minNotional": "0.50",
            "fees": {"makerBps": 30, "takerBps": 70},
        },
        "coarse-usd",
    ),
    center=10,
    band=5,
    max_lots=6,
)

# The example market (tick 0.01, lot 0.0001: base_per_lot 10_000, quote_per_tick_lot 1).
BTC_USD = MarketCase(
    rules=Market.model_validate(yaml.safe_load(BTC_USD_YAML.read_text())).rules(),
    center=3_000_000,
    band=6,
    max_lots=8,
)


# ---- sources of choices -----------------------------------------------------------------


class Source(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...


class RandomSource:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]


# ---- the generator ----------------------------------------------------------------------


class Generator:
    def __init__(self, source: Source, case: MarketCase) -> None:
        self.src = source
        self.case = case
        self.rules = case.rules
        self.issued: list[str] = []
        self.owner: dict[str, str] = {}
        self.counter = 0

    def rare(self, one_in: int) -> bool:
        """True once in `one_in` draws."""
        return self.src.integer(0, one_in - 1) == one_in - 1

    def pick(self, usual: Sequence[T], odd: Sequence[T], one_in: int = 25) -> T:
        return self.src.choice(odd) if self.rare(one_in) else self.src.choice(usual)

    def base_amount(self, most_lots: int) -> int:
        return self.src.integer(1, most_lots * self.rules.base_per_lot)

    def quote_amount(self, most_lots: int) -> int:
        return self.src.integer(1, most_lots * self.case.lot_quote)

    def initial_deposits(self) -> list[ParsedCommand]:
        out: list[ParsedCommand] = []
        for user in FUNDED_USERS:
            out.append(FundsRequest(user, self.rules.base, self.base_amount(30)))
            out.append(FundsRequest(user, self.rules.quote, self.quote_amount(30)))
        return out

    def order_id(self, user: str) -> str:
        if self.issued and self.rare(12):
            order_id = self.src.choice(self.issued[-10:])  # a duplicate if still resting
        else:
            self.counter += 1
            order_id = f"o{self.counter}"
            self.issued.append(order_id)
        self.owner[order_id] = user
        return order_id

    def command(self) -> ParsedCommand:
        kind = self.src.choice(KINDS)
        if kind == "limit":
            return self.limit()
        if kind == "market":
            return self.market()
        if kind == "stop":
            return self.stop()
        if kind == "oco":
            return self.oco()
        if kind == "cancel":
            if self.issued and not self.rare(8):
                order_id = self.src.choice(self.issued[-20:])
            else:
                order_id = f"ghost{self.src.integer(0, 3)}"
            owner = self.owner.get(order_id, "u1")
            user = self.src.choice(USERS) if self.rare(5) else owner
            return Cancel(order_id=order_id, user=user)
        if kind == "cancel_all":
            return CancelAll(user=self.src.choice(USERS))
        if kind == "trading":
            if self.rare(12):
                return Close()
            return SetTrading(trading=self.pick(STATES, ("Paused",), 8))
        user = self.src.choice(USERS)
        asset = self.src.choice((self.rules.base, self.rules.quote))
        amount = self.base_amount(10) if asset == self.rules.base else self.quote_amount(10)
        if kind == "deposit":
            return FundsRequest(user, asset, amount)
        if self.rare(3):
            amount *= 10  # likely more than free
        return FundsRequest(user, asset, -amount)

    def limit(self) -> Place:
        case = self.case
        user = self.src.choice(USERS)
        price = case.center + self.src.integer(-case.band, case.band)
        if self.rare(40):
            price = 0
        qty = 0 if self.rare(40) else self.src.integer(1, case.max_lots)
        return Place(
            order_id=self.order_id(user),
            user=user,
            side=self.pick(SIDES, (BAD_SIDE,), 40),
            type=self.pick(("limit",), (BAD_TYPE,), 60),
            price=price,
            qty=qty,
            quote_qty=self.quote_amount(2) if self.rare(60) else 0,
            tif=self.pick(LIMIT_TIFS, (BAD_TIF,), 40),
            stp=self.pick(STPS, (BAD_STP,), 40),
            locked=0,
        )

    def market(self) -> Place:
        case = self.case
        user = self.src.choice(USERS)
        side = self.src.choice(SIDES)
        qty, quote_qty = self.src.integer(1, 2 * case.max_lots), 0
        if side == "buy" and self.src.integer(0, 2) == 2:
            qty, quote_qty = 0, self.quote_amount(2 * case.max_lots)
        if quote_qty and self.rare(6):  # at the minimum notional, or just below or above it
            quote_qty = max(1, self.rules.min_notional + self.src.integer(-1, 1))
        if self.rare(20):  # both, neither, or a quote amount on a sell
            qty = self.src.choice((0, qty))
            quote_qty = self.quote_amount(case.max_lots)
        return Place(
            order_id=self.order_id(user),
            user=user,
            side=side,
            type="market",
            price=0,
            qty=qty,
            quote_qty=quote_qty,
            tif=self.pick(MARKET_TIFS, ("POST_ONLY",), 30),
            stp=self.pick(STPS, (BAD_STP,), 40),
            locked=0,
        )

    def stop(self) -> Place:
        """A stop order around the center price: many wait, some would trigger at once."""
        case = self.case
        order_type = self.src.choice(STOP_TYPES)
        order = self.limit() if order_type.endswith("_limit") else self.market()
        stop_price = case.center + self.src.integer(-case.band, case.band)
        if self.rare(40):
            stop_price = self.src.choice((0, -1))
        return msgspec.structs.replace(order, type=order_type, stop_price=stop_price)

    def oco(self) -> PlaceList:
        """An OCO list as Binance allows them (a limit maker or take-profit on the profit side,
        a stop-loss on the other), now and then a malformed one."""
        case = self.case
        user = self.src.choice(USERS)
        side = self.src.choice(SIDES)
        qty = self.src.integer(1, case.max_lots)
        ahead = 1 if side == "sell" else -1  # where the profit is
        profit_price = case.center + ahead * self.src.integer(0, case.band)
        loss_stop = case.center - ahead * self.src.integer(0, case.band)
        if self.src.integer(0, 1):
            profit = self.leg(user, side, "limit", profit_price, qty, 0, "POST_ONLY")
        else:
            profit = self.leg(user, side, "take_profit_limit", profit_price, qty, profit_price)
        if self.src.integer(0, 1):
            loss = self.leg(user, side, "stop_loss", 0, qty, loss_stop)
        else:
            loss = self.leg(user, side, "stop_loss_limit", loss_stop, qty, loss_stop)
        if self.rare(10):  # a different quantity or side: not a list
            if self.src.integer(0, 1):
                loss = msgspec.structs.replace(loss, qty=qty + 1)
            else:
                loss = msgspec.structs.replace(loss, side=SIDES[ahead < 0])
        if self.rare(10):
            profit = msgspec.structs.replace(profit, tif="GTC")
        self.counter += 1
        return PlaceList(f"l{self.counter}", user, [profit, loss], 0)

    def leg(
        self,
        user: str,
        side: Side,
        order_type: OrderType,
        price: int,
        qty: int,
        stop_price: int,
        tif: TimeInForce = "GTC",
    ) -> Place:
        return Place(
            order_id=self.order_id(user),
            user=user,
            side=side,
            type=order_type,
            price=price,
            qty=qty,
            quote_qty=0,
            tif=tif,
            stp=self.src.choice(STPS),
            locked=0,
            stop_price=stop_price,
        )


def generate(source: Source, case: MarketCase, count: int) -> list[ParsedCommand]:
    """Initial deposits for the funded users, then `count` commands."""
    gen = Generator(source, case)
    commands = gen.initial_deposits()
    commands.extend(gen.command() for _ in range(count))
    return commands


def seeded(seed: int, case: MarketCase, count: int) -> list[ParsedCommand]:
    return generate(RandomSource(seed), case, count)


@st.composite
def command_lists(
    draw: st.DrawFn, case: MarketCase = COARSE, max_size: int = 60
) -> list[ParsedCommand]:
    """Hypothesis draws one integer per command (its details come from `random.Random` seeded
    with it): cheap enough for hundreds of examples, and a failing list still shrinks command
    by command."""
    seed = st.integers(0, 2**32 - 1)
    short, long = st.lists(seed, max_size=10), st.lists(seed, min_size=20, max_size=max_size)
    seeds = draw(st.one_of(short, long))
    gen = Generator(RandomSource(draw(seed)), case)
    commands = gen.initial_deposits()
    for command_seed in seeds:
        gen.src = RandomSource(command_seed)
        commands.append(gen.command())
    return commands


@st.composite
def scenarios(
    draw: st.DrawFn, case: MarketCase = COARSE, max_size: int = 60
) -> tuple[list[ParsedCommand], int]:
    """A command list and a batch size (commands per depth flush)."""
    return draw(command_lists(case, max_size)), draw(st.integers(1, 4))


# ---- the system under test --------------------------------------------------------------

StepHook = Callable[[ReplaySession, ParsedCommand, list[Event]], None]


class Driver:
    """Feeds commands to a ReplaySession: input id and ts are the command's index; a depth
    flush after every `batch` commands (by index, so a restored driver flushes alike)."""

    def __init__(
        self, rules: MarketRules, batch: int = 1, session: ReplaySession | None = None
    ) -> None:
        self.rules = rules
        self.batch = batch
        self.session = session or ReplaySession(rules)
        self.events: list[Event] = []

    def step(self, index: int, command: ParsedCommand) -> list[Event]:
        """Submit one command; its events, already settled in the ledger."""
        engine = self.session.engine
        self.session.submit_parsed(command, str(index), index)
        events = engine.take_events()
        self.events.extend(events)
        return events

    def flush(self, index: int) -> list[Event]:
        self.session.end_batch(str(index), index)
        events = self.session.engine.take_events()
        self.events.extend(events)
        return events

    def run(
        self,
        commands: Sequence[ParsedCommand],
        start: int = 0,
        final: bool = True,
        hook: StepHook | None = None,
    ) -> list[Event]:
        """Run `commands` (numbered from `start`); `hook` sees each command's events."""
        first = len(self.events)
        index = start
        for index, command in enumerate(commands, start):
            events = self.step(index, command)
            if hook is not None:
                hook(self.session, command, events)
            if (index + 1) % self.batch == 0:
                self.flush(index)
        if final:
            self.flush(index + 1)
        return self.events[first:]


def outcome(event: Event) -> tuple[object, ...] | None:
    """An engine event as the brute-force matcher's tuple (None for depth)."""
    if isinstance(event, OrderAccepted):
        return ("accepted", event.order_id)
    if isinstance(event, OrderRejected):
        return ("rejected", event.order_id, event.reason)
    if isinstance(event, Trade):
        return (
            "trade",
            event.price,
            event.qty,
            event.maker_order,
            event.taker_order,
            event.maker_fee,
            event.taker_fee,
        )
    if isinstance(event, OrderTriggered):
        return ("triggered", event.order_id, event.stop_price, event.last_price)
    if isinstance(event, OrderDone):
        return (
            "done",
            event.order_id,
            event.status,
            event.reason,
            event.filled_qty,
            event.unlocked,
        )
    if isinstance(event, MarketState):
        return ("state", event.trading, event.reason)
    if isinstance(event, Funds):
        return ("funds", event.user, event.asset, event.amount)
    assert isinstance(event, Depth), event
    return None


def outcomes(events: Sequence[Event]) -> list[tuple[object, ...]]:
    return [o for o in map(outcome, events) if o is not None]
