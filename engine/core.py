"""The matching engine of one market: validates, matches and emits events; owns no balances.

Funds are locked before a command reaches the engine (the api's lock-and-enqueue script, or
`engine.ledger.Ledger.lock` in replay); the engine only tracks what each order still holds,
and its events say exactly what moves: a `Trade` moves locked funds between the two sides
(plus fees, and the taker's price-improvement unlock), an `OrderDone` or `OrderRejected`
unlocks what the order no longer needs. `engine.ledger.Ledger.apply` is the reference
settlement of those events.

Every command is validated completely before anything changes, so a refused command leaves
no trace but its `OrderRejected` event.
"""

from engine.book import BookSide, Order
from xch.market import MarketRules, Trading
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
    REASON_MARKET_CLOSED,
    REASON_NONE,
    REASON_SELF_TRADE,
    REASON_TIME_IN_FORCE,
    REASON_USER,
    SELL,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    STP_MODES,
    STP_NONE,
    TIMES_IN_FORCE,
    Cancel,
    CancelAll,
    Close,
    Command,
    Depth,
    Event,
    Funds,
    MarketState,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    Place,
    ResultCode,
    SetTrading,
    Trade,
)

TRADING_STATES = frozenset(state.value for state in Trading)
ENABLED = Trading.ENABLED.value
BPS = 10_000


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
        if isinstance(command, Place):
            self.place(command, input_id, ts)
        elif isinstance(command, Cancel):
            self.cancel(command, input_id, ts)
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
            OrderRejected(
                self.market,
                self.seq,
                input_id,
                ts,
                order_id,
                user,
                side,
                op,
                int(code),
                code.reason,
                unlocked,
            )
        )

    # ---- place --------------------------------------------------------------------------

    def place(self, cmd: Place, input_id: str, ts: int) -> None:
        self.place_locked(cmd, cmd.locked, input_id, ts)

    def place_locked(self, cmd: Place, locked: int, input_id: str, ts: int) -> None:
        """Place `cmd` for which `locked` minor units were locked (its own `locked` ignored)."""
        code = self.check_place(cmd, locked)
        if code is not None:
            self.refuse(cmd.order_id, cmd.user, cmd.side, "place", code, locked, input_id, ts)
            return
        market = self.market
        order_id, user, side, price = cmd.order_id, cmd.user, cmd.side, cmd.price
        is_limit = cmd.type == LIMIT
        tif = cmd.tif if is_limit or cmd.tif != GTC else IOC
        self.seq += 1
        self.out.append(
            OrderAccepted(
                market,
                self.seq,
                input_id,
                ts,
                order_id,
                user,
                side,
                cmd.type,
                tif,
                cmd.stp,
                price,
                cmd.qty,
                cmd.quote_qty,
                locked,
                cmd.client_order_id,
            )
        )
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
        if remaining and not self_traded and tif in (GTC, POST_ONLY):
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
        self.seq += 1
        self.out.append(
            OrderDone(
                market, self.seq, input_id, ts, order_id, user, side, status, reason, filled, left
            )
        )

    def _budget_spent(self, left: int) -> bool:
        """Whether a quote-amount market buy's budget cannot buy one more lot at the best ask."""
        best = self.asks.best
        return left == 0 or (best is not None and left < best * self._quote_per_tick_lot)

    def check_place(self, cmd: Place, locked: int) -> ResultCode | None:
        """Why `cmd` must be refused, or None; changes nothing."""
        if self.trading != ENABLED:
            return ResultCode.MARKET_HALTED
        side = cmd.side
        if (side != BUY and side != SELL) or cmd.stp not in STP_MODES:
            return ResultCode.INVALID_COMMAND
        if not cmd.order_id or not cmd.user:
            return ResultCode.INVALID_COMMAND
        if cmd.order_id in self.orders:
            return ResultCode.DUPLICATE_ORDER
        if cmd.type == LIMIT:
            code = self._check_limit(cmd, locked)
        elif cmd.type == MARKET:
            code = self._check_market(cmd, locked)
        else:
            code = ResultCode.INVALID_COMMAND
        if code is None and cmd.tif == FOK and self._fillable(cmd, locked) < cmd.qty:
            return ResultCode.FOK_UNFILLABLE
        return code

    def _check_limit(self, cmd: Place, locked: int) -> ResultCode | None:
        tif, price, qty = cmd.tif, cmd.price, cmd.qty
        if tif not in TIMES_IN_FORCE or cmd.quote_qty:
            return ResultCode.INVALID_COMMAND
        if price <= 0:
            return ResultCode.INVALID_PRICE
        if qty <= 0:
            return ResultCode.INVALID_QTY
        notional = price * qty * self._quote_per_tick_lot
        if notional < self._min_notional:
            return ResultCode.BELOW_MIN_NOTIONAL
        needed = notional if cmd.side == BUY else qty * self._base_per_lot
        if locked != needed:
            return ResultCode.INSUFFICIENT_FUNDS if locked < needed else ResultCode.INVALID_COMMAND
        if tif == POST_ONLY and self._crosses(cmd.side, price):
            return ResultCode.POST_ONLY_WOULD_CROSS
        return None

    def _check_market(self, cmd: Place, locked: int) -> ResultCode | None:
        if cmd.tif not in (GTC, IOC, FOK) or cmd.price:
            return ResultCode.INVALID_COMMAND
        if cmd.qty < 0 or cmd.quote_qty < 0 or (cmd.qty > 0) == (cmd.quote_qty > 0):
            return ResultCode.INVALID_QTY
        if cmd.quote_qty:
            if cmd.side != BUY or cmd.tif == FOK:
                return ResultCode.INVALID_COMMAND
            if cmd.quote_qty < self._min_notional:
                return ResultCode.BELOW_MIN_NOTIONAL
            needed = cmd.quote_qty
        elif cmd.side == SELL:
            needed = cmd.qty * self._base_per_lot
        else:
            return None  # a market buy by quantity spends at most what its caller locked
        if locked != needed:
            return ResultCode.INSUFFICIENT_FUNDS if locked < needed else ResultCode.INVALID_COMMAND
        return None

    def _crosses(self, side: str, price: int) -> bool:
        if side == BUY:
            return self.asks.best is not None and self.asks.best <= price
        return self.bids.best is not None and self.bids.best >= price

    def _fillable(self, cmd: Place, locked: int) -> int:
        """Lots a FOK order would fill now, honoring its limit, budget and self-trade mode."""
        book = self.asks if cmd.side == BUY else self.bids
        limit = cmd.price if cmd.type == LIMIT else None
        budget = locked
        found = 0
        for price in book.prices():
            if limit is not None and (price - limit) * book.sign > 0:
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

    # ---- matching -----------------------------------------------------------------------

    def _match(
        self,
        order_id: str,
        user: str,
        side: str,
        limit: int | None,
        wanted: int,
        budget: int,
        stp: str,
        input_id: str,
        ts: int,
    ) -> tuple[int, int, int, bool]:
        """Fill up to `wanted` lots against the other side within `limit` and `budget` (what
        the taker locked). Returns (filled lots, lots not filled, still locked, self-traded)."""
        is_buy = side == BUY
        book = self.asks if is_buy else self.bids
        dirty = self.dirty_asks if is_buy else self.dirty_bids
        levels = book.levels
        sign = book.sign
        per_tick_lot = self._quote_per_tick_lot
        per_lot = self._base_per_lot
        maker_bps = self._maker_bps
        taker_bps = self._taker_bps
        market = self.market
        append = self.out.append
        orders = self.orders
        by_user = self.by_user
        prevent = stp != STP_NONE
        seq = self.seq
        trade_seq = self.trade_seq
        filled = 0
        remaining = wanted
        left = budget
        self_traded = False
        while remaining:
            price = book.best
            if price is None or (limit is not None and (price - limit) * sign > 0):
                break
            level = levels[price]
            queue = level.orders
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
            while queue:
                maker = queue[0]
                maker_left = maker.remaining
                if not maker_left:
                    queue.popleft()
                    continue
                if prevent and maker.user == user:
                    if stp != STP_EXPIRE_TAKER:
                        queue.popleft()
                        level.live -= 1
                        level.total -= maker_left
                        maker.remaining = 0
                        self.seq = seq
                        self._done(maker, EXPIRED, REASON_SELF_TRADE, input_id, ts)
                        seq = self.seq
                    if stp != STP_EXPIRE_MAKER:
                        self_traded = True
                        break
                    continue
                lots = room if room < maker_left else maker_left
                quote = lots * lot_cost
                base = lots * per_lot
                trade_seq += 1
                seq += 1
                if is_buy:
                    maker_fee = -(-quote * maker_bps // BPS)
                    taker_fee = -(-base * taker_bps // BPS)
                    maker.locked -= base
                    taker_unlocked = improvement * lots
                    left -= quote + taker_unlocked
                else:
                    maker_fee = -(-base * maker_bps // BPS)
                    taker_fee = -(-quote * taker_bps // BPS)
                    maker.locked -= quote
                    taker_unlocked = 0
                    left -= base
                maker_id = maker.order_id
                maker_user = maker.user
                append(
                    Trade(
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
                if lots == maker_left:
                    maker.remaining = 0
                    queue.popleft()
                    level.live -= 1
                    del orders[maker_id]
                    user_orders = by_user[maker_user]
                    del user_orders[maker_id]
                    if not user_orders:
                        del by_user[maker_user]
                    seq += 1
                    append(
                        OrderDone(
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
            if not level.live:
                book.remove_level(price)
            if self_traded:
                break
        self.seq = seq
        self.trade_seq = trade_seq
        return filled, remaining, left, self_traded

    def _done(self, order: Order, status: str, reason: str, input_id: str, ts: int) -> None:
        """Emit the end of a resting order (already off its level) and forget it."""
        order_id = order.order_id
        del self.orders[order_id]
        user_orders = self.by_user[order.user]
        del user_orders[order_id]
        if not user_orders:
            del self.by_user[order.user]
        self.seq += 1
        self.out.append(
            OrderDone(
                self.market,
                self.seq,
                input_id,
                ts,
                order_id,
                order.user,
                order.side,
                status,
                reason,
                order.filled,
                order.locked,
            )
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
        order = self.orders.get(cmd.order_id)
        if order is None:
            self.reject(cmd, ResultCode.UNKNOWN_ORDER, input_id, ts)
        elif order.user != cmd.user:
            self.reject(cmd, ResultCode.NOT_OWNER, input_id, ts)
        else:
            self._cancel(order, REASON_USER, input_id, ts)

    def cancel_all(self, user: str, input_id: str, ts: int) -> None:
        """Cancel every open order of `user`, oldest first."""
        for order in list(self.by_user.get(user, {}).values()):
            self._cancel(order, REASON_USER, input_id, ts)

    def _cancel(self, order: Order, reason: str, input_id: str, ts: int) -> None:
        if order.side == BUY:
            self.bids.withdraw(order)
            self.dirty_bids.add(order.price)
        else:
            self.asks.withdraw(order)
            self.dirty_asks.add(order.price)
        self._done(order, CANCELED, reason, input_id, ts)

    def set_trading(self, trading: str, input_id: str, ts: int) -> None:
        if trading not in TRADING_STATES:
            self.reject(SetTrading(trading), ResultCode.INVALID_COMMAND, input_id, ts)
            return
        self.trading = trading
        self.seq += 1
        self.out.append(MarketState(self.market, self.seq, input_id, ts, trading, ""))

    def close(self, input_id: str, ts: int) -> None:
        """Cancel every open order, oldest first, and halt: the market can then be removed."""
        for order in list(self.orders.values()):
            self._cancel(order, REASON_MARKET_CLOSED, input_id, ts)
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


def _levels(side: BookSide, prices: list[int]) -> list[tuple[int, int]]:
    levels = side.levels
    return [(price, levels[price].total if price in levels else 0) for price in prices]
