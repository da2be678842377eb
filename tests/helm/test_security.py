"""The chart's Redis needs credentials, every component gets its own by secretKeyRef, and the
NetworkPolicies, on by default, admit only the release's Pods and the Markets' namespaces."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import redis.exceptions

from launcher import redis_acl
from tests.harness.processes import free_port
from tests.helm.chart import RELEASE, Helm, HelmError, find, pod_specs

SECRET = f"{RELEASE}-redis"
# Who reads which Redis URL: container env name -> the user whose URL it must be.
REDIS_ENV = {
    ("api", "EXCHANGE_API_REDIS_URL"): "api",
    ("ws", "EXCHANGE_WS_REDIS_URL"): "ws",
    ("dbproc", "EXCHANGE_DBPROC_REDIS_URL"): "dbproc",
    ("operator", "EXCHANGE_OPERATOR_REDIS_URL"): "operator",
    ("operator", "EXCHANGE_OPERATOR_ENGINE_REDIS_URL"): "engine",
}


def _secret_data(objects: list[dict[str, Any]]) -> dict[str, str]:
    secret = find(objects, "Secret", SECRET)
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def _env(objects: list[dict[str, Any]], component: str) -> dict[str, dict[str, Any]]:
    deployment = find(objects, "Deployment", f"{RELEASE}-{component}")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {entry["name"]: entry for entry in container["env"]}


def test_each_component_reads_its_own_redis_user_from_the_secret(helm: Helm) -> None:
    objects = helm.template()
    data = _secret_data(objects)
    for (component, name), user in REDIS_ENV.items():
        entry = _env(objects, component)[name]
        assert entry["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": f"{user}-url"}
        url = urlsplit(data[f"{user}-url"])
        assert (url.username, url.password) == (user, data[f"{user}-password"])
        assert url.hostname == f"{RELEASE}-redis.{RELEASE}.svc"
    for where, pod in pod_specs(objects):
        for container in pod["containers"]:
            plain = [e["value"] for e in container.get("env", []) if "value" in e]
            assert not [value for value in plain if value.startswith("redis")], where


def test_the_chart_redis_has_no_anonymous_access(helm: Helm) -> None:
    objects = helm.template()
    redis_set = find(objects, "StatefulSet", f"{RELEASE}-redis")
    (container,) = redis_set["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert "--protected-mode" not in args
    assert args[args.index("--aclfile") + 1] == "/etc/redis/users.acl"
    assert container["livenessProbe"]["exec"]["command"] == [
        "redis-cli",
        "--user",
        "health",
        "ping",
    ]
    (volume,) = [v for v in redis_set["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == SECRET
    assert volume["secret"]["items"] == [{"key": "users.acl", "path": "users.acl"}]


def test_the_acl_file_is_the_launchers_for_the_same_passwords(helm: Helm) -> None:
    """One set of rules: the chart renders files/redis-acl.yaml as launcher/redis_acl.py does."""
    data = _secret_data(helm.template())
    passwords = {user: data[f"{user}-password"] for user in redis_acl.rules()}
    chart_lines = data["users.acl"].splitlines()
    assert chart_lines[0].startswith("user default ")
    assert sorted(chart_lines) == sorted(redis_acl.acl_file(passwords).splitlines())


@pytest.fixture
def chart_redis(helm: Helm, tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """redis-server loading the chart's own users.acl; its port and the Secret's data."""
    data = _secret_data(helm.template())
    (tmp_path / "users.acl").write_text(data["users.acl"])
    port = free_port()
    executable = shutil.which("redis-server")
    assert executable is not None
    server = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
         "--aclfile", str(tmp_path / "users.acl"), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        health = redis.Redis(port=port, username="health", password=data["health-password"])
        deadline = time.monotonic() + 10
        while True:
            try:
                health.ping()
                break
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        health.close()
        yield port, data
    finally:
        server.terminate()
        server.wait(10)


def test_the_chart_users_work_on_a_real_redis(chart_redis: tuple[int, dict[str, str]]) -> None:
    port, data = chart_redis

    def connect(user: str) -> redis.Redis:
        return redis.Redis(port=port, username=user, password=data[f"{user}-password"])

    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=port).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=port, username="api", password="guess").ping()
    api, ws = connect("api"), connect("ws")
    api.xadd("xch:btc-usd:in", {"c": "x"})
    assert len(ws.xrange("xch:btc-usd:in") or []) == 1
    with pytest.raises(redis.exceptions.NoPermissionError):
        ws.xadd("xch:btc-usd:in", {"c": "x"})
    with pytest.raises(redis.exceptions.NoPermissionError):
        api.flushall()
    with pytest.raises(redis.exceptions.NoPermissionError):
        api.config_get("*")
    for client in (api, ws):
        client.close()


def test_network_policies_admit_the_release_and_the_markets_namespaces(helm: Helm) -> None:
    """On by default; Market Pods (the operator's label) only from the watched namespaces,
    or the release's own, never from any namespace."""
    for sets, namespaces in (
        ((), [RELEASE]),
        (("operator.watchNamespaces={markets-a,markets-b}",), ["markets-a", "markets-b"]),
    ):
        policy = find(helm.template(sets=sets), "NetworkPolicy", f"{RELEASE}-redis")
        sources = policy["spec"]["ingress"][0]["from"]
        platform = {"app.kubernetes.io/part-of": "exchange", "app.kubernetes.io/instance": RELEASE}
        assert {"podSelector": {"matchLabels": platform}} in sources
        (markets,) = [source for source in sources if "namespaceSelector" in source]
        assert markets["namespaceSelector"] == {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}
            ]
        }
        assert markets["podSelector"] == {
            "matchLabels": {"app.kubernetes.io/managed-by": "xch-operator"}
        }
    # No policy admits labelled Pods from every namespace.
    for obj in helm.template():
        if obj["kind"] == "NetworkPolicy":
            for rule in obj["spec"]["ingress"]:
                for source in rule["from"]:
                    if "podSelector" in source:
                        assert source.get("namespaceSelector") != {}, obj["metadata"]["name"]


def _entry_sources(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """What each entry point's NetworkPolicy (api, ws, the trading page) admits."""
    return {
        component: find(objects, "NetworkPolicy", f"{RELEASE}-{component}")["spec"]["ingress"][0][
            "from"
        ]
        for component in ("api", "ws", "frontend")
    }


def test_only_the_ingress_controllers_namespace_reaches_the_entry_points(
    helm: Helm, tmp_path: Path
) -> None:
    """api, ws and the trading page admit the Ingress controller's namespace (ingress-nginx by
    default, or the configured selector), and api and ws Prometheus's (their /metrics is on
    the same port), never every namespace."""
    traefik = tmp_path / "traefik.yaml"
    traefik.write_text(
        "networkPolicies:\n  ingressNamespaceSelector:\n    matchLabels: null\n"
        "    matchExpressions:\n      - {key: team, operator: In, values: [edge]}\n"
    )
    for values, selector in (
        ((), {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}),
        ((traefik,), {"matchExpressions": [{"key": "team", "operator": "In", "values": ["edge"]}]}),
    ):
        for component, sources in _entry_sources(helm.template(values=values)).items():
            namespaced = [source for source in sources if "namespaceSelector" in source]
            assert namespaced[:1] == [{"namespaceSelector": selector}], component
            # Then the market makers (api) and Prometheus (api, ws): no namespace left open.
            assert all(source["namespaceSelector"] != {} for source in namespaced), component
            monitoring = {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
            scraped = {"namespaceSelector": monitoring} in sources
            assert scraped == (component != "frontend"), component


@pytest.mark.parametrize(
    "assignment",
    [
        "networkPolicies.ingressNamespaceSelector=null",
        "networkPolicies.ingressNamespaceSelector.matchLabels=null",
        "networkPolicies.prometheusNamespaceSelector.matchLabels=null",
    ],
)
def test_an_ingress_selector_admitting_every_namespace_is_refused(
    helm: Helm, assignment: str
) -> None:
    with pytest.raises(HelmError) as refused:
        helm.template(sets=(assignment,))
    assert "networkPolicies" in str(refused.value)
