"""Passwords (argon2) and signed API-key requests (HMAC-SHA256).

A signed request carries `X-API-KEY`, `X-API-TIMESTAMP` (Unix ms) and `X-API-SIGNATURE`: the
hex HMAC-SHA256, under the key's secret, of `timestamp + METHOD + path?query + body`. A
timestamp outside the receive window is refused, and so is a signature seen before within
it: a captured request cannot be replayed.
"""

import asyncio
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

SCOPES = ("read", "trade", "admin")


class Passwords:
    def __init__(self, time_cost: int, memory_kib: int) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)

    async def hash(self, password: str) -> str:
        # argon2 is deliberately slow: off the event loop.
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self.hasher.verify, password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def new_api_key() -> tuple[str, str]:
    """A fresh (key, secret) pair."""
    return secrets.token_hex(16), secrets.token_hex(32)


def signature(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    message = timestamp.encode() + method.upper().encode() + path.encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
