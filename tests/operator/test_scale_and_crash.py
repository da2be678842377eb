"""Many Markets at once, and an operator killed (kill -9) in the middle of reconciling."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio

from tests.harness.operator import Kube, OperatorProcess, market_manifest, start_operator, wait_for
from tests.harness.servers import RedisServer
from xch import keys
from xch.wire import as_text


def _names(count: int) -> list[str]:
    return [f"c{index:02d}-usd" for index in range(count)]


def _create(kube: Kube, namespace: str, names: list[str]) -> None:
    for index, name in enumerate(names):
        base = {"asset": f"C{index:02d}", "scale": 8}
        kube.create_market(namespace, market_manifest(name, base=base))


def _provisioned(kube: Kube, namespace: str, names: list[str]) -> bool:
    for name in names:
        conditions = kube.conditions(namespace, name)
        if conditions.get("QueueReady") != "True" or conditions.get("StorageReady") != "True":
            return False
    return True


def _report_ready(kube: Kube, namespace: str, names: list[str]) -> None:
    for name in names:
        kube.set_ready(namespace, f"engine-{name}")
        kube.set_ready(namespace, f"mm-{name}")


async def _check_state(
    kube: Kube, namespace: str, names: list[str], redis_client: redis.asyncio.Redis
) -> None:
    """Exactly these markets in the registry, each with its streams, group and children."""
    registry = await redis_client.hkeys(keys.MARKETS)
    assert sorted(as_text(name) for name in registry) == sorted(names)
    for name in names:
        groups = await redis_client.xinfo_groups(keys.market_events(name))
        assert [group["name"] for group in groups] == [keys.DBPROC_GROUP.encode()]
        assert await redis_client.exists(keys.market_input(name))
        for child in (f"configmaps/market-{name}", f"services/engine-{name}"):
            assert kube.rest.get(f"/api/v1/namespaces/{namespace}/{child}") is not None


async def test_fifty_markets_reach_ready(
    kube: Kube, namespace: str, operator: OperatorProcess, redis_client: redis.asyncio.Redis
) -> None:
    names = _names(50)
    _create(kube, namespace, names)
    wait_for(lambda: _provisioned(kube, namespace, names), timeout=120,
             what=f"50 Markets provisioned\n{operator.log_tail()}")  # fmt: skip
    _report_ready(kube, namespace, names)
    for name in names:
        kube.wait_phase(namespace, name, "Ready", timeout=60)
    await _check_state(kube, namespace, names, redis_client)


async def test_operator_killed_mid_reconcile_converges(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    operator_kubeconfig: Path,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    storage_dsn: str,
    tmp_path: Path,
) -> None:
    # Enough Markets that, on an idle machine too, most are still underway when the first one
    # shows progress (ten were all done by then once).
    names = _names(30)
    _create(kube, namespace, names)
    # Kill it as soon as the first Market shows progress, with the rest still underway.
    wait_for(lambda: any(kube.conditions(namespace, name) for name in names), timeout=30,
             what="first status")  # fmt: skip
    operator.kill()
    assert not _provisioned(kube, namespace, names), "killed too late to test anything"

    second = tmp_path / "second"
    second.mkdir()
    restarted = start_operator(operator_kubeconfig, namespace, redis_server.url, storage_dsn,
                               second)  # fmt: skip
    try:
        wait_for(lambda: _provisioned(kube, namespace, names), timeout=60,
                 what=f"provisioned after the restart\n{restarted.log_tail()}")  # fmt: skip
        _report_ready(kube, namespace, names)
        for name in names:
            kube.wait_phase(namespace, name, "Ready")
        await _check_state(kube, namespace, names, redis_client)
    finally:
        restarted.terminate()
