"""ws's calls to the api's internal WebSocket API routes (api.binance.routes.ws_api): ws holds
no API secret, so the api checks a `userDataStream.subscribe.signature` request's signature
and answers a listen key, which ws keeps alive while the subscription lasts and closes after.
Each call carries a `service` token ws mints under the shared JWT secret (xch.auth)."""

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from xch.auth import WS_SERVICE, issue_token

log = logging.getLogger(__name__)

PATH = "/internal/v1/ws-api/user-data-stream"
TOKEN_SECONDS = 60
TIMEOUT_SECONDS = 5.0
UNAVAILABLE = (503, -1001, "Internal error; unable to process your request. Please try again.")


@dataclass(frozen=True, slots=True)
class Answer:
    """The api's answer: its HTTP status and JSON body (Binance's `{"code", "msg"}` if it
    refused)."""

    status: int
    body: dict[str, Any]

    @property
    def error(self) -> tuple[int, int, str] | None:
        if self.status == 200:
            return None
        code, msg = self.body.get("code"), self.body.get("msg")
        if not isinstance(code, int) or not isinstance(msg, str):
            return UNAVAILABLE
        return self.status, code, msg


class InternalApi:
    def __init__(self, api_url: str, jwt_secret: str) -> None:
        self.jwt_secret = jwt_secret
        self.client = (
            httpx.AsyncClient(base_url=api_url, timeout=TIMEOUT_SECONDS) if api_url else None
        )

    async def call(self, method: str, body: dict[str, Any]) -> Answer:
        """The api's answer; 503 -1001 if it cannot be reached or answers no JSON."""
        if self.client is None or not self.jwt_secret:
            return Answer(UNAVAILABLE[0], {"code": UNAVAILABLE[1], "msg": UNAVAILABLE[2]})
        token = issue_token(WS_SERVICE, "service", self.jwt_secret, TOKEN_SECONDS)
        try:
            reply = await self.client.request(
                method, PATH, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            answer = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("the api's %s %s failed: %s", method, PATH, exc)
            return Answer(UNAVAILABLE[0], {"code": UNAVAILABLE[1], "msg": UNAVAILABLE[2]})
        return Answer(reply.status_code, answer if isinstance(answer, dict) else {})

    async def subscribe(
        self, params: dict[str, Any], peer: str, forwarded_for: list[str]
    ) -> Answer:
        """The listen key and user of a signed subscription, or the api's refusal."""
        body = {"params": params, "peer": peer, "forwardedFor": forwarded_for}
        return await self.call("POST", body)

    async def keep(self, listen_key: str) -> bool | None:
        """Whether the key still exists (kept another hour); None if the api did not say."""
        answer = await self.call("PUT", {"listenKey": listen_key})
        if answer.status == 200:
            return True
        return False if answer.status == 400 else None

    async def close(self, listen_key: str) -> None:
        await self.call("DELETE", {"listenKey": listen_key})

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
