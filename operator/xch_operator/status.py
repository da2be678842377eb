"""Market status as pure functions: conditions in the Kubernetes shape, and the phase they
imply. Handlers gather facts, these functions turn them into `status`, and the handler's
patch carries it (the status subresource); nothing here does I/O.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from xch.market import Trading

SPEC_VALID = "SpecValid"
"""False (reason InvalidMarket) when the Market model refuses a spec the API server accepted
(a rule the CRD's CEL cannot state, or one a Market stored under an older CRD escaped)."""
INVALID_MARKET = "InvalidMarket"
APPLY_FAILED = "ApplyFailed"
"""EngineReady or MarketMakerReady's reason when the API server refused one of the Market's
children; the message names it and quotes the API server."""
QUEUE_READY = "QueueReady"
STORAGE_READY = "StorageReady"
ENGINE_READY = "EngineReady"
MM_READY = "MarketMakerReady"
COMPONENT_CONDITIONS = (SPEC_VALID, QUEUE_READY, STORAGE_READY, ENGINE_READY, MM_READY)
READY_CONDITION = "Ready"
"""True when every component condition is: what `kubectl wait --for=condition=Ready` reads.
A halted market is Ready (everything runs; trading is off by the spec's choice)."""
CONDITION_TYPES = (*COMPONENT_CONDITIONS, READY_CONDITION)

INVALID = "Invalid"
PROVISIONING = "Provisioning"
READY = "Ready"
DEGRADED = "Degraded"
HALTED = "Halted"
DELETING = "Deleting"
PHASES = (INVALID, PROVISIONING, READY, DEGRADED, HALTED, DELETING)


@dataclass(frozen=True, slots=True)
class Check:
    """One condition's verdict: status True/False/Unknown, a CamelCase reason, a message."""

    status: str
    reason: str
    message: str = ""

    @classmethod
    def ok(cls, reason: str, message: str = "") -> "Check":
        return cls("True", reason, message)

    @classmethod
    def failed(cls, reason: str, message: str = "") -> "Check":
        return cls("False", reason, message)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    current: list[dict[str, Any]], checks: dict[str, Check], generation: int, at: str
) -> list[dict[str, Any]]:
    """The conditions after `checks`: lastTransitionTime moves only when a status changes;
    conditions not checked this time are kept as they were. Ordered by CONDITION_TYPES."""
    by_type = {condition["type"]: condition for condition in current}
    for kind, check in checks.items():
        previous = by_type.get(kind) or {}
        unchanged = previous.get("status") == check.status
        by_type[kind] = {
            "type": kind,
            "status": check.status,
            "reason": check.reason,
            "message": check.message,
            "lastTransitionTime": previous["lastTransitionTime"] if unchanged else at,
            "observedGeneration": generation,
        }
    return [by_type[kind] for kind in CONDITION_TYPES if kind in by_type]


def phase_of(conditions: list[dict[str, Any]], trading: Trading) -> tuple[str, str]:
    """(phase, phaseReason). Invalid while the model refuses the spec; Provisioning until the
    queue and storage exist; then Degraded while the engine or market maker is not ready;
    Halted or Ready by spec.trading."""
    status = {condition["type"]: condition for condition in conditions}
    if status.get(SPEC_VALID, {}).get("status") == "False":
        return INVALID, INVALID_MARKET
    for kind in (QUEUE_READY, STORAGE_READY):
        if status.get(kind, {}).get("status") != "True":
            return PROVISIONING, f"{kind}={status.get(kind, {}).get('reason', 'Pending')}"
    for kind in (ENGINE_READY, MM_READY):
        if status.get(kind, {}).get("status") != "True":
            return DEGRADED, f"{kind}={status.get(kind, {}).get('reason', 'Pending')}"
    if trading is Trading.HALTED:
        return HALTED, "TradingHalted"
    return READY, "AllConditionsTrue"


def ready_check(phase: str, reason: str, conditions: list[dict[str, Any]]) -> Check:
    """The aggregate: its reason is the phase's; its message names what is not ready."""
    if phase in (READY, HALTED):
        return Check.ok(reason, "every component is ready")
    waiting = [
        f"{condition['type']}: {condition.get('message') or condition.get('reason', '')}"
        for condition in conditions
        if condition["type"] in COMPONENT_CONDITIONS and condition["status"] != "True"
    ]
    return Check.failed(phase, "; ".join(waiting) or reason)


def market_status(
    current: dict[str, Any], checks: dict[str, Check], generation: int, trading: Trading
) -> dict[str, Any]:
    """The whole new status (conditions, phase, phaseReason, observedGeneration)."""
    at = now()
    conditions = merge_conditions(current.get("conditions") or [], checks, generation, at)
    phase, reason = phase_of(conditions, trading)
    conditions = merge_conditions(
        conditions, {READY_CONDITION: ready_check(phase, reason, conditions)}, generation, at
    )
    return {
        "phase": phase,
        "phaseReason": reason,
        "observedGeneration": generation,
        "conditions": conditions,
    }


def deleting_status(current: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    """The status while the finalizer works: phase Deleting, Ready False saying what the
    deletion waits for."""
    conditions = merge_conditions(
        current.get("conditions") or [],
        {READY_CONDITION: Check.failed(reason, message)},
        int(current.get("observedGeneration") or 0),
        now(),
    )
    return {"phase": DELETING, "phaseReason": reason, "conditions": conditions}


def deployment_check(deployment: dict[str, Any] | None, what: str) -> Check:
    """Ready when the Deployment's current generation has its one replica ready. Otherwise
    what the Deployment controller says: a ReplicaFailure (a quota, a Pod refused) or a
    Progressing False (ProgressDeadlineExceeded) gives its reason and message; else
    ReplicaNotReady with the Progressing message (which ReplicaSet is rolling out)."""
    if deployment is None:
        return Check.failed("Missing", f"the {what} Deployment does not exist")
    status = deployment.get("status") or {}
    observed = status.get("observedGeneration", 0)
    ready = status.get("readyReplicas", 0)
    if observed >= deployment["metadata"].get("generation", 0) and ready >= 1:
        return Check.ok("ReplicaReady", f"{ready} ready replica(s)")
    said = {found.get("type"): found for found in status.get("conditions") or []}
    progressing, failure = said.get("Progressing", {}), said.get("ReplicaFailure", {})
    if failure.get("status") == "True":
        stuck = failure
    elif progressing.get("status") == "False":
        stuck = progressing
    else:
        stuck = {"reason": "ReplicaNotReady", "message": progressing.get("message")}
    message = f"{ready} ready replica(s)"
    if stuck.get("message"):
        message += f"; Deployment: {stuck['message']}"
    return Check.failed(stuck.get("reason") or "ReplicaNotReady", message)
