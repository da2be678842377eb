"""Fixed-window request limits kept in Redis, so every api process shares them.

One INCR per request and counter (the window's first request also sets the expiry), all of a
request's counters in one round trip; over a limit the request is refused with 429 and
`Retry-After`, the seconds until the window ends.
"""

import math
import time

import redis.asyncio

from api.errors import ApiError

Counter = tuple[str, str, int]
"""(kind, who, limit): e.g. ("ip", "203.0.113.9", 100)."""


class RateLimiter:
    def __init__(self, client: redis.asyncio.Redis, window_seconds: int) -> None:
        self.client = client
        self.window = window_seconds

    async def hit(self, *counters: Counter, claim: str = "", claim_ms: int = 0) -> bool:
        """Count one request against each counter. `claim` (a key to SET NX for `claim_ms`,
        as a signed request's signature is) rides along in the same round trip; returns
        whether it was fresh (True when there is none). ApiError 429 over a limit."""
        now = time.time()
        window = int(now // self.window)
        async with self.client.pipeline(transaction=False) as pipe:
            for kind, who, _ in counters:
                key = f"xch:rl:{kind}:{who}:{window}"
                pipe.incr(key)
                pipe.expire(key, self.window + 1, nx=True)
            if claim:
                pipe.set(claim, b"", nx=True, px=claim_ms)
            results = await pipe.execute()
        for n, (kind, _, limit) in enumerate(counters):
            if int(results[2 * n]) > limit:
                retry_after = max(1, math.ceil((window + 1) * self.window - now))
                raise ApiError(
                    429,
                    "rate_limited",
                    f"more than {limit} requests per {self.window} s for this {kind}",
                    headers={"Retry-After": str(retry_after)},
                )
        return bool(results[-1]) if claim else True
