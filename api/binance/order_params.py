"""Binance's order parameters (`type`, `timeInForce`, `price`, …, or an OCO leg's `aboveType`,
`abovePrice`, …) as the native api's order request, with Binance's refusals."""

from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from api.binance import render
from api.binance.errors import (
    INVALID_ORDER_TYPE,
    INVALID_SIDE,
    INVALID_TIF,
    PARAM_NOT_REQUIRED,
    BinanceError,
    bad,
    illegal,
    missing,
)
from api.binance.params import Params
from api.models import ClientOrderId, OrderIn
from xch.schemas import LIMIT, POST_ONLY, STP_MODES

_SIDES = {"BUY": "buy", "SELL": "sell"}
_TIFS = ("GTC", "IOC", "FOK")
_RESP_TYPES = ("ACK", "RESULT", "FULL")
_LIMIT_KINDS = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
ClientOrderIdCheck: TypeAdapter[str] = TypeAdapter(ClientOrderId)


def _not_required(name: str) -> BinanceError:
    return bad(PARAM_NOT_REQUIRED, f"Parameter '{name}' sent when not required.")


@dataclass(frozen=True, slots=True)
class Order:
    """One order's parameters as sent; `prefix` names them in an OCO list ("above", …)."""

    kind: str
    tif: str | None
    price: str | None
    quantity: str | None
    quote_quantity: str | None
    stop_price: str | None
    prefix: str = ""

    def name(self, field: str) -> str:
        return f"{self.prefix}{field[0].upper()}{field[1:]}" if self.prefix else field

    def native(self) -> tuple[str, str]:
        """(type, tif) of the native order; Binance's refusal of a missing, superfluous or
        invalid parameter for this order type."""
        kind, tif = self.kind, self.tif
        if kind in _LIMIT_KINDS:
            if tif is None:
                raise missing(self.name("timeInForce"))
            if tif not in _TIFS:
                raise bad(INVALID_TIF, "Invalid timeInForce.")
            if self.price is None:
                raise missing(self.name("price"))
        elif kind in ("LIMIT_MAKER", "MARKET", "STOP_LOSS", "TAKE_PROFIT"):
            if kind == "LIMIT_MAKER" and self.price is None:
                raise missing(self.name("price"))
            if kind != "LIMIT_MAKER" and self.price is not None:
                raise _not_required(self.name("price"))
            if kind == "MARKET":
                if tif is not None and tif not in _TIFS:
                    raise bad(INVALID_TIF, "Invalid timeInForce.")
            elif tif is not None:
                raise _not_required(self.name("timeInForce"))
        else:
            raise bad(INVALID_ORDER_TYPE, "Invalid orderType.")
        if kind == "MARKET":
            if (self.quantity is None) == (self.quote_quantity is None):
                raise bad(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but not both.")
        elif self.quantity is None:
            raise missing("quantity")
        elif self.quote_quantity is not None:
            raise _not_required("quoteOrderQty")
        stop = render.STOP_ORDER_TYPES.get(kind)
        if stop is not None and self.stop_price is None:
            raise missing(self.name("stopPrice"))
        if stop is None and self.stop_price is not None:
            raise _not_required(self.name("stopPrice"))
        if kind == "LIMIT_MAKER":
            return LIMIT, POST_ONLY
        return stop or kind.lower(), tif or "GTC"

    def order_in(self, market: str, side: str, stp: str, client_order_id: str) -> OrderIn:
        order_type, tif = self.native()
        names = {
            "price": self.name("price"),
            "stop_price": self.name("stopPrice"),
            "quote_quantity": "quoteOrderQty",
            "client_order_id": self.name("clientOrderId") if self.prefix else "newClientOrderId",
        }
        try:
            return OrderIn.model_validate(
                {
                    "market": market,
                    "side": side,
                    "type": order_type,
                    "price": self.price,
                    "quantity": self.quantity,
                    "quote_quantity": self.quote_quantity,
                    "stop_price": self.stop_price,
                    "tif": tif,
                    "stp": stp,
                    "client_order_id": client_order_id,
                }
            )
        except ValidationError as error:
            where = next((str(e["loc"][0]) for e in error.errors() if e.get("loc")), "parameter")
            raise illegal(names.get(where, where)) from error


def refuse_unsupported(params: Params, *names: str) -> None:
    for name in names:
        if params.text(name) is not None:
            raise _not_required(name)


def side_of(params: Params) -> str:
    side = _SIDES.get(params.required("side"))
    if side is None:
        raise bad(INVALID_SIDE, "Invalid side.")
    return side


def stp_of(params: Params) -> str:
    stp = params.text("selfTradePreventionMode") or "EXPIRE_MAKER"
    if stp not in STP_MODES:
        raise illegal("selfTradePreventionMode")
    return stp


def respond_type(params: Params, default: str) -> str:
    respond = params.text("newOrderRespType") or default
    if respond not in _RESP_TYPES:
        raise illegal("newOrderRespType")
    return respond
