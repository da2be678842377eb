"""Prometheus metrics of the operator: reconciles, errors and their durations, per handler."""

import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Histogram

RECONCILES = Counter("xch_operator_reconciles_total", "Handler runs, by handler", ["handler"])
ERRORS = Counter(
    "xch_operator_errors_total",
    "Handler runs that raised, by handler and error",
    ["handler", "error"],
)
DURATION = Histogram(
    "xch_operator_reconcile_seconds",
    "Duration of handler runs, by handler",
    ["handler"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

P = ParamSpec("P")
R = TypeVar("R")


def instrumented(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Count, time and classify the errors of an async handler."""

    def decorate(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(handler)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            RECONCILES.labels(name).inc()
            started = time.perf_counter()
            try:
                return await handler(*args, **kwargs)
            except Exception as exc:
                ERRORS.labels(name, type(exc).__name__).inc()
                raise
            finally:
                DURATION.labels(name).observe(time.perf_counter() - started)

        return run

    return decorate
