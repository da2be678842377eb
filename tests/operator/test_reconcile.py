"""The operator against a real API server, Redis and PostgreSQL: create, drift, spec changes."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio

from storage.klines import existing_relations, relation_name
from tests.harness.operator import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    Kube,
    OperatorProcess,
    market_manifest,
    start_operator,
    wait_for,
    watching_every_namespace,
)
from tests.harness.processes import free_port
from tests.harness.servers import RedisServer
from xch import keys
from xch.market import Market
from xch.schemas import Command, SetTrading
from xch.wire import FIELD_COMMAND, decode_command
from xch_operator.handlers import FROM_KUBECONFIG
from xch_operator.provisioning import market_owner
from xch_operator.resources import CONFIG_HASH


def _ready_all(kube: Kube, namespace: str, name: str, mm: bool = True) -> None:
    wait_for(lambda: kube.deployment(namespace, f"engine-{name}"), what="engine Deployment")
    kube.set_ready(namespace, f"engine-{name}")
    if mm:
        wait_for(lambda: kube.deployment(namespace, f"mm-{name}"), what="mm Deployment")
        kube.set_ready(namespace, f"mm-{name}")


def _template_hash(kube: Kube, namespace: str, deployment: str) -> str:
    live = kube.deployment(namespace, deployment) or {}
    value: str = live["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]
    return value


async def test_create_provisions_everything(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    redis_client: redis.asyncio.Redis,
    pg_conn: asyncpg.Connection,
) -> None:
    created = kube.create_market(namespace, market_manifest("btc-usd"))
    uid = created["metadata"]["uid"]
    conditions = kube.wait_conditions(namespace, "btc-usd", QueueReady="True",
                                      StorageReady="True")  # fmt: skip
    assert conditions["EngineReady"] == "False"
    assert conditions["Ready"] == "False"
    assert kube.status(namespace, "btc-usd")["phase"] == "Degraded"
    # It says how and as whom it logged in (the cluster test: in-cluster, the chart's account).
    account = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
    assert f"logged in {FROM_KUBECONFIG} as {account}" in operator.log_text()

    for path in (
        f"/api/v1/namespaces/{namespace}/configmaps/market-btc-usd",
        f"/api/v1/namespaces/{namespace}/services/engine-btc-usd",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/engine-btc-usd",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/mm-btc-usd",
    ):
        child = kube.rest.get(path)
        assert child is not None, path
        owners = child["metadata"]["ownerReferences"]
        assert [(o["kind"], o["uid"], o["controller"]) for o in owners] == [("Market", uid, True)]
    engine = kube.deployment(namespace, "engine-btc-usd") or {}
    assert engine["spec"]["replicas"] == 1
    assert engine["spec"]["strategy"]["type"] == "Recreate"

    entry = await redis_client.hget(keys.MARKETS, "btc-usd")
    assert entry is not None
    assert Market.from_registry_entry(entry).spec.tick_size == "0.01"
    assert await redis_client.exists(keys.market_input("btc-usd"))
    groups = await redis_client.xinfo_groups(keys.market_events("btc-usd"))
    assert [group["name"] for group in groups] == [keys.DBPROC_GROUP.encode()]
    row = await pg_conn.fetchrow("SELECT base_asset, deleted_at FROM markets WHERE name = $1",
                                 "btc-usd")  # fmt: skip
    assert row is not None and row["base_asset"] == "BTC" and row["deleted_at"] is None

    _ready_all(kube, namespace, "btc-usd")
    kube.wait_phase(namespace, "btc-usd", "Ready")
    assert kube.conditions(namespace, "btc-usd")["Ready"] == "True"
    status = kube.status(namespace, "btc-usd")
    generation = kube.get_market(namespace, "btc-usd")["metadata"]["generation"]  # type: ignore[index]
    assert status["observedGeneration"] == generation
    assert all(c["status"] == "True" and c["observedGeneration"] == generation
               for c in status["conditions"])  # fmt: skip

    events = kube.rest.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
    reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == "btc-usd"}
    assert "Created" in reasons, reasons
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics") as page:
        metrics = page.read().decode()
    assert 'xch_operator_reconciles_total{handler="reconcile"}' in metrics


async def test_drift_is_repaired(
    kube: Kube, namespace: str, operator: OperatorProcess, redis_client: redis.asyncio.Redis
) -> None:
    kube.create_market(namespace, market_manifest("eth-usd"))
    kube.wait_conditions(namespace, "eth-usd", QueueReady="True", StorageReady="True")
    configmap = f"/api/v1/namespaces/{namespace}/configmaps/market-eth-usd"
    original = (kube.rest.get(configmap) or {})["data"]

    kube.rest.delete(f"/apis/apps/v1/namespaces/{namespace}/deployments/engine-eth-usd")
    kube.rest.patch(configmap, {"data": {"market.yaml": "edited by hand"}})
    await redis_client.hdel(keys.MARKETS, "eth-usd")

    wait_for(lambda: kube.deployment(namespace, "engine-eth-usd"), what="engine put back")
    wait_for(lambda: (kube.rest.get(configmap) or {}).get("data") == original,
             what="ConfigMap put back")  # fmt: skip
    for _ in range(100):
        if await redis_client.hexists(keys.MARKETS, "eth-usd"):
            break
        await asyncio.sleep(0.1)
    assert await redis_client.hexists(keys.MARKETS, "eth-usd"), "registry entry put back"


async def test_spec_changes_roll_only_what_they_affect(
    kube: Kube, namespace: str, operator: OperatorProcess, redis_client: redis.asyncio.Redis
) -> None:
    kube.create_market(namespace, market_manifest("sol-usd"))
    kube.wait_conditions(namespace, "sol-usd", QueueReady="True", StorageReady="True")
    engine, mm = (
        _template_hash(kube, namespace, "engine-sol-usd"),
        _template_hash(kube, namespace, "mm-sol-usd"),
    )

    kube.patch_market(namespace, "sol-usd", {"spec": {"fees": {"takerBps": 25}}})
    wait_for(lambda: _template_hash(kube, namespace, "engine-sol-usd") != engine,
             what="engine rolled by a fee change")  # fmt: skip
    assert _template_hash(kube, namespace, "mm-sol-usd") == mm
    engine = _template_hash(kube, namespace, "engine-sol-usd")

    kube.patch_market(namespace, "sol-usd", {"spec": {"marketMaker": {"spreadBps": 40}}})
    wait_for(lambda: _template_hash(kube, namespace, "mm-sol-usd") != mm,
             what="mm rolled by a marketMaker change")  # fmt: skip
    assert _template_hash(kube, namespace, "engine-sol-usd") == engine

    kube.patch_market(namespace, "sol-usd", {"spec": {"trading": "Halted"}})
    commands = await _wait_commands(redis_client, "sol-usd", 1)
    assert commands == [SetTrading(trading="Halted")]
    entry = await redis_client.hget(keys.MARKETS, "sol-usd")
    assert entry is not None and Market.from_registry_entry(entry).spec.trading == "Halted"
    assert _template_hash(kube, namespace, "engine-sol-usd") == engine

    kube.patch_market(namespace, "sol-usd", {"spec": {"marketMaker": {"enabled": False}}})
    wait_for(lambda: kube.deployment(namespace, "mm-sol-usd") is None, what="mm deleted")
    kube.set_ready(namespace, "engine-sol-usd")
    kube.wait_phase(namespace, "sol-usd", "Halted")
    assert kube.conditions(namespace, "sol-usd")["MarketMakerReady"] == "True"


async def test_a_warm_standby_runs_two_engines_with_a_budget_until_turned_off(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.create_market(namespace, market_manifest("ada-usd", engine={"standby": True}))
    pdb_path = f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/engine-ada-usd"
    pdb = wait_for(lambda: kube.rest.get(pdb_path), what="the engine's budget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert [o["kind"] for o in pdb["metadata"]["ownerReferences"]] == ["Market"]
    engine = kube.deployment(namespace, "engine-ada-usd") or {}
    assert engine["spec"]["replicas"] == 2
    assert engine["spec"]["strategy"]["type"] == "RollingUpdate"
    config = _template_hash(kube, namespace, "engine-ada-usd")
    # the leader ready, the standby not: the market is Ready
    kube.set_ready(namespace, "engine-ada-usd")
    kube.set_ready(namespace, "mm-ada-usd")
    kube.wait_phase(namespace, "ada-usd", "Ready")
    pdb_version = pdb["metadata"]["resourceVersion"]
    await asyncio.sleep(4)  # a drift check (3 s) finds nothing to apply
    pdb = kube.rest.get(pdb_path) or {}
    engine = kube.deployment(namespace, "engine-ada-usd") or {}
    assert pdb["metadata"]["resourceVersion"] == pdb_version
    assert engine["metadata"]["generation"] == 1

    kube.patch_market(namespace, "ada-usd", {"spec": {"engine": {"standby": False}}})
    wait_for(lambda: kube.rest.get(pdb_path) is None, what="the budget deleted")
    engine = wait_for(lambda: (d := kube.deployment(namespace, "engine-ada-usd"))
                      and d["spec"]["replicas"] == 1 and d, what="one engine")  # fmt: skip
    assert engine["spec"]["strategy"] == {"type": "Recreate"}
    assert _template_hash(kube, namespace, "engine-ada-usd") == config


async def test_scale_disagreement_is_refused(
    kube: Kube, namespace: str, operator: OperatorProcess, redis_client: redis.asyncio.Redis
) -> None:
    kube.create_market(namespace, market_manifest("btc-usd"))
    kube.wait_conditions(namespace, "btc-usd", QueueReady="True")
    kube.create_market(namespace, market_manifest("btc-eur", base={"asset": "BTC", "scale": 6},
                                                  quote={"asset": "EUR", "scale": 6}))  # fmt: skip
    kube.wait_conditions(namespace, "btc-eur", QueueReady="False")
    condition = next(c for c in kube.status(namespace, "btc-eur")["conditions"]
                     if c["type"] == "QueueReady")  # fmt: skip
    assert condition["reason"] == "ScaleConflict"
    assert "BTC has scale 8 in market btc-usd, not 6" in condition["message"]
    assert not await redis_client.hexists(keys.MARKETS, "btc-eur")


async def _wait_commands(
    client: redis.asyncio.Redis, market: str, count: int, timeout: float = 30
) -> list[Command]:
    """The first `count` commands in the market's input stream, once there are that many."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries: Any = await client.xrange(keys.market_input(market))
        if len(entries) >= count:
            return [decode_command(fields[FIELD_COMMAND]) for _, fields in entries[:count]]
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} commands in {market}'s input")


async def test_storage_down_is_reported_and_then_provisioned(
    kube: Kube,
    namespace: str,
    operator_kubeconfig: Path,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    storage_dsn: str,
    tmp_path: Path,
) -> None:
    nowhere = f"postgresql://exchange@127.0.0.1:{free_port()}/exchange_test"
    broken = start_operator(operator_kubeconfig, namespace, redis_server.url, nowhere, tmp_path)
    try:
        kube.create_market(namespace, market_manifest("ada-usd"))
        kube.wait_conditions(namespace, "ada-usd", QueueReady="True", StorageReady="False")
        condition = next(c for c in kube.status(namespace, "ada-usd")["conditions"]
                         if c["type"] == "StorageReady")  # fmt: skip
        assert condition["reason"] == "StorageUnavailable"
        assert kube.status(namespace, "ada-usd")["phase"] == "Provisioning"
        assert kube.deployment(namespace, "engine-ada-usd") is not None
    finally:
        broken.terminate()
    second = tmp_path / "second"
    second.mkdir()
    fixed = start_operator(operator_kubeconfig, namespace, redis_server.url, storage_dsn, second)
    try:
        kube.wait_conditions(namespace, "ada-usd", StorageReady="True")
    finally:
        fixed.terminate()


async def test_a_name_held_by_another_market_is_refused_and_left_alone(
    kube: Kube, namespace: str, operator: OperatorProcess, redis_client: redis.asyncio.Redis
) -> None:
    """Market names are cluster-wide in Redis: a second Market of the same name (another
    namespace) gets nothing, and deleting it touches nothing of the first."""
    await redis_client.set(market_owner("btc-usd"), "elsewhere/some-uid")
    kube.create_market(namespace, market_manifest("btc-usd"))
    kube.wait_conditions(namespace, "btc-usd", QueueReady="False")
    condition = next(c for c in kube.status(namespace, "btc-usd")["conditions"]
                     if c["type"] == "QueueReady")  # fmt: skip
    assert condition["reason"] == "NameTaken"
    assert kube.deployment(namespace, "engine-btc-usd") is None
    assert not await redis_client.hexists(keys.MARKETS, "btc-usd")

    kube.delete_market(namespace, "btc-usd")
    wait_for(lambda: kube.get_market(namespace, "btc-usd") is None, what="finalizer released")
    assert await redis_client.get(market_owner("btc-usd")) == b"elsewhere/some-uid"


async def test_a_child_name_held_by_someone_else_is_reported_until_it_is_free(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    """A ConfigMap of the Market's child name that the Market does not own: refused (never
    taken over), said in the status; once it is gone the drift check makes the children
    (Kopf keeps calling a timer that raised a permanent error)."""
    foreign = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "market-xrp-usd"}, "data": {"mine": "yes"}}  # fmt: skip
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    kube.rest.create(path, foreign)
    kube.create_market(namespace, market_manifest("xrp-usd"))
    kube.wait_conditions(namespace, "xrp-usd", EngineReady="False", Ready="False")
    engine = next(c for c in kube.status(namespace, "xrp-usd")["conditions"]
                  if c["type"] == "EngineReady")  # fmt: skip
    assert engine["reason"] == "ChildNotOwned"
    assert "ConfigMap/market-xrp-usd" in engine["message"]
    assert (kube.rest.get(f"{path}/market-xrp-usd") or {})["data"] == {"mine": "yes"}

    kube.rest.delete(f"{path}/market-xrp-usd")
    _ready_all(kube, namespace, "xrp-usd")
    kube.wait_phase(namespace, "xrp-usd", "Ready")
    assert kube.conditions(namespace, "xrp-usd")["Ready"] == "True"


async def test_resources_the_server_rewrites_are_not_applied_again(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    """`cpu: 0.5` is live as "500m": the drift check must see no difference (it once
    re-applied such a Deployment, with an Updated event, every drift interval)."""
    own = {"requests": {"cpu": 0.5, "memory": "1024Mi"}}
    kube.create_market(namespace, market_manifest("dot-usd", engine={"resources": own}))
    kube.wait_conditions(namespace, "dot-usd", QueueReady="True", StorageReady="True")
    live = kube.deployment(namespace, "engine-dot-usd") or {}
    assert live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "500m", "memory": "1Gi"}  # fmt: skip
    await asyncio.sleep(7)  # two drift checks (EXCHANGE_OPERATOR_DRIFT_SECONDS=3)
    events = kube.rest.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
    updates = [e for e in events if e["involvedObject"]["name"] == "dot-usd"
               and e["reason"] == "Updated"]  # fmt: skip
    assert updates == [], "the drift check applied the engine again"


async def test_a_deleted_deployment_is_made_again_at_once(
    kube: Kube,
    namespace: str,
    operator_kubeconfig: Path,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    storage_dsn: str,
    tmp_path: Path,
) -> None:
    """Not at the next drift check (two minutes away here): on the Deployment's deletion."""
    slow = {"EXCHANGE_OPERATOR_DRIFT_SECONDS": "120"}
    operator = start_operator(operator_kubeconfig, namespace, redis_server.url, storage_dsn,
                              tmp_path, env=slow)  # fmt: skip
    try:
        kube.create_market(namespace, market_manifest("ltc-usd"))
        _ready_all(kube, namespace, "ltc-usd")
        kube.wait_phase(namespace, "ltc-usd", "Ready")
        for child in ("engine-ltc-usd", "mm-ltc-usd"):
            old = (kube.deployment(namespace, child) or {})["metadata"]["uid"]
            kube.rest.delete(f"/apis/apps/v1/namespaces/{namespace}/deployments/{child}")
            wait_for(lambda: _uid(kube, namespace, child) not in (None, old), timeout=15,  # noqa: B023
                     what=f"{child} made again\n{operator.log_tail()}")  # fmt: skip
    finally:
        operator.terminate()


def _uid(kube: Kube, namespace: str, deployment: str) -> str | None:
    live = kube.deployment(namespace, deployment)
    return None if live is None else str(live["metadata"]["uid"])


async def test_a_child_the_api_server_refuses_is_reported_until_fixed(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    """Requests above limits: the Market model lets the resources through, the API server
    refuses the engine Deployment. EngineReady says so, with the API server's words."""
    wrong = {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}
    kube.create_market(namespace, market_manifest("bch-usd", engine={"resources": wrong}))
    kube.wait_conditions(namespace, "bch-usd", QueueReady="True", EngineReady="False")
    engine = next(c for c in kube.status(namespace, "bch-usd")["conditions"]
                  if c["type"] == "EngineReady")  # fmt: skip
    assert engine["reason"] == "ApplyFailed"
    assert engine["message"].startswith("Deployment/engine-bch-usd: 422")
    assert "must be less than or equal to cpu limit" in engine["message"]
    assert kube.deployment(namespace, "engine-bch-usd") is None

    kube.patch_market(namespace, "bch-usd", {"spec": {"engine": {"resources": {
        "requests": {"cpu": "1"}, "limits": {"cpu": "1"}}}}})  # fmt: skip
    wait_for(lambda: kube.deployment(namespace, "engine-bch-usd"), what="engine applied")
    _ready_all(kube, namespace, "bch-usd")
    kube.wait_phase(namespace, "bch-usd", "Ready")


async def test_storage_is_checked_again_and_made_again(
    kube: Kube, namespace: str, operator: OperatorProcess, storage_dsn: str
) -> None:
    """Not only until StorageReady: a klines view dropped by hand is back at the next drift
    check, with a StorageMissing warning naming it."""
    kube.create_market(namespace, market_manifest("zec-usd"))
    kube.wait_conditions(namespace, "zec-usd", StorageReady="True")
    hourly = relation_name("1h", "zec-usd")
    conn = await asyncpg.connect(storage_dsn)
    try:
        await conn.execute(f"DROP VIEW {hourly}")
        for _ in range(150):
            if hourly in await existing_relations(conn, "zec-usd"):
                break
            await asyncio.sleep(0.1)
        assert hourly in await existing_relations(conn, "zec-usd"), operator.log_tail()
    finally:
        await conn.close()
    events = kube.rest.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
    assert any(e["reason"] == "StorageMissing" and hourly in e["message"] for e in events)


async def test_cluster_wide_the_operator_reconciles_markets_in_every_namespace(
    kube: Kube,
    namespace: str,
    operator_kubeconfig: Path,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    storage_dsn: str,
    tmp_path: Path,
) -> None:
    """No watched namespaces (the chart's default): Markets of namespaces created after it
    started, with no Role of their own, are reconciled and wound down."""
    everywhere = {"EXCHANGE_OPERATOR_NAMESPACES": "[]"}
    with watching_every_namespace(kube):
        operator = start_operator(operator_kubeconfig, namespace, redis_server.url,
                                  storage_dsn, tmp_path, env=everywhere)  # fmt: skip
        try:
            others = [f"{namespace}-a", f"{namespace}-b"]
            for other, name in zip(others, ("aa-usd", "bb-usd"), strict=True):
                kube.create_namespace(other)
                kube.create_market(other, market_manifest(name))
            for other, name in zip(others, ("aa-usd", "bb-usd"), strict=True):
                kube.wait_conditions(other, name, QueueReady="True", StorageReady="True")
                _ready_all(kube, other, name)
                kube.wait_phase(other, name, "Ready")
                kube.delete_market(other, name)
                wait_for(lambda: kube.get_market(other, name) is None,  # noqa: B023
                         what=f"{name} wound down\n{operator.log_tail()}")  # fmt: skip
        finally:
            operator.terminate()
