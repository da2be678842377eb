"""Closing a market whose engine Pods are gone: the engine itself, run as a child process.

When a namespace is deleted, Kubernetes deletes the engine's Deployment and Pods alongside
the Market, which waits on its finalizer for a close that no engine is left to apply. The
operator then runs the market's own engine (`python -m engine --close-through ENTRY`: lease,
recovery from Redis, the close, one fenced commit), which exits once the close is applied.
Nothing about settlement is re-implemented here, and the operator imports no engine code: the
engine's command line is the whole interface. The engine reads the market from the registry,
where it stays until the close is applied (`provisioning.unregister` comes after).
"""

import asyncio
import contextlib
import logging
import sys

log = logging.getLogger("xch_operator")

STOP_GRACE_SECONDS = 10
"""After a timeout the engine is asked to stop (it hands its lease back), then killed."""


async def close_with_own_engine(redis_url: str, market: str, entry: str, timeout: float) -> bool:
    """Lead `market` until input `entry` is applied; False if the engine failed or took longer
    than `timeout` (e.g. a live engine elsewhere still holds the lease)."""
    engine = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine",
        *("--market", market, "--redis-url", redis_url, "--health-port", "0"),
        *("--close-through", entry),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            _, stderr = await engine.communicate()
    except TimeoutError:
        log.warning("the engine closing %s did not finish within %s s", market, timeout)
        await _stop(engine)
        return False
    if engine.returncode != 0:
        log.warning(
            "the engine closing %s failed: %s", market, stderr.decode(errors="replace")[-2000:]
        )
        return False
    return True


async def _stop(engine: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        engine.terminate()
    try:
        async with asyncio.timeout(STOP_GRACE_SECONDS):
            await engine.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            engine.kill()
        await engine.wait()
