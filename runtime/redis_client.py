"""The Redis client every service process opens.

redis-py 8 gives each connection a 5 s socket timeout and enforces it on every send with
`asyncio.wait_for`. On Python 3.11, `wait_for` loses a cancellation that arrives as the send
it wraps completes: the cancelled task carries on as if nothing happened (a dbproc went on
reading its stream after SIGTERM until it was killed). So sends and replies run without a
socket timeout, as redis-py did before 8: a Redis that goes away closes the connection, which
fails the command at once; connecting keeps its timeout (it uses `asyncio.timeout`, which
keeps cancellations).
"""

import redis.asyncio

CONNECT_TIMEOUT_SECONDS = 5.0


def redis_client(url: str) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        url, socket_timeout=None, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS
    )
