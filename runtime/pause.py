"""Waiting for a stop signal or a timeout, whichever comes first, without losing a cancel.

`asyncio.wait_for(event.wait(), timeout)` under `suppress(TimeoutError)` can swallow a
cancellation in Python 3.11 when the timeout and the cancel race (seen under uvloop: a task
group then waits forever for a task that never ends). `asyncio.wait` never raises on timeout,
so a cancellation always propagates.
"""

import asyncio


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, returning at once when `stop` is set; a cancel is never lost."""
    if stop.is_set():
        return
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()
