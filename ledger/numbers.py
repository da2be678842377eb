"""Counters a restored Redis must never repeat: the clock floor of `next_number` (the Lua
prelude's, ledger/lua/prelude.lua), stated in Python (docs/storage.md, "Redis rollback").

Each draw is `max(INCR, (Redis TIME ms - ORIGIN_MS) * per_ms)`. Numbers drawn before a
restore stay below the floor of the moment they were drawn, as long as the counter is not
drawn `per_ms` times a millisecond for long; the restarted Redis's clock is later, so its
first draw is above them all.
"""

ORIGIN_MS = 1_767_225_600_000
"""2026-01-01 00:00 UTC, in Unix milliseconds (the prelude's NUMBER_ORIGIN_MS)."""

ORDER_NUMBERS_PER_MS = 1024
"""Binance order numbers (`xch:{M}:order_seq`): below 2^52, where OCO leg ids start, until
about 2161."""

FUNDS_SEQS_PER_MS = 1024
"""Funds sequence numbers (`xch:funds:seq`)."""

LIST_NUMBERS_PER_MS = 16
"""OCO list numbers (`xch:list_seq`): below 2^48 (`xch.order_lists.MAX_LIST_NUMBER`) for
centuries."""


def floor_at(ms: int, per_ms: int) -> int:
    """The least number a counter drawing `per_ms` a millisecond hands out at Unix `ms`."""
    return max(0, (ms - ORIGIN_MS) * per_ms)


def next_number(current: int, ms: int, per_ms: int) -> int:
    """The number a draw at Unix `ms` gives when the counter holds `current`."""
    return max(current + 1, floor_at(ms, per_ms))
