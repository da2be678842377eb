"""What the lifespan owns and every request shares."""

from dataclasses import dataclass, field

import asyncpg
import redis.asyncio

from api.config import Settings
from api.keyring import Keyring
from api.markets import Registry
from api.ratelimit import AuthFailures, RateLimiter
from api.replies import ReplyListener
from api.security import Passwords
from api.users import ApiKeyRow
from ledger.gateway import Gateway
from runtime.addresses import ClientAddresses
from runtime.redis_pipe import PipelinedRedis


@dataclass
class AppState:
    settings: Settings
    redis: redis.asyncio.Redis
    pipe: PipelinedRedis
    """The order path's commands: one connection, pipelined (runtime/redis_pipe.py)."""
    db: asyncpg.Pool
    gateway: Gateway
    replies: ReplyListener
    registry: Registry
    limiter: RateLimiter
    failures: AuthFailures
    addresses: ClientAddresses
    passwords: Passwords
    keyring: Keyring
    api_keys: dict[str, tuple[ApiKeyRow | None, float]] = field(default_factory=dict)
    """Recently looked-up API keys (None: no such key) and when each lookup expires (monotonic
    seconds); at most `deps.API_KEYS_CACHED`, the oldest forgotten first."""

    async def count_failure(self, address: str, user_id: str = "") -> None:
        """Count a refused credential against the client's address and, if it named one, its
        user's account (`failures`): ApiError 429 once either must wait."""
        subjects = [("ip", address, self.settings.auth_failures_ip)]
        if user_id:
            subjects.append(("user", user_id, self.settings.auth_failures_account))
        await self.failures.failed(*subjects)
