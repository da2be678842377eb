"""The WebSocket gateway: public depth, trade, ticker and kline streams, and private order and
balance updates for authenticated connections, read from each market's events stream.
"""
