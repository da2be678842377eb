"""The matching engine of one market, run as its own process (`python -m engine`).

The core (book, matcher, stops, snapshot) is pure synchronous code with no I/O, no clock and
no randomness: the same commands always give the same events and the same state hash. It
locks and settles by the rules of the `ledger` package; `service` is its durable loop on
Redis. No other component imports this package.

The hot modules run compiled (mypyc, built by every install from these same sources) unless
a source changed since, or EXCHANGE_ENGINE_INTERPRETED=1: `BUILD` says which runs (see
`ledger.compiled`).
"""

from ledger import BUILD

__all__ = ["BUILD"]
