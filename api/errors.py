"""One mapping from failures to JSON: every error is `{"code": "...", "message": "..."}`.

Routes raise `ApiError`; engine refusals become one through `from_result_code`, whose
ranges follow `xch.schemas.ResultCode` (1xxx request, 2xxx funds, 3xxx book and market).
"""

import logging
from typing import Any

import asyncpg
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.models import ErrorOut
from xch.schemas import ResultCode

log = logging.getLogger("api")

# Codes outside the ranges' defaults.
_STATUS_OF_CODE = {
    ResultCode.UNKNOWN_ORDER: 404,
    ResultCode.NOT_OWNER: 404,  # another user's order is as unknown as a missing one
    ResultCode.MARKET_HALTED: 409,
}
_STATUS_OF_RANGE = {1: 400, 2: 400, 3: 409}

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 413, 422, 429)
}
"""The error answers every native router documents."""


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def from_result_code(code: int) -> ApiError:
    try:
        result = ResultCode(code)
    except ValueError:
        return ApiError(502, "engine_error", f"the engine refused with unknown code {code}")
    status = _STATUS_OF_CODE.get(result, _STATUS_OF_RANGE.get(code // 1000, 400))
    return ApiError(status, result.reason, _MESSAGES.get(result, result.reason.replace("_", " ")))


_MESSAGES = {
    ResultCode.INSUFFICIENT_FUNDS: "free balance does not cover the order",
    ResultCode.MARKET_HALTED: "the market is not accepting orders",
    ResultCode.UNKNOWN_ORDER: "no such open order",
    ResultCode.NOT_OWNER: "no such open order",
    ResultCode.POST_ONLY_WOULD_CROSS: "a post-only order would have traded",
    ResultCode.FOK_UNFILLABLE: "a fill-or-kill order could not fill completely",
    ResultCode.STOP_WOULD_TRIGGER: "the last trade price has already reached the stop price",
    ResultCode.INVALID_STOP_PRICE: "the stop price is missing or invalid",
    ResultCode.INVALID_ORDER_LIST: "the order list's legs do not go together",
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    return "; ".join(parts) or "invalid request"


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", _describe(list(exc.errors())))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, str(exc.detail), headers)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    # An infrastructure fault, not the request's: say so, and that trying later may work.
    log.error("backend unavailable on %s %s: %r", request.method, request.url.path, exc)
    return error_response(
        503, "unavailable", "a backend is unavailable; try again", {"Retry-After": "1"}
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for unavailable in (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        asyncpg.exceptions.PostgresConnectionError,
        asyncpg.exceptions.CannotConnectNowError,
        ConnectionError,
        TimeoutError,
    ):
        app.add_exception_handler(unavailable, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
