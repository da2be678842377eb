"""The HTTP API: the native REST routes under /api/v1 and a Binance-compatible subset under /api/v3.

It checks and locks a trader's funds and appends the command to the market's input stream in
one Lua call, then answers with the engine's reply; one shared Deployment serves every market.
"""
