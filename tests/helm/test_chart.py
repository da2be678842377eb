"""The chart offline: helm lint, the values schema, and what every rendering must hold."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from api.config import Settings as ApiSettings
from dbproc.config import Settings as DbprocSettings
from tests.harness.operator import RBAC_FILE
from tests.helm.chart import (
    EVERYTHING,
    PRODUCTION_VALUES,
    RELEASE,
    ROOT,
    Helm,
    HelmError,
    find,
    pod_specs,
)
from ws.config import Settings as WsSettings
from xch_operator.config import Settings as OperatorSettings

SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"


@pytest.mark.parametrize("production", [False, True], ids=["default", "production"])
def test_lint_strict(helm: Helm, production: bool) -> None:
    args = ["lint", "--strict", "--kube-version", "v1.34.0", str(PRODUCTION_VALUES.parent)]
    if production:
        args += ["--values", str(PRODUCTION_VALUES)]
    done = helm.run(*args)
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


@pytest.mark.parametrize(
    ("assignment", "complaint"),
    [
        ("api.replicas=0", "api/replicas"),
        ("api.replicas=two", "api/replicas"),
        ("image.tag=latest", "image/tag"),
        ("image.pullPolicy=Sometimes", "image/pullPolicy"),
        ("redis.appendfsync=no", "redis/appendfsync"),
        ("api.resources.requests.memory=lots", "api/resources/requests/memory"),
        ("timescaledb.storage.size=20GB", "timescaledb/storage/size"),
        ("operator.watchNamespaces[0]=Not_A_Namespace", "operator/watchNamespaces/0"),
        ("api.corsOrigins[0]=example.com", "api/corsOrigins/0"),
        ("api.trustedProxies[0]=ingress-nginx", "api/trustedProxies/0"),
        ("api.replicaCount=2", "replicaCount"),
        ("api.adminEmails[0]=admin@example.com", "adminEmails"),  # retired: no admin by email
        ("redis.enabled=false", "redis/externalUrl"),
        ("timescaledb.enabled=false", "externalDatabase"),
    ],
)
def test_schema_rejects_bad_values(helm: Helm, assignment: str, complaint: str) -> None:
    with pytest.raises(HelmError) as refused:
        helm.template(sets=(assignment,))
    message = str(refused.value)
    assert "values don't meet the specifications of the schema" in message
    assert complaint in message


def test_schema_accepts_external_stores(helm: Helm) -> None:
    objects = helm.template(
        sets=(
            "redis.enabled=false",
            "redis.externalUrl=redis://redis.example:6379/0",
            "timescaledb.enabled=false",
            "externalDatabase.existingSecret=pg",
        )
    )
    kinds = {obj["kind"] for obj in objects}
    assert "StatefulSet" not in kinds
    api = find(objects, "Deployment", f"{RELEASE}-api")
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["EXCHANGE_API_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-redis",
        "key": "api-url",
    }
    secret = find(objects, "Secret", f"{RELEASE}-redis")
    assert {base64.b64decode(value).decode() for value in secret["data"].values()} == {
        "redis://redis.example:6379/0"
    }
    assert env["EXCHANGE_API_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "pg",
        "key": "url",
    }


def test_the_api_secrets_key_comes_from_a_kept_secret(helm: Helm) -> None:
    objects = helm.template()
    secret = find(objects, "Secret", f"{RELEASE}-api-secrets")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert len(base64.b64decode(secret["data"]["key"])) >= 32
    api = find(objects, "Deployment", f"{RELEASE}-api")
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["EXCHANGE_API_SECRETS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-api-secrets",
        "key": "key",
    }
    assert env["EXCHANGE_API_SECRETS_OLD_KEYS"]["valueFrom"]["secretKeyRef"]["optional"] is True
    own = helm.template(sets=("apiSecrets.existingSecret=mine",))
    assert not [o for o in own if o["metadata"]["name"] == f"{RELEASE}-api-secrets"]


def test_redis_has_a_memory_cap_and_never_evicts(helm: Helm) -> None:
    redis = find(helm.template(), "StatefulSet", f"{RELEASE}-redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    options = dict(zip(args[::2], args[1::2], strict=True))
    assert (options["--maxmemory"], options["--maxmemory-policy"]) == ("768mb", "noeviction")


def test_redis_fsyncs_before_it_acknowledges_by_default(helm: Helm) -> None:
    """Nothing acknowledged is lost with the node unless someone chooses everysec."""
    redis = find(helm.template(), "StatefulSet", f"{RELEASE}-redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    options = dict(zip(args[::2], args[1::2], strict=True))
    assert (options["--appendonly"], options["--appendfsync"]) == ("yes", "always")


def test_alerts_name_metrics_the_services_serve(helm: Helm) -> None:
    objects = helm.template(api_versions=("monitoring.coreos.com/v1/PrometheusRule",))
    rules = find(objects, "PrometheusRule", RELEASE)["spec"]["groups"][0]["rules"]
    assert {rule["alert"] for rule in rules} == {
        "ExchangeRedisMemoryHigh", "ExchangeEventsUnstored", "ExchangeEventsLost",
        "ExchangeRedisRollback",
        "ExchangeMarketNotReady",
    }  # fmt: skip
    served = (
        ROOT / "dbproc" / "service.py", ROOT / "engine" / "metrics.py",
        ROOT / "operator" / "xch_operator" / "metrics.py",
    )  # fmt: skip
    sources = "".join(path.read_text() for path in served)
    expressions = " ".join(r["expr"] for r in rules)
    names = re.findall(r"\b(?:redis|engine|dbproc|xch_operator)_[a-z_]+", expressions)
    assert len(names) == 6
    for name in names:
        assert f'"{name.removesuffix("_total")}"' in sources, name
    assert not [o for o in helm.template() if o["kind"] == "PrometheusRule"]


def _restricted_violations(where: str, pod: dict[str, Any]) -> list[str]:
    """What keeps one Pod spec from the restricted Pod Security Standard, as the chart sets it:
    every field explicit on the container, runAsNonRoot and seccomp on the Pod too."""
    problems = []
    pod_context = pod.get("securityContext") or {}
    if pod_context.get("runAsNonRoot") is not True:
        problems.append(f"{where}: pod runAsNonRoot")
    if (pod_context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: pod seccompProfile")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        problems.append(f"{where}: host namespaces")
    for container in pod.get("initContainers", []) + pod["containers"]:
        name = f"{where}/{container['name']}"
        context = container.get("securityContext") or {}
        expected = {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        problems += [
            f"{name}: {key} is {context.get(key)!r}"
            for key, value in expected.items()
            if context.get(key) != value
        ]
        if context.get("privileged") or context.get("runAsUser") == 0:
            problems.append(f"{name}: privileged or root")
        for kind in ("livenessProbe", "readinessProbe"):
            if kind not in container:
                problems.append(f"{name}: no {kind}")
        resources = container.get("resources") or {}
        if not (resources.get("requests") and (resources.get("limits") or {}).get("memory")):
            problems.append(f"{name}: no requests or memory limit")
    return problems


@pytest.mark.parametrize("production", [False, True], ids=["default", "production"])
def test_every_container_is_restricted(helm: Helm, production: bool) -> None:
    values = (PRODUCTION_VALUES,) if production else ()
    objects = helm.template(values=values, sets=EVERYTHING)
    specs = dict(pod_specs(objects))
    # The walk must see every workload, or it proves nothing.
    expected = {"operator", "api", "ws", "dbproc", "frontend", "redis"}
    if not production:
        expected.add("timescaledb")
    assert {name.rsplit("-", 1)[1] for name in specs} == expected
    problems = [p for where, pod in specs.items() for p in _restricted_violations(where, pod)]
    assert problems == []


def test_operator_rbac_is_the_tested_file(helm: Helm) -> None:
    """Watching every namespace, the operator's ClusterRole holds all of the file's rules."""
    objects = helm.template()
    rules = yaml.safe_load(RBAC_FILE.read_text())
    role = find(objects, "ClusterRole", f"{RELEASE}-{RELEASE}-operator")
    assert role["rules"] == rules["cluster"] + rules["namespaced"]
    # One Role: the Lease its replicas elect the acting one with, in its own namespace.
    (leader,) = [obj for obj in objects if obj["kind"] == "Role"]
    assert leader["metadata"]["name"] == f"{RELEASE}-operator-leader"
    assert "namespace" not in leader["metadata"]  # the release's
    assert leader["rules"] == rules["leader"]
    (leader_binding,) = [obj for obj in objects if obj["kind"] == "RoleBinding"]
    assert leader_binding["roleRef"]["name"] == f"{RELEASE}-operator-leader"
    binding = find(objects, "ClusterRoleBinding", f"{RELEASE}-{RELEASE}-operator")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-operator", "namespace": RELEASE}
    ]
    deployment = find(objects, "Deployment", f"{RELEASE}-operator")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == f"{RELEASE}-operator"


def test_watching_namespaces_scopes_the_operator_to_them(helm: Helm) -> None:
    """With operator.watchNamespaces, what the operator may do to Deployments, Secrets and
    the other children is a Role in each watched namespace; cluster-wide it reads the CRD and
    the namespaces, and writes only Markets (their finalizers outlive a namespace's Roles)."""
    objects = helm.template(sets=("operator.watchNamespaces={markets-a,markets-b}",))
    rules = yaml.safe_load(RBAC_FILE.read_text())
    cluster_role = find(objects, "ClusterRole", f"{RELEASE}-{RELEASE}-operator")
    assert cluster_role["rules"] == rules["cluster"]
    for rule in cluster_role["rules"]:
        if set(rule["verbs"]) - {"get", "list", "watch"}:
            assert rule["apiGroups"] == ["exchange.dev"], rule
    roles = [obj for obj in objects if obj["kind"] == "Role" and "namespace" in obj["metadata"]]
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["markets-a", "markets-b"]
    assert all(role["rules"] == rules["namespaced"] for role in roles)
    bindings = [
        obj for obj in objects if obj["kind"] == "RoleBinding" and "namespace" in obj["metadata"]
    ]
    assert sorted(binding["metadata"]["namespace"] for binding in bindings) == [
        "markets-a",
        "markets-b",
    ]
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"{RELEASE}-operator", "namespace": RELEASE}
        ]


def test_service_monitors_only_where_the_api_exists(helm: Helm) -> None:
    without = helm.template()
    assert not [obj for obj in without if obj["kind"] == "ServiceMonitor"]
    with_api = helm.template(api_versions=(SERVICE_MONITOR_API,))
    monitors = [obj for obj in with_api if obj["kind"] == "ServiceMonitor"]
    assert {m["metadata"]["name"] for m in monitors} == {RELEASE, f"{RELEASE}-engines"}


def test_ingress_routes(helm: Helm) -> None:
    objects = helm.template(sets=("ingress.enabled=true", "ingress.tlsSecretName=tls"))
    ingress = find(objects, "Ingress", RELEASE)
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    routes = {p["path"]: p["backend"]["service"]["name"] for p in paths}
    # Nothing routes to the api's internal paths (/internal/v1/...: only ws calls them).
    assert routes == {
        "/api": f"{RELEASE}-api",
        "/ws": f"{RELEASE}-ws",
        "/ws-api": f"{RELEASE}-ws",
        "/": f"{RELEASE}-frontend",
    }
    assert ingress["spec"]["tls"][0]["secretName"] == "tls"
    [ws] = find(objects, "Deployment", f"{RELEASE}-ws")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in ws["env"]}
    assert env["EXCHANGE_WS_API_URL"] == f"http://{RELEASE}-api:8000"


def test_dashboard_is_valid_json(helm: Helm) -> None:
    dashboard = find(helm.template(), "ConfigMap", f"{RELEASE}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    parsed = yaml.safe_load(dashboard["data"]["exchange.json"])
    assert parsed["panels"]


@pytest.mark.parametrize(
    ("component", "settings"),
    [("operator", OperatorSettings), ("dbproc", DbprocSettings), ("ws", WsSettings)],
)
def test_env_names_are_settings(helm: Helm, component: str, settings: type[BaseSettings]) -> None:
    """Every EXCHANGE_* variable the chart gives a component is one its Settings reads (a typo
    would be ignored silently by pydantic-settings)."""
    deployment = find(helm.template(), "Deployment", f"{RELEASE}-{component}")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    prefix = settings.model_config.get("env_prefix", "")
    known = {f"{prefix}{field}".upper() for field in settings.model_fields} | {
        field.validation_alias
        for field in settings.model_fields.values()
        if isinstance(field.validation_alias, str)
    }
    assert {e["name"] for e in env} - known == set()


def test_the_operator_hands_the_pull_secrets_to_its_pods(
    helm: Helm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart's imagePullSecrets reach the operator's settings, which put them in the
    engine and mm Pods (tests/operator/test_resources.py)."""
    objects = helm.template(sets=("imagePullSecrets={regcred,mirror}",))
    deployment = find(objects, "Deployment", f"{RELEASE}-operator")
    for entry in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in entry:
            monkeypatch.setenv(entry["name"], entry["value"])
    assert OperatorSettings().image_pull_secrets == ("regcred", "mirror")


def _env(objects: list[dict[str, Any]], component: str) -> dict[str, str]:
    deployment = find(objects, "Deployment", f"{RELEASE}-{component}")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if "value" in e}


@pytest.mark.parametrize(
    ("values", "sets", "trusted"),
    [
        ((), (), []),
        ((), ("api.trustedProxies={10.0.0.0/8,fd00::/8}",), ["10.0.0.0/8", "fd00::/8"]),
        ((PRODUCTION_VALUES,), (), ["10.244.0.0/16"]),
    ],
    ids=["default", "set", "production"],
)
def test_trusted_proxies_reach_the_api_and_ws(
    helm: Helm,
    monkeypatch: pytest.MonkeyPatch,
    values: tuple[Any, ...],
    sets: tuple[str, ...],
    trusted: list[str],
) -> None:
    """The api and ws believe X-Forwarded-For only from `api.trustedProxies`: none by
    default."""
    objects = helm.template(values=values, sets=sets)
    api, ws = _env(objects, "api"), _env(objects, "ws")
    monkeypatch.setenv("EXCHANGE_API_TRUSTED_PROXIES", api["EXCHANGE_API_TRUSTED_PROXIES"])
    monkeypatch.setenv("EXCHANGE_WS_TRUSTED_PROXIES", ws["EXCHANGE_WS_TRUSTED_PROXIES"])
    assert ApiSettings(jwt_secret="x" * 32, secrets_key="y" * 32).trusted_proxies == trusted
    assert WsSettings().trusted_proxies == trusted
