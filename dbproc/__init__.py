"""The database processor: stores every engine event and every deposit and withdrawal in
PostgreSQL, exactly once, and keeps each market's 24-hour ticker in Redis.

`rows` turns events into table rows (pure), `writer` stores one read of stream entries in one
transaction, `consumer` reads a stream through the `dbproc` consumer group and acknowledges
only what is committed, and `service` runs them for every market in the registry and
refreshes the tickers.
"""
