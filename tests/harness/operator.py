"""The operator as a process (`python -m xch_operator`) on a test control plane, with what
it needs there (the Market CRD, its ServiceAccount) and the admin's view of Markets and
Deployments."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.harness.kube import ControlPlane, Rest
from tests.harness.processes import ROOT, ServiceProcess, free_port
from tests.harness.servers import as_user
from xch.market import API_GROUP, API_VERSION

CRD_FILE = ROOT / "charts" / "exchange" / "files" / "markets.exchange.dev.yaml"
RBAC_FILE = ROOT / "charts" / "exchange" / "files" / "operator-rbac.yaml"
EXAMPLE = ROOT / "examples" / "markets" / "btc-usd.yaml"
PLURAL = "markets"
OPERATOR_NAMESPACE = "xch-system"
OPERATOR_ACCOUNT = "xch-operator"
LEASE_SECONDS = 3
"""The tests' lease: a standby takes over 3 s after the holder's last renewal."""
LEASE_RETRY_SECONDS = 0.5

T = TypeVar("T")


def market_manifest(name: str, **spec: Any) -> dict[str, Any]:
    """The btc-usd example renamed, its spec fields overridden by `spec` (None removes one)."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data["metadata"] = {"name": name}
    for key, value in spec.items():
        if value is None:
            data["spec"].pop(key, None)
        else:
            data["spec"][key] = value
    return data


def wait_for(probe: Callable[[], T | None], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something other than None or False."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None and last is not False:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout} s (last: {last!r})")


def markets_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{base}/{name}" if name else base


def deployment_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


@dataclass
class Kube:
    """The admin's view of the test cluster, with Market and Deployment helpers."""

    rest: Rest

    def create_namespace(self, name: str) -> None:
        self.rest.create("/api/v1/namespaces", {"metadata": {"name": name}})

    def create_market(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        return self.rest.create(markets_path(namespace), manifest)

    def get_market(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.rest.get(markets_path(namespace, name))

    def patch_market(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.rest.patch(markets_path(namespace, name), patch)

    def delete_market(self, namespace: str, name: str) -> None:
        self.rest.delete(markets_path(namespace, name))

    def deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.rest.get(deployment_path(namespace, name))

    def set_ready(self, namespace: str, name: str, ready: int = 1) -> None:
        """Play the kubelet and the Deployment controller: report `ready` ready replicas."""
        live = self.rest.request("GET", deployment_path(namespace, name))
        status = {
            "observedGeneration": live["metadata"]["generation"],
            "replicas": 1,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": 1,
        }
        self.rest.patch(deployment_path(namespace, name) + "/status", {"status": status})

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        market = self.get_market(namespace, name) or {}
        status: dict[str, Any] = market.get("status") or {}
        return status

    def conditions(self, namespace: str, name: str) -> dict[str, str]:
        found = self.status(namespace, name).get("conditions") or []
        return {condition["type"]: condition["status"] for condition in found}

    def wait_conditions(
        self, namespace: str, name: str, timeout: float = 30.0, **expected: str
    ) -> dict[str, str]:
        """Wait until the Market's conditions include `expected` (type=status); return all."""

        def probe() -> dict[str, str] | None:
            conditions = self.conditions(namespace, name)
            matched = all(conditions.get(kind) == value for kind, value in expected.items())
            return conditions if matched else None

        return wait_for(probe, timeout, f"{name} conditions {expected}")

    def wait_phase(self, namespace: str, name: str, phase: str, timeout: float = 30.0) -> None:
        wait_for(lambda: self.status(namespace, name).get("phase") == phase, timeout,
                 f"{name} phase {phase}")  # fmt: skip


@dataclass
class OperatorProcess(ServiceProcess):
    """`python -m xch_operator` as a child process, watching one namespace."""

    kubeconfig: Path
    namespace: str
    redis_url: str
    postgres_dsn: str
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    lease_namespace: str = OPERATOR_NAMESPACE
    health_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    ready_path = "/healthz"
    ready_timeout = 30
    stop_timeout = 15

    def arguments(self) -> list[str]:
        return ["xch_operator"]

    @property
    def lease_name(self) -> str:
        return f"xch-operator-{self.namespace}"

    def log_text(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "EXCHANGE_OPERATOR_NAMESPACES": f'["{self.namespace}"]',
            "EXCHANGE_OPERATOR_REDIS_URL": as_user(self.redis_url, "operator"),
            "EXCHANGE_OPERATOR_ENGINE_REDIS_URL": as_user(self.redis_url, "engine"),
            "EXCHANGE_OPERATOR_POSTGRES_DSN": self.postgres_dsn,
            "EXCHANGE_OPERATOR_DRIFT_SECONDS": "3",
            "EXCHANGE_OPERATOR_RETRY_SECONDS": "0.5",
            "EXCHANGE_OPERATOR_HEALTH_HOST": "127.0.0.1",
            "EXCHANGE_OPERATOR_HEALTH_PORT": str(self.health_port),
            "EXCHANGE_OPERATOR_METRICS_PORT": str(self.metrics_port),
            # One Lease per watched namespace: each test's operators compete among themselves.
            "EXCHANGE_OPERATOR_LEASE_NAMESPACE": self.lease_namespace,
            "EXCHANGE_OPERATOR_LEASE_NAME": self.lease_name,
            "EXCHANGE_OPERATOR_LEASE_SECONDS": str(LEASE_SECONDS),
            "EXCHANGE_OPERATOR_RENEW_DEADLINE_SECONDS": "2",
            "EXCHANGE_OPERATOR_LEASE_RETRY_SECONDS": str(LEASE_RETRY_SECONDS),
            **self.env,
        }


def install_crd(kube: Kube) -> None:
    """The generated Market CRD, installed and Established."""
    crd = yaml.safe_load(CRD_FILE.read_text())
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    kube.rest.create(path, crd)

    def established() -> bool:
        live = kube.rest.request("GET", f"{path}/{crd['metadata']['name']}")
        conditions = (live.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, what="CRD Established")


def _rbac_rules(scope: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load(RBAC_FILE.read_text())[scope]
    return rules


def _binding(kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_ACCOUNT,
                      "namespace": OPERATOR_NAMESPACE}],
    }  # fmt: skip


def operator_identity(plane: ControlPlane, kube: Kube) -> Path:
    """A kubeconfig holding a token of the operator's ServiceAccount, bound to the chart's
    cluster rules (charts/exchange/files/operator-rbac.yaml) and to nothing else: as the chart
    binds it with operator.watchNamespaces set, `watch_namespace` granting the namespaced rules
    in each namespace it watches; its `leader` rules (the Lease) in its own namespace."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    accounts = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/serviceaccounts"
    kube.create_namespace(OPERATOR_NAMESPACE)
    kube.rest.create(accounts, {"metadata": {"name": OPERATOR_ACCOUNT}})
    kube.rest.create(f"{rbac}/clusterroles", {"metadata": {"name": OPERATOR_ACCOUNT},
                                              "rules": _rbac_rules("cluster")})  # fmt: skip
    kube.rest.create(f"{rbac}/clusterrolebindings", _binding("ClusterRole", OPERATOR_ACCOUNT))
    own = f"{rbac}/namespaces/{OPERATOR_NAMESPACE}"
    kube.rest.create(f"{own}/roles", {"metadata": {"name": OPERATOR_ACCOUNT},
                                      "rules": _rbac_rules("leader")})  # fmt: skip
    kube.rest.create(f"{own}/rolebindings",
                     _binding("Role", OPERATOR_ACCOUNT, OPERATOR_NAMESPACE))  # fmt: skip
    request = kube.rest.create(
        f"{accounts}/{OPERATOR_ACCOUNT}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
         "spec": {"expirationSeconds": 86400}},
    )  # fmt: skip
    user = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
    path = plane.base_dir / "operator.kubeconfig"
    return plane.write_kubeconfig(path, request["status"]["token"], user)


def watch_namespace(kube: Kube, namespace: str) -> None:
    """Create `namespace` with the chart's namespaced rules bound to the operator's account
    there (a Role and RoleBinding, as the chart makes for each of operator.watchNamespaces)."""
    kube.create_namespace(namespace)
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    role = {"metadata": {"name": OPERATOR_ACCOUNT}, "rules": _rbac_rules("namespaced")}
    kube.rest.create(f"{rbac}/roles", role)
    kube.rest.create(f"{rbac}/rolebindings", _binding("Role", OPERATOR_ACCOUNT, namespace))


@contextmanager
def watching_every_namespace(kube: Kube) -> Iterator[None]:
    """The chart without operator.watchNamespaces: the namespaced rules in a ClusterRole too,
    bound cluster-wide, for the block only (other tests must see a namespace's Role as the
    operator's only rights there)."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    name = f"{OPERATOR_ACCOUNT}-every-namespace"
    kube.rest.create(f"{rbac}/clusterroles",
                     {"metadata": {"name": name}, "rules": _rbac_rules("namespaced")})  # fmt: skip
    binding = _binding("ClusterRole", OPERATOR_ACCOUNT)
    binding["metadata"]["name"] = binding["roleRef"]["name"] = name
    kube.rest.create(f"{rbac}/clusterrolebindings", binding)
    try:
        yield
    finally:
        kube.rest.delete(f"{rbac}/clusterrolebindings/{name}")
        kube.rest.delete(f"{rbac}/clusterroles/{name}")


def start_operator(
    kubeconfig: Path,
    namespace: str,
    redis_url: str,
    postgres_dsn: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
) -> OperatorProcess:
    """Start `python -m xch_operator` watching `namespace` (`env`: more settings); return
    once /healthz answers."""
    process = OperatorProcess(
        kubeconfig=kubeconfig,
        namespace=namespace,
        redis_url=redis_url,
        postgres_dsn=postgres_dsn,
        log_file=log_dir / "operator.log",
        env=env or {},
    )
    process.start()
    try:
        process.wait_ready_blocking()
    except AssertionError:
        process.terminate()
        raise AssertionError(f"operator did not start:\n{process.log_tail()}") from None
    return process
