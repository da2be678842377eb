"""The matching engine of one market, run as its own process (`python -m engine`).

The core (book, matcher, stops, snapshot) is pure synchronous code with no I/O, no clock and
no randomness: the same commands always give the same events and the same state hash. It
locks and settles by the rules of the `ledger` package; `service` is its durable loop on
Redis. No other component imports this package.
"""
