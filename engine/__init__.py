"""The matching engine of one market.

The core (book, matcher, ledger, risk, snapshot) is pure synchronous code with no I/O, no clock
and no randomness: the same commands always give the same events and the same state hash.
"""
