"""Engine image upgrades in batches, and the annotations that steer one Market by hand.

A new engine image (the operator's setting, i.e. the chart's image tag) would restart every
market at once if each Market's reconcile applied it. Instead a Market whose engine runs
another image moves to the new one only while fewer than `batch` engine Deployments are
rolling to it: one that has the new image but has not finished rolling out (every replica
updated, one ready) holds its place in the batch. The count is read from the cluster (a
listing shared for a second), so an operator restarted mid-upgrade goes on where it was; a
lock makes "count, then apply" one step. A Market kept back keeps its image, and every
other change still applies to it.

Annotations on a Market (outside `exchange.dev/`, where Kopf keeps its own state and which
it leaves out when it looks for changes):

- `operator.exchange.dev/restartedAt: <any new value>` restarts the market's Pods (copied
  into their templates, as `kubectl rollout restart` does);
- `operator.exchange.dev/reconcile: paused` leaves the Market's children as they are (no
  apply, no repair, no image upgrade) until the annotation is removed; status.paused says
  so. Deleting a paused Market still winds it down.

status.engineImage is the image the engine runs (once rolled out), status.pendingEngineImage
the one it waits to roll to.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from xch_operator import resources
from xch_operator.apply import update_status
from xch_operator.kube import KubeClient

ANNOTATION_PREFIX = "operator.exchange.dev"
RESTARTED_AT = f"{ANNOTATION_PREFIX}/restartedAt"
RECONCILE = f"{ANNOTATION_PREFIX}/reconcile"
PAUSED = "paused"
ENGINE_CONTAINER = "engine"


def is_paused(annotations: Mapping[str, str]) -> bool:
    return annotations.get(RECONCILE) == PAUSED


def image_of(deployment: dict[str, Any]) -> str:
    """The image the engine Deployment's Pod template runs."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    image: str = next(c["image"] for c in containers if c["name"] == ENGINE_CONTAINER)
    return image


def rolled_out(deployment: dict[str, Any]) -> bool:
    """Every replica runs the current template (none of an older one is left) and one is
    ready: the leader (a standby is never ready)."""
    status = deployment.get("status") or {}
    wanted = int(deployment["spec"].get("replicas", 1))
    counts = [int(status.get(key, 0)) for key in ("updatedReplicas", "replicas")]
    return (
        int(status.get("observedGeneration", 0)) >= int(deployment["metadata"]["generation"])
        and counts == [wanted, wanted]
        and int(status.get("readyReplicas", 0)) >= 1
    )


LIST_SECONDS = 1.0
"""How long one listing of the engines answers for: every Market kept back asks again at
each retry, and they share a listing instead of each listing every engine."""


@dataclass
class Rollouts:
    """The gate every engine image change passes (one per operator)."""

    kube: KubeClient
    namespaces: tuple[str, ...]
    """Watched namespaces; empty: every namespace."""
    batch: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _rolling: dict[str, set[str]] = field(default_factory=dict)
    """By image: the engine Deployments ("namespace/name") rolling to it, as last listed,
    plus those admitted since (listed at `_listed_at`)."""
    _listed_at: float = 0.0

    async def _engines(self) -> list[dict[str, Any]]:
        selector = (
            f"app.kubernetes.io/name=engine,app.kubernetes.io/managed-by={resources.MANAGED_BY}"
        )
        if not self.namespaces:
            return await self.kube.list("/apis/apps/v1/deployments", selector)
        found: list[dict[str, Any]] = []
        for namespace in self.namespaces:
            found += await self.kube.list(
                f"/apis/apps/v1/namespaces/{namespace}/deployments", selector
            )
        return found

    async def rolling_to(self, image: str) -> set[str]:
        """The engine Deployments rolling to `image` and not done (a listing at most
        LIST_SECONDS old: one that has just finished may still count, never one less)."""
        if time.monotonic() - self._listed_at > LIST_SECONDS:
            self._rolling = {}
            for engine in await self._engines():
                if not rolled_out(engine):
                    meta = engine["metadata"]
                    key = f"{meta['namespace']}/{meta['name']}"
                    self._rolling.setdefault(image_of(engine), set()).add(key)
            self._listed_at = time.monotonic()
        return self._rolling.setdefault(image, set())

    async def admits(self, image: str, engine: str) -> bool:
        """True if `engine` ("namespace/name") may start rolling to `image` now, and it then
        counts as rolling. Call with `lock` held, and apply the Deployment before releasing
        it."""
        rolling = await self.rolling_to(image)
        if len(rolling) >= self.batch:
            return False
        rolling.add(engine)
        return True


@dataclass(frozen=True, slots=True)
class EngineImage:
    """The image a Market's engine is to run now, and the one it waits to run."""

    now: str
    waiting_for: str | None = None


@asynccontextmanager
async def engine_image(
    rollouts: Rollouts, live: dict[str, Any] | None, target: str
) -> AsyncIterator[EngineImage]:
    """The image to apply: `target` for a new engine, one already on it, or one admitted to
    the batch; otherwise the image it runs. Apply the Deployment inside the block: while
    an image changes, the block holds the batch's lock."""
    if live is None or image_of(live) == target:
        yield EngineImage(target)
        return
    meta = live["metadata"]
    async with rollouts.lock:
        if await rollouts.admits(target, f"{meta['namespace']}/{meta['name']}"):
            yield EngineImage(target)
        else:
            yield EngineImage(image_of(live), waiting_for=target)


async def note_status(
    kube: KubeClient, path: str, engine: dict[str, Any] | None, **fields: Any
) -> None:
    """Set status `fields` (None removes one: `paused`, `pendingEngineImage`), and
    status.engineImage to what the engine runs once it has rolled out."""

    def edit(live: dict[str, Any]) -> dict[str, Any]:
        status = dict(fields)
        if engine is not None and rolled_out(engine):
            status["engineImage"] = image_of(engine)
        return status

    await update_status(kube, path, edit)
