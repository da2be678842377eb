"""A brute-force reference matcher for docs/engine.md, written apart from engine/core.py.

Resting orders live in one plain list in arrival order; the next maker is found by scanning
the whole list for the best price (lowest ask for a buy taker, highest bid for a sell taker),
ties going to the earliest arrival. Balances are a plain dict (user, asset) -> [free, locked];
a place first locks what the api would lock (the rule of ledger/locks.py, written again here),
exactly as `engine.replay.ReplaySession` does, so both consume the same parsed commands: a
side that is neither buy nor sell is refused before anything is locked, any other refusal
comes after the lock (so an unfunded place is `insufficient_funds` even when the market is
halted). `Close` (in xch.schemas, not yet in docs/engine.md) cancels every open order, oldest
first, with reason `market_closed`, then halts.

Stop orders wait in a plain list in arrival order. After every execution the matcher looks
for the next stop to trigger by scanning the whole list: among the stops the last trade price
has reached, a rising one with the lowest stop price, else a falling one with the highest,
ties to the earliest arrival. OCO lists are a plain map from each leg to the other; a leg that
trades (or expires by self-trade prevention) as a maker, or triggers, ends the other leg with
`expired/oco`; a leg canceled cancels the other.

The outcome of every command is a list of plain tuples:

- ("accepted", order_id)
- ("rejected", order_id, reason)
- ("trade", price, qty, maker_order, taker_order, maker_fee, taker_fee)
- ("done", order_id, status, reason, filled, unlocked)
- ("triggered", order_id, stop_price, last_price)
- ("state", trading, reason)
- ("funds", user, asset, amount)

Nothing here is fast on purpose: every decision is the simplest statement of the rule.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import msgspec

from engine.commands import FundsRequest, ParsedCommand
from xch.market import MarketRules
from xch.schemas import Cancel, CancelAll, Close, Place, PlaceList, SetTrading

Outcome = tuple[object, ...]
# (price, order_id, user, remaining, locked, filled), best price first, then arrival.
BookRow = tuple[int, str, str, int, int, int]

FEES = "@fees"
STATES = ("Enabled", "CancelOnly", "Halted")
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
STOP_LIMITS = ("stop_loss_limit", "take_profit_limit")
STOPS = ("stop_loss", "take_profit", *STOP_LIMITS)


def rises(order: Place) -> bool:
    """A buy stop-loss and a sell take-profit trigger as the price rises to them."""
    return (order.type in ("stop_loss", "stop_loss_limit")) == (order.side == "buy")


def is_reached(order: Place, last: int) -> bool:
    if last == 0:
        return False
    return last >= order.stop_price if rises(order) else last <= order.stop_price


def ceil_fee(amount: int, bps: int) -> int:
    """`amount * bps / 10000` rounded up to a whole minor unit."""
    return (amount * bps + 9_999) // 10_000


@dataclass
class Resting:
    order_id: str
    user: str
    side: str
    price: int
    remaining: int
    locked: int
    filled: int


@dataclass
class Waiting:
    """A stop order waiting for its trigger; `need` is what the order it becomes needs."""

    order: Place
    locked: int
    need: int


@dataclass
class Taker:
    order_id: str
    user: str
    side: str
    limit: int | None  # None for a market order
    wanted: int | None  # lots still wanted; None for a market buy by quote amount
    left: int  # what it still holds (quote for a buy, base for a sell)
    stp: str
    filled: int = 0
    self_traded: bool = False


class BruteMatcher:
    def __init__(self, rules: MarketRules) -> None:
        self.rules = rules
        self.trading = rules.trading.value
        self.resting: list[Resting] = []
        self.waiting: list[Waiting] = []
        self.partner: dict[str, str] = {}
        self.last = 0
        self.legs_done: list[str] = []
        self.balances: dict[tuple[str, str], list[int]] = {}
        self.out: list[Outcome] = []

    # ---- balances -----------------------------------------------------------------------

    def cell(self, user: str, asset: str) -> list[int]:
        return self.balances.setdefault((user, asset), [0, 0])

    def spent_asset(self, side: str) -> str:
        return self.rules.quote if side == "buy" else self.rules.base

    def unlock(self, user: str, side: str, amount: int) -> None:
        cell = self.cell(user, self.spent_asset(side))
        cell[1] -= amount
        cell[0] += amount

    def final_balances(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Every non-zero balance."""
        return {
            key: (free, locked)
            for key, (free, locked) in sorted(self.balances.items())
            if free or locked
        }

    def final_book(self) -> tuple[list[BookRow], list[BookRow]]:
        def row(o: Resting) -> BookRow:
            return (o.price, o.order_id, o.user, o.remaining, o.locked, o.filled)

        bids = sorted((o for o in self.resting if o.side == "buy"), key=lambda o: -o.price)
        asks = sorted((o for o in self.resting if o.side == "sell"), key=lambda o: o.price)
        return [row(o) for o in bids], [row(o) for o in asks]

    def final_stops(self) -> list[tuple[str, int]]:
        """Waiting stops in arrival order, with what each holds."""
        return [(w.order.order_id, w.locked) for w in self.waiting]

    # ---- commands -----------------------------------------------------------------------

    def submit(self, command: ParsedCommand) -> list[Outcome]:
        start = len(self.out)
        if isinstance(command, Place):
            self.place(command)
        elif isinstance(command, PlaceList):
            self.place_list(command)
        elif isinstance(command, Cancel):
            self.cancel(command.order_id, command.user)
        elif isinstance(command, CancelAll):
            mine = [o.order_id for o in self.resting if o.user == command.user]
            mine += [w.order.order_id for w in self.waiting if w.order.user == command.user]
            self.cancel_each(mine, "user")
        elif isinstance(command, SetTrading):
            if command.trading in STATES:
                self.trading = command.trading
                self.out.append(("state", command.trading, ""))
            else:
                self.out.append(("rejected", "", "invalid_command"))
        elif isinstance(command, Close):
            everything = [o.order_id for o in self.resting]
            everything += [w.order.order_id for w in self.waiting]
            self.cancel_each(everything, "market_closed")
            self.trading = "Halted"
            self.out.append(("state", "Halted", "closed"))
        elif isinstance(command, FundsRequest):
            self.funds(command)
        else:
            raise TypeError(command)
        return self.out[start:]

    def funds(self, request: FundsRequest) -> None:
        cell = self.cell(request.user, request.asset)
        if request.amount < 0 and cell[0] < -request.amount:
            self.out.append(("rejected", "", "insufficient_funds"))
            return
        cell[0] += request.amount
        self.out.append(("funds", request.user, request.asset, request.amount))

    def find(self, order_id: str) -> Resting | Waiting | None:
        for order in self.resting:
            if order.order_id == order_id:
                return order
        for waiting in self.waiting:
            if waiting.order.order_id == order_id:
                return waiting
        return None

    def cancel(self, order_id: str, user: str) -> None:
        found = self.find(order_id)
        owner = (
            None
            if found is None
            else found.user
            if isinstance(found, Resting)
            else found.order.user
        )
        if owner != user:  # unknown, or another user's: the same answer
            self.out.append(("rejected", order_id, "unknown_order"))
            return
        self.cancel_with_partner(order_id, "user")

    def cancel_each(self, order_ids: list[str], reason: str) -> None:
        for order_id in order_ids:
            if self.find(order_id) is not None:  # the other leg of a list may be gone
                self.cancel_with_partner(order_id, reason)

    def cancel_with_partner(self, order_id: str, reason: str) -> None:
        partner = self.partner.pop(order_id, None)
        self.end(order_id, "canceled", reason, 0)
        if partner is not None:
            del self.partner[partner]
            self.end(partner, "canceled", reason, 0)

    def end(self, order_id: str, status: str, reason: str, extra: int) -> None:
        """End an open or waiting order: it gives back what it holds plus `extra`."""
        found = self.find(order_id)
        assert found is not None, order_id
        if isinstance(found, Resting):
            self.resting.remove(found)
            user, side, filled, unlocked = found.user, found.side, found.filled, found.locked
        else:
            self.waiting.remove(found)
            user, side, filled, unlocked = found.order.user, found.order.side, 0, found.locked
        unlocked += extra
        self.unlock(user, side, unlocked)
        self.out.append(("done", order_id, status, reason, filled, unlocked))

    # ---- place --------------------------------------------------------------------------

    def lock_rule(self, cmd: Place) -> int:
        """What the api locks before the order enters the market."""
        rules = self.rules
        if cmd.side != "buy":
            return cmd.qty * rules.base_per_lot
        if cmd.type == "limit" or cmd.type in STOP_LIMITS:
            return cmd.price * cmd.qty * rules.quote_per_tick_lot
        if cmd.quote_qty:
            return cmd.quote_qty
        if cmd.type in STOPS:  # its quantity at the stop price, plus 5%
            return -(-cmd.stop_price * cmd.qty * rules.quote_per_tick_lot * 10_500 // 10_000)
        # A market buy by quantity: the cost of the best asks as they stand now.
        cost, lots = 0, cmd.qty
        for ask in sorted((o for o in self.resting if o.side == "sell"), key=lambda o: o.price):
            take = min(lots, ask.remaining)
            if take <= 0:
                break
            cost += take * ask.price * rules.quote_per_tick_lot
            lots -= take
        return cost

    def place(self, cmd: Place) -> None:
        if cmd.side not in ("buy", "sell"):  # refused before anything is locked
            self.out.append(("rejected", cmd.order_id, "invalid_command"))
            return
        amount = self.lock_rule(cmd)
        cell = self.cell(cmd.user, self.spent_asset(cmd.side))
        if amount < 0 or cell[0] < amount:
            self.out.append(("rejected", cmd.order_id, "insufficient_funds"))
            return
        cell[0] -= amount
        cell[1] += amount
        reason = self.refusal(cmd, amount)
        if reason is not None:
            self.unlock(cmd.user, cmd.side, amount)
            self.out.append(("rejected", cmd.order_id, reason))
            return
        self.out.append(("accepted", cmd.order_id))
        if cmd.type in STOPS:
            self.waiting.append(Waiting(cmd, amount, amount))
            return
        self.execute(cmd, amount)
        self.settle_triggers()

    def execute(self, cmd: Place, amount: int) -> None:
        """Match an accepted (or triggered) limit or market order, then rest or end it."""
        taker = self.taker(cmd, amount)
        self.walk(self.resting, taker, live=True)
        if cmd.type == "limit" and cmd.tif in ("GTC", "POST_ONLY"):
            assert taker.wanted is not None
            if taker.wanted > 0 and not taker.self_traded:
                self.resting.append(
                    Resting(
                        cmd.order_id,
                        cmd.user,
                        cmd.side,
                        cmd.price,
                        taker.wanted,
                        taker.left,
                        taker.filled,
                    )
                )
                return
        if taker.wanted is None:  # a market buy by quote amount
            asks = [o.price for o in self.resting if o.side == "sell"]
            spent = taker.left == 0 or (
                bool(asks) and taker.left < min(asks) * self.rules.quote_per_tick_lot
            )
            filled = taker.filled > 0 and not taker.self_traded and spent
        else:
            filled = taker.wanted == 0
        if filled:
            status, reason = "filled", ""
        else:
            status = "expired"
            reason = "self_trade" if taker.self_traded else "time_in_force"
        self.unlock(cmd.user, cmd.side, taker.left)
        self.out.append(("done", cmd.order_id, status, reason, taker.filled, taker.left))

    def taker(self, cmd: Place, locked: int) -> Taker:
        if cmd.type == "limit":
            return Taker(cmd.order_id, cmd.user, cmd.side, cmd.price, cmd.qty, locked, cmd.stp)
        wanted = None if cmd.quote_qty else cmd.qty
        return Taker(cmd.order_id, cmd.user, cmd.side, None, wanted, locked, cmd.stp)

    def refusal(self, cmd: Place, locked: int) -> str | None:
        """Why the engine refuses `cmd` (already funded with `locked`), or None."""
        rules = self.rules
        if self.trading != "Enabled":
            return "market_halted"
        if cmd.stp not in STP_MODES:
            return "invalid_command"
        if not cmd.order_id or not cmd.user:
            return "invalid_command"
        if self.find(cmd.order_id) is not None:
            return "duplicate_order"
        if cmd.type in STOPS:
            return self.stop_refusal(cmd)
        if cmd.stop_price:
            return "invalid_stop_price"
        if cmd.type == "limit":
            if cmd.tif not in ("GTC", "IOC", "FOK", "POST_ONLY") or cmd.quote_qty != 0:
                return "invalid_command"
            if cmd.price <= 0:
                return "invalid_price"
            if cmd.qty <= 0:
                return "invalid_qty"
            if cmd.price * cmd.qty * rules.quote_per_tick_lot < rules.min_notional:
                return "below_min_notional"
            if cmd.tif == "POST_ONLY" and self.crossing_makers(cmd.side, cmd.price):
                return "post_only_would_cross"
        elif cmd.type == "market":
            if cmd.tif not in ("GTC", "IOC", "FOK") or cmd.price != 0:
                return "invalid_command"
            if (cmd.qty > 0) == (cmd.quote_qty > 0):
                return "invalid_qty"
            if cmd.quote_qty > 0:
                if cmd.side != "buy" or cmd.tif == "FOK":
                    return "invalid_command"
                if cmd.quote_qty < rules.min_notional:
                    return "below_min_notional"
        else:
            return "invalid_command"
        if cmd.tif == "FOK":
            # Try it on a copy of the book: refused unless it fills completely now.
            trial = self.taker(cmd, locked)
            self.walk(copy.deepcopy(self.resting), trial, live=False)
            if trial.wanted != 0:
                return "fok_unfillable"
        return None

    def stop_refusal(self, cmd: Place) -> str | None:
        rules = self.rules
        if cmd.stop_price <= 0:
            return "invalid_stop_price"
        if cmd.type in STOP_LIMITS:
            if cmd.tif not in ("GTC", "IOC", "FOK", "POST_ONLY") or cmd.quote_qty != 0:
                return "invalid_command"
            if cmd.price <= 0:
                return "invalid_price"
            if cmd.qty <= 0:
                return "invalid_qty"
            if cmd.price * cmd.qty * rules.quote_per_tick_lot < rules.min_notional:
                return "below_min_notional"
        else:
            if cmd.tif not in ("GTC", "IOC", "FOK") or cmd.price != 0:
                return "invalid_command"
            if cmd.qty < 0 or cmd.quote_qty < 0 or (cmd.qty > 0) == (cmd.quote_qty > 0):
                return "invalid_qty"
            if cmd.quote_qty > 0:
                if cmd.side != "buy" or cmd.tif == "FOK":
                    return "invalid_command"
                if cmd.quote_qty < rules.min_notional:
                    return "below_min_notional"
            elif cmd.stop_price * cmd.qty * rules.quote_per_tick_lot < rules.min_notional:
                return "below_min_notional"
        if is_reached(cmd, self.last):
            return "stop_would_trigger"
        return None

    # ---- stops and lists ----------------------------------------------------------------

    def settle_triggers(self) -> None:
        while True:
            for leg in self.legs_done:
                if leg in self.partner:
                    other = self.partner.pop(leg)
                    del self.partner[other]
                    self.end(other, "expired", "oco", 0)
            self.legs_done.clear()
            reached = [w for w in self.waiting if is_reached(w.order, self.last)]
            if not reached:
                return
            rising = [w for w in reached if rises(w.order)]
            if rising:  # min and max keep the first of equals: the earliest arrival
                self.trigger(min(rising, key=lambda w: w.order.stop_price))
            else:
                self.trigger(max(reached, key=lambda w: w.order.stop_price))

    def trigger(self, waiting: Waiting) -> None:
        stop = waiting.order
        self.waiting.remove(waiting)
        self.out.append(("triggered", stop.order_id, stop.stop_price, self.last))
        partner = self.partner.pop(stop.order_id, None)
        if partner is not None:
            del self.partner[partner]
            self.end(partner, "expired", "oco", waiting.locked - waiting.need)
        order = msgspec.structs.replace(
            stop, type="limit" if stop.type in STOP_LIMITS else "market", stop_price=0
        )
        reason: str | None = None
        if order.tif == "POST_ONLY" and self.crossing_makers(order.side, order.price):
            reason = "post_only_would_cross"
        elif order.tif == "FOK":
            trial = self.taker(order, waiting.need)
            self.walk(copy.deepcopy(self.resting), trial, live=False)
            if trial.wanted != 0:
                reason = "fok_unfillable"
        if reason is not None:
            self.unlock(order.user, order.side, waiting.need)
            self.out.append(("done", order.order_id, "expired", reason, 0, waiting.need))
            return
        self.execute(order, waiting.need)

    def place_list(self, cmd: PlaceList) -> None:
        legs = cmd.legs
        sides = {leg.side for leg in legs}
        if len(legs) != 2 or len(sides) != 1 or any(leg.type == "market" for leg in legs):
            malformed = "market_halted" if self.trading != "Enabled" else "invalid_order_list"
            self.out.extend(("rejected", leg.order_id, malformed) for leg in legs)
            return
        needs = [self.lock_rule(leg) for leg in legs]
        amount = max(needs)
        cell = self.cell(cmd.user, self.spent_asset(legs[0].side))
        if amount < 0 or cell[0] < amount:
            self.out.extend(("rejected", leg.order_id, "insufficient_funds") for leg in legs)
            return
        cell[0] -= amount
        cell[1] += amount
        reason = self.list_refusal(cmd, needs)
        if reason is not None:
            self.unlock(cmd.user, legs[0].side, amount)
            self.out.extend(("rejected", leg.order_id, reason) for leg in legs)
            return
        limit_legs = [n for n, leg in enumerate(legs) if leg.type == "limit"]
        holder = limit_legs[0] if limit_legs else 0
        for n, leg in enumerate(legs):
            hold = needs[n] if n == holder else amount - needs[holder]
            self.out.append(("accepted", leg.order_id))
            if leg.type == "limit":
                self.resting.append(
                    Resting(leg.order_id, leg.user, leg.side, leg.price, leg.qty, hold, 0)
                )
            else:
                self.waiting.append(Waiting(leg, hold, needs[n]))
        self.partner[legs[0].order_id] = legs[1].order_id
        self.partner[legs[1].order_id] = legs[0].order_id

    def list_refusal(self, cmd: PlaceList, needs: list[int]) -> str | None:
        if self.trading != "Enabled":
            return "market_halted"
        first, second = cmd.legs
        if not cmd.list_id or not cmd.user:
            return "invalid_order_list"
        if first.qty != second.qty or first.order_id == second.order_id:
            return "invalid_order_list"
        if first.type == second.type == "limit":
            return "invalid_order_list"
        for leg in cmd.legs:
            if leg.user != cmd.user or leg.quote_qty:
                return "invalid_order_list"
            if leg.type == "limit" and leg.tif != "POST_ONLY":
                return "invalid_order_list"
            if leg.type != "limit" and leg.type not in STOPS:
                return "invalid_order_list"
        for leg, need in zip(cmd.legs, needs, strict=True):
            reason = self.refusal(leg, need)
            if reason is not None:
                return reason
        return None

    def crossing_makers(self, side: str, price: int) -> list[Resting]:
        if side == "buy":
            return [o for o in self.resting if o.side == "sell" and o.price <= price]
        return [o for o in self.resting if o.side == "buy" and o.price >= price]

    # ---- matching -----------------------------------------------------------------------

    def best_maker(self, book: list[Resting], taker_side: str) -> Resting | None:
        best: Resting | None = None
        for order in book:  # arrival order: a strict comparison keeps the earliest
            if order.side == taker_side:
                continue
            if (
                best is None
                or (taker_side == "buy" and order.price < best.price)
                or (taker_side == "sell" and order.price > best.price)
            ):
                best = order
        return best

    def walk(self, book: list[Resting], taker: Taker, live: bool) -> None:
        """Match `taker` against `book`; with `live` False (a FOK trial) record nothing."""
        rules = self.rules
        is_buy = taker.side == "buy"
        while taker.wanted is None or taker.wanted > 0:
            maker = self.best_maker(book, taker.side)
            if maker is None:
                return
            if taker.limit is not None:
                if is_buy and maker.price > taker.limit:
                    return
                if not is_buy and maker.price < taker.limit:
                    return
            lot_cost = maker.price * rules.quote_per_tick_lot
            lots = maker.remaining
            if taker.wanted is not None:
                lots = min(lots, taker.wanted)
            if is_buy:
                affordable = taker.left // lot_cost
                if affordable == 0:
                    return
                lots = min(lots, affordable)
            if maker.user == taker.user and taker.stp != "NONE":
                if taker.stp in ("EXPIRE_MAKER", "EXPIRE_BOTH"):
                    book.remove(maker)
                    if live:
                        if maker.order_id in self.partner:
                            self.legs_done.append(maker.order_id)
                        self.unlock(maker.user, maker.side, maker.locked)
                        self.out.append(
                            (
                                "done",
                                maker.order_id,
                                "expired",
                                "self_trade",
                                maker.filled,
                                maker.locked,
                            )
                        )
                if taker.stp in ("EXPIRE_TAKER", "EXPIRE_BOTH"):
                    taker.self_traded = True
                    return
                continue
            self.fill(maker, taker, lots, live)
            if maker.remaining == 0:
                book.remove(maker)
                if live:
                    self.out.append(
                        ("done", maker.order_id, "filled", "", maker.filled, maker.locked)
                    )

    def fill(self, maker: Resting, taker: Taker, lots: int, live: bool) -> None:
        rules = self.rules
        price = maker.price
        quote = price * lots * rules.quote_per_tick_lot
        base = lots * rules.base_per_lot
        if taker.side == "buy":
            buyer, seller = taker.user, maker.user
            buyer_fee, seller_fee = (
                ceil_fee(base, rules.taker_bps),
                ceil_fee(quote, rules.maker_bps),
            )
            assert taker.limit is None or taker.limit >= price
            improvement = 0 if taker.limit is None else (taker.limit - price) * lots
            improvement *= rules.quote_per_tick_lot
            taker.left -= quote + improvement
            maker.locked -= base
            maker_fee, taker_fee = seller_fee, buyer_fee
        else:
            buyer, seller = maker.user, taker.user
            buyer_fee, seller_fee = (
                ceil_fee(base, rules.maker_bps),
                ceil_fee(quote, rules.taker_bps),
            )
            improvement = 0
            taker.left -= base
            maker.locked -= quote
            maker_fee, taker_fee = buyer_fee, seller_fee
        maker.remaining -= lots
        maker.filled += lots
        taker.filled += lots
        if taker.wanted is not None:
            taker.wanted -= lots
        if not live:
            return
        self.last = price
        if maker.order_id in self.partner:
            self.legs_done.append(maker.order_id)
        buyer_quote = self.cell(buyer, rules.quote)
        buyer_quote[1] -= quote + improvement
        buyer_quote[0] += improvement
        self.cell(buyer, rules.base)[0] += base - buyer_fee
        self.cell(seller, rules.base)[1] -= base
        self.cell(seller, rules.quote)[0] += quote - seller_fee
        self.cell(FEES, rules.base)[0] += buyer_fee
        self.cell(FEES, rules.quote)[0] += seller_fee
        self.out.append(
            ("trade", price, lots, maker.order_id, taker.order_id, maker_fee, taker_fee)
        )
