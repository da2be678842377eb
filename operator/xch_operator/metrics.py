"""Prometheus metrics of the operator: reconciles, errors and their durations, per handler;
and per Market its phase, each condition's status and its reconcile errors, as kube-state-
metrics shows Kubernetes' own objects (one series per possible value, 1 for the current)."""

import time
from collections.abc import Awaitable, Callable, Mapping
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from xch.market import KIND
from xch_operator.status import CONDITION_TYPES, PHASES

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

MARKET = ("namespace", "market")
MARKET_PHASE = Gauge(
    "xch_operator_market_phase", "1 for the Market's phase, 0 for the others", [*MARKET, "phase"]
)
MARKET_CONDITION = Gauge(
    "xch_operator_market_condition",
    "1 for each condition's status (True, False, Unknown), 0 for the others",
    [*MARKET, "condition", "status"],
)
MARKET_ERRORS = Counter(
    "xch_operator_market_reconcile_errors_total",
    "Handler runs on a Market that raised, by error",
    [*MARKET, "error"],
)
CONDITION_STATUSES = ("True", "False", "Unknown")

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
                market = _market_of(kwargs.get("body"))
                if market is not None:
                    MARKET_ERRORS.labels(*market, type(exc).__name__).inc()
                raise
            finally:
                DURATION.labels(name).observe(time.perf_counter() - started)

        return run

    return decorate


def _market_of(body: object) -> tuple[str, str] | None:
    """(namespace, name) of a Market handler's body; None for any other object."""
    if not isinstance(body, Mapping) or body.get("kind") != KIND:
        return None
    metadata = body.get("metadata") or {}
    return metadata.get("namespace", ""), metadata.get("name", "")


def observe_market(namespace: str, name: str, status: dict[str, Any]) -> None:
    """Set the Market's phase and condition series from the status just written."""
    phase = status.get("phase")
    for known in PHASES:
        MARKET_PHASE.labels(namespace, name, known).set(1 if known == phase else 0)
    found = {c["type"]: c.get("status") for c in status.get("conditions") or []}
    for kind in CONDITION_TYPES:
        current = found.get(kind, "Unknown")
        for value in CONDITION_STATUSES:
            MARKET_CONDITION.labels(namespace, name, kind, value).set(int(value == current))


def forget_market(namespace: str, name: str) -> None:
    """Drop a deleted Market's series (its name may come back as another Market)."""
    for metric, extra in ((MARKET_PHASE, ("phase",)), (MARKET_CONDITION, ("condition", "status")),
                          (MARKET_ERRORS, ("error",))):  # fmt: skip
        found = {
            tuple(sample.labels[label] for label in (*MARKET, *extra))
            for family in metric.collect()
            for sample in family.samples
            if (sample.labels.get("namespace"), sample.labels.get("market")) == (namespace, name)
        }
        for labels in found:
            metric.remove(*labels)
