"""The operator's test cluster: one control plane per session (etcd + kube-apiserver), the
Market CRD, the operator's RBAC bound to a ServiceAccount (cluster rules cluster-wide, the
namespaced ones in each test's namespace only), and, per test, a fresh namespace and an
operator process that runs with that ServiceAccount's token, not as admin."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio

from storage.migrate import upgrade_sync
from tests.harness.kube import ControlPlane, running_control_plane
from tests.harness.operator import (
    Kube,
    OperatorProcess,
    install_crd,
    operator_identity,
    start_operator,
    watch_namespace,
)
from tests.harness.servers import PostgresServer, RedisServer

_namespaces = itertools.count(1)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    with running_control_plane("xch-kube-") as plane:
        yield plane


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Kube:
    return Kube(control_plane.admin())


@pytest.fixture(scope="session")
def market_crd(kube: Kube) -> None:
    install_crd(kube)


@pytest.fixture(scope="session")
def operator_kubeconfig(control_plane: ControlPlane, kube: Kube, market_crd: None) -> Path:
    return operator_identity(control_plane, kube)


@pytest.fixture(scope="session")
def storage_dsn(postgres_server: PostgresServer) -> str:
    """The session's PostgreSQL with the platform's schema migrated to head."""
    upgrade_sync(postgres_server.url)
    return postgres_server.url


@pytest.fixture
def namespace(kube: Kube) -> str:
    """A fresh namespace, which the operator may manage (the chart's Role there)."""
    name = f"t{next(_namespaces)}"
    watch_namespace(kube, name)
    return name


@pytest.fixture
async def operator(
    operator_kubeconfig: Path,
    namespace: str,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    storage_dsn: str,
    tmp_path: Path,
) -> AsyncIterator[OperatorProcess]:
    """An operator watching this test's namespace, with an emptied Redis."""
    process = start_operator(
        operator_kubeconfig, namespace, redis_server.url, storage_dsn, tmp_path
    )
    try:
        yield process
    finally:
        process.terminate()
