"""Binance's error shape, `{"code": -1121, "msg": "Invalid symbol."}`, for every failure under
Binance's paths (/api/v3, /sapi/, ...: `binance_path`), including the native api's own errors
raised by the shared code (registry, rate limits, order placement), which are translated here
once. A path there that nothing serves answers -1020 with 404, so that every Binance client
raises its own error type for it."""

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from api.errors import ApiError

NATIVE_PREFIX = "/api/v1/"
BINANCE_PREFIXES = ("/api/", "/sapi/", "/wapi/", "/fapi/", "/dapi/", "/eapi/", "/papi/")
"""Binance's REST roots (spot, its account API, the derivatives ones clients also reach);
/api/v1 is the native api's."""

UNKNOWN = -1000
DISCONNECTED = -1001
UNAUTHORIZED = -1002
TOO_MANY_REQUESTS = -1003
UNEXPECTED_RESPONSE = -1006
TIMEOUT = -1007
UNSUPPORTED_OPERATION = -1020
INVALID_TIMESTAMP = -1021
INVALID_SIGNATURE = -1022
ILLEGAL_CHARS = -1100
TOO_MANY_PARAMETERS = -1101
NOT_ALL_PARAMS_READ = -1104
MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
UNKNOWN_PARAM = -1103
PARAM_NOT_REQUIRED = -1106
BAD_PRECISION = -1111
INVALID_TIF = -1115
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
INVALID_INTERVAL = -1120
BAD_SYMBOL = -1121
INVALID_PARAMETER = -1130
FILTER_FAILURE = -1013
UNKNOWN_ORDER_COMPOSITION = -1014
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015


class BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None):
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = headers


def bad(code: int, msg: str) -> BinanceError:
    return BinanceError(400, code, msg)


def missing(name: str) -> BinanceError:
    return bad(
        MANDATORY_PARAM_EMPTY_OR_MALFORMED,
        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    )


def illegal(name: str) -> BinanceError:
    return bad(ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}'.")


def invalid_symbol() -> BinanceError:
    return bad(BAD_SYMBOL, "Invalid symbol.")


def backend_timeout(placing: bool) -> BinanceError:
    """The engine did not answer in time (the native api's 202): Binance's -1007."""
    message = "Timeout waiting for response from backend server."
    if placing:
        message += " Send status unknown; execution status unknown."
    return BinanceError(503, TIMEOUT, message)


# The native api's codes (engine reasons and api refusals) as Binance reports them.
_TRANSLATED: dict[str, tuple[int, str]] = {
    "unknown_market": (BAD_SYMBOL, "Invalid symbol."),
    "market_halted": (NEW_ORDER_REJECTED, "Market is closed."),
    "insufficient_funds": (
        NEW_ORDER_REJECTED,
        "Account has insufficient balance for requested action.",
    ),
    "invalid_price": (FILTER_FAILURE, "Filter failure: PRICE_FILTER"),
    "invalid_qty": (FILTER_FAILURE, "Filter failure: LOT_SIZE"),
    "below_min_notional": (FILTER_FAILURE, "Filter failure: NOTIONAL"),
    "amount_too_large": (FILTER_FAILURE, "Filter failure: NOTIONAL"),
    "invalid_command": (NEW_ORDER_REJECTED, "Invalid order."),
    "duplicate_order": (NEW_ORDER_REJECTED, "Duplicate order sent."),
    "post_only_would_cross": (NEW_ORDER_REJECTED, "Order would immediately match and take."),
    "invalid_stop_price": (FILTER_FAILURE, "Filter failure: PRICE_FILTER"),
    "stop_would_trigger": (NEW_ORDER_REJECTED, "Order would trigger immediately."),
    "invalid_order_list": (
        NEW_ORDER_REJECTED,
        "The relationship of the prices for the orders is not correct.",
    ),
    "unknown_order": (CANCEL_REJECTED, "Unknown order sent."),
    "not_owner": (CANCEL_REJECTED, "Unknown order sent."),
    "rate_limited": (
        TOO_MANY_REQUESTS,
        "Too many requests; please use the websocket for live updates.",
    ),
    "unauthorized": (REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action."),
    "forbidden": (REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action."),
    "outcome_unknown": (
        UNEXPECTED_RESPONSE,
        "An unexpected response was received from the message bus. Execution status unknown.",
    ),
}


def translate(error: ApiError) -> BinanceError:
    code, msg = _TRANSLATED.get(error.code, (UNKNOWN, error.message))
    status = error.status
    if status in (401, 403):
        status = 401
    elif status in (404, 409):
        status = 400  # Binance answers every refusal of a well-formed request with 400
    elif status >= 500 and code == UNKNOWN:
        status = 503
    return BinanceError(status, code, msg, error.headers)


def response(error: BinanceError) -> JSONResponse:
    return JSONResponse(
        {"code": error.code, "msg": error.msg}, status_code=error.status, headers=error.headers
    )


Handler = Callable[[Request, Any], Response | Awaitable[Response]]

# What a native handler's status becomes when it answers on Binance's paths.
_BY_STATUS = {
    400: (ILLEGAL_CHARS, "Illegal characters found in a parameter."),
    404: (UNSUPPORTED_OPERATION, "This operation is not supported."),
    405: (UNSUPPORTED_OPERATION, "This operation is not supported."),
    413: (TOO_MANY_PARAMETERS, "The request is too large."),
    422: (ILLEGAL_CHARS, "Illegal characters found in a parameter."),
    429: (TOO_MANY_REQUESTS, "Too many requests."),
    503: (DISCONNECTED, "Internal error; unable to process your request. Please try again."),
}


def binance_path(path: str) -> bool:
    return path.startswith(BINANCE_PREFIXES) and not f"{path}/".startswith(NATIVE_PREFIX)


def install(app: FastAPI) -> None:
    """Wrap every handler the app has: on Binance's paths errors take Binance's shape (native
    handlers still log and pick the status), elsewhere the native handlers answer as before.
    Install after the native handlers."""

    async def call(native: Handler, request: Request, exc: Exception) -> Response:
        answer = native(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    def wrapped(native: Handler) -> Handler:
        async def handle(request: Request, exc: Exception) -> Response:
            if not binance_path(request.url.path):
                return await call(native, request, exc)
            if isinstance(exc, BinanceError):
                return response(exc)
            if isinstance(exc, ApiError):
                return response(translate(exc))
            answer = await call(native, request, exc)
            status = answer.status_code
            code, msg = _BY_STATUS.get(status, (UNKNOWN, "An unknown error occurred."))
            retry = answer.headers.get("retry-after")
            headers = {"Retry-After": retry} if retry else None
            return response(BinanceError(status, code, msg, headers))

        return handle

    async def binance_only(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BinanceError)
        return response(exc)

    for kind, native in list(app.exception_handlers.items()):
        app.add_exception_handler(kind, wrapped(native))
    app.add_exception_handler(BinanceError, binance_only)
