"""Leader election on a coordination.k8s.io Lease, the way client-go's leaderelection does it.

Kopf's peering is not an election: an operator pauses while it sees a peer of higher
priority, and peers of the same priority all freeze (nobody serves the cluster), so two
replicas of one Deployment cannot use it. Here every replica competes for one Lease:

- The holder renews it every `retry` seconds. If it has not renewed for `renew_deadline`
  seconds it stops acting at once (the process exits; Kubernetes restarts it as a standby).
- A standby takes the Lease only once it has seen no change to it for the duration the holder
  declared (`leaseDurationSeconds`), measured on its own clock from when it saw the last
  change, so clock skew between nodes does not matter. As `renew_deadline` is shorter than
  the duration, a holder that can no longer renew gives up before anyone else takes over.
- Every write carries the resourceVersion it read: of two candidates, one write wins.
- A holder that stops on SIGTERM releases the Lease (no holder): a standby takes it at once.
"""

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from xch_operator.kube import KubeClient, KubeError, resource_path

log = logging.getLogger(__name__)

CONFLICT = 409
TRANSIENT = (KubeError, aiohttp.ClientError, TimeoutError)
"""What a failed attempt raises: it counts as not holding the Lease this time."""


@dataclass(frozen=True, slots=True)
class Timing:
    lease_seconds: int
    """How long a holder's last renewal keeps everyone else out."""
    renew_deadline: float
    """How long a holder keeps acting without a successful renewal (< lease_seconds)."""
    retry: float
    """How often the holder renews and a standby tries to take over."""


def new_identity() -> str:
    """The Pod's name (its hostname) and a random suffix: a restarted process is a new
    candidate, never mistaken for the one that held the Lease before."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def micro_time() -> str:
    """A Kubernetes MicroTime: RFC 3339 with microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Elector:
    def __init__(
        self, kube: KubeClient, namespace: str, name: str, identity: str, timing: Timing
    ) -> None:
        self.kube = kube
        self.path = resource_path("coordination.k8s.io/v1", "leases", namespace)
        self.name = name
        self.identity = identity
        self.timing = timing
        self._seen_version = ""
        self._seen_at = 0.0

    async def acquire(self) -> None:
        """Return once this candidate holds the Lease."""
        while not await self._attempt():
            await asyncio.sleep(self.timing.retry)
        log.info("leader election: %s holds lease %s", self.identity, self.name)

    async def keep(self, on_lost: Callable[[], None]) -> None:
        """Renew the Lease until cancelled; call `on_lost` once renewals have failed for
        `renew_deadline` seconds (or another candidate holds it)."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.timing.retry)
            left = self.timing.renew_deadline - (time.monotonic() - renewed)
            if left > 0 and await self._attempt(timeout=left):
                renewed = time.monotonic()
            elif time.monotonic() - renewed >= self.timing.renew_deadline:
                log.critical("leader election: %s lost lease %s", self.identity, self.name)
                on_lost()
                return

    async def release(self) -> None:
        """Give the Lease up (no holder), if this candidate still holds it."""
        try:
            live = await self.kube.get(f"{self.path}/{self.name}")
            if live is None or (live.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            now = micro_time()
            spec = {"leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now}
            await self.kube.replace(f"{self.path}/{self.name}", {**live, "spec": spec})
        except TRANSIENT as exc:
            log.warning("leader election: release of %s failed: %s", self.name, exc)

    async def _attempt(self, timeout: float | None = None) -> bool:
        """One try to take or renew the Lease: True if this candidate holds it now."""
        try:
            async with asyncio.timeout(timeout):
                return await self._take_or_renew()
        except TRANSIENT as exc:
            log.warning("leader election: lease %s not taken or renewed: %s", self.name, exc)
            return False

    async def _take_or_renew(self) -> bool:
        live = await self.kube.get(f"{self.path}/{self.name}")
        now = micro_time()
        if live is None:
            lease = {"metadata": {"name": self.name}, "spec": self._spec(now, now, 0)}
            return await self._write(self.kube.create(self.path, lease))
        spec = live.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        self._observe(live["metadata"]["resourceVersion"])
        if holder == self.identity:
            transitions = int(spec.get("leaseTransitions") or 0)
            body = {**live, "spec": self._spec(spec.get("acquireTime") or now, now, transitions)}
        elif holder and not self._expired(float(spec.get("leaseDurationSeconds") or 0)):
            return False
        else:
            transitions = int(spec.get("leaseTransitions") or 0) + 1
            body = {**live, "spec": self._spec(now, now, transitions)}
        return await self._write(self.kube.replace(f"{self.path}/{self.name}", body))

    def _spec(self, acquired: str, renewed: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.timing.lease_seconds,
            "acquireTime": acquired,
            "renewTime": renewed,
            "leaseTransitions": transitions,
        }

    def _observe(self, version: str) -> None:
        """The Lease's expiry runs from when this candidate first saw its current version."""
        if version != self._seen_version:
            self._seen_version = version
            self._seen_at = time.monotonic()

    def _expired(self, duration: float) -> bool:
        return time.monotonic() > self._seen_at + duration

    @staticmethod
    async def _write(call: Awaitable[dict[str, Any]]) -> bool:
        """False if another candidate wrote the Lease first (409 Conflict)."""
        try:
            await call
        except KubeError as exc:
            if exc.status == CONFLICT:
                return False
            raise
        return True
