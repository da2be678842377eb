"""Commands as JSON objects with decimal strings (the replay tool's input) into engine commands.

`{"op": "place", "id": "o1", "user": "alice", "side": "buy", "type": "limit",
  "price": "100.00", "qty": "1.5", "tif": "GTC", "stp": "EXPIRE_MAKER"}`; market orders have
`qty` or `quote_qty` and no price; stop orders (`"type": "stop_loss"`, `"stop_loss_limit"`,
`"take_profit"`, `"take_profit_limit"`) add `stop_price`. An OCO list:
`{"op": "place_list", "id": "l1", "user": "alice", "legs": [LEG, LEG]}` (and optionally
`client_list_id`), each leg a place without `op` and `user`. Also cancel, cancel_all,
deposit, withdraw, halt, resume.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from xch.market import MarketRules, Trading
from xch.money import AmountError
from xch.schemas import (
    DEFAULT_STP,
    GTC,
    LIMIT,
    MARKET,
    Cancel,
    CancelAll,
    Close,
    OrderType,
    Place,
    PlaceList,
    ResultCode,
    SetTrading,
    Side,
    StpMode,
    TimeInForce,
)


@dataclass(frozen=True, slots=True)
class FundsRequest:
    """A deposit (positive amount) or withdrawal (negative), in minor units of `asset`."""

    user: str
    asset: str
    amount: int


class CommandError(Exception):
    """A command that cannot be understood, with what could be read of it for the refusal."""

    def __init__(
        self,
        code: ResultCode,
        message: str,
        *,
        op: str = "",
        order_id: str = "",
        user: str = "",
        side: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.op = op
        self.order_id = order_id
        self.user = user
        self.side = side


ParsedCommand = Place | PlaceList | Cancel | CancelAll | SetTrading | Close | FundsRequest


def parse_command(raw: Any, rules: MarketRules) -> ParsedCommand:
    if not isinstance(raw, dict):
        raise CommandError(ResultCode.INVALID_COMMAND, "a command must be a JSON object")
    op = raw.get("op")
    parser = _PARSERS.get(op) if isinstance(op, str) else None
    if parser is None:
        raise CommandError(ResultCode.INVALID_COMMAND, f"unknown op {op!r}", op=str(op or ""))
    command: ParsedCommand = parser(raw, rules)
    return command


def _text(raw: dict[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value:
        raise CommandError(
            ResultCode.INVALID_COMMAND,
            f"{key!r} must be a non-empty string",
            op=str(raw.get("op", "")),
            order_id=_loose(raw, "id"),
            user=_loose(raw, "user"),
        )
    return value


def _loose(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key, "")
    return value if isinstance(value, str) else ""


def _amount(raw: dict[str, Any], key: str, convert: Any, code: ResultCode) -> int:
    value = raw.get(key)
    if value is None:
        return 0
    try:
        return int(convert(value))
    except AmountError as exc:
        raise CommandError(
            code,
            f"{key}: {exc}",
            op=str(raw.get("op", "")),
            order_id=_loose(raw, "id"),
            user=_loose(raw, "user"),
            side=_loose(raw, "side"),
        ) from exc


def _place(raw: dict[str, Any], rules: MarketRules) -> Place:
    # The words are passed on unchecked (cast): the engine itself refuses an unknown side,
    # type, time in force or STP mode, with the rejection a replay expects.
    order_type = cast(OrderType, _text(raw, "type", LIMIT))
    if order_type == MARKET and raw.get("price") is not None:
        raise CommandError(
            ResultCode.INVALID_PRICE,
            "a market order has no price",
            op="place",
            order_id=_loose(raw, "id"),
            user=_loose(raw, "user"),
            side=_loose(raw, "side"),
        )
    return Place(
        order_id=_text(raw, "id"),
        user=_text(raw, "user"),
        side=cast(Side, _text(raw, "side")),
        type=order_type,
        price=_amount(raw, "price", rules.price_to_ticks, ResultCode.INVALID_PRICE),
        qty=_amount(raw, "qty", rules.qty_to_lots, ResultCode.INVALID_QTY),
        quote_qty=_amount(raw, "quote_qty", rules.quote_to_minor, ResultCode.INVALID_QTY),
        tif=cast(TimeInForce, _text(raw, "tif", GTC)),
        stp=cast(StpMode, _text(raw, "stp", DEFAULT_STP)),
        locked=0,
        client_order_id=_text(raw, "client_order_id") if "client_order_id" in raw else "",
        stop_price=_amount(raw, "stop_price", rules.price_to_ticks, ResultCode.INVALID_STOP_PRICE),
    )


def _place_list(raw: dict[str, Any], rules: MarketRules) -> PlaceList:
    user = _text(raw, "user")
    legs = raw.get("legs")
    if not isinstance(legs, list) or not all(isinstance(leg, dict) for leg in legs):
        raise CommandError(
            ResultCode.INVALID_ORDER_LIST,
            "'legs' must be a list of orders",
            op="place_list",
            order_id=_loose(raw, "id"),
            user=user,
        )
    return PlaceList(
        list_id=_text(raw, "id"),
        user=user,
        legs=[_place({**leg, "op": "place", "user": user}, rules) for leg in legs],
        locked=0,
        client_list_id=_text(raw, "client_list_id") if "client_list_id" in raw else "",
    )


def _cancel(raw: dict[str, Any], rules: MarketRules) -> Cancel:
    return Cancel(order_id=_text(raw, "id"), user=_text(raw, "user"))


def _cancel_all(raw: dict[str, Any], rules: MarketRules) -> CancelAll:
    return CancelAll(user=_text(raw, "user"))


def _halt(raw: dict[str, Any], rules: MarketRules) -> SetTrading:
    return SetTrading(trading=_text(raw, "trading", Trading.HALTED.value))


def _resume(raw: dict[str, Any], rules: MarketRules) -> SetTrading:
    return SetTrading(trading=Trading.ENABLED.value)


def _close(raw: dict[str, Any], rules: MarketRules) -> Close:
    return Close()


def _funds(raw: dict[str, Any], rules: MarketRules) -> FundsRequest:
    asset = _text(raw, "asset")
    scales = {rules.base: rules.base_scale, rules.quote: rules.quote_scale}
    if asset not in scales:
        raise CommandError(
            ResultCode.INVALID_COMMAND,
            f"{asset!r} is not traded here",
            op=raw["op"],
            user=_loose(raw, "user"),
        )
    convert = rules.base_to_minor if asset == rules.base else rules.quote_to_minor
    amount = _amount(raw, "amount", convert, ResultCode.INVALID_COMMAND)
    if amount <= 0:
        raise CommandError(
            ResultCode.INVALID_COMMAND,
            "amount must be positive",
            op=raw["op"],
            user=_loose(raw, "user"),
        )
    return FundsRequest(_text(raw, "user"), asset, amount if raw["op"] == "deposit" else -amount)


_PARSERS: dict[str, Callable[[dict[str, Any], MarketRules], ParsedCommand]] = {
    "place": _place,
    "place_list": _place_list,
    "cancel": _cancel,
    "cancel_all": _cancel_all,
    "halt": _halt,
    "resume": _resume,
    "close": _close,
    "deposit": _funds,
    "withdraw": _funds,
}
