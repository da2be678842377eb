"""Commands into an engine and the events it emits (ARCHITECTURE.md section 7).

Amounts here are integers: prices in ticks, quantities in lots, money in minor units of the
asset named by the market (see `xch.market.MarketRules`). Decimal strings exist only at the
edges. Events are immutable msgspec structs, cheap to build on the matching hot path and
encodable as JSON or MessagePack; consumers deduplicate by (market, seq).
"""

from enum import IntEnum

import msgspec

BUY = "buy"
SELL = "sell"
SIDES = (BUY, SELL)

LIMIT = "limit"
MARKET = "market"
ORDER_TYPES = (LIMIT, MARKET)

GTC = "GTC"
IOC = "IOC"
FOK = "FOK"
POST_ONLY = "POST_ONLY"
TIMES_IN_FORCE = (GTC, IOC, FOK, POST_ONLY)

STP_NONE = "NONE"
STP_EXPIRE_TAKER = "EXPIRE_TAKER"
STP_EXPIRE_MAKER = "EXPIRE_MAKER"
STP_EXPIRE_BOTH = "EXPIRE_BOTH"
STP_MODES = (STP_NONE, STP_EXPIRE_TAKER, STP_EXPIRE_MAKER, STP_EXPIRE_BOTH)
DEFAULT_STP = STP_EXPIRE_MAKER

FILLED = "filled"
CANCELED = "canceled"
EXPIRED = "expired"

# Why an order ended as expired or canceled (OrderDone.reason).
REASON_NONE = ""
REASON_TIME_IN_FORCE = "time_in_force"  # IOC or market remainder with no more liquidity
REASON_SELF_TRADE = "self_trade"  # self-trade prevention expired it
REASON_USER = "user"  # cancel or cancel_all
REASON_MARKET_CLOSED = "market_closed"  # settle-and-close


class ResultCode(IntEnum):
    """Why a command was refused. Ranges: 1xxx request, 2xxx funds, 3xxx book and market state."""

    INVALID_COMMAND = 1000
    INVALID_PRICE = 1001
    INVALID_QTY = 1002
    BELOW_MIN_NOTIONAL = 1003
    DUPLICATE_ORDER = 1004
    INSUFFICIENT_FUNDS = 2001
    POST_ONLY_WOULD_CROSS = 3001
    FOK_UNFILLABLE = 3002
    UNKNOWN_ORDER = 3003
    NOT_OWNER = 3004
    MARKET_HALTED = 3005

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
    buy only, `quote_qty` (quote minor units to spend); its `price` is 0.
    """

    order_id: str
    user: str
    side: str
    type: str
    price: int
    qty: int
    quote_qty: int
    tif: str
    stp: str
    locked: int
    client_order_id: str = ""
    """The trader's own id for the order (the api keeps it unique per user); echoed in
    `OrderAccepted` so stored orders and private streams carry it."""


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


Command = Place | Cancel | CancelAll | SetTrading | Close


# ---- events -----------------------------------------------------------------------------


class OrderAccepted(_Record, frozen=True, tag="order_accepted"):
    market: str
    seq: int
    input_id: str
    ts: int
    order_id: str
    user: str
    side: str
    type: str
    tif: str
    stp: str
    price: int
    qty: int
    quote_qty: int
    locked: int
    client_order_id: str = ""


class OrderRejected(_Record, frozen=True, tag="order_rejected"):
    """A refused command. `unlocked` gives back what was locked for it (a refused place)."""

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
    taker_side: str
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
    side: str
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


Event = OrderAccepted | OrderRejected | Trade | OrderDone | Depth | MarketState | Funds

FEE_ACCOUNT = "@fees"
"""The account that receives every fee; '@' keeps it out of the user namespace."""
