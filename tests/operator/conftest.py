"""The operator's test cluster: one control plane per session (etcd + kube-apiserver), the
Market CRD, the operator's RBAC bound to a ServiceAccount, and, per test, a fresh namespace
and an operator process that runs with that ServiceAccount's token, not as admin."""

from __future__ import annotations

import itertools
import shutil
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio
import yaml

from storage.migrate import upgrade_sync
from tests.kube import ControlPlane, start_control_plane
from tests.operator.harness import (
    CRD_FILE,
    RBAC_FILE,
    Kube,
    OperatorProcess,
    wait_for,
)
from tests.servers import PostgresServer, RedisServer

OPERATOR_NAMESPACE = "xch-system"
OPERATOR_ACCOUNT = "xch-operator"
_namespaces = itertools.count(1)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    base_dir = Path(tempfile.mkdtemp(prefix="xch-kube-"))
    try:
        plane = start_control_plane(base_dir)
        try:
            yield plane
        finally:
            plane.stop()
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Kube:
    return Kube(control_plane.admin())


@pytest.fixture(scope="session")
def market_crd(kube: Kube) -> None:
    """The generated CRD, installed and Established."""
    crd = yaml.safe_load(CRD_FILE.read_text())
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    kube.rest.create(path, crd)

    def established() -> bool:
        live = kube.rest.request("GET", f"{path}/{crd['metadata']['name']}")
        conditions = (live.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, what="CRD Established")


@pytest.fixture(scope="session")
def operator_kubeconfig(control_plane: ControlPlane, kube: Kube, market_crd: None) -> Path:
    """A kubeconfig holding a token of the operator's ServiceAccount, bound to the chart's
    ClusterRole rules (charts/exchange/files/operator-rbac.yaml) and to nothing else."""
    rules = yaml.safe_load(RBAC_FILE.read_text())["rules"]
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    accounts = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/serviceaccounts"
    kube.create_namespace(OPERATOR_NAMESPACE)
    kube.rest.create(accounts, {"metadata": {"name": OPERATOR_ACCOUNT}})
    kube.rest.create(
        f"{rbac}/clusterroles", {"metadata": {"name": OPERATOR_ACCOUNT}, "rules": rules}
    )
    kube.rest.create(
        f"{rbac}/clusterrolebindings",
        {
            "metadata": {"name": OPERATOR_ACCOUNT},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": OPERATOR_ACCOUNT,
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": OPERATOR_ACCOUNT,
                    "namespace": OPERATOR_NAMESPACE,
                }
            ],
        },
    )
    request = kube.rest.create(
        f"{accounts}/{OPERATOR_ACCOUNT}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
         "spec": {"expirationSeconds": 86400}},
    )  # fmt: skip
    user = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
    path = control_plane.base_dir / "operator.kubeconfig"
    return control_plane.write_kubeconfig(path, request["status"]["token"], user)


@pytest.fixture(scope="session")
def storage_dsn(postgres_server: PostgresServer) -> str:
    """The session's PostgreSQL with the platform's schema migrated to head."""
    upgrade_sync(postgres_server.url)
    return postgres_server.url


@pytest.fixture
def namespace(kube: Kube) -> str:
    name = f"t{next(_namespaces)}"
    kube.create_namespace(name)
    return name


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_operator(
    operator_kubeconfig: Path,
    namespace: str,
    redis_server: RedisServer,
    storage_dsn: str,
    log_dir: Path,
) -> OperatorProcess:
    process = OperatorProcess(
        kubeconfig=operator_kubeconfig,
        namespace=namespace,
        redis_url=redis_server.url,
        postgres_dsn=storage_dsn,
        log_file=log_dir / "operator.log",
    )
    process.start()
    try:
        wait_for(lambda: _healthy(process.health_port), timeout=30, what="operator /healthz")
    except AssertionError:
        process.stop()
        raise AssertionError(f"operator did not start:\n{process.log_tail()}") from None
    return process


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
    process = start_operator(operator_kubeconfig, namespace, redis_server, storage_dsn, tmp_path)
    try:
        yield process
    finally:
        process.stop()
