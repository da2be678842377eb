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

from api.bounded import put_newest
from api.errors import ApiError
from api.metrics import AUTH_FAILURES
from ledger.numbers import ORDER_NUMBERS_PER_MS
from ledger.scripts import with_prelude

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
    def __init__(self, client: redis.asyncio.Redis, window_seconds: int) -> None:
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


Subject = tuple[str, str, int]
"""(kind, who, allowance): e.g. ("ip", "203.0.113.9", 20), the failures it may have before
it must wait."""

# KEYS: per subject, its failure count then its wait. ARGV: per subject its allowance, then
# how long failures are remembered (ms) and the longest wait (ms). Each failure past the
# allowance sets a wait twice as long as the last (1 s first), and remembers the count for
# the memory after the wait ends: failing again then doubles on. Returns each subject's wait
# now set (ms), 0 if none.
_FAILED = """
local subjects = #KEYS / 2
local memory = tonumber(ARGV[subjects + 1])
local longest = tonumber(ARGV[subjects + 2])
local waits = {}
for i = 1, subjects do
  local over = redis.call('INCR', KEYS[2 * i - 1]) - tonumber(ARGV[i])
  local wait = 0
  if over > 0 then
    wait = math.min(1000 * 2 ^ math.min(over - 1, 30), longest)
    redis.call('SET', KEYS[2 * i], '', 'PX', wait)
  end
  redis.call('PEXPIRE', KEYS[2 * i - 1], memory + wait)
  waits[i] = wait
end
return waits
"""

# KEYS: the subjects' waits. Returns the longest time left (ms), 0 if none.
_WAITING = """
local wait = 0
for i = 1, #KEYS do
  wait = math.max(wait, redis.call('PTTL', KEYS[i]))
end
return wait
"""

_LOCAL_WAITS = 10_000
"""Subjects this process remembers waiting (the oldest are forgotten first)."""


class AuthFailures:
    """Refused credentials counted per subject (the client's address, the account a
    credential named), in Redis so every api process shares them, with back-off: past its
    allowance a subject must wait, 1 s after the first failure too many, twice as long after
    each next one, up to `longest_seconds`. Only failures cost a call: a request whose
    credential is good is never checked here, except a sign-in (`check`), whose success is
    what a guesser waits for.

    A process also remembers the waits it was told of, so that while an address waits a
    request needing a PostgreSQL lookup (an API key not in the cache) is refused before it."""

    def __init__(
        self, client: redis.asyncio.Redis, memory_seconds: int, longest_seconds: int
    ) -> None:
        self.memory_ms = memory_seconds * 1000
        self.longest_ms = longest_seconds * 1000
        self.failed_script = client.register_script(_FAILED)
        self.waiting_script = client.register_script(_WAITING)
        self.waits: dict[str, float] = {}
        """Subject key: when its wait ends (monotonic seconds)."""

    async def failed(self, *subjects: Subject) -> None:
        """Count one failure against each subject; ApiError 429 if any must now wait."""
        keys = []
        for kind, who, _ in subjects:
            keys += [f"xch:authfail:{kind}:{who}", _wait_key(kind, who)]
        allowances = [allowance for _, _, allowance in subjects]
        waits = await self.failed_script(keys, [*allowances, self.memory_ms, self.longest_ms])
        now = time.monotonic()
        for (kind, who, _), wait_ms in zip(subjects, waits, strict=True):
            if int(wait_ms) > 0:
                put_newest(
                    self.waits, _wait_key(kind, who), now + int(wait_ms) / 1000, _LOCAL_WAITS
                )
        longest = max(int(wait_ms) for wait_ms in waits)
        if longest > 0:
            AUTH_FAILURES.labels("throttled").inc()
            raise _must_wait(longest)
        AUTH_FAILURES.labels("refused").inc()

    async def check(self, *subjects: Subject) -> None:
        """ApiError 429 if any subject is waiting."""
        keys = [_wait_key(kind, who) for kind, who, _ in subjects]
        wait_ms = int(await self.waiting_script(keys))
        if wait_ms > 0:
            raise _must_wait(wait_ms)

    def check_here(self, kind: str, who: str) -> None:
        """`check` of one subject from what this process was told: no call."""
        until = self.waits.get(_wait_key(kind, who))
        if until is not None:
            left = until - time.monotonic()
            if left > 0:
                raise _must_wait(int(left * 1000) + 1)


def _wait_key(kind: str, who: str) -> str:
    return f"xch:authwait:{kind}:{who}"


def _must_wait(wait_ms: int) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        "too many failed authentications: wait before trying again",
        headers={"Retry-After": str(max(1, math.ceil(wait_ms / 1000)))},
    )
