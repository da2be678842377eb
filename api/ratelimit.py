"""Fixed-window request limits kept in Redis, so every api process shares them.

One INCR per request and key (the window's first request also sets the expiry); over the
limit the request is refused with 429 and `Retry-After`, the seconds until the window ends.
"""

import math
import time

import redis.asyncio

from api.errors import ApiError


class RateLimiter:
    def __init__(self, client: redis.asyncio.Redis, window_seconds: int) -> None:
        self.client = client
        self.window = window_seconds

    async def hit(self, kind: str, who: str, limit: int) -> None:
        now = time.time()
        window = int(now // self.window)
        key = f"xch:rl:{kind}:{who}:{window}"
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window + 1, nx=True)
            count, _ = await pipe.execute()
        if int(count) > limit:
            retry_after = max(1, math.ceil((window + 1) * self.window - now))
            raise ApiError(
                429,
                "rate_limited",
                f"more than {limit} requests per {self.window} s for this {kind}",
                headers={"Retry-After": str(retry_after)},
            )
