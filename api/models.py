"""Request and response bodies. Amounts are decimal strings; the patterns here only say
what a decimal looks like, the market's tick and lot grid is checked per request."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from xch import schemas
from xch.market import ASSET_PATTERN, NAME_PATTERN

DECIMAL = r"^[0-9]{1,30}(\.[0-9]{1,18})?$"
Amount = Annotated[str, Field(pattern=DECIMAL, max_length=49, examples=["30000.01"])]
MarketName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63, examples=["btc-usd"])]
Asset = Annotated[str, Field(pattern=ASSET_PATTERN, max_length=10, examples=["USD"])]
ClientOrderId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,36}$")]
Side = schemas.Side
OrderType = schemas.OrderType
ListLegType = Literal["limit_maker", schemas.StopType]
TimeInForce = schemas.TimeInForce
SelfTrade = schemas.StpMode
Scope = Literal["read", "trade", "admin"]
# Text that is stored (PostgreSQL text cannot hold NUL) or logged: no control characters.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorOut(BaseModel):
    code: str
    message: str


# ---- accounts ---------------------------------------------------------------------------


class Credentials(In):
    email: str = Field(
        pattern=r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,189}$", max_length=254
    )
    password: str = Field(min_length=8, max_length=128)


class RefreshIn(In):
    refresh_token: str = Field(min_length=1, max_length=2048)


class TokensOut(BaseModel):
    user_id: str
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class ApiKeyIn(In):
    label: str = Field(default="", max_length=64, pattern=PRINTABLE)
    scopes: list[Scope] = Field(min_length=1, max_length=3)


class ApiKeyOut(BaseModel):
    id: int
    key: str
    label: str
    scopes: list[str]
    created_at: int
    revoked: bool


class ApiKeyCreated(ApiKeyOut):
    secret: str
    """Shown once: it signs requests and cannot be read back through the API."""


# ---- funds ------------------------------------------------------------------------------


class BalanceOut(BaseModel):
    asset: str
    free: str
    locked: str


class FundsIn(In):
    user_id: str = Field(pattern=r"^[0-9]{1,18}$")
    asset: Asset
    amount: Amount
    reference: str = Field(min_length=1, max_length=128, pattern=PRINTABLE)
    """The idempotency key: the payment the movement records (docs/api.md)."""


class FaucetIn(In):
    asset: Asset
    amount: Amount


class FundsOut(BaseModel):
    user_id: str
    asset: str
    free: str


# ---- orders -----------------------------------------------------------------------------


class OrderIn(In):
    market: MarketName
    side: Side
    type: OrderType
    price: Amount | None = None
    quantity: Amount | None = None
    quote_quantity: Amount | None = None
    tif: TimeInForce = "GTC"
    stp: SelfTrade = "EXPIRE_MAKER"
    client_order_id: ClientOrderId | None = None
    stop_price: Amount | None = None
    """For the stop types only: the last trade price that triggers the order."""


class FillOut(BaseModel):
    trade_id: int
    price: str
    quantity: str
    quote_quantity: str
    fee: str
    fee_asset: str
    liquidity: Literal["maker", "taker"]


class OrderOut(BaseModel):
    order_id: str
    client_order_id: str | None = None
    market: str
    side: str
    type: str | None = None
    tif: str | None = None
    stp: str | None = None
    price: str | None = None
    quantity: str | None = None
    quote_quantity: str | None = None
    status: str
    """new, partially_filled, filled, canceled, expired, rejected; `waiting` for a stop
    order not triggered yet; `pending` while the engine has not answered yet (HTTP 202):
    look the order up again later."""
    reason: str | None = None
    filled_quantity: str = "0"
    filled_quote: str = "0"
    created_at: int | None = None
    fills: list[FillOut] = Field(default_factory=list)
    stop_price: str | None = None
    list_id: str | None = None
    """The OCO list the order is a leg of."""
    triggered_at: int | None = None
    """When a stop order's stop price was reached (null while it waits)."""


class CancelOut(BaseModel):
    order_id: str
    market: str
    status: str
    """canceled, or pending when the engine did not answer in time (HTTP 202)."""
    filled_quantity: str | None = None


class OrderListLegIn(In):
    """One leg of an OCO list: `limit_maker` (a post-only limit: `price`) or a stop type
    (`stop_price`, and for the *_limit types `price` and `tif`)."""

    type: ListLegType
    price: Amount | None = None
    stop_price: Amount | None = None
    tif: TimeInForce | None = None
    client_order_id: ClientOrderId | None = None


class OrderListIn(In):
    """An OCO list (one-cancels-the-other), Binance's rules: a sell has `above` limit_maker,
    take_profit or take_profit_limit and `below` stop_loss or stop_loss_limit; a buy has
    `above` stop_loss or stop_loss_limit and `below` limit_maker, take_profit or
    take_profit_limit. Both legs trade `quantity`."""

    market: MarketName
    side: Side
    quantity: Amount
    above: OrderListLegIn
    below: OrderListLegIn
    stp: SelfTrade = "EXPIRE_MAKER"
    client_list_id: ClientOrderId | None = None


class OrderListOut(BaseModel):
    list_id: str
    client_list_id: str | None = None
    market: str
    side: str
    quantity: str | None = None
    status: str
    """open (both legs working), executing (one leg ended, the other works), done; `pending`
    while the engine has not answered yet (HTTP 202)."""
    above: OrderOut
    below: OrderOut


class OrderListCancelOut(BaseModel):
    list_id: str
    market: str
    status: str
    """canceled, or pending when the engine did not answer in time (HTTP 202)."""
    orders: list[CancelOut]
    """What the cancel ended: the leg canceled and, if it still worked, the other."""


class QuoteIn(In):
    market: MarketName
    side: Side
    quantity: Amount | None = None
    quote_quantity: Amount | None = None


class QuoteOut(BaseModel):
    market: str
    side: str
    quantity: str
    quote_quantity: str
    average_price: str | None
    worst_price: str | None
    complete: bool
    """Whether the book as it stands fills the whole amount."""


# ---- market data ------------------------------------------------------------------------


class MarketOut(BaseModel):
    name: str
    base: str
    quote: str
    base_scale: int
    quote_scale: int
    tick_size: str
    lot_size: str
    min_notional: str
    maker_bps: int
    taker_bps: int
    trading: str
    kline_intervals: list[str]


class DepthOut(BaseModel):
    market: str
    last_update_id: int
    bids: list[list[str]]
    asks: list[list[str]]


class TradeOut(BaseModel):
    trade_id: int
    price: str
    quantity: str
    quote_quantity: str
    taker_side: str
    time: int


class TickerOut(BaseModel):
    """`xch.marketdata.Ticker`, field for field (tests/xch/test_contracts.py holds them equal)."""

    market: str
    open_time: int
    close_time: int
    open: str
    high: str
    low: str
    last: str
    volume: str
    quote_volume: str
    count: int
    price_change: str
    price_change_percent: str


class KlineOut(BaseModel):
    """`xch.marketdata.Kline`, field for field (tests/xch/test_contracts.py holds them equal)."""

    open_time: int
    close_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    count: int


class UserFillOut(FillOut):
    market: str
    order_id: str
    time: int
