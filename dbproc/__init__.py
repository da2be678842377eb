"""The database processor: it reads each market's events stream through a consumer group and
writes trades, orders, ledger entries and klines to PostgreSQL idempotently, acking an entry
only after its transaction has committed.
"""
