"""Make a Market's children match their builders: adopt, diff, then server-side apply.

A child is applied only when the live object differs from the desired one (every field the
builder sets, compared as a subset of the live object, which carries defaults and status as
well), so a periodic drift check costs reads, not writes. A child whose builder says None is
deleted. A child of the same name that this Market does not own is refused, never taken over.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kopf

from xch_operator.kube import KubeClient, KubeError, resource_path
from xch_operator.quantity import same_amount

PLURALS = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "Deployment": "deployments",
    "PodDisruptionBudget": "poddisruptionbudgets",
}
API_VERSIONS = {"Deployment": "apps/v1", "PodDisruptionBudget": "policy/v1"}


class NotOurs(kopf.PermanentError):
    """A child's name is taken by an object this Market does not own."""


class ApplyFailed(Exception):
    """The API server refused a child (invalid, forbidden, over a quota): `key` names it."""

    def __init__(self, key: str, error: KubeError) -> None:
        super().__init__(f"{key}: {error}")
        self.key = key


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one child (created, updated, deleted or unchanged), and the object
    as it now is (None: it does not exist)."""

    key: str
    action: str
    live: dict[str, Any] | None


def child_path(kind: str, namespace: str, name: str) -> str:
    api_version = API_VERSIONS.get(kind, "v1")
    return resource_path(api_version, PLURALS[kind], namespace, name)


QUANTITY_MAPS = frozenset({"requests", "limits"})
"""Keys whose values are resource quantities, compared as amounts."""


def is_subset(desired: Any, live: Any, quantities: bool = False) -> bool:
    """True if every value `desired` sets is the same in `live` (lists item by item; the
    values of `requests` and `limits` as amounts, which the API server rewrites)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            key in live and is_subset(value, live[key], quantities or key in QUANTITY_MAPS)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(is_subset(want, have) for want, have in zip(desired, live, strict=True))
        )
    return bool(desired == live) or (quantities and same_amount(desired, live))


CLIENT_ERROR = 4
"""HTTP 4xx: the API server refused the object; 5xx and connection errors are retried."""


def owned_by(live: dict[str, Any], owner_uid: str) -> bool:
    references = live.get("metadata", {}).get("ownerReferences") or []
    return any(reference.get("uid") == owner_uid for reference in references)


async def ensure_child(
    kube: KubeClient, owner: kopf.Body, key: str, desired: dict[str, Any] | None
) -> Outcome:
    kind, name = key.split("/", 1)
    namespace = owner.metadata.namespace
    assert namespace is not None, "Markets are namespaced"
    path = child_path(kind, namespace, name)
    live = await kube.get(path)
    if live is not None and not owned_by(live, owner.metadata.uid or ""):
        raise NotOurs(f"{key} exists and is not owned by this Market")
    if desired is None:
        if live is None:
            return Outcome(key, "unchanged", None)
        await kube.delete(path)
        return Outcome(key, "deleted", None)
    kopf.adopt(desired, owner=owner)
    if live is not None and is_subset(desired, live):
        return Outcome(key, "unchanged", live)
    try:
        applied = await kube.apply(path, desired)
    except KubeError as exc:
        if exc.status // 100 != CLIENT_ERROR:
            raise
        raise ApplyFailed(key, exc) from exc
    return Outcome(key, "created" if live is None else "updated", applied)


async def ensure_children(
    kube: KubeClient, owner: kopf.Body, children: list[tuple[str, dict[str, Any] | None]]
) -> list[Outcome]:
    """Apply or delete each child in order; returns what changed."""
    return [await ensure_child(kube, owner, key, desired) for key, desired in children]


FORBIDDEN = 403


async def get_or_forbidden(kube: KubeClient, path: str) -> dict[str, Any] | None:
    """A Market's child, or None if it is gone or out of sight. Watching named namespaces,
    the operator's rights to the children are a Role in each, which a namespace deletion
    deletes along with the children: the Market (cluster-wide rights) must still wind down."""
    try:
        return await kube.get(path)
    except KubeError as exc:
        if exc.status == FORBIDDEN:
            return None
        raise


async def delete_children(kube: KubeClient, namespace: str, keys: list[str]) -> None:
    """Delete children by kind/name, without waiting for the garbage collector. One out of
    sight (see get_or_forbidden) is left to the garbage collector: the Market owns it and is
    going."""
    for key in keys:
        kind, name = key.split("/", 1)
        try:
            await kube.delete(child_path(kind, namespace, name))
        except KubeError as exc:
            if exc.status != FORBIDDEN:
                raise


StatusEdit = Callable[[dict[str, Any]], dict[str, Any]]


async def update_status(kube: KubeClient, path: str, edit: StatusEdit, attempts: int = 5) -> None:
    """Re-read the object, compute its new status with `edit(live object)`, and patch the
    status subresource only if it changed, guarded by resourceVersion (a conflict re-reads
    and tries again). Status writers thus never overwrite each other's conditions."""
    for _ in range(attempts):
        live = await kube.get(path)
        if live is None:
            return
        current = live.get("status") or {}
        status = edit(live)
        if all(current.get(key) == value for key, value in status.items()):
            return
        version = live["metadata"]["resourceVersion"]
        try:
            await kube.merge_patch(
                f"{path}/status", {"metadata": {"resourceVersion": version}, "status": status}
            )
        except KubeError as exc:
            if exc.status == 409:
                continue
            raise
        return
    raise kopf.TemporaryError(f"status of {path} kept changing under us", delay=1)
