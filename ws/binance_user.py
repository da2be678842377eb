"""Binance's user-data stream at `/ws/<listenKey>`: `executionReport` for every change of the
user's orders and `listStatus` for their OCO lists, rendered from the engine's events.

An `executionReport` carries the whole order (type, price, quantity, stop price `P`, list
`g`, cumulative amounts), so the publisher keeps every order accepted since this replica
started, until it ends (as many as the books hold); an order accepted before is reported with
what its events carry alone (no type, price or quantity). A stop order is reported `NEW`
and not working (`w` false) when accepted, then `NEW` and working (`w` true, `W` the
trigger time) when the last trade price reaches it, as Binance reports a triggered stop.
A list's `listStatus` follows its legs' reports, with the list's client id from their
`order_accepted`.
"""

import time
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from ws.binance_streams import BinanceStream, symbol_of
from ws.feeds import MarketFeed
from ws.hub import Hub, topic_of
from xch.money import format_minor
from xch.order_lists import list_number
from xch.schemas import (
    BUY,
    CANCELED,
    FILLED,
    LIMIT,
    MARKET,
    POST_ONLY,
    REASON_SELF_TRADE,
    SELL,
    STOP_LOSS,
    TAKE_PROFIT,
    Event,
    OrderAccepted,
    OrderDone,
    OrderTriggered,
    OrderType,
    Side,
    StpMode,
    TimeInForce,
    Trade,
)
from xch.wire import FundsEntry

USER_DATA = "bn_user"
ZERO = "0"


def user_stream(listen_key: str) -> BinanceStream:
    """The user-data stream of a raw connection; its name is the listen key, as Binance's."""
    return BinanceStream(USER_DATA, symbol=listen_key, raw=True)


def ws_api_stream(listen_key: str) -> BinanceStream:
    """The user-data stream of a WebSocket API subscription (ws.ws_api): each event wrapped
    as `{"subscriptionId": 0, "event": EVENT}`, as Binance sends it there."""
    return BinanceStream(USER_DATA, symbol=listen_key, raw=False)


SUBSCRIPTION_ID = 0
"""The id of a WebSocket API connection's user-data subscription (one per connection)."""


def user_topic(user: str) -> str:
    return topic_of(user_stream(""), user)


def ws_api_topic(user: str) -> str:
    return topic_of(ws_api_stream(""), user)


def listening(hub: Hub, user: str) -> bool:
    """Whether the user's user-data stream has subscribers, either way."""
    return hub.has_subscribers(user_topic(user)) or hub.has_subscribers(ws_api_topic(user))


def publish_user_event(hub: Hub, user: str, payload: dict[str, Any]) -> None:
    """One event of the user's user-data stream, to its subscribers either way."""
    raw, wrapped = user_topic(user), ws_api_topic(user)
    if hub.has_subscribers(raw):
        hub.publish(raw, orjson.dumps(payload).decode())
    if hub.has_subscribers(wrapped):
        event = {"subscriptionId": SUBSCRIPTION_ID, "event": payload}
        hub.publish(wrapped, orjson.dumps(event).decode())


def order_number(order_id: str) -> int:
    """Binance's `orderId`: the hex digits of `{market}.{hex}` (docs/binance.md)."""
    return int(order_id.rpartition(".")[2], 16)


def binance_type(order_type: str, tif: str) -> str:
    if order_type == LIMIT:
        return "LIMIT_MAKER" if tif == POST_ONLY else "LIMIT"
    return order_type.upper()


def binance_tif(order_type: str, tif: str) -> str:
    return "GTC" if tif == POST_ONLY or order_type in (MARKET, STOP_LOSS, TAKE_PROFIT) else tif


@dataclass(slots=True)
class Tracked:
    """An order as far as its events tell (accepted, filled so far, on the book since)."""

    accepted: OrderAccepted
    lots: int = 0
    quote: int = 0
    working_since: int | None = None
    filled_reported: bool = False


@dataclass(slots=True)
class ListLegs:
    user: str
    symbol: str
    client_list_id: str
    legs: dict[str, str] = field(default_factory=dict)
    """order id -> client order id, as accepted."""
    done: set[str] = field(default_factory=set)


class UserData:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.orders: dict[str, Tracked] = {}
        self.lists: dict[str, ListLegs] = {}

    def listening(self, user: str) -> bool:
        return listening(self.hub, user)

    def publish(self, user: str, payload: dict[str, Any]) -> None:
        publish_user_event(self.hub, user, payload)

    def balance_update(self, funds: FundsEntry, scale: int | None) -> None:
        """Binance's `balanceUpdate` for a deposit (positive `d`) or withdrawal (negative)."""
        if scale is None or not self.listening(funds.user):
            return
        now = int(time.time() * 1000)
        delta = format_minor(funds.amount, scale)
        payload = {"e": "balanceUpdate", "E": now, "a": funds.asset, "d": delta, "T": funds.ts}
        self.publish(funds.user, payload)

    def batch(self, feed: MarketFeed, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, OrderAccepted):
                self._accepted(feed, event)
            elif isinstance(event, OrderTriggered):
                self._triggered(feed, event)
            elif isinstance(event, Trade):
                self._trade(feed, event, event.maker_order, event.maker_user, taker=False)
                self._trade(feed, event, event.taker_order, event.taker_user, taker=True)
            elif isinstance(event, OrderDone):
                self._done(feed, event)

    # ---- orders -------------------------------------------------------------------------

    def _tracked(self, feed: MarketFeed, order_id: str, user: str, side: Side, ts: int) -> Tracked:
        """The order as tracked; one accepted before this replica started is known by its id,
        user and side only (its type, time in force and STP mode are reported empty)."""
        tracked = self.orders.get(order_id)
        if tracked is None:
            unknown = OrderAccepted(
                market=feed.name, seq=0, input_id="", ts=ts, order_id=order_id, user=user,
                side=side, type=cast(OrderType, ""), tif=cast(TimeInForce, ""),
                stp=cast(StpMode, ""), price=0, qty=0, quote_qty=0, locked=0,
            )  # fmt: skip
            tracked = self.orders[order_id] = Tracked(unknown, working_since=ts)
        return tracked

    def _accepted(self, feed: MarketFeed, event: OrderAccepted) -> None:
        tracked = Tracked(event, working_since=None if event.stop_price else event.ts)
        self.orders[event.order_id] = tracked
        if not self.listening(event.user):
            return
        self.publish(event.user, self._report(feed, tracked, event.ts, "NEW", "NEW"))
        if event.list_id:
            legs = self.lists.setdefault(
                event.list_id, ListLegs(event.user, symbol_of(feed), event.client_list_id)
            )
            legs.legs[event.order_id] = event.client_order_id
            if len(legs.legs) == 2:
                self._list_status(event.list_id, legs, event.ts, done=False)

    def _triggered(self, feed: MarketFeed, event: OrderTriggered) -> None:
        tracked = self._tracked(feed, event.order_id, event.user, event.side, event.ts)
        tracked.working_since = event.ts
        if not self.listening(event.user):
            return
        self.publish(event.user, self._report(feed, tracked, event.ts, "NEW", "NEW"))

    def _trade(self, feed: MarketFeed, trade: Trade, order_id: str, user: str, taker: bool) -> None:
        side = trade.taker_side if taker else (SELL if trade.taker_side == BUY else BUY)
        tracked = self._tracked(feed, order_id, user, side, trade.ts)
        tracked.lots += trade.qty
        tracked.quote += trade.quote_qty
        if not self.listening(user):
            return
        order = tracked.accepted
        filled = bool(order.qty) and tracked.lots >= order.qty
        tracked.filled_reported = filled
        report = self._report(
            feed, tracked, trade.ts, "TRADE", "FILLED" if filled else "PARTIALLY_FILLED"
        )
        render = feed.render
        fee = trade.taker_fee if taker else trade.maker_fee
        report |= {
            "l": render.qty(trade.qty),
            "L": render.price(trade.price),
            "n": render.base(fee) if order.side == BUY else render.quote(fee),
            "N": feed.rules.base if order.side == BUY else feed.rules.quote,
            "t": trade.trade_id,
            "m": not taker,
            "Y": render.quote(trade.quote_qty),
        }
        self.publish(user, report)

    def _done(self, feed: MarketFeed, event: OrderDone) -> None:
        tracked = self._tracked(feed, event.order_id, event.user, event.side, event.ts)
        del self.orders[event.order_id]
        if not self.listening(event.user):
            self.lists.pop(tracked.accepted.list_id, None)
            return
        if event.status == FILLED:
            if not tracked.filled_reported:
                self.publish(event.user, self._report(feed, tracked, event.ts, "TRADE", "FILLED"))
        elif event.status == CANCELED:
            self.publish(event.user, self._report(feed, tracked, event.ts, "CANCELED", "CANCELED"))
        elif event.reason == REASON_SELF_TRADE:
            report = self._report(feed, tracked, event.ts, "TRADE_PREVENTION", "EXPIRED_IN_MATCH")
            self.publish(event.user, report)
        else:
            self.publish(event.user, self._report(feed, tracked, event.ts, "EXPIRED", "EXPIRED"))
        list_id = tracked.accepted.list_id
        legs = self.lists.get(list_id) if list_id else None
        if legs is not None:
            legs.done.add(event.order_id)
            if legs.done.issuperset(legs.legs):
                del self.lists[list_id]
                self._list_status(list_id, legs, event.ts, done=True)

    def _report(
        self, feed: MarketFeed, tracked: Tracked, ts: int, execution: str, status: str
    ) -> dict[str, Any]:
        order, render = tracked.accepted, feed.render
        working = tracked.working_since is not None
        report: dict[str, Any] = {
            "e": "executionReport",
            "E": ts,
            "s": symbol_of(feed),
            "c": order.client_order_id,
            "S": order.side.upper(),
            "o": binance_type(order.type, order.tif),
            "f": binance_tif(order.type, order.tif),
            "q": render.qty(order.qty),
            "p": render.price(order.price),
            "P": render.price(order.stop_price),
            "F": render.qty(0),
            "g": list_number(order.list_id) if order.list_id else -1,
            "C": "",
            "x": execution,
            "X": status,
            "r": "NONE",
            "i": order_number(order.order_id),
            "l": render.qty(0),
            "z": render.qty(tracked.lots),
            "L": render.price(0),
            "n": ZERO,
            "N": None,
            "T": ts,
            "t": -1,
            "I": 0,
            "w": working and status in ("NEW", "PARTIALLY_FILLED"),
            "m": False,
            "M": False,
            "O": order.ts,
            "Z": render.quote(tracked.quote),
            "Y": render.quote(0),
            "Q": render.quote(order.quote_qty),
            "V": order.stp,
        }
        if tracked.working_since is not None:
            report["W"] = tracked.working_since
        return report

    # ---- lists --------------------------------------------------------------------------

    def _list_status(self, list_id: str, legs: ListLegs, ts: int, done: bool) -> None:
        self.publish(
            legs.user,
            {
                "e": "listStatus",
                "E": ts,
                "s": legs.symbol,
                "g": list_number(list_id),
                "c": "OCO",
                "l": "ALL_DONE" if done else "EXEC_STARTED",
                "L": "ALL_DONE" if done else "EXECUTING",
                "r": "NONE",
                "C": legs.client_list_id,
                "T": ts,
                "O": [
                    {"s": legs.symbol, "i": order_number(order_id), "c": client_id}
                    for order_id, client_id in legs.legs.items()
                ],
            },
        )
