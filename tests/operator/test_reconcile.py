"""The operator against a real API server, Redis and PostgreSQL: create, drift, spec changes."""

from __future__ import annotations

import asyncpg
import redis.asyncio

from tests.operator.harness import Kube, OperatorProcess, market_manifest, wait_for
from xch import keys
from xch.market import Market
from xch_operator.resources import CONFIG_HASH

UID_PATH = ("metadata", "uid")


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
    assert kube.status(namespace, "btc-usd")["phase"] == "Degraded"

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
    status = kube.status(namespace, "btc-usd")
    generation = kube.get_market(namespace, "btc-usd")["metadata"]["generation"]  # type: ignore[index]
    assert status["observedGeneration"] == generation
    assert all(c["status"] == "True" and c["observedGeneration"] == generation
               for c in status["conditions"])  # fmt: skip
