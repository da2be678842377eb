"""Fixtures of the chart's tests: helm, and a control plane of their own (etcd + kube-apiserver)
that the rendered chart is applied to."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.migrate import upgrade_sync
from tests.harness.kube import ControlPlane, running_control_plane
from tests.harness.servers import PostgresServer
from tests.helm.chart import Helm, helm_binary


@pytest.fixture(scope="session")
def helm() -> Iterator[Helm]:
    """helm with no cluster: lint and template."""
    with tempfile.TemporaryDirectory(prefix="xch-helm-") as home:
        yield Helm(helm_binary(), Path(home))


@pytest.fixture(scope="session")
def helm_cluster() -> Iterator[ControlPlane]:
    with running_control_plane("xch-helm-kube-") as plane:
        yield plane


@pytest.fixture(scope="session")
def storage_dsn(postgres_server: PostgresServer) -> str:
    """The session's PostgreSQL with the platform's schema migrated to head (as dbproc does
    when it starts in the cluster)."""
    upgrade_sync(postgres_server.url)
    return postgres_server.url
