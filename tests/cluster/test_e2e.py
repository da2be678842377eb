"""The platform team's whole path on a real node (make e2e-cluster): `helm install` the chart
(its operator logged in in-cluster with the chart's ServiceAccount), the trading page served
by its nginx Pod, apply a Market, its engine Pod Ready by its own readiness probe and the
Market Ready, orders through the api Pod and the trade over the ws Pod, the engine Pod killed
and back and trading, a warm standby turned on and its leader killed (the standby leads and
trades, and status.leaseHolder names the leading Pod), the Market deleted (its engine winds
down, a resting order's funds unlocked), a second Market with its market maker quoting both
sides, `helm uninstall`. The timings go to bench/results/cluster.json (`make e2e-cluster`;
EXCHANGE_CLUSTER_RESULTS says where) with their targets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.kind_e2e_trade import call, trader
from tests.cluster.conftest import _tag
from tests.harness.kube import Rest
from tests.harness.node import Node
from tests.harness.processes import ROOT
from tests.harness.servers import PostgresServer, RedisServer
from tests.helm.chart import CHART, Helm, helm_binary
from xch_operator.handlers import IN_CLUSTER

NAMESPACE = "exchange"
RELEASE = "exchange"
MARKET = "eth-usd"
MM_MARKET = "btc-usd"
TARGETS = {
    "apply_to_ready_s": 30.0,
    "engine_pod_kill_to_ready_s": 10.0,
    "standby_leader_kill_to_ready_s": 10.0,
}
PLATFORM = ("operator", "api", "ws", "dbproc", "frontend")


def _wait(probe: Callable[[], bool], what: str, timeout: float, node: Node) -> float:
    """Poll until `probe` holds; the seconds it took. On timeout, the namespace's Pods."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if probe():
            return time.monotonic() - started
        time.sleep(0.1)
    pods = node.kubectl("-n", NAMESPACE, "get", "pods", "-o", "wide")
    raise AssertionError(f"{what} not reached in {timeout} s\n{pods}")


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _engine_pods(admin: Rest) -> list[dict[str, Any]]:
    return _market_pods(admin, MARKET, "engine")


def _market_pods(admin: Rest, market: str, component: str) -> list[dict[str, Any]]:
    """The Market's Pods of `component` (its engines, or its market maker's)."""
    selector = f"app.kubernetes.io/name={component},exchange.dev/market={market}"
    query = urllib.parse.urlencode({"labelSelector": selector})
    listed = admin.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods?{query}")
    return [pod for pod in listed["items"] if not pod["metadata"].get("deletionTimestamp")]


def _market_status(admin: Rest) -> dict[str, Any]:
    market = admin.get(f"/apis/exchange.dev/v1alpha1/namespaces/{NAMESPACE}/markets/{MARKET}")
    status: dict[str, Any] = (market or {}).get("status") or {}
    return status


def _market_phase(admin: Rest) -> str | None:
    return _market_status(admin).get("phase")


def _service_ip(admin: Rest, component: str) -> str:
    service = admin.request("GET", f"/api/v1/namespaces/{NAMESPACE}/services/{RELEASE}-{component}")
    return str(service["spec"]["clusterIP"])


def _trade(api: str, ws: str) -> bool:
    """One trade through the api Pod, seen over the ws Pod (scripts/kind_e2e_trade.py)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "kind_e2e_trade.py"), "--api", api,
         "--ws", ws, "--market", MARKET],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    return done.returncode == 0 and "trade on ws" in done.stdout


def _locked(api: str, token: str, asset: str) -> Decimal:
    balances = call(api, "/balances", token=token)
    return sum((Decimal(b["locked"]) for b in balances if b["asset"] == asset), Decimal(0))


def _example_market(name: str) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(
        (ROOT / "examples" / "markets" / f"{name}.yaml").read_text()
    )
    return manifest


def _market_manifest() -> dict[str, Any]:
    """examples/markets/eth-usd.yaml without its market maker: two traders make the trades,
    at prices of their own (the market maker's quotes would take the seller's order). The
    market maker quotes in a Market of its own (_market_maker_quotes)."""
    market = _example_market(MARKET)
    market["spec"]["marketMaker"]["enabled"] = False
    return market


def _get(url: str) -> tuple[int, dict[str, str], str]:
    """A plain GET: status, headers and body."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, dict(response.headers), response.read().decode()


def _page_served(admin: Rest) -> None:
    """The trading page through the frontend Pod's Service: its HTML, and a script it loads
    with the long cache nginx gives Next.js's fingerprinted files."""
    site = f"http://{_service_ip(admin, 'frontend')}:8080"
    status, headers, page = _get(site + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html"), headers
    assert "<title>Exchange</title>" in page, page[:500]
    script = re.search(r'src="(/_next/static/[^"]+\.js)"', page)
    assert script, page[:500]
    status, headers, _ = _get(site + script[1])
    assert status == 200 and "immutable" in headers["Cache-Control"], headers


# The node's start and the first load of the images count too (session fixtures).
@pytest.mark.timeout(900)
def test_market_trades_end_to_end_on_a_node(
    node: Node, node_redis: RedisServer, node_postgres: PostgresServer
) -> None:
    admin = node.plane.admin()
    with tempfile.TemporaryDirectory(prefix="xch-e2e-helm-") as home:
        helm = Helm(helm_binary(), Path(home), node.plane.kubeconfig_path)
        results = _install_and_trade(node, admin, helm, node_redis, node_postgres)
    results["cluster"] = {
        "start_s": round(node.started_in_s, 1),
        "images_load_s": round(node.images_loaded_in_s, 1),
    }
    report = os.environ.get("EXCHANGE_IMAGES_REPORT")
    if report and Path(report).exists():
        results["images"] = json.loads(Path(report).read_text())
    # make e2e-cluster: bench/results/cluster.json; make test and a run of its own: untracked.
    path = Path(os.environ.get("EXCHANGE_CLUSTER_RESULTS", ROOT / ".state" / "cluster.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    market = results["market"]
    assert market["trades_seen_over_ws"] >= 2
    assert results["market_maker"]["bids"] > 0 and results["market_maker"]["asks"] > 0
    for name, target in TARGETS.items():
        assert market[name] <= target, f"{name}: {market[name]} s > {target} s"


def _install_and_trade(
    node: Node, admin: Rest, helm: Helm, redis: RedisServer, postgres: PostgresServer
) -> dict[str, Any]:
    started = time.monotonic()
    helm.run(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace",
        "--set", f"image.tag={_tag()}",
        "--set", "api.faucet=true", "--set", "api.replicas=1", "--set", "ws.replicas=1",
        "--set", "frontend.replicas=1",
        "--set", "redis.enabled=false", "--set", f"redis.externalUrl={redis.url}",
        "--set", "timescaledb.enabled=false", "--set", f"externalDatabase.url={postgres.url}",
    )  # fmt: skip
    for component in PLATFORM:
        node.kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{RELEASE}-{component}",
                     "--timeout=180s", timeout=200)  # fmt: skip
    # The acting operator logged in inside the cluster with the chart's ServiceAccount (its
    # Pod has no kubeconfig), and says so.
    account = f"system:serviceaccount:{NAMESPACE}:{RELEASE}-operator"
    _wait(lambda: f"logged in {IN_CLUSTER} as {account}"
          in node.pod_logs(NAMESPACE, f"{RELEASE}-operator"),
          "the operator logged in in-cluster as its ServiceAccount", 60, node)  # fmt: skip
    install_s = time.monotonic() - started
    _page_served(admin)

    manifest = _market_manifest()
    applied = time.monotonic()
    node.kubectl("-n", NAMESPACE, "apply", "-f", "-", input=json.dumps(manifest))
    _wait(lambda: any(_ready(p) for p in _engine_pods(admin)), "engine Pod Ready", 120, node)
    _wait(lambda: _market_phase(admin) == "Ready", "Market Ready", 60, node)
    apply_to_ready = time.monotonic() - applied

    api = f"http://{_service_ip(admin, 'api')}:8000"
    ws = f"ws://{_service_ip(admin, 'ws')}:8090/ws"
    trades = int(_trade(api, ws))
    assert trades == 1, node.pod_logs(NAMESPACE, f"{RELEASE}-api")

    killed = time.monotonic()
    (engine,) = _engine_pods(admin)
    node.kubectl("-n", NAMESPACE, "delete", "pod", engine["metadata"]["name"], "--wait=false")
    _wait(
        lambda: any(_ready(p) and p["metadata"]["uid"] != engine["metadata"]["uid"]
                    for p in _engine_pods(admin)),
        "a new engine Pod Ready", 120, node,
    )  # fmt: skip
    kill_to_ready = time.monotonic() - killed
    trades += _wait_trading(api, ws, node)
    kill_to_trading = time.monotonic() - killed
    standby = _standby_failover(admin, node, api, ws)
    trades += 1

    # A resting order's funds are locked until the Market's deletion closes it.
    resting = trader(api, "USD", "1000")
    order = {"market": MARKET, "side": "buy", "type": "limit", "price": "50.00", "quantity": "1"}
    call(api, "/order", order, resting)
    assert _locked(api, resting, "USD") > 0
    deleted = time.monotonic()
    node.kubectl("-n", NAMESPACE, "delete", "market", MARKET, "--wait=false")
    _wait(lambda: not _engine_pods(admin), "the engine wound down", 120, node)
    delete_s = time.monotonic() - deleted
    _wait(lambda: _locked(api, resting, "USD") == 0, "the resting order's funds unlocked", 60, node)
    market_maker = _market_maker_quotes(admin, node, api)

    helm.run("uninstall", RELEASE, "--namespace", NAMESPACE)
    return {
        "market": {
            "apply_to_ready_s": round(apply_to_ready, 2),
            "engine_pod_kill_to_ready_s": round(kill_to_ready, 2),
            "engine_pod_kill_to_trading_s": round(kill_to_trading, 2),
            "trades_seen_over_ws": trades,
            "delete_to_engine_gone_s": round(delete_s, 2),
            **standby,
            "targets": TARGETS,
        },
        "market_maker": market_maker,
        "helm_install_to_rolled_out_s": round(install_s, 1),
    }


def _wait_trading(api: str, ws: str, node: Node) -> int:
    """1 once a trade goes through again after the engine's restart."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _trade(api, ws):
            return 1
    raise AssertionError(f"no trade after the engine restart\n{node.pod_logs(NAMESPACE, '')}")


def _standby_failover(admin: Rest, node: Node, api: str, ws: str) -> dict[str, float | bool]:
    """Turns the warm standby on (two engine Pods sharing the lease, only the leader Ready),
    kills the leader's process (SIGKILL to its container, as a crash: deleting the Pod, even
    with --force, leaves the process to the kubelet's grace, and it holds the lease meanwhile)
    and times the market's recovery: an engine leading (Ready) again, then trading. Whoever
    takes the lease first once it expires leads: the standby, or the leader's container that
    the kubelet restarted meanwhile (it often wins: its restart takes about as long as the
    lease's TTL)."""
    patch = json.dumps({"spec": {"engine": {"standby": True}}})
    node.kubectl("-n", NAMESPACE, "patch", "market", MARKET, "--type", "merge", "-p", patch)

    def leader_and_standby() -> bool:
        pods = [p for p in _engine_pods(admin) if not p["metadata"].get("deletionTimestamp")]
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        return len(pods) == 2 and len(running) == 2 and sum(map(_ready, pods)) == 1

    _wait(leader_and_standby, "a leader and a standby engine Pod", 180, node)
    _wait(lambda: _market_phase(admin) == "Ready", "Market Ready with a standby", 60, node)
    (leader,) = [p for p in _engine_pods(admin) if _ready(p)]
    (standby,) = [p for p in _engine_pods(admin) if not _ready(p)]
    killed = time.monotonic()
    (container,) = leader["status"]["containerStatuses"]
    node.ctr("tasks", "kill", "--signal", "SIGKILL", container["containerID"].split("://")[1])

    def took_over(pod: dict[str, Any]) -> bool:
        if not _ready(pod):
            return False
        if pod["metadata"]["uid"] == standby["metadata"]["uid"]:
            return True
        (status,) = pod["status"]["containerStatuses"]
        return bool(status["restartCount"] > container["restartCount"])

    _wait(lambda: any(map(took_over, _engine_pods(admin))), "an engine leading again", 60, node)
    kill_to_ready = time.monotonic() - killed
    _wait_trading(api, ws, node)
    kill_to_trading = time.monotonic() - killed
    # The status names the Pod that leads now (its POD_NAME, from the downward API), once the
    # operator's next drift check (30 s) has read the lease.
    (leading,) = [p for p in _engine_pods(admin) if _ready(p)]
    _wait(lambda: _market_status(admin).get("leaseHolder") == leading["metadata"]["name"],
          "status.leaseHolder naming the leading engine Pod", 60, node)  # fmt: skip
    return {
        "standby_leader_kill_to_ready_s": round(kill_to_ready, 2),
        "standby_leader_kill_to_trading_s": round(kill_to_trading, 2),
        "standby_took_over": any(
            took_over(p) and p["metadata"]["uid"] == standby["metadata"]["uid"]
            for p in _engine_pods(admin)
        ),
    }


def _market_maker_quotes(admin: Rest, node: Node, api: str) -> dict[str, Any]:
    """examples/markets/btc-usd.yaml as it is, market maker on: its credentials in the Secret
    the chart names (marketMaker.secretName), a sign-up and the faucet's funds (api.faucet);
    its Pod Ready by its readiness probe (it has quoted), its quotes in the api's depth on
    both sides. Then the Market goes, with its Pods."""
    credentials = {
        "EXCHANGE_MM_EMAIL": "mm-e2e@example.com",
        "EXCHANGE_MM_PASSWORD": "mm-e2e-password",
        # Half its maxInventory in base, as `make up` gives it (launcher/plan.py): room to buy.
        "EXCHANGE_MM_FAUCET": json.dumps({"BTC": "1", "USD": "50000"}),
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "exchange-mm"},
        "stringData": credentials,
    }
    node.kubectl("-n", NAMESPACE, "apply", "-f", "-", input=json.dumps(secret))
    applied = time.monotonic()
    node.kubectl("-n", NAMESPACE, "apply", "-f", "-", input=json.dumps(_example_market(MM_MARKET)))
    _wait(
        lambda: any(_ready(p) for p in _market_pods(admin, MM_MARKET, "mm")),
        "the market maker's Pod Ready", 120, node,
    )  # fmt: skip
    ready_s = time.monotonic() - applied
    depth: dict[str, Any] = {}

    def both_sides_quoted() -> bool:
        depth.update(call(api, f"/depth?market={MM_MARKET}"))
        return bool(depth["bids"] and depth["asks"])

    _wait(both_sides_quoted, "the market maker's quotes in the depth", 30, node)
    quoted_s = time.monotonic() - applied
    assert Decimal(depth["bids"][0][0]) < Decimal(depth["asks"][0][0]), depth
    deleted = time.monotonic()
    node.kubectl("-n", NAMESPACE, "delete", "market", MM_MARKET, "--wait=false")

    def pods_gone() -> bool:
        return not any(_market_pods(admin, MM_MARKET, c) for c in ("engine", "mm"))

    _wait(pods_gone, "the second Market's Pods gone", 120, node)
    return {
        "apply_to_mm_ready_s": round(ready_s, 2),
        "apply_to_quotes_in_depth_s": round(quoted_s, 2),
        "delete_to_pods_gone_s": round(time.monotonic() - deleted, 2),
        "phase_s": round(time.monotonic() - applied, 2),
        "bids": len(depth["bids"]),
        "asks": len(depth["asks"]),
    }
