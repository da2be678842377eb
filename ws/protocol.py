"""The client protocol: requests, stream names, responses and errors, all JSON.

A request is `{"method": M, "params": [...], "id": ID}` with M one of SUBSCRIBE, UNSUBSCRIBE,
LIST_SUBSCRIPTIONS, AUTH, PING. It is answered with `{"result": R, "id": ID}` or
`{"error": {"code": C, "msg": TEXT}, "id": ID}`; a bad request never closes the connection.
Stream data arrives as `{"stream": NAME, "data": {...}}`; notices as `{"event": ..., ...}`.
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "AUTH", "PING")
MAX_ID_LENGTH = 64


class ErrorCode(IntEnum):
    MALFORMED = 1
    UNKNOWN_METHOD = 2
    INVALID_PARAMS = 3
    UNKNOWN_STREAM = 4
    UNKNOWN_MARKET = 5
    AUTH_REQUIRED = 6
    AUTH_FAILED = 7
    TOO_MANY_STREAMS = 8
    UNAVAILABLE = 9
    RATE_LIMITED = 10


class ProtocolError(Exception):
    def __init__(self, code: ErrorCode, msg: str, request_id: Any = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    params: Any
    id: Any


@dataclass(frozen=True, slots=True)
class Stream:
    """A stream a connection can subscribe to: public (`market` set) or private (`orders`,
    `balances`). Names are case-insensitive; `name` is the canonical, lower-case form,
    `KIND@MARKET[@OPTION]` (a kind named otherwise subclasses this: ws.streams.kline).
    ws.streams has the kinds."""

    kind: str
    market: str = ""
    interval: str = ""
    """A kline's interval, or "100ms" for depth diffs merged over 100 ms (`depth@M@100ms`)."""

    @property
    def name(self) -> str:
        if not self.market:
            return self.kind
        suffix = f"@{self.interval}" if self.interval else ""
        return f"{self.kind}@{self.market}{suffix}"

    @property
    def private(self) -> bool:
        return not self.market

    @property
    def topic(self) -> str:
        """What the hub fans out by (a public stream's name; ws.binance's streams differ)."""
        return self.name


def parse_request(raw: str | bytes) -> Request:
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(ErrorCode.MALFORMED, "not valid JSON") from exc
    if not isinstance(message, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "a request must be a JSON object")
    request_id = message.get("id")
    if not _valid_id(request_id):
        raise ProtocolError(ErrorCode.MALFORMED, "id must be an integer, a short string or null")
    method = message.get("method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ProtocolError(ErrorCode.UNKNOWN_METHOD, f"unknown method {method!r}", request_id)
    return Request(method.upper(), message.get("params"), request_id)


def _valid_id(value: Any) -> bool:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return True
    return isinstance(value, str) and len(value) <= MAX_ID_LENGTH


def result(request_id: Any, value: Any = None) -> str:
    return orjson.dumps({"result": value, "id": request_id}).decode()


def error(exc: ProtocolError) -> str:
    answer = {"error": {"code": int(exc.code), "msg": exc.msg}, "id": exc.request_id}
    return orjson.dumps(answer).decode()


def data(stream: str, payload: dict[str, Any]) -> str:
    """Encoded once per topic: every subscriber is sent the same text."""
    return orjson.dumps({"stream": stream, "data": payload}).decode()


def notice(event: str, **fields: Any) -> str:
    return orjson.dumps({"event": event, **fields}).decode()
