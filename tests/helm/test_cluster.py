"""The rendered chart on a real API server: server-side applied with strict field validation and
Pod Security admission, every Pod template admitted under `restricted`; the operator running
under the chart's own ServiceAccount and RBAC reconciles an example Market; and a real
`helm install` keeps its generated Secrets across upgrade, uninstall and reinstall."""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
import yaml

from tests.harness.kube import ApiError, ControlPlane, Rest
from tests.harness.operator import EXAMPLE, Kube, OperatorProcess, wait_for
from tests.harness.servers import RedisServer
from tests.helm.chart import CHART, EVERYTHING, PRODUCTION_VALUES, RELEASE, Helm, find, pod_specs
from tests.helm.cluster import Applier
from xch import keys

NAMESPACE = "exchange"
MARKETS_NAMESPACE = "markets"
RESTRICTED = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
}
# The operator's settings the test keeps from the chart: what it runs and where mm sends
# orders. Redis, PostgreSQL, ports and the watched namespace are the test's own.
CHART_OPERATOR_SETTINGS = (
    "EXCHANGE_OPERATOR_ENGINE_IMAGE",
    "EXCHANGE_OPERATOR_MM_IMAGE",
    "EXCHANGE_OPERATOR_IMAGE_PULL_POLICY",
    "EXCHANGE_OPERATOR_API_URL",
    "EXCHANGE_OPERATOR_MM_SECRET",
    "EXCHANGE_OPERATOR_LEASE_NAMESPACE",
)


@dataclass
class Installed:
    admin: Rest
    applier: Applier
    objects: list[dict[str, Any]]
    warnings: dict[str, list[str]]


def _crd_established(admin: Rest, name: str) -> bool:
    live = admin.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    conditions = (live.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def _restricted_namespace(admin: Rest, name: str) -> None:
    if admin.get(f"/api/v1/namespaces/{name}") is not None:
        return
    admin.create("/api/v1/namespaces", {"metadata": {"name": name, "labels": RESTRICTED}})
    # No controller-manager runs to create it, and Pod admission looks it up.
    admin.create(f"/api/v1/namespaces/{name}/serviceaccounts", {"metadata": {"name": "default"}})


def _apply_chart(
    applier: Applier, objects: list[dict[str, Any]], namespace: str
) -> dict[str, list[str]]:
    """Apply the CRD (once Established, the rest), each object's warnings by kind/name."""
    warnings: dict[str, list[str]] = {}
    crds = [obj for obj in objects if obj["kind"] == "CustomResourceDefinition"]
    assert [crd["metadata"]["name"] for crd in crds] == ["markets.exchange.dev"]
    for crd in crds:
        name = crd["metadata"]["name"]
        warnings[f"CustomResourceDefinition/{name}"] = applier.apply(crd, "")
        wait_for(partial(_crd_established, applier.rest, name), what=f"CRD {name} Established")
    for obj in objects:
        if obj["kind"] != "CustomResourceDefinition":
            warnings[f"{obj['kind']}/{obj['metadata']['name']}"] = applier.apply(obj, namespace)
    return warnings


def _admit_pods(admin: Rest, objects: list[dict[str, Any]], namespace: str) -> None:
    """Each workload's Pod template, created as a Pod (dry run)."""
    pods = f"/api/v1/namespaces/{namespace}/pods?dryRun=All"
    for where, spec in pod_specs(objects):
        admin.create(pods, {"metadata": {"name": where.split("/")[1]}, "spec": spec})


@pytest.fixture(scope="module")
def installed(helm: Helm, helm_cluster: ControlPlane) -> Installed:
    """The chart, every optional part on, applied to a namespace that enforces `restricted`."""
    admin = helm_cluster.admin()
    _restricted_namespace(admin, NAMESPACE)
    objects = helm.template(namespace=NAMESPACE, sets=EVERYTHING)
    applier = Applier(admin)
    return Installed(admin, applier, objects, _apply_chart(applier, objects, NAMESPACE))


def test_chart_applies_cleanly(installed: Installed) -> None:
    assert {where: found for where, found in installed.warnings.items() if found} == {}
    kinds = {where.split("/")[0] for where in installed.warnings}
    assert kinds >= {
        "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
        "Secret", "ConfigMap", "Deployment", "StatefulSet", "Service", "Ingress",
        "PodDisruptionBudget", "NetworkPolicy",
    }  # fmt: skip
    for obj in installed.objects:
        assert installed.admin.get(installed.applier.path(obj, NAMESPACE)) is not None


def test_pod_templates_are_admitted_as_restricted(installed: Installed) -> None:
    """Each workload's Pod template, created as a Pod (dry run) where `restricted` is enforced."""
    _admit_pods(installed.admin, installed.objects, NAMESPACE)
    pods = f"/api/v1/namespaces/{NAMESPACE}/pods?dryRun=All"
    # And the same check refuses a Pod that is not restricted.
    api = find(installed.objects, "Deployment", f"{RELEASE}-api")
    loose = copy.deepcopy(api["spec"]["template"]["spec"])
    del loose["containers"][0]["securityContext"]["capabilities"]
    with pytest.raises(ApiError) as refused:
        installed.admin.create(pods, {"metadata": {"name": "loose"}, "spec": loose})
    assert refused.value.status == 403
    assert "violates PodSecurity" in refused.value.message


def test_production_values_apply_cleanly(helm: Helm, installed: Installed) -> None:
    """values-production.yaml (external PostgreSQL, pull secrets, TLS Ingress, NetworkPolicies
    with a namespace selector) passes the same checks, in a namespace of its own."""
    namespace = "production"
    _restricted_namespace(installed.admin, namespace)
    # The operator's Roles go into the namespaces it watches.
    for watched in yaml.safe_load(PRODUCTION_VALUES.read_text())["operator"]["watchNamespaces"]:
        _restricted_namespace(installed.admin, watched)
    objects = helm.template(namespace=namespace, values=(PRODUCTION_VALUES,))
    warnings = _apply_chart(installed.applier, objects, namespace)
    assert {where: found for where, found in warnings.items() if found} == {}
    _admit_pods(installed.admin, objects, namespace)


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("readinesProbe", {}, "readinesProbe: field not declared in schema"),
        ("name", "API", 'Invalid value: "API"'),
    ],
)
def test_invalid_manifest_is_refused(
    installed: Installed, field: str, value: object, complaint: str
) -> None:
    """The apply is a real check: a misspelt field or a wrong value fails it."""
    api = copy.deepcopy(find(installed.objects, "Deployment", f"{RELEASE}-api"))
    api["spec"]["template"]["spec"]["containers"][0][field] = value
    with pytest.raises(ApiError) as refused:
        installed.applier.apply(api, NAMESPACE)
    assert complaint in refused.value.message


@pytest.mark.parametrize("example", sorted(EXAMPLE.parent.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_markets_are_valid(installed: Installed, example: Path) -> None:
    """The example Markets pass the installed CRD's schema and CEL rules (a dry run)."""
    market = yaml.safe_load(example.read_text())
    installed.applier.apply(market, NAMESPACE, dry_run=True)


def _chart_operator_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    deployment = find(objects, "Deployment", f"{RELEASE}-operator")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if e["name"] in CHART_OPERATOR_SETTINGS}


async def test_operator_under_chart_rbac_reconciles_example(
    installed: Installed,
    helm_cluster: ControlPlane,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    storage_dsn: str,
    tmp_path: Path,
) -> None:
    admin = installed.admin
    account = f"{RELEASE}-operator"
    token = admin.create(
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
         "spec": {"expirationSeconds": 3600}},
    )["status"]["token"]  # fmt: skip
    kubeconfig = helm_cluster.write_kubeconfig(
        tmp_path / "operator.kubeconfig", token, f"system:serviceaccount:{NAMESPACE}:{account}"
    )
    # Markets' namespaces may enforce `restricted` too: the operator's Pods must pass it.
    _restricted_namespace(admin, MARKETS_NAMESPACE)
    chart_env = _chart_operator_env(installed.objects)
    assert set(chart_env) == set(CHART_OPERATOR_SETTINGS)
    process = OperatorProcess(
        kubeconfig=kubeconfig,
        namespace=MARKETS_NAMESPACE,
        redis_url=redis_server.url,
        postgres_dsn=storage_dsn,
        log_file=tmp_path / "operator.log",
        env=chart_env,  # with the Lease in the release's namespace, under the chart's Role
    )
    process.start()
    try:
        process.wait_ready_blocking()  # /healthz
        market = yaml.safe_load(EXAMPLE.read_text())
        name = market["metadata"]["name"]
        installed.applier.apply(market, MARKETS_NAMESPACE)
        kube = Kube(admin)
        kube.wait_conditions(MARKETS_NAMESPACE, name, QueueReady="True", StorageReady="True")
        images, children = {}, []
        for component in ("engine", "mm"):
            deployment = f"{component}-{name}"
            live = wait_for(partial(kube.deployment, MARKETS_NAMESPACE, deployment),
                            what=f"{deployment} Deployment")  # fmt: skip
            container = live["spec"]["template"]["spec"]["containers"][0]
            images[component] = container["image"]
            if component == "mm":
                assert container["envFrom"][0]["secretRef"]["name"] == "exchange-mm"
            else:  # its Redis credentials, in a Secret the operator made next to it
                (redis_env,) = [e for e in container["env"] if "REDIS" in e["name"]]
                secret = redis_env["valueFrom"]["secretKeyRef"]
                stored = _secret_data(admin, MARKETS_NAMESPACE, secret["name"])[secret["key"]]
                assert base64.b64decode(stored).decode().startswith("redis://engine:")
            kube.set_ready(MARKETS_NAMESPACE, deployment)
            children.append(live)
        assert images == {"engine": "exchange/engine:0.1.0", "mm": "exchange/mm:0.1.0"}
        _admit_pods(admin, children, MARKETS_NAMESPACE)
        kube.wait_phase(MARKETS_NAMESPACE, name, "Ready")
        assert await redis_client.hexists(keys.MARKETS, name)
    except AssertionError:
        raise AssertionError(f"operator log:\n{process.log_tail()}") from None
    finally:
        process.terminate()


def _secret_data(admin: Rest, namespace: str, name: str) -> dict[str, str]:
    secret = admin.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
    assert secret is not None, name
    data: dict[str, str] = secret["data"]
    return data


def test_helm_install_keeps_generated_secrets(helm: Helm, helm_cluster: ControlPlane) -> None:
    """lookup at work: the JWT key, database and Redis passwords survive upgrade, uninstall and a
    reinstall under the same name (which adopts the kept Secrets)."""
    release, namespace = "kept", "kept"
    cluster_helm = Helm(helm.binary, helm.home, kubeconfig=helm_cluster.kubeconfig_path)
    admin = helm_cluster.admin()
    secrets = (
        f"{release}-exchange-jwt",
        f"{release}-exchange-database",
        f"{release}-exchange-redis",
    )
    chart = str(CHART)
    # The CRD is the `installed` fixture's here (one owner per cluster).
    no_crd = ("--set", "crds.create=false")
    install = ("install", release, chart, "--namespace", namespace, "--create-namespace", *no_crd)
    notes = cluster_helm.run(*install).stdout
    # NOTES.txt says what to do next, with this release's names.
    assert f"rollout status deployment/{release}-exchange-operator" in notes, notes
    assert f"kubectl -n {namespace} apply -f examples/markets/btc-usd.yaml" in notes, notes
    first = {name: _secret_data(admin, namespace, name) for name in secrets}
    assert len(first[secrets[1]]["password"]) > 40

    cluster_helm.run("upgrade", release, chart, "--namespace", namespace, *no_crd,
                     "--set", "api.replicas=3")  # fmt: skip
    assert {name: _secret_data(admin, namespace, name) for name in secrets} == first
    api = admin.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{release}-exchange-api")
    assert api is not None and api["spec"]["replicas"] == 3

    cluster_helm.run("uninstall", release, "--namespace", namespace)
    assert (
        admin.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{release}-exchange-api")
        is None
    )
    assert {name: _secret_data(admin, namespace, name) for name in secrets} == first
    cluster_helm.run(*install)
    assert {name: _secret_data(admin, namespace, name) for name in secrets} == first
