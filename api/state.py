"""What the lifespan owns and every request shares."""

from dataclasses import dataclass, field

import asyncpg
import redis.asyncio

from api.config import Settings
from api.keyring import Keyring
from api.markets import Registry
from api.ratelimit import RateLimiter
from api.replies import ReplyListener
from api.security import Passwords
from api.users import ApiKeyRow
from ledger.gateway import Gateway


@dataclass
class AppState:
    settings: Settings
    redis: redis.asyncio.Redis
    db: asyncpg.Pool
    gateway: Gateway
    replies: ReplyListener
    registry: Registry
    limiter: RateLimiter
    passwords: Passwords
    keyring: Keyring
    api_keys: dict[str, tuple[ApiKeyRow, float]] = field(default_factory=dict)
    """Recently looked-up API keys and when each lookup expires (monotonic seconds)."""
