"""`kubectl exchange` (xch_operator.plugin) run as kubectl runs it, a program with the admin's
kubeconfig, against the real API server and a running operator."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio

from tests.harness.kube import ControlPlane
from tests.harness.operator import Kube, OperatorProcess, market_manifest, wait_for
from tests.harness.processes import ROOT
from xch import keys

TRADE_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


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


async def test_markets_shows_phase_readiness_lag_and_last_trade(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    redis_client: redis.asyncio.Redis,
    storage_dsn: str,
    plugin: PluginRunner,
) -> None:
    name = "lag-usd"
    _ready_market(kube, namespace, name)
    for _ in range(3):
        await redis_client.xadd(keys.market_input(name), {"test": "1"})
    await _trade(storage_dsn, name)
    lag = await redis_client.xlen(keys.market_input(name))  # nothing applied: all of it
    assert lag >= 3
    wait_for(lambda: kube.status(namespace, name).get("inputLag") == lag
             and kube.status(namespace, name).get("lastTradeTime") == "2026-01-02T03:04:05Z",
             what=f"lag and last trade in the status\n{operator.log_tail()}")  # fmt: skip

    lines = plugin.run("-n", namespace, "markets").stdout.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "READY", "LAG", "LAST", "TRADE", "REASON"]
    assert lines[1].split() == [name, "Ready", "True", str(lag), "2026-01-02T03:04:05Z",
                                "AllConditionsTrue"]  # fmt: skip
    everywhere = plugin.run("markets", "-A").stdout
    assert f"{namespace}/{name}" in everywhere


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

    said = plugin.run("-n", namespace, "why", name).stdout
    assert f"market {name}: phase Degraded" in said
    assert "EngineReady: ReplicaNotReady" in said
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
