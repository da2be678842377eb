"""Per-request plumbing as one pure ASGI middleware: a request id (echoed in `X-Request-ID`
and in the log line), the body size limit, Prometheus metrics and one JSON log line."""

import logging
import re
import secrets
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.metrics import LATENCY, REQUESTS

log = logging.getLogger("api.access")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class BodyTooLarge(HTTPException):
    """Raised while reading a body with no (or a false) Content-Length. An HTTPException, so
    FastAPI's body parsing passes it on instead of calling it a malformed body."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


class RequestContext:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_body:
            response = error_response(413, "payload_too_large", f"at most {self.max_body} bytes")
            await response(scope, receive, send_with_id)
        else:
            await self.app(scope, self._limited(receive), send_with_id)
        self._record(scope, request_id, status[0], time.perf_counter() - started)

    def _limited(self, receive: Receive) -> Receive:
        seen = [0]

        async def limited() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        return limited

    def _record(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", "unmatched")
        method = scope["method"]
        REQUESTS.labels(method, template, str(status)).inc()
        LATENCY.labels(method, template).observe(seconds)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "ms": round(seconds * 1000, 3),
                },
            )
