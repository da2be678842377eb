"""Fixed-window request limits kept in Redis, so every api process shares them, and the
back-off of failed authentication (`AuthFailures`).

One INCR per request and counter (the first of a window also sets the expiry), all of a
request's counters, a signed request's replay claim and, for a Binance order, its order
number, in one Lua call: one command to send and one reply to parse per request. Over a
limit the request is refused with 429 and `Retry-After`, the seconds until the window ends.
"""

import math
import time

import redis.asyncio

from api.errors import ApiError
from api.metrics import AUTH_FAILURES
from ledger.numbers import ORDER_NUMBERS_PER_MS
from ledger.scripts import ScriptHost, with_prelude
from runtime.auth_failures import FailureBackoff, Subject

Counter = tuple[str, str, int]
"""(kind, who, limit): e.g. ("ip", "203.0.113.9", 100)."""

# KEYS: the counters, then the claim if there is one, then the sequence if there is one.
# ARGV: the counters' expiry (s), how many counters, the claim's expiry (ms), 1 if there is
# a sequence (else 0), the sequence's numbers a millisecond. Returns the counts, then 1 if the
# claim was fresh (or there is none), then the sequence's next number if there is one (the
# prelude's next_number: never repeated by a restored Redis).
_HIT = """
local counters = tonumber(ARGV[2])
local sequences = tonumber(ARGV[4])
local out = {}
for i = 1, counters do
  out[i] = redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[1], 'NX')
end
local fresh = 1
if #KEYS - sequences > counters
    and not redis.call('SET', KEYS[counters + 1], '', 'NX', 'PX', ARGV[3]) then
  fresh = 0
end
out[counters + 1] = fresh
if sequences == 1 then
  out[counters + 2] = next_number(KEYS[#KEYS], tonumber(ARGV[5]))
end
return out
"""


class RateLimiter:
    def __init__(self, client: ScriptHost, window_seconds: int) -> None:
        self.window = window_seconds
        self.script = client.register_script(with_prelude(_HIT))

    async def hit(self, *counters: Counter, claim: str = "", claim_ms: int = 0) -> bool:
        """Count one request against each counter. `claim` (a key to SET NX for `claim_ms`,
        as a signed request's signature is) rides along in the same call; returns whether
        it was fresh (True when there is none). ApiError 429 over a limit."""
        fresh, _ = await self.hit_numbered(*counters, claim=claim, claim_ms=claim_ms)
        return fresh

    async def hit_numbered(
        self, *counters: Counter, claim: str = "", claim_ms: int = 0, sequence: str = ""
    ) -> tuple[bool, int]:
        """`hit`, and the next Binance order number of the counter `sequence` (INCR with a
        clock floor, ledger.numbers; 0 if none is given)
        drawn in the same call, whatever the verdict: a number may go unused."""
        now = time.time()
        window = int(now // self.window)
        keys = [f"xch:rl:{kind}:{who}:{window}" for kind, who, _ in counters]
        if claim:
            keys.append(claim)
        if sequence:
            keys.append(sequence)
        results = await self.script(
            keys,
            [self.window + 1, len(counters), claim_ms, 1 if sequence else 0, ORDER_NUMBERS_PER_MS],
        )
        for count, (kind, _, limit) in zip(results, counters, strict=False):
            if int(count) > limit:
                retry_after = max(1, math.ceil((window + 1) * self.window - now))
                raise ApiError(
                    429,
                    "rate_limited",
                    f"more than {limit} requests per {self.window} s for this {kind}",
                    headers={"Retry-After": str(retry_after)},
                )
        number = int(results[len(counters) + 1]) if sequence else 0
        return bool(results[len(counters)]), number


class AuthFailures:
    """Refused credentials counted per subject with back-off (runtime.auth_failures, shared
    with ws), answered as 429. Only failures cost a call: a request whose credential is good
    is never checked here, except a sign-in (`check`), whose success is what a guesser waits
    for. While an address waits, a request needing a PostgreSQL lookup (an API key not in
    the cache) is refused before it (`check_here`)."""

    def __init__(
        self, client: redis.asyncio.Redis, memory_seconds: int, longest_seconds: int
    ) -> None:
        self.backoff = FailureBackoff(client, memory_seconds, longest_seconds)

    async def failed(self, *subjects: Subject) -> None:
        """Count one failure against each subject; ApiError 429 if any must now wait."""
        wait_ms = await self.backoff.failed(*subjects)
        if wait_ms > 0:
            AUTH_FAILURES.labels("throttled").inc()
            raise _must_wait(wait_ms)
        AUTH_FAILURES.labels("refused").inc()

    async def check(self, *subjects: Subject) -> None:
        """ApiError 429 if any subject is waiting."""
        wait_ms = await self.backoff.waiting(*subjects)
        if wait_ms > 0:
            raise _must_wait(wait_ms)

    def check_here(self, kind: str, who: str) -> None:
        """`check` of one subject from what this process was told: no call."""
        wait_ms = self.backoff.waiting_here(kind, who)
        if wait_ms > 0:
            raise _must_wait(wait_ms)


def _must_wait(wait_ms: int) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        "too many failed authentications: wait before trying again",
        headers={"Retry-After": str(max(1, math.ceil(wait_ms / 1000)))},
    )
