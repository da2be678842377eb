"""Engine and market-maker image upgrades in batches, and the annotations that steer one
Market by hand.

A new engine image (the operator's setting, i.e. the chart's image tag) would restart every
market at once if each Market's reconcile applied it. Instead a Market whose engine runs
another image moves to the new one only while fewer than `batch` engine Deployments are
rolling to it: one that has the new image but has not finished rolling out (every replica
updated, one ready) holds its place in the batch. The count is read from the cluster (a
listing shared for a second), so an operator restarted mid-upgrade goes on where it was; a
lock makes "count, then apply" one step. A Market kept back keeps its image, and every
other change still applies to it. Market makers' images roll the same way, in batches of
the same size counted among the market-maker Deployments.

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
ENGINE = "engine"
MARKET_MAKER = "mm"
"""Components rolled in batches: each is the app.kubernetes.io/name of its Deployments and
the name of their container."""


def is_paused(annotations: Mapping[str, str]) -> bool:
    return annotations.get(RECONCILE) == PAUSED


def image_of(deployment: dict[str, Any], component: str = ENGINE) -> str:
    """The image the Deployment's Pod template runs in `component`'s container."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    image: str = next(c["image"] for c in containers if c["name"] == component)
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
    """The gate every image change of one component passes (one per operator and
    component)."""

    kube: KubeClient
    namespaces: tuple[str, ...]
    """Watched namespaces; empty: every namespace."""
    batch: int
    component: str = ENGINE
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _rolling: dict[str, set[str]] = field(default_factory=dict)
    """By image: the component's Deployments ("namespace/name") rolling to it, as last listed,
    plus those admitted since (listed at `_listed_at`)."""
    _listed_at: float = 0.0

    async def _deployments(self) -> list[dict[str, Any]]:
        selector = (
            f"app.kubernetes.io/name={self.component},"
            f"app.kubernetes.io/managed-by={resources.MANAGED_BY}"
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
        """The Deployments rolling to `image` and not done (a listing at most
        LIST_SECONDS old: one that has just finished may still count, never one less)."""
        if time.monotonic() - self._listed_at > LIST_SECONDS:
            self._rolling = {}
            for deployment in await self._deployments():
                if not rolled_out(deployment):
                    meta = deployment["metadata"]
                    key = f"{meta['namespace']}/{meta['name']}"
                    self._rolling.setdefault(image_of(deployment, self.component), set()).add(key)
            self._listed_at = time.monotonic()
        return self._rolling.setdefault(image, set())

    async def admits(self, image: str, deployment: str) -> bool:
        """True if `deployment` ("namespace/name") may start rolling to `image` now, and it
        then counts as rolling. Call with `lock` held, and apply the Deployment before releasing
        it."""
        rolling = await self.rolling_to(image)
        if len(rolling) >= self.batch:
            return False
        rolling.add(deployment)
        return True


@dataclass(frozen=True, slots=True)
class Image:
    """The image a Market's engine or market maker is to run now, and the one it waits to
    run."""

    now: str
    waiting_for: str | None = None


@asynccontextmanager
async def image_to_run(
    rollouts: Rollouts, live: dict[str, Any] | None, target: str
) -> AsyncIterator[Image]:
    """The image to apply: `target` for a new Deployment, one already on it, or one admitted
    to the batch; otherwise the image it runs. Apply the Deployment inside the block: while
    an image changes, the block holds the batch's lock."""
    if live is None or image_of(live, rollouts.component) == target:
        yield Image(target)
        return
    meta = live["metadata"]
    async with rollouts.lock:
        if await rollouts.admits(target, f"{meta['namespace']}/{meta['name']}"):
            yield Image(target)
        else:
            yield Image(image_of(live, rollouts.component), waiting_for=target)


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
