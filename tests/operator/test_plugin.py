"""`kubectl exchange` (xch_operator.plugin) run as kubectl runs it, a program with the admin's
kubeconfig, against the real API server and a running operator."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio

from engine.store import MarketStore, Snapshot
from tests.harness.engine import EngineProcess, write_manifest
from tests.harness.kube import ControlPlane
from tests.harness.operator import Kube, OperatorProcess, market_manifest, wait_for
from tests.harness.processes import ROOT
from tests.harness.servers import RedisServer
from xch import keys
from xch.wire import as_text
from xch_operator.observe import APPLICATION_NAME, POOL_SIZE

TRADE_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TRADE = "2026-01-02T03:04:05Z"
DRIFT_SECONDS = 3
"""The test operator's drift interval (tests/harness/operator.py)."""


@pytest.fixture
def plugin(control_plane: ControlPlane) -> PluginRunner:
    return PluginRunner(control_plane.kubeconfig_path)


class PluginRunner:
    def __init__(self, kubeconfig: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "xch_operator.plugin", *args],
                              capture_output=True, text=True, env=self.env, cwd=ROOT,
                              timeout=30, check=False)  # fmt: skip
        assert (done.returncode == 0) == ok, (done.stdout, done.stderr)
        return done


def _ready_market(kube: Kube, namespace: str, name: str) -> None:
    kube.create_market(namespace, market_manifest(name))
    kube.wait_conditions(namespace, name, QueueReady="True", StorageReady="True")
    kube.set_ready(namespace, f"engine-{name}")
    kube.set_ready(namespace, f"mm-{name}")
    kube.wait_phase(namespace, name, "Ready")


def _condition(kube: Kube, namespace: str, name: str, kind: str) -> dict[str, Any]:
    found = (c for c in kube.status(namespace, name).get("conditions") or [] if c["type"] == kind)
    return next(found, {})


def _report(status: dict[str, Any]) -> tuple[Any, ...]:
    fields = ("inputLag", "lastTradeTime", "snapshotTime", "leaseToken", "leaseHolder")
    return tuple(status.get(field) for field in fields)


def _printer_columns(kube: Kube) -> list[dict[str, Any]]:
    crd = kube.rest.request(
        "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/markets.exchange.dev"
    )
    columns: list[dict[str, Any]] = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    return columns


async def _report_connections(dsn: str) -> set[int]:
    """Backend pids of the operator's report pool."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", APPLICATION_NAME
        )
    finally:
        await conn.close()
    return {row["pid"] for row in rows}


async def _trade(dsn: str, market: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO trades (market, trade_id, ts, seq, price, qty, quote_qty, maker_order, "
            "maker_user, taker_order, taker_user, taker_side, maker_fee, taker_fee) "
            "VALUES ($1, 1, $2, 1, 100, 1, 100, 'm', 'u1', 't', 'u2', 'buy', 0, 0)",
            market,
            TRADE_TIME,
        )
    finally:
        await conn.close()


def test_the_package_installs_it_as_kubectl_exchange() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-exchange"] == "xch_operator.plugin:main"


async def test_markets_shows_phase_readiness_lag_last_trade_snapshot_and_lease(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    redis_client: redis.asyncio.Redis,
    storage_dsn: str,
    plugin: PluginRunner,
) -> None:
    name = "lag-usd"
    _ready_market(kube, namespace, name)
    holder = f"engine-{name}-5c8d7b9f4-x2x7q"
    store = MarketStore(redis_client, name, holder)
    # The engine's own code takes the lease and stores a snapshot covering the first input.
    token = await store.acquire_lease(60_000)
    # An input entry whose id says it was enqueued at a known second, after the stream's
    # creation (a stream's ids only grow).
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    snapshot = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    covered_id = f"{int(at.timestamp() * 1000)}-7"
    covered = await redis_client.xadd(keys.market_input(name), {"test": "1"}, id=covered_id)
    for _ in range(3):
        await redis_client.xadd(keys.market_input(name), {"test": "1"})
    assert await store.save_snapshot(token, Snapshot(as_text(covered), 1, b"book")) == "ok"
    await _trade(storage_dsn, name)
    lag = await redis_client.xlen(keys.market_input(name))  # nothing applied: all of it
    assert lag >= 3
    wait_for(
        lambda: _report(kube.status(namespace, name)) == (lag, TRADE, snapshot, token, holder),
        what=f"lag, last trade, snapshot and lease in the status\n{operator.log_tail()}",
    )

    lines = plugin.run("-n", namespace, "markets").stdout.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "READY", "LAG", "LAST", "TRADE", "SNAPSHOT",
                                "LEASE", "HOLDER", "REASON"]  # fmt: skip
    assert lines[1].split() == [name, "Ready", "True", str(lag), TRADE, snapshot, str(token),
                                holder, "AllConditionsTrue"]  # fmt: skip
    columns = {column["name"] for column in _printer_columns(kube)}
    assert {"Lag", "Last Trade", "Snapshot", "Lease", "Holder"} <= columns
    # Every drift check reads the last trade through the same few pooled connections.
    before = await _report_connections(storage_dsn)
    assert 1 <= len(before) <= POOL_SIZE
    await asyncio.sleep(2 * DRIFT_SECONDS + 1)
    assert await _report_connections(storage_dsn) == before

    # The engine lets its lease go (it stops): the status says nobody holds it.
    assert await store.release_lease(token)
    wait_for(lambda: {"leaseToken", "leaseHolder"}.isdisjoint(kube.status(namespace, name)),
             what="lease free")  # fmt: skip
    assert plugin.run("-n", namespace, "markets").stdout.splitlines()[1].split()[6:8] == [
        "free",
        "-",
    ]
    everywhere = plugin.run("markets", "-A").stdout
    assert f"{namespace}/{name}" in everywhere


async def test_the_status_names_the_engine_pod_that_holds_the_lease_through_a_failover(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    redis_server: RedisServer,
    plugin: PluginRunner,
    tmp_path: Path,
) -> None:
    """Two real engines of the Market (a leader and its warm standby, named by POD_NAME as
    the downward API names them): status.leaseHolder and `kubectl exchange markets` show the
    leader, then the standby once the leader is killed, then nobody once it stops."""
    name = "holder-usd"
    _ready_market(kube, namespace, name)
    manifest = write_manifest(tmp_path, name)
    env = {"EXCHANGE_ENGINE_LEASE_TTL_MS": "1000"}
    pods = [f"engine-{name}-6f7c9-{suffix}" for suffix in ("aaaaa", "bbbbb")]
    leader, standby = (
        EngineProcess(manifest, redis_server.url, tmp_path / f"{pod}.log", {**env, "POD_NAME": pod})
        for pod in pods
    )
    try:
        leader.start()
        await leader.wait_ready()
        standby.start()
        held = wait_for(lambda: _holding(kube, namespace, name, pods[0]),
                        what=f"the leader in the status\n{operator.log_tail()}")  # fmt: skip
        row = plugin.run("-n", namespace, "markets").stdout.splitlines()[1].split()
        assert row[6:8] == [str(held), pods[0]]

        leader.kill()
        await standby.wait_ready(timeout=10)
        took_over = wait_for(lambda: _holding(kube, namespace, name, pods[1]),
                             what="the standby in the status")  # fmt: skip
        assert took_over > held

        assert await asyncio.to_thread(standby.terminate) == 0
        wait_for(lambda: {"leaseToken", "leaseHolder"}.isdisjoint(kube.status(namespace, name)),
                 what="nobody in the status once the lease is released")  # fmt: skip
    finally:
        leader.kill()
        standby.kill()


async def test_the_phase_follows_the_trading_state_the_engine_reports(
    kube: Kube, namespace: str, operator: OperatorProcess, redis_client: redis.asyncio.Redis
) -> None:
    """Halted once the engine has committed the halt (its lease renewals report it), not
    when the spec asks for it; the spec's state only while no engine reports one."""
    name = "state-usd"
    _ready_market(kube, namespace, name)
    store = MarketStore(redis_client, name, f"engine-{name}-1")
    token = await store.acquire_lease(60_000)
    assert await store.renew_lease(token, 60_000, "Enabled")
    wait_for(lambda: kube.status(namespace, name).get("engineTrading") == "Enabled",
             what=f"the engine's trading state\n{operator.log_tail()}")  # fmt: skip

    kube.patch_market(namespace, name, {"spec": {"trading": "Halted"}})
    for _ in range(300):  # the operator enqueues the halt for the engine
        if await redis_client.xlen(keys.market_input(name)):
            break
        await asyncio.sleep(0.1)
    assert await redis_client.xlen(keys.market_input(name)) == 1
    await asyncio.sleep(DRIFT_SECONDS + 1)  # a drift check or more: nothing applied the halt
    status = kube.status(namespace, name)
    assert (status["phase"], status["engineTrading"]) == ("Ready", "Enabled")

    assert await store.renew_lease(token, 60_000, "Halted")  # the engine committed it
    kube.wait_phase(namespace, name, "Halted")
    assert await store.release_lease(token)
    wait_for(lambda: "engineTrading" not in kube.status(namespace, name), what="no report")
    assert kube.status(namespace, name)["phase"] == "Halted"  # the spec's, meanwhile


def _holding(kube: Kube, namespace: str, name: str, pod: str) -> int | None:
    """The lease token while the status names `pod` as its holder."""
    status = kube.status(namespace, name)
    return status.get("leaseToken") if status.get("leaseHolder") == pod else None


async def test_halt_resume_and_close(
    kube: Kube, namespace: str, operator: OperatorProcess, plugin: PluginRunner
) -> None:
    name = "halt-usd"
    _ready_market(kube, namespace, name)
    plugin.run("-n", namespace, "halt", name)
    kube.wait_phase(namespace, name, "Halted")
    plugin.run("-n", namespace, "resume", name)
    kube.wait_phase(namespace, name, "Ready")
    assert "no Market nope" in plugin.run("-n", namespace, "halt", "nope", ok=False).stderr

    refused = plugin.run("-n", namespace, "close", name, ok=False)
    assert "--yes" in refused.stderr
    assert kube.get_market(namespace, name) is not None
    plugin.run("-n", namespace, "close", name, "--yes")
    wait_for(lambda: kube.get_market(namespace, name) is None, timeout=60,
             what=f"{name} closed and gone\n{operator.log_tail()}")  # fmt: skip


async def test_why_says_what_is_not_ready(
    kube: Kube, namespace: str, operator: OperatorProcess, plugin: PluginRunner
) -> None:
    name = "why-usd"
    kube.create_market(namespace, market_manifest(name))
    kube.wait_conditions(namespace, name, QueueReady="True", StorageReady="True")
    # Play the Deployment controller giving up on the engine, and a kubelet's warning.
    engine = f"engine-{name}"
    stuck = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": f'ReplicaSet "{engine}-1" has timed out progressing.'}  # fmt: skip
    kube.rest.patch(f"/apis/apps/v1/namespaces/{namespace}/deployments/{engine}/status",
                    {"status": {"conditions": [stuck]}})  # fmt: skip
    kube.rest.create(f"/api/v1/namespaces/{namespace}/events", {
        "metadata": {"name": f"{name}.warning"},
        "involvedObject": {"kind": "Market", "name": name, "namespace": namespace},
        "type": "Warning", "reason": "Tested", "message": "something is off",
    })  # fmt: skip

    verdict = "ProgressDeadlineExceeded"
    wait_for(lambda: _condition(kube, namespace, name, "EngineReady").get("reason") == verdict,
             what="the Deployment's verdict in EngineReady")  # fmt: skip
    assert stuck["message"] in _condition(kube, namespace, name, "EngineReady")["message"]
    said = plugin.run("-n", namespace, "why", name).stdout
    assert f"market {name}: phase Degraded" in said
    assert "EngineReady: ProgressDeadlineExceeded" in said
    assert f"Deployment {engine} Progressing: {stuck['message']}" in said
    assert "event Tested: something is off" in said

    kube.set_ready(namespace, engine)
    kube.set_ready(namespace, f"mm-{name}")
    kube.wait_phase(namespace, name, "Ready")
    assert "Ready: every component is ready" in plugin.run("-n", namespace, "why", name).stdout


def test_a_client_certificate_kubeconfig_works(
    kube: Kube, namespace: str, control_plane: ControlPlane, tmp_path: Path
) -> None:
    """Logged in as kind's kubeconfigs do, with a client certificate and key inline."""
    kube.create_market(namespace, market_manifest("cert-usd"))
    config = control_plane.write_certificate_kubeconfig(
        tmp_path / "cert.kubeconfig", "cert-admin", "system:masters"
    )
    listed = PluginRunner(config).run("-n", namespace, "markets").stdout
    assert listed.splitlines()[1].split()[0] == "cert-usd"
