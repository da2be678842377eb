"""Request parameters as Binance sends them (query string and/or form body, query winning),
and signed requests: `X-MBX-APIKEY`, `timestamp`, `recvWindow` and the hex HMAC-SHA256
`signature` over the query string concatenated with the body, exactly as sent."""

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from api import deps
from api.binance.errors import (
    BAD_API_KEY_FMT,
    INVALID_SIGNATURE,
    INVALID_TIMESTAMP,
    NOT_ALL_PARAMS_READ,
    REJECTED_MBX_KEY,
    TOO_MANY_PARAMETERS,
    BinanceError,
    bad,
    illegal,
    missing,
    translate,
)
from api.binance.symbols import by_symbol, market_of_symbol
from api.deps import Principal
from api.digits import ascii_digits
from api.errors import ApiError
from api.state import AppState
from api.users import ApiKeyRow
from xch import keys
from xch.market import Market, MarketRules

MAX_RECV_WINDOW = 60_000
DEFAULT_RECV_WINDOW = 5_000
FUTURE_TOLERANCE_MS = 1_000
"""How far ahead of the server's clock a timestamp may be (Binance: 1 s)."""
_SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True, slots=True)
class Params:
    values: dict[str, str]

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if value else None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise missing(name)
        return value

    def integer(self, name: str, default: int | None = None, high: int = 2**63 - 1) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        if not ascii_digits(value, 19) or int(value) > high:
            raise illegal(name)
        return int(value)

    def only(self, *allowed: str) -> None:
        """Binance refuses parameters an endpoint does not read."""
        sent = set(self.values)
        read = sent & (set(allowed) | {"timestamp", "recvWindow", "signature"})
        if read != sent:
            raise bad(
                NOT_ALL_PARAMS_READ,
                f"Not all sent parameters were read; read '{len(read)}' parameter(s) but was "
                f"sent '{len(sent)}'.",
            )


def _pairs(raw: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(raw, keep_blank_values=True, strict_parsing=False)
    except ValueError as error:
        raise bad(TOO_MANY_PARAMETERS, "Malformed parameters.") from error


def _query(request: Request) -> str:
    """The query string as sent (not through `request.url`, which builds the whole URL)."""
    query: bytes = request.scope["query_string"]
    return query.decode(errors="replace")


async def read_params(request: Request) -> Params:
    body = (await request.body()).decode(errors="replace")
    values = dict(_pairs(body))
    values.update(_pairs(_query(request)))
    return Params(values)


def _unsigned(raw: str) -> str:
    """`raw` without its `signature=` parameter: what the client signed."""
    return "&".join(part for part in raw.split("&") if not part.startswith("signature="))


def _api_key(request: Request) -> str:
    return _checked_key(request.headers.get("x-mbx-apikey", ""))


def _checked_key(key: str) -> str:
    if not key:
        raise BinanceError(401, REJECTED_MBX_KEY, "API-key required for this request.")
    if len(key) > 128 or not key.isalnum():
        raise BinanceError(401, BAD_API_KEY_FMT, "API-key format invalid.")
    return key


async def _count_failure(state: AppState, address: str, user_id: str = "") -> None:
    """`deps.count_failure`, its 429 as Binance's -1003."""
    try:
        await deps.count_failure(state, address, user_id)
    except ApiError as error:
        raise translate(error) from error


async def _key_row(state: AppState, address: str, key: str) -> ApiKeyRow:
    """The live API key `key` names; a refusal counted as a failure if there is none."""
    try:
        row = await deps.api_key_row(state, address, key)
    except ApiError as error:
        raise translate(error) from error
    if row is None or row.revoked_at is not None:
        await _count_failure(state, address)
        raise BinanceError(401, REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.")
    return row


async def keyed(request: Request, state: AppState) -> tuple[str, Params]:
    """The user of the request's API key (Binance's USER_STREAM security: the key, no
    signature) and its parameters, counted against the rate limits."""
    params = await read_params(request)
    address = deps.client_address(request, state)
    row = await _key_row(state, address, _api_key(request))
    try:
        await state.limiter.hit(
            deps.address_counter(state, address),
            ("user", row.user_id, state.settings.rate_limit_user),
        )
    except ApiError as error:
        raise translate(error) from error
    return row.user_id, params


@dataclass(frozen=True, slots=True)
class SignedCall:
    """A signed request as it is checked: from the client at `address`, naming the API key
    `key`, with `params` (`timestamp`, `recvWindow`, `signature` among them) and `payload`,
    the text the client signed."""

    address: str
    key: str
    params: Params
    payload: str


async def signed(request: Request, state: AppState, scope: str) -> tuple[Principal, Params]:
    """The API key's user and the request's parameters, after checking the key, its scope,
    the timestamp and the signature, and counting the request against the rate limits."""
    principal, params, _ = await _signed(request, state, scope, numbered=False)
    return principal, params


async def signed_order(request: Request, state: AppState) -> tuple[Principal, Params, int]:
    """`signed` for placing an order, and the next order number of the market `symbol`
    names, drawn in the limiter's call (0 if `symbol` names none: the route refuses it)."""
    return await _signed(request, state, "trade", numbered=True)


async def _sequence(state: AppState, params: Params) -> str:
    """The order counter of the market `symbol` names, "" if none."""
    market = (await by_symbol(state.registry)).get(params.text("symbol") or "")
    return keys.market_order_seq(market.name) if market else ""


async def _signed(
    request: Request, state: AppState, scope: str, numbered: bool
) -> tuple[Principal, Params, int]:
    params = await read_params(request)
    key = _api_key(request)
    body = (await request.body()).decode(errors="replace")
    payload = _unsigned(_query(request)) + _unsigned(body)
    call = SignedCall(deps.client_address(request, state), key, params, payload)
    return await verify(state, call, scope, numbered)


def ws_api_call(address: str, sent: dict[str, Any]) -> SignedCall:
    """A WebSocket API request's parameters as a signed call: as Binance signs them, every
    parameter but `signature`, sorted by name, as `name=value` joined by `&`, a string as
    sent, an integer in decimal and a boolean `true` or `false`; the key is `apiKey`."""
    values: dict[str, str] = {}
    for name, value in sent.items():
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, int | str):
            values[name] = str(value)
        else:
            raise illegal(name)
    payload = "&".join(f"{name}={values[name]}" for name in sorted(values) if name != "signature")
    return SignedCall(address, _checked_key(values.get("apiKey", "")), Params(values), payload)


async def verify(
    state: AppState, call: SignedCall, scope: str | None, numbered: bool = False
) -> tuple[Principal, Params, int]:
    """`signed` of a call however it came (`scope` None: any live key, Binance's
    USER_STREAM); with `numbered`, the order number of `signed_order`."""
    params = call.params
    timestamp = params.integer("timestamp")
    if timestamp is None:
        raise missing("timestamp")
    window = params.integer("recvWindow", DEFAULT_RECV_WINDOW)
    assert window is not None
    if window > MAX_RECV_WINDOW:
        raise bad(-1131, "recvWindow must be less than 60000")
    now = time.time() * 1000
    if timestamp > now + FUTURE_TOLERANCE_MS or now - timestamp > window:
        raise bad(INVALID_TIMESTAMP, "Timestamp for this request is outside of the recvWindow.")
    given = params.text("signature")
    if given is None or not _SIGNATURE.fullmatch(given):
        raise missing("signature")
    row = await _key_row(state, call.address, call.key)
    expected = hmac.new(row.secret.encode(), call.payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        await _count_failure(state, call.address, row.user_id)
        raise bad(INVALID_SIGNATURE, "Signature for this request is not valid.")
    if scope is not None and scope not in row.scopes:
        raise BinanceError(401, REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.")
    try:
        fresh, number = await state.limiter.hit_numbered(
            deps.address_counter(state, call.address),
            ("user", row.user_id, state.settings.rate_limit_user),
            # A signature can only be used once while its timestamp is valid: no replays.
            claim=f"xch:sig:{expected}",
            claim_ms=2 * MAX_RECV_WINDOW,
            sequence=await _sequence(state, params) if numbered else "",
        )
    except ApiError as error:
        raise translate(error) from error
    if not fresh:
        raise bad(INVALID_SIGNATURE, "Signature for this request was already used.")
    return Principal(row.user_id, frozenset(row.scopes), by_api_key=True), params, number


MAX_MS = 253_402_300_799_999
"""The largest time in milliseconds a parameter may give (the end of year 9999)."""


async def market_of_params(state: AppState, params: Params) -> tuple[Market, MarketRules, str]:
    symbol = params.required("symbol")
    market = await market_of_symbol(state.registry, symbol)
    return market, await state.registry.rules(market.name), symbol


def query_limit(params: Params, default: int, high: int) -> int:
    value = params.integer("limit", default)
    assert value is not None
    if not 1 <= value <= high:
        raise illegal("limit")
    return value
