"""The matching engine of one market: validates, matches and emits events; owns no balances.

Funds are locked before a command reaches the engine (the api's lock-and-enqueue script, or
`ledger.reference.Ledger.lock` in replay); the engine only tracks what each order still holds,
and its events say exactly what moves: a `Trade` moves locked funds between the two sides
(plus fees, and the taker's price-improvement unlock), an `OrderDone` or `OrderRejected`
unlocks what the order no longer needs. `ledger.reference.Ledger.apply` is the reference
settlement of those events.

Every command is validated completely before anything changes, so a refused command leaves
no trace but its `OrderRejected` event.
"""

from typing import Final

from engine.book import BookSide, Order
from engine.stops import StopBook, StopOrder, reached
from ledger.locks import lock_amount
from ledger.natives import (
    CANCEL,
    ORDER_ACCEPTED,
    ORDER_DONE,
    ORDER_REJECTED,
    PLACE,
    REASONS,
    STOP_LIMIT_TYPES,
    STOP_TYPES,
    STP_MODES,
    TIMES_IN_FORCE,
    TRADE,
)
from ledger.tickets import Ticket
from xch.market import MarketRules, Trading
from xch.money import BPS
from xch.schemas import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    REASON_FOK,
    REASON_MARKET_CLOSED,
    REASON_NONE,
    REASON_OCO,
    REASON_POST_ONLY,
    REASON_SELF_TRADE,
    REASON_TIME_IN_FORCE,
    REASON_USER,
    SELL,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    STP_NONE,
    Cancel,
    CancelAll,
    Close,
    Command,
    Depth,
    Event,
    Funds,
    MarketState,
    OrderTriggered,
    Place,
    PlaceList,
    ResultCode,
    SetTrading,
    Side,
    StpMode,
    TimeInForce,
)

TRADING_STATES: Final = frozenset(state.value for state in Trading)
ENABLED: Final = Trading.ENABLED.value
RESTING_TIFS: Final = frozenset((GTC, POST_ONLY))
"""Times in force that rest what does not fill (a set: compiled, `in` a tuple is generic)."""


class Engine:
    """The order book of one market and the rules that change it.

    Callers feed commands with `process` and take the emitted events from `out`; after each
    batch they call `flush_depth` to emit the batch's changed price levels.
    """

    def __init__(self, rules: MarketRules) -> None:
        self.rules = rules
        self.market = rules.name
        self.trading: str = rules.trading.value
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        self.orders: dict[str, Order] = {}
        self.by_user: dict[str, dict[str, Order]] = {}
        self.stops = StopBook()
        self.siblings: dict[str, str] = {}
        """Each leg of an open OCO list -> the other leg (both directions)."""
        self.last_price = 0
        """The price of the market's last trade, in ticks; 0 before the first."""
        self._oco_ended: list[str] = []
        """OCO limit legs that traded or expired while matching: their lists end."""
        self.seq = 0
        self.trade_seq = 0
        self.depth_update_id = 0
        self.dirty_bids: set[int] = set()
        self.dirty_asks: set[int] = set()
        self.out: list[Event] = []
        self._quote_per_tick_lot = rules.quote_per_tick_lot
        self._base_per_lot = rules.base_per_lot
        self._maker_bps = rules.maker_bps
        self._taker_bps = rules.taker_bps
        self._min_notional = rules.min_notional

    # ---- dispatch -----------------------------------------------------------------------

    def process(self, command: Command, input_id: str, ts: int) -> None:
        # A cancel by its exact type, before an isinstance that would miss: a miss calls the
        # struct's metaclass.
        if type(command) is CANCEL:
            self.cancel(command, input_id, ts)
        elif isinstance(command, PLACE):
            self.place(command, input_id, ts)
        elif isinstance(command, PlaceList):
            self.place_list(command, command.locked, input_id, ts)
        elif isinstance(command, CancelAll):
            self.cancel_all(command.user, input_id, ts)
        elif isinstance(command, SetTrading):
            self.set_trading(command.trading, input_id, ts)
        elif isinstance(command, Close):
            self.close(input_id, ts)
        else:
            raise TypeError(f"not an engine command: {command!r}")

    def reject(self, command: Command, code: ResultCode, input_id: str, ts: int) -> None:
        """Refuse a command; a refused place gives back everything locked for it."""
        self.refuse(
            getattr(command, "order_id", ""),
            getattr(command, "user", ""),
            getattr(command, "side", ""),
            str(type(command).__struct_config__.tag),
            code,
            getattr(command, "locked", 0),
            input_id,
            ts,
        )

    def refuse(
        self,
        order_id: str,
        user: str,
        side: str,
        op: str,
        code: ResultCode,
        unlocked: int,
        input_id: str,
        ts: int,
    ) -> None:
        self.seq += 1
        self.out.append(
            ORDER_REJECTED(
                self.market,
                self.seq,
                input_id,
                ts,
                order_id,
                user,
                side,
                op,
                int(code),
                REASONS[code],
                unlocked,
            )
        )

    # ---- place --------------------------------------------------------------------------

    def place(self, cmd: Place, input_id: str, ts: int) -> None:
        self.place_locked(cmd, cmd.locked, input_id, ts)

    def place_locked(self, cmd: Place, locked: int, input_id: str, ts: int) -> None:
        """Place `cmd` for which `locked` minor units were locked (its own `locked` ignored)."""
        self.place_ticket(Ticket.of(cmd), locked, input_id, ts)

    def place_ticket(self, cmd: Ticket, locked: int, input_id: str, ts: int) -> None:
        """`place_locked` of a command already read into a `Ticket`."""
        if cmd.type in STOP_TYPES:
            self._place_stop(cmd, locked, input_id, ts)
            return
        code = self.check_place(cmd, locked)
        if code is not None:
            self.refuse(cmd.order_id, cmd.user, cmd.side, "place", code, locked, input_id, ts)
            return
        tif = _effective_tif(cmd)
        self._accept(cmd, tif, locked, None, input_id, ts)
        self._execute(cmd, tif, locked, input_id, ts)
        if self.stops.by_id:
            self._cascade(input_id, ts)

    def _accept(
        self,
        cmd: Ticket,
        tif: TimeInForce,
        locked: int,
        order_list: PlaceList | None,
        input_id: str,
        ts: int,
    ) -> None:
        self.seq += 1
        self.out.append(
            ORDER_ACCEPTED(
                self.market,
                self.seq,
                input_id,
                ts,
                cmd.order_id,
                cmd.user,
                cmd.side,
                cmd.type,
                tif,
                cmd.stp,
                cmd.price,
                cmd.qty,
                cmd.quote_qty,
                locked,
                cmd.client_order_id,
                cmd.stop_price,
                "" if order_list is None else order_list.list_id,
                "" if order_list is None else order_list.client_list_id,
            )
        )

    def _execute(self, cmd: Ticket, tif: TimeInForce, locked: int, input_id: str, ts: int) -> None:
        """Match an accepted limit or market order, then rest it or end it."""
        order_id, user, side, price = cmd.order_id, cmd.user, cmd.side, cmd.price
        is_limit = cmd.type == LIMIT
        if is_limit and not self._crosses(side, price):
            filled, remaining, left, self_traded = 0, cmd.qty, locked, False
        else:
            # A quote amount buys at most one lot per minor unit: a safe bound on lots.
            wanted = cmd.quote_qty or cmd.qty
            filled, remaining, left, self_traded = self._match(
                order_id,
                user,
                side,
                price if is_limit else None,
                wanted,
                locked,
                cmd.stp,
                input_id,
                ts,
            )
        if remaining and not self_traded and tif in RESTING_TIFS:
            self._rest(Order(order_id, user, side, price, remaining, left, filled))
            return
        if cmd.quote_qty:
            done = filled > 0 and not self_traded and self._budget_spent(left)
        else:
            done = remaining == 0
        if done:
            status, reason = FILLED, REASON_NONE
        else:
            status = EXPIRED
            reason = REASON_SELF_TRADE if self_traded else REASON_TIME_IN_FORCE
        self._end(order_id, user, side, status, reason, filled, left, input_id, ts)

    def _end(
        self,
        order_id: str,
        user: str,
        side: Side,
        status: str,
        reason: str,
        filled: int,
        unlocked: int,
        input_id: str,
        ts: int,
    ) -> None:
        self.seq += 1
        self.out.append(
            ORDER_DONE(
                self.market,
                self.seq,
                input_id,
                ts,
                order_id,
                user,
                side,
                status,
                reason,
                filled,
                unlocked,
            )
        )

    def _budget_spent(self, left: int) -> bool:
        """Whether a quote-amount market buy's budget cannot buy one more lot at the best ask."""
        best = self.asks.best
        return left == 0 or (best is not None and left < best * self._quote_per_tick_lot)

    def check_place(self, cmd: Ticket, locked: int) -> ResultCode | None:
        """Why the limit or market order `cmd` must be refused, or None; changes nothing."""
        code = self._check_basics(cmd)
        if code is not None:
            return code
        if cmd.stop_price:
            return ResultCode.INVALID_STOP_PRICE
        order_type = cmd.type
        if order_type == LIMIT:
            code = self._check_limit(cmd, locked)
        elif order_type == MARKET:
            code = self._check_market(cmd, locked)
        else:
            code = ResultCode.INVALID_COMMAND
        if code is None and cmd.tif == FOK and self._fillable(cmd, locked) < cmd.qty:
            return ResultCode.FOK_UNFILLABLE
        return code

    def _check_basics(self, cmd: Ticket) -> ResultCode | None:
        """What every order must be: for an enabled market, of a side, an STP mode, a new id."""
        if self.trading != ENABLED:
            return ResultCode.MARKET_HALTED
        side = cmd.side
        if (side != BUY and side != SELL) or cmd.stp not in STP_MODES:
            return ResultCode.INVALID_COMMAND
        order_id = cmd.order_id
        if not order_id or not cmd.user:
            return ResultCode.INVALID_COMMAND
        if order_id in self.orders or order_id in self.stops.by_id:
            return ResultCode.DUPLICATE_ORDER
        return None

    def _check_limit(self, cmd: Ticket, locked: int) -> ResultCode | None:
        # Each field read once: compiled, every read of a struct field is a generic getattr.
        tif, price, qty = cmd.tif, cmd.price, cmd.qty
        code = self._limit_terms(tif, cmd.quote_qty, price, qty)
        if code is not None:
            return code
        side = cmd.side
        needed = qty * (price * self._quote_per_tick_lot if side == BUY else self._base_per_lot)
        if locked != needed:
            return _lock_mismatch(locked, needed)
        if tif == POST_ONLY and self._crosses(side, price):
            return ResultCode.POST_ONLY_WOULD_CROSS
        return None

    def _limit_terms(
        self, tif: TimeInForce, quote_qty: int, price: int, qty: int
    ) -> ResultCode | None:
        """The terms of a limit order (or of a stop-limit's limit), its lock aside."""
        if tif not in TIMES_IN_FORCE or quote_qty:
            return ResultCode.INVALID_COMMAND
        if price <= 0:
            return ResultCode.INVALID_PRICE
        if qty <= 0:
            return ResultCode.INVALID_QTY
        if price * qty * self._quote_per_tick_lot < self._min_notional:
            return ResultCode.BELOW_MIN_NOTIONAL
        return None

    def _check_market(self, cmd: Ticket, locked: int) -> ResultCode | None:
        code = self._market_terms(cmd)
        if code is not None or (cmd.side == BUY and not cmd.quote_qty):
            return code  # a market buy by quantity spends at most what its caller locked
        needed = cmd.quote_qty or cmd.qty * self._base_per_lot
        return _lock_mismatch(locked, needed) if locked != needed else None

    def _market_terms(self, cmd: Ticket) -> ResultCode | None:
        """The terms of a market order (or of a stop-market's), its lock aside."""
        if cmd.tif not in (GTC, IOC, FOK) or cmd.price:
            return ResultCode.INVALID_COMMAND
        if cmd.qty < 0 or cmd.quote_qty < 0 or (cmd.qty > 0) == (cmd.quote_qty > 0):
            return ResultCode.INVALID_QTY
        if cmd.quote_qty:
            if cmd.side != BUY or cmd.tif == FOK:
                return ResultCode.INVALID_COMMAND
            if cmd.quote_qty < self._min_notional:
                return ResultCode.BELOW_MIN_NOTIONAL
        return None

    def check_stop(self, cmd: Ticket, locked: int) -> ResultCode | None:
        """Why the stop order `cmd` must be refused, or None; changes nothing."""
        code = self._check_basics(cmd)
        if code is not None:
            return code
        stop_price = cmd.stop_price
        if stop_price <= 0:
            return ResultCode.INVALID_STOP_PRICE
        if cmd.type in STOP_LIMIT_TYPES:
            code = self._limit_terms(cmd.tif, cmd.quote_qty, cmd.price, cmd.qty)
        else:
            code = self._market_terms(cmd)
            at_stop = stop_price * cmd.qty * self._quote_per_tick_lot
            if code is None and cmd.qty and at_stop < self._min_notional:
                code = ResultCode.BELOW_MIN_NOTIONAL
        if code is not None:
            return code
        needed = lock_amount(self.rules, cmd)
        if locked != needed:
            return _lock_mismatch(locked, needed)
        if reached(cmd, self.last_price):
            return ResultCode.STOP_WOULD_TRIGGER
        return None

    def _crosses(self, side: Side, price: int) -> bool:
        if side == BUY:
            return self.asks.best is not None and self.asks.best <= price
        return self.bids.best is not None and self.bids.best >= price

    def _fillable(self, cmd: Ticket, locked: int) -> int:
        """Lots a FOK order would fill now, honoring its limit, budget and self-trade mode."""
        book = self.asks if cmd.side == BUY else self.bids
        limit = cmd.price if cmd.type == LIMIT else None
        budget = locked
        found = 0
        for price in book.prices():
            if limit is not None and book.beyond(price, limit):
                break
            for maker in book.live_orders(price):
                if maker.user == cmd.user and cmd.stp != STP_NONE:
                    if cmd.stp != STP_EXPIRE_MAKER:
                        return found
                    continue
                lots = maker.remaining
                if cmd.side == BUY:
                    lots = min(lots, budget // (price * self._quote_per_tick_lot))
                    budget -= lots * price * self._quote_per_tick_lot
                found += lots
                if found >= cmd.qty:
                    return found
        return found

    # ---- stop orders and OCO lists -------------------------------------------------------

    def _place_stop(self, cmd: Ticket, locked: int, input_id: str, ts: int) -> None:
        code = self.check_stop(cmd, locked)
        if code is not None:
            self.refuse(cmd.order_id, cmd.user, cmd.side, "place", code, locked, input_id, ts)
            return
        self._accept(cmd, _effective_tif(cmd), locked, None, input_id, ts)
        self.stops.add(StopOrder(cmd.place(), locked, locked, self.seq))

    def place_list(self, cmd: PlaceList, locked: int, input_id: str, ts: int) -> None:
        """Place an OCO list for which `locked` minor units were locked (its own ignored)."""
        legs = [Ticket.of(leg) for leg in cmd.legs]
        code = self.check_list(cmd, legs, locked)
        if code is not None:
            refused: list[tuple[str, str]] = [(leg.order_id, leg.side) for leg in legs] or [
                ("", "")
            ]
            for number, (order_id, side) in enumerate(refused):
                unlocked = locked if number == 0 else 0
                self.refuse(order_id, cmd.user, side, "place_list", code, unlocked, input_id, ts)
            return
        needs = [lock_amount(self.rules, leg) for leg in legs]
        # The limit leg (else the first) holds what it needs, the other the rest of the lock.
        holder = next((n for n, leg in enumerate(legs) if leg.type == LIMIT), 0)
        holds = [locked - needs[holder]] * 2
        holds[holder] = needs[holder]
        for leg, hold, need in zip(legs, holds, needs, strict=True):
            self._accept(leg, _effective_tif(leg), hold, cmd, input_id, ts)
            if leg.type == LIMIT:
                self._rest(Order(leg.order_id, leg.user, leg.side, leg.price, leg.qty, hold, 0))
            else:
                self.stops.add(StopOrder(leg.place(), hold, need, self.seq))
        first, second = (leg.order_id for leg in legs)
        self.siblings[first] = second
        self.siblings[second] = first

    def check_list(self, cmd: PlaceList, legs: list[Ticket], locked: int) -> ResultCode | None:
        """Why the OCO list `cmd` (its `legs` read into tickets) must be refused, or None;
        changes nothing."""
        if self.trading != ENABLED:
            return ResultCode.MARKET_HALTED
        if not cmd.list_id or not cmd.user or len(legs) != 2:
            return ResultCode.INVALID_ORDER_LIST
        first, second = legs
        if (
            first.side != second.side
            or first.qty != second.qty
            or first.order_id == second.order_id
            or (first.type == LIMIT and second.type == LIMIT)
        ):
            return ResultCode.INVALID_ORDER_LIST
        for leg in legs:
            if leg.user != cmd.user or leg.quote_qty:
                return ResultCode.INVALID_ORDER_LIST
            if leg.type == LIMIT and leg.tif != POST_ONLY:
                return ResultCode.INVALID_ORDER_LIST
            if leg.type != LIMIT and leg.type not in STOP_TYPES:
                return ResultCode.INVALID_ORDER_LIST
        needs = []
        for leg in legs:
            need = lock_amount(self.rules, leg)
            if leg.type == LIMIT:
                code = self._check_basics(leg) or self._check_limit(leg, need)
            else:
                code = self.check_stop(leg, need)
            if code is not None:
                return code
            needs.append(need)
        needed = max(needs)
        return _lock_mismatch(locked, needed) if locked != needed else None

    def _cascade(self, input_id: str, ts: int) -> None:
        """Settle what the last execution set off: the other legs of OCO limit orders that
        traded (or expired by self-trade prevention) expire, then every stop the last price
        reached triggers, one at a time, the next chosen after each execution (by stop price
        in the direction of the move, then arrival), until none is reached."""
        stops = self.stops
        while True:
            if self._oco_ended:
                self._expire_other_legs(input_id, ts)
            stop = stops.first_reached(self.last_price)
            if stop is None:
                return
            self._trigger(stop, input_id, ts)

    def _expire_other_legs(self, input_id: str, ts: int) -> None:
        for order_id in self._oco_ended:
            other = self.siblings.pop(order_id, None)
            if other is not None:
                del self.siblings[other]
                self._withdraw(other, EXPIRED, REASON_OCO, 0, input_id, ts)
        self._oco_ended.clear()

    def _trigger(self, stop: StopOrder, input_id: str, ts: int) -> None:
        self.stops.remove(stop)
        order = stop.becomes()
        self.seq += 1
        self.out.append(
            OrderTriggered(
                self.market,
                self.seq,
                input_id,
                ts,
                order.order_id,
                order.user,
                order.side,
                stop.stop_price,
                self.last_price,
            )
        )
        other = self.siblings.pop(order.order_id, None)
        if other is not None:
            del self.siblings[other]
            # The legs share one lock: the other gives back all the triggered one won't need.
            self._withdraw(other, EXPIRED, REASON_OCO, stop.locked - stop.need, input_id, ts)
        tif = _effective_tif(order)
        reason = self._cannot_execute(order, tif, stop.need)
        if reason:
            self._end(
                order.order_id, order.user, order.side, EXPIRED, reason, 0, stop.need, input_id, ts
            )
        else:
            self._execute(order, tif, stop.need, input_id, ts)

    def _cannot_execute(self, order: Ticket, tif: TimeInForce, locked: int) -> str:
        """Why a triggered order ends at once (a post-only limit that would take, a
        fill-or-kill that cannot fill), or ""."""
        if tif == POST_ONLY and self._crosses(order.side, order.price):
            return REASON_POST_ONLY
        if tif == FOK and self._fillable(order, locked) < order.qty:
            return REASON_FOK
        return ""

    # ---- matching -----------------------------------------------------------------------

    def _match(
        self,
        order_id: str,
        user: str,
        side: Side,
        limit: int | None,
        wanted: int,
        budget: int,
        stp: StpMode,
        input_id: str,
        ts: int,
    ) -> tuple[int, int, int, bool]:
        """Fill up to `wanted` lots against the other side within `limit` and `budget` (what
        the taker locked). Returns (filled lots, lots not filled, still locked, self-traded)."""
        is_buy = side == BUY
        book = self.asks if is_buy else self.bids
        dirty = self.dirty_asks if is_buy else self.dirty_bids
        levels = book.levels
        per_tick_lot = self._quote_per_tick_lot
        per_lot = self._base_per_lot
        maker_bps = self._maker_bps
        taker_bps = self._taker_bps
        market = self.market
        out = self.out
        orders = self.orders
        by_user = self.by_user
        prevent = stp != STP_NONE
        siblings = self.siblings
        traded_at = 0
        seq = self.seq
        trade_seq = self.trade_seq
        filled = 0
        remaining = wanted
        left = budget
        self_traded = False
        while remaining:
            price = book.best
            if price is None or (limit is not None and book.beyond(price, limit)):
                break
            level = levels[price]
            lot_cost = price * per_tick_lot
            if is_buy:
                affordable = left // lot_cost
                if not affordable:
                    break
                room = remaining if remaining < affordable else affordable
                improvement = 0 if limit is None else (limit - price) * per_tick_lot
            else:
                room = remaining
            dirty.add(price)
            maker = level.oldest
            while maker is not None:
                maker_left = maker.remaining
                if prevent and maker.user == user:
                    if stp != STP_EXPIRE_TAKER:
                        level.remove(maker)
                        level.total -= maker_left
                        maker.remaining = 0
                        self.seq = seq
                        self._done(maker, EXPIRED, REASON_SELF_TRADE, input_id, ts)
                        seq = self.seq
                        if siblings and maker.order_id in siblings:
                            self._oco_ended.append(maker.order_id)
                    if stp != STP_EXPIRE_MAKER:
                        self_traded = True
                        break
                    maker = level.oldest
                    continue
                lots = room if room < maker_left else maker_left
                quote = lots * lot_cost
                base = lots * per_lot
                trade_seq += 1
                seq += 1
                if is_buy:
                    maker_fee = _fee(quote, maker_bps)
                    taker_fee = _fee(base, taker_bps)
                    maker.locked -= base
                    taker_unlocked = improvement * lots
                    left -= quote + taker_unlocked
                else:
                    maker_fee = _fee(base, maker_bps)
                    taker_fee = _fee(quote, taker_bps)
                    maker.locked -= quote
                    taker_unlocked = 0
                    left -= base
                maker_id = maker.order_id
                maker_user = maker.user
                out.append(
                    TRADE(
                        market,
                        seq,
                        input_id,
                        ts,
                        trade_seq,
                        price,
                        lots,
                        quote,
                        maker_id,
                        maker_user,
                        order_id,
                        user,
                        side,
                        maker_fee,
                        taker_fee,
                        taker_unlocked,
                    )
                )
                filled += lots
                remaining -= lots
                room -= lots
                level.total -= lots
                traded_at = price
                if siblings and maker_id in siblings:
                    self._oco_ended.append(maker_id)
                if lots == maker_left:
                    maker.remaining = 0
                    level.remove(maker)
                    del orders[maker_id]
                    user_orders = by_user[maker_user]
                    del user_orders[maker_id]
                    if not user_orders:
                        del by_user[maker_user]
                    seq += 1
                    out.append(
                        ORDER_DONE(
                            market,
                            seq,
                            input_id,
                            ts,
                            maker_id,
                            maker_user,
                            maker.side,
                            FILLED,
                            REASON_NONE,
                            maker.filled + lots,
                            maker.locked,
                        )
                    )
                    maker.locked = 0
                else:
                    maker.remaining = maker_left - lots
                    maker.filled += lots
                if not room:
                    break
                maker = level.oldest
            if not level.live:
                book.remove_level(price)
            if self_traded:
                break
        self.seq = seq
        self.trade_seq = trade_seq
        if traded_at:
            self.last_price = traded_at
        return filled, remaining, left, self_traded

    def _done(self, order: Order, status: str, reason: str, input_id: str, ts: int) -> None:
        """Emit the end of a resting order (already off its level) and forget it."""
        order_id = order.order_id
        del self.orders[order_id]
        user_orders = self.by_user[order.user]
        del user_orders[order_id]
        if not user_orders:
            del self.by_user[order.user]
        self._end(
            order_id,
            order.user,
            order.side,
            status,
            reason,
            order.filled,
            order.locked,
            input_id,
            ts,
        )
        order.locked = 0

    def _rest(self, order: Order) -> None:
        (self.dirty_bids if order.side == BUY else self.dirty_asks).add(order.price)
        self.restore_order(order)

    def restore_order(self, order: Order) -> None:
        """Put a resting order on the book (from a snapshot: in placement order)."""
        (self.bids if order.side == BUY else self.asks).add(order)
        self.orders[order.order_id] = order
        user_orders = self.by_user.get(order.user)
        if user_orders is None:
            self.by_user[order.user] = {order.order_id: order}
        else:
            user_orders[order.order_id] = order

    # ---- cancel, halt -------------------------------------------------------------------

    def cancel(self, cmd: Cancel, input_id: str, ts: int) -> None:
        """Cancel an open or waiting order; canceling a leg of an OCO list cancels both."""
        order_id, user = cmd.order_id, cmd.user
        order = self.orders.get(order_id) or self.stops.get(order_id)
        # Another user's order is refused as an unknown one: a different answer would tell
        # anyone which order ids are live orders.
        if order is None or order.user != user:
            self.refuse(order_id, user, "", "cancel", ResultCode.UNKNOWN_ORDER, 0, input_id, ts)
        else:
            self._cancel(order_id, REASON_USER, input_id, ts)

    def cancel_all(self, user: str, input_id: str, ts: int) -> None:
        """Cancel every open order of `user`, oldest first, then its waiting stops."""
        order_ids = list(self.by_user.get(user, {})) + list(self.stops.by_user.get(user, {}))
        self._cancel_each(order_ids, REASON_USER, input_id, ts)

    def _cancel_each(self, order_ids: list[str], reason: str, input_id: str, ts: int) -> None:
        for order_id in order_ids:
            # A list's other leg may have gone with an earlier one.
            if order_id in self.orders or order_id in self.stops.by_id:
                self._cancel(order_id, reason, input_id, ts)

    def _cancel(self, order_id: str, reason: str, input_id: str, ts: int) -> None:
        other = self.siblings.pop(order_id, None)
        self._withdraw(order_id, CANCELED, reason, 0, input_id, ts)
        if other is not None:
            del self.siblings[other]
            self._withdraw(other, CANCELED, reason, 0, input_id, ts)

    def _withdraw(
        self, order_id: str, status: str, reason: str, extra: int, input_id: str, ts: int
    ) -> None:
        """End an open or waiting order, giving back what it holds plus `extra` (the share of
        its OCO list's lock that the other leg no longer needs; may be negative)."""
        order = self.orders.get(order_id)
        if order is None:
            stop = self.stops.by_id[order_id]
            self.stops.remove(stop)
            unlocked = stop.locked + extra
            self._end(
                order_id, stop.user, stop.order.side, status, reason, 0, unlocked, input_id, ts
            )
            return
        if order.side == BUY:
            self.bids.withdraw(order)
            self.dirty_bids.add(order.price)
        else:
            self.asks.withdraw(order)
            self.dirty_asks.add(order.price)
        order.locked += extra
        self._done(order, status, reason, input_id, ts)

    def set_trading(self, trading: str, input_id: str, ts: int) -> None:
        if trading not in TRADING_STATES:
            self.reject(SetTrading(trading), ResultCode.INVALID_COMMAND, input_id, ts)
            return
        self.trading = trading
        self.seq += 1
        self.out.append(MarketState(self.market, self.seq, input_id, ts, trading, ""))

    def close(self, input_id: str, ts: int) -> None:
        """Cancel every open order, oldest first, then every waiting stop, and halt: the
        market can then be removed."""
        order_ids = list(self.orders) + list(self.stops.by_id)
        self._cancel_each(order_ids, REASON_MARKET_CLOSED, input_id, ts)
        self.trading = Trading.HALTED.value
        self.seq += 1
        self.out.append(MarketState(self.market, self.seq, input_id, ts, self.trading, "closed"))

    # ---- depth --------------------------------------------------------------------------

    def flush_depth(self, input_id: str, ts: int) -> None:
        """Emit one `Depth` event with every level changed since the previous one."""
        if not self.dirty_bids and not self.dirty_asks:
            return
        self.seq += 1
        bids = _levels(self.bids, sorted(self.dirty_bids, reverse=True))
        asks = _levels(self.asks, sorted(self.dirty_asks))
        self.out.append(
            Depth(
                self.market, self.seq, input_id, ts, self.depth_update_id + 1, self.seq, bids, asks
            )
        )
        self.depth_update_id = self.seq
        self.dirty_bids.clear()
        self.dirty_asks.clear()

    def record_funds(self, user: str, asset: str, amount: int, input_id: str, ts: int) -> Funds:
        """Sequence a deposit or withdrawal into this market's events (replay and local tools;
        in the service, funds move through the api)."""
        self.seq += 1
        event = Funds(self.market, self.seq, input_id, ts, user, asset, amount)
        self.out.append(event)
        return event

    def take_events(self) -> list[Event]:
        events, self.out = self.out, []
        return events


def _effective_tif(cmd: Ticket) -> TimeInForce:
    """A market or stop-market order never rests: GTC means IOC for it."""
    tif = cmd.tif
    if tif == GTC:
        order_type = cmd.type
        if order_type != LIMIT and order_type not in STOP_LIMIT_TYPES:
            return IOC
    return tif


def _fee(received: int, bps: int) -> int:
    """`ceil(received * bps / BPS)`. (Not `-(-received * bps // BPS)`: compiled, a product with
    a negative operand leaves the fast path of tagged integers for a `PyLong` multiplication.)"""
    return (received * bps + BPS - 1) // BPS


def _lock_mismatch(locked: int, needed: int) -> ResultCode:
    return ResultCode.INSUFFICIENT_FUNDS if locked < needed else ResultCode.INVALID_COMMAND


def _levels(side: BookSide, prices: list[int]) -> list[tuple[int, int]]:
    levels = side.levels
    return [(price, levels[price].total if price in levels else 0) for price in prices]
