"""A client of the exchange's REST API for bots: signed requests, rate limit, clear errors.

Signed requests carry `X-API-KEY`, `X-API-TIMESTAMP` (Unix ms) and `X-API-SIGNATURE`, the hex
HMAC-SHA256 under the key's secret of `timestamp + METHOD + path?query + body`.
"""

import asyncio
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

API = "/api/v1"


class ApiError(Exception):
    """The api answered with an error (`code` and `message` from its JSON body)."""

    def __init__(self, status: int, code: str, message: str, retry_after: float = 0) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class RateLimiter:
    """At most `rate` requests a second on average (a token bucket one second deep)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    message = timestamp.encode() + method.upper().encode() + path.encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class ApiClient:
    def __init__(self, base_url: str, requests_per_second: float = 20.0) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10.0)
        self.limiter = RateLimiter(requests_per_second)
        self.key = ""
        self.secret = ""
        self.token = ""

    async def aclose(self) -> None:
        await self.http.aclose()

    def use_key(self, key: str, secret: str) -> None:
        self.key, self.secret = key, secret

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        signed: bool = False,
    ) -> Any:
        target = API + path + (f"?{urlencode(params)}" if params else "")
        content = orjson.dumps(body) if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if signed:
            timestamp = str(time.time_ns() // 1_000_000)
            headers |= {
                "X-API-KEY": self.key,
                "X-API-TIMESTAMP": timestamp,
                "X-API-SIGNATURE": sign(self.secret, timestamp, method, target, content),
            }
        elif self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        await self.limiter.acquire()
        response = await self.http.request(method, target, content=content, headers=headers)
        return self._result(response)

    @staticmethod
    def _result(response: httpx.Response) -> Any:
        if response.status_code < 400:
            return orjson.loads(response.content) if response.content else None
        try:
            error = orjson.loads(response.content)
            code, message = str(error["code"]), str(error["message"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            code, message = "http_error", response.text[:200]
        retry_after = float(response.headers.get("Retry-After", "0") or 0)
        raise ApiError(response.status_code, code, message, retry_after)

    # ---- accounts -----------------------------------------------------------------------

    async def sign_in_or_up(self, email: str, password: str) -> str:
        """Sign in (signing up first if the account does not exist); returns the user id."""
        credentials = {"email": email, "password": password}
        try:
            tokens = await self.request("POST", "/signin", body=credentials)
        except ApiError as error:
            if error.status != 401:
                raise
            tokens = await self.request("POST", "/signup", body=credentials)
        self.token = tokens["access_token"]
        return str(tokens["user_id"])

    async def create_api_key(self, label: str, scopes: list[str]) -> tuple[str, str]:
        created = await self.request("POST", "/api-keys", body={"label": label, "scopes": scopes})
        return created["key"], created["secret"]

    # ---- trading ------------------------------------------------------------------------

    async def balances(self) -> dict[str, tuple[str, str]]:
        rows = await self.request("GET", "/balances", signed=True)
        return {row["asset"]: (row["free"], row["locked"]) for row in rows}

    async def faucet(self, asset: str, amount: str) -> None:
        await self.request("POST", "/faucet", body={"asset": asset, "amount": amount}, signed=True)

    async def open_orders(self, market: str) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = await self.request(
            "GET", "/orders/open", params={"market": market}, signed=True
        )
        return orders

    async def fills(self, market: str, limit: int = 100) -> list[dict[str, Any]]:
        """The user's own fills in `market`, newest first."""
        fills: list[dict[str, Any]] = await self.request(
            "GET", "/fills", params={"market": market, "limit": limit}, signed=True
        )
        return fills

    async def place(self, order: dict[str, Any]) -> dict[str, Any]:
        placed: dict[str, Any] = await self.request("POST", "/order", body=order, signed=True)
        return placed

    async def cancel(self, order_id: str) -> None:
        await self.request("DELETE", f"/order/{order_id}", signed=True)

    # ---- market data --------------------------------------------------------------------

    async def trades(self, market: str, limit: int = 100) -> list[dict[str, Any]]:
        trades: list[dict[str, Any]] = await self.request(
            "GET", "/trades", params={"market": market, "limit": limit}
        )
        return trades

    async def depth(self, market: str, limit: int = 20) -> dict[str, Any]:
        depth: dict[str, Any] = await self.request(
            "GET", "/depth", params={"market": market, "limit": limit}
        )
        return depth
