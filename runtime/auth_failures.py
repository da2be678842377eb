"""The back-off of failed authentication, shared by the api and ws: refused credentials are
counted per subject (the client's address, the account a credential named) in Redis, so
every process of both services shares them (`xch:authfail:{kind}:{who}`, and the wait
`xch:authwait:{kind}:{who}`). Past its allowance a subject must wait, 1 s after the first
failure too many, twice as long after each next one, up to `longest_seconds`. Each service
turns a wait into its own answer (the api's 429, ws's error frame).
"""

import time

import redis.asyncio

from runtime.bounded import put_newest

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


class FailureBackoff:
    """Failures counted per subject, with back-off. A process also remembers the waits it was
    told of (`waiting_here`), so that while a subject waits, work a failure would cost (a
    PostgreSQL lookup of a key) can be refused before it, without a call."""

    def __init__(
        self, client: redis.asyncio.Redis, memory_seconds: int, longest_seconds: int
    ) -> None:
        self.memory_ms = memory_seconds * 1000
        self.longest_ms = longest_seconds * 1000
        self.failed_script = client.register_script(_FAILED)
        self.waiting_script = client.register_script(_WAITING)
        self.waits: dict[str, float] = {}
        """Subject key: when its wait ends (monotonic seconds)."""

    async def failed(self, *subjects: Subject) -> int:
        """Count one failure against each subject: the longest wait now set (ms), 0 if none
        must wait."""
        keys = []
        for kind, who, _ in subjects:
            keys += [failures_key(kind, who), wait_key(kind, who)]
        allowances = [allowance for _, _, allowance in subjects]
        waits = await self.failed_script(keys, [*allowances, self.memory_ms, self.longest_ms])
        now = time.monotonic()
        for (kind, who, _), wait_ms in zip(subjects, waits, strict=True):
            if int(wait_ms) > 0:
                put_newest(self.waits, wait_key(kind, who), now + int(wait_ms) / 1000, _LOCAL_WAITS)
        return max(int(wait_ms) for wait_ms in waits)

    async def waiting(self, *subjects: Subject) -> int:
        """The longest wait any subject is in (ms), 0 if none."""
        keys = [wait_key(kind, who) for kind, who, _ in subjects]
        return max(0, int(await self.waiting_script(keys)))

    def waiting_here(self, kind: str, who: str) -> int:
        """`waiting` of one subject from what this process was told: no call."""
        until = self.waits.get(wait_key(kind, who))
        if until is None:
            return 0
        left = until - time.monotonic()
        return int(left * 1000) + 1 if left > 0 else 0


def failures_key(kind: str, who: str) -> str:
    return f"xch:authfail:{kind}:{who}"


def wait_key(kind: str, who: str) -> str:
    return f"xch:authwait:{kind}:{who}"
