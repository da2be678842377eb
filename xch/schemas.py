"""Commands into an engine and the events it emits (docs/engine.md states their semantics).

Amounts here are integers: prices in ticks, quantities in lots, money in minor units of the
asset named by the market (see `xch.market.MarketRules`). Decimal strings exist only at the
edges. Events are immutable msgspec structs, cheap to build on the matching hot path and
encodable as JSON or MessagePack; consumers deduplicate by (market, seq).
"""

from enum import IntEnum
from typing import Final, Literal, get_args

import msgspec

# Each closed set of words is a Literal, so that strict mypy checks every producer and
# msgspec refuses any other value when it decodes; the tuples list the same sets for runtime
# checks, and the api's request models use the same Literals.

Side = Literal["buy", "sell"]
BUY: Final = "buy"
SELL: Final = "sell"
SIDES: tuple[Side, ...] = get_args(Side)

# Stop orders wait, hidden, until the last trade price reaches their stop price, then become
# a market order (STOP_LOSS, TAKE_PROFIT) or a limit order (the *_LIMIT types).
StopType = Literal["stop_loss", "stop_loss_limit", "take_profit", "take_profit_limit"]
OrderType = Literal["limit", "market", StopType]
LIMIT: Final = "limit"
MARKET: Final = "market"
STOP_LOSS: Final = "stop_loss"
STOP_LOSS_LIMIT: Final = "stop_loss_limit"
TAKE_PROFIT: Final = "take_profit"
TAKE_PROFIT_LIMIT: Final = "take_profit_limit"
STOP_TYPES: tuple[StopType, ...] = get_args(StopType)
STOP_LIMIT_TYPES: tuple[StopType, ...] = (STOP_LOSS_LIMIT, TAKE_PROFIT_LIMIT)
ORDER_TYPES: tuple[OrderType, ...] = get_args(OrderType)

TimeInForce = Literal["GTC", "IOC", "FOK", "POST_ONLY"]
GTC: Final = "GTC"
IOC: Final = "IOC"
FOK: Final = "FOK"
POST_ONLY: Final = "POST_ONLY"
TIMES_IN_FORCE: tuple[TimeInForce, ...] = get_args(TimeInForce)

StpMode = Literal["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]
"""Self-trade prevention: what happens when an order would trade with its own user's."""
STP_NONE: Final = "NONE"
STP_EXPIRE_TAKER: Final = "EXPIRE_TAKER"
STP_EXPIRE_MAKER: Final = "EXPIRE_MAKER"
STP_EXPIRE_BOTH: Final = "EXPIRE_BOTH"
STP_MODES: tuple[StpMode, ...] = get_args(StpMode)
DEFAULT_STP: Final = STP_EXPIRE_MAKER

FILLED: Final = "filled"
CANCELED: Final = "canceled"
EXPIRED: Final = "expired"

# Why an order ended as expired or canceled (OrderDone.reason).
REASON_NONE: Final = ""
REASON_TIME_IN_FORCE: Final = "time_in_force"  # IOC or market remainder with no more liquidity
REASON_SELF_TRADE: Final = "self_trade"  # self-trade prevention expired it
REASON_USER: Final = "user"  # cancel or cancel_all
REASON_MARKET_CLOSED: Final = "market_closed"  # settle-and-close
REASON_OCO: Final = "oco"  # the other order of its OCO list filled or triggered
REASON_POST_ONLY: Final = "post_only_would_cross"  # a triggered post-only stop-limit would take
REASON_FOK: Final = "fok_unfillable"  # a triggered fill-or-kill stop-limit could not fill at once


def triggers_on_rise(order_type: OrderType, side: Side) -> bool:
    """Whether a stop order triggers when the last price rises to its stop price (a buy
    stop-loss, a sell take-profit) rather than when it falls to it (the other two)."""
    is_loss = order_type in (STOP_LOSS, STOP_LOSS_LIMIT)
    return is_loss == (side == BUY)


class ResultCode(IntEnum):
    """Why a command was refused. Ranges: 1xxx request, 2xxx funds, 3xxx book and market state."""

    INVALID_COMMAND = 1000
    INVALID_PRICE = 1001
    INVALID_QTY = 1002
    BELOW_MIN_NOTIONAL = 1003
    DUPLICATE_ORDER = 1004
    INVALID_STOP_PRICE = 1005
    INVALID_ORDER_LIST = 1006
    INSUFFICIENT_FUNDS = 2001
    POST_ONLY_WOULD_CROSS = 3001
    FOK_UNFILLABLE = 3002
    UNKNOWN_ORDER = 3003
    NOT_OWNER = 3004
    MARKET_HALTED = 3005
    STOP_WOULD_TRIGGER = 3006

    @property
    def reason(self) -> str:
        """The reason string published in events and API errors, e.g. 'insufficient_funds'."""
        return self.name.lower()


class _Record(msgspec.Struct, frozen=True, gc=False, tag_field="kind"):
    """Commands and events: immutable, no GC tracking, tagged by `kind` when encoded."""


# ---- commands ---------------------------------------------------------------------------


class Place(_Record, frozen=True, tag="place"):
    """Place an order whose funds are already locked (`locked` minor units of the spent asset).

    A limit order has `price` (ticks) and `qty` (lots). A market order has `qty`, or, for a
    buy only, `quote_qty` (quote minor units to spend); its `price` is 0. A stop order (one of
    `STOP_TYPES`) has `stop_price` (ticks) and otherwise the fields of the order it becomes:
    a stop-limit those of a limit order, a stop-market those of a market order.
    """

    order_id: str
    user: str
    side: Side
    type: OrderType
    price: int
    qty: int
    quote_qty: int
    tif: TimeInForce
    stp: StpMode
    locked: int
    client_order_id: str = ""
    """The trader's own id for the order (the api keeps it unique per user); echoed in
    `OrderAccepted` so stored orders and private streams carry it."""
    stop_price: int = 0


class PlaceList(_Record, frozen=True, tag="place_list"):
    """Place an OCO list: two orders of one user, side and quantity, where the first to fill
    (even partly) or trigger expires the other. Each leg is a post-only limit order or a stop
    order; at most one is a limit. The list locks once, `locked` = the larger of what its
    legs would lock alone (their own `locked` fields are 0)."""

    list_id: str
    user: str
    legs: list[Place]
    locked: int
    client_list_id: str = ""


class Cancel(_Record, frozen=True, tag="cancel"):
    order_id: str
    user: str


class CancelAll(_Record, frozen=True, tag="cancel_all"):
    user: str


class SetTrading(_Record, frozen=True, tag="set_trading"):
    """Halt (CancelOnly, Halted) or resume (Enabled) a market; the book is kept."""

    trading: str


class Close(_Record, frozen=True, tag="close"):
    """Settle and close a market being deleted: cancel every open order (unlocking its funds)
    and halt; the `market_state` event with reason `closed` reports it done."""


Command = Place | PlaceList | Cancel | CancelAll | SetTrading | Close


# ---- events -----------------------------------------------------------------------------


class OrderAccepted(_Record, frozen=True, tag="order_accepted"):
    market: str
    seq: int
    input_id: str
    ts: int
    order_id: str
    user: str
    side: Side
    type: OrderType
    tif: TimeInForce
    stp: StpMode
    price: int
    qty: int
    quote_qty: int
    locked: int
    client_order_id: str = ""
    stop_price: int = 0
    list_id: str = ""
    """The OCO list the order belongs to, if any; its legs' `locked` add up to the list's."""
    client_list_id: str = ""
    """The trader's own id for that list (`PlaceList.client_list_id`)."""


class OrderTriggered(_Record, frozen=True, tag="order_triggered"):
    """A stop order's stop price was reached by the last trade price (`last_price` ticks): it
    now executes as the limit or market order it becomes, within the same input."""

    market: str
    seq: int
    input_id: str
    ts: int
    order_id: str
    user: str
    side: Side
    stop_price: int
    last_price: int


class OrderRejected(_Record, frozen=True, tag="order_rejected"):
    """A refused command. `unlocked` gives back what was locked for it (a refused place). A
    refused OCO list is refused leg by leg, `op` "place_list"; the first leg's refusal gives
    back the list's lock, the second's nothing."""

    market: str
    seq: int
    input_id: str
    ts: int
    order_id: str
    user: str
    side: str
    op: str
    code: int
    reason: str
    unlocked: int


class Trade(_Record, frozen=True, tag="trade"):
    """One fill. The buyer pays `quote_qty` and receives `qty` lots less the buyer's fee (in
    base minor units); the seller pays the lots and receives `quote_qty` less the seller's fee
    (in quote minor units). `taker_side` says which of the two is the taker. A limit buy
    taker filled below its limit gets the difference back at once: `taker_unlocked` quote
    minor units move from its locked to its free balance."""

    market: str
    seq: int
    input_id: str
    ts: int
    trade_id: int
    price: int
    qty: int
    quote_qty: int
    maker_order: str
    maker_user: str
    taker_order: str
    taker_user: str
    taker_side: Side
    maker_fee: int
    taker_fee: int
    taker_unlocked: int


class OrderDone(_Record, frozen=True, tag="order_done"):
    """An order left the engine: `unlocked` minor units of its locked asset go back to free."""

    market: str
    seq: int
    input_id: str
    ts: int
    order_id: str
    user: str
    side: Side
    status: str
    reason: str
    filled_qty: int
    unlocked: int


class Depth(_Record, frozen=True, tag="depth"):
    """Levels changed since the previous depth event, as [price ticks, total lots]; a total of
    0 removes the level. Covers update ids first_update_id..last_update_id (event seqs)."""

    market: str
    seq: int
    input_id: str
    ts: int
    first_update_id: int
    last_update_id: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


class MarketState(_Record, frozen=True, tag="market_state"):
    """The market's trading state changed; `reason` is "closed" once a `Close` has settled."""

    market: str
    seq: int
    input_id: str
    ts: int
    trading: str
    reason: str


class Funds(_Record, frozen=True, tag="funds"):
    """A deposit (positive `amount`) or withdrawal (negative), in minor units of `asset`."""

    market: str
    seq: int
    input_id: str
    ts: int
    user: str
    asset: str
    amount: int


Event = (
    OrderAccepted | OrderRejected | OrderTriggered | Trade | OrderDone | Depth | MarketState | Funds
)

FEE_ACCOUNT: Final = "@fees"
"""The account that receives every fee; '@' keeps it out of the user namespace."""
