"""Two operators at once on the real API server: only the holder of the Lease acts; killed,
the standby takes over within the lease duration; stopped cleanly, it hands the Lease over;
deposed (its Lease taken), it stops acting at once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.harness.operator import (
    LEASE_RETRY_SECONDS,
    LEASE_SECONDS,
    OPERATOR_NAMESPACE,
    Kube,
    OperatorProcess,
    market_manifest,
    start_operator,
    wait_for,
)
from tests.harness.servers import RedisServer

HOLDS = "holds lease"
RECONCILED = "Handler 'reconcile'"
DEPOSED_EXIT = 3


def _lease_path(process: OperatorProcess) -> str:
    return (
        f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NAMESPACE}/leases/{process.lease_name}"
    )


def _lease(kube: Kube, process: OperatorProcess) -> dict[str, Any]:
    lease = kube.rest.get(_lease_path(process))
    assert lease is not None
    spec: dict[str, Any] = lease["spec"]
    return spec


def _provisioned(kube: Kube, namespace: str, name: str) -> None:
    kube.create_market(namespace, market_manifest(name))
    kube.wait_conditions(namespace, name, QueueReady="True", StorageReady="True")


def _second(
    first: OperatorProcess, kubeconfig: Path, redis_server: RedisServer, dsn: str, where: Path
) -> OperatorProcess:
    where.mkdir()
    return start_operator(kubeconfig, first.namespace, redis_server.url, dsn, where)


async def test_only_the_leader_acts_and_the_standby_takes_over(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    operator_kubeconfig: Path,
    redis_server: RedisServer,
    storage_dsn: str,
    tmp_path: Path,
) -> None:
    wait_for(lambda: HOLDS in operator.log_text(), what="the first operator leads")
    standby = _second(operator, operator_kubeconfig, redis_server, storage_dsn, tmp_path / "b")
    try:
        leader = _lease(kube, operator)["holderIdentity"]
        _provisioned(kube, namespace, "one-usd")
        # Several drift ticks (3 s) and lease rounds: the standby never runs a handler.
        time.sleep(4)
        assert RECONCILED in operator.log_text()
        assert RECONCILED not in standby.log_text() and HOLDS not in standby.log_text()
        assert _lease(kube, operator)["holderIdentity"] == leader

        operator.kill()
        killed = time.monotonic()
        wait_for(lambda: _lease(kube, operator)["holderIdentity"] != leader,
                 timeout=3 * LEASE_SECONDS, what="the standby takes the Lease")  # fmt: skip
        took = time.monotonic() - killed
        # Expiry runs from the standby's sight of the last renewal (at most one retry after
        # it), and it tries once per retry: the lease duration plus two retries at most.
        slack = 2 * LEASE_RETRY_SECONDS
        assert LEASE_SECONDS - slack < took < LEASE_SECONDS + slack + 0.5, took
        _provisioned(kube, namespace, "two-usd")
        assert RECONCILED in standby.log_text()

        standby.terminate()  # a clean stop releases the Lease: nobody holds it
        assert not _lease(kube, operator).get("holderIdentity")
    finally:
        standby.terminate()


async def test_a_clean_stop_hands_over_at_once(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    operator_kubeconfig: Path,
    redis_server: RedisServer,
    storage_dsn: str,
    tmp_path: Path,
) -> None:
    wait_for(lambda: HOLDS in operator.log_text(), what="the first operator leads")
    standby = _second(operator, operator_kubeconfig, redis_server, storage_dsn, tmp_path / "b")
    try:
        operator.terminate()
        stopped = time.monotonic()
        wait_for(lambda: HOLDS in standby.log_text(), what="the standby leads")
        assert time.monotonic() - stopped < LEASE_SECONDS / 2
        _provisioned(kube, namespace, "one-usd")
    finally:
        standby.terminate()


def test_a_deposed_leader_exits(kube: Kube, operator: OperatorProcess) -> None:
    """Its Lease held by another (as after a partition that outlasted it), the operator stops
    within the renew deadline, whatever it was doing."""
    wait_for(lambda: HOLDS in operator.log_text(), what="the operator leads")
    lease = kube.rest.get(_lease_path(operator))
    assert lease is not None
    lease["spec"]["holderIdentity"] = "another"
    kube.rest.request("PUT", _lease_path(operator), lease)
    assert operator.process is not None
    wait_for(lambda: operator.process is not None and operator.process.poll() is not None,
             timeout=LEASE_SECONDS + 2, what="the deposed operator exits")  # fmt: skip
    assert operator.process.returncode == DEPOSED_EXIT
