"""Engine image upgrades in batches, and the restart and pause annotations, on the real API
server (no Deployment controller: the tests report readiness through /status)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from tests.harness.operator import Kube, OperatorProcess, market_manifest, start_operator, wait_for
from tests.harness.servers import RedisServer
from xch_operator import resources
from xch_operator.rollout import RECONCILE, RESTARTED_AT

OLD, NEW = "exchange/engine:1", "exchange/engine:2"
MARKETS = ("aaa-usd", "bbb-usd", "ccc-usd")


@pytest.fixture
def start(
    operator_kubeconfig: Path,
    namespace: str,
    redis_server: RedisServer,
    storage_dsn: str,
    tmp_path: Path,
) -> Iterator[Any]:
    """Start operators (one at a time) with settings of the test's choosing."""
    running: list[OperatorProcess] = []

    def run(**settings: str) -> OperatorProcess:
        env = {f"EXCHANGE_OPERATOR_{name.upper()}": value for name, value in settings.items()}
        process = start_operator(operator_kubeconfig, namespace, redis_server.url, storage_dsn,
                                 tmp_path, env)  # fmt: skip
        running.append(process)
        return process

    try:
        yield run
    finally:
        for process in running:
            process.terminate()


def _engine(kube: Kube, namespace: str, market: str) -> dict[str, Any]:
    return wait_for(lambda: kube.deployment(namespace, f"engine-{market}"), what="engine")


def _image(kube: Kube, namespace: str, market: str) -> str:
    image: str = _engine(kube, namespace, market)["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    return image


def _on(kube: Kube, namespace: str, image: str) -> list[str]:
    return [market for market in MARKETS if _image(kube, namespace, market) == image]


def _running(kube: Kube, namespace: str, market: str) -> str | None:
    image: str | None = kube.status(namespace, market).get("engineImage")
    return image


def _batch(kube: Kube, namespace: str) -> list[str] | None:
    on = _on(kube, namespace, NEW)
    return on if len(on) == 2 else None


def _wait_running(kube: Kube, namespace: str, markets: tuple[str, ...], image: str) -> None:
    wait_for(lambda: all(_running(kube, namespace, m) == image for m in markets),
             what=f"{image} running")  # fmt: skip


async def test_a_new_engine_image_rolls_in_batches_each_waiting_for_ready(
    kube: Kube, namespace: str, start: Any
) -> None:
    first = start(engine_image=OLD, engine_rollout_batch="2")
    for market in MARKETS:
        kube.create_market(namespace, market_manifest(market, marketMaker={"enabled": False}))
    for market in MARKETS:
        _engine(kube, namespace, market)
        kube.set_ready(namespace, f"engine-{market}")
    _wait_running(kube, namespace, MARKETS, OLD)
    first.terminate()

    start(engine_image=NEW, engine_rollout_batch="2")
    batch = wait_for(lambda: _batch(kube, namespace), what="a first batch of two")
    (held,) = set(MARKETS) - set(batch)
    await asyncio.sleep(4)  # drift checks (3 s) and retries (0.5 s) of the held one run
    assert _on(kube, namespace, NEW) == batch
    assert kube.status(namespace, held).get("pendingEngineImage") == NEW
    assert _running(kube, namespace, batch[0]) == OLD  # until it is ready on the new one

    kube.set_ready(namespace, f"engine-{batch[0]}")
    wait_for(lambda: _image(kube, namespace, held) == NEW, what="the held one admitted")
    wait_for(lambda: _running(kube, namespace, batch[0]) == NEW, what="the new image running")
    for market in (batch[1], held):
        kube.set_ready(namespace, f"engine-{market}")
    _wait_running(kube, namespace, MARKETS, NEW)
    for market in MARKETS:
        assert "pendingEngineImage" not in kube.status(namespace, market)


async def test_restart_rolls_the_markets_pods_and_pause_leaves_its_children_alone(
    kube: Kube, namespace: str, start: Any
) -> None:
    start()
    kube.create_market(namespace, market_manifest("ddd-usd"))
    engine = _engine(kube, namespace, "ddd-usd")
    assert resources.RESTARTED_AT not in engine["spec"]["template"]["metadata"]["annotations"]

    def restarted(deployment: str) -> str | None:
        live = kube.deployment(namespace, deployment) or {}
        value: str | None = live["spec"]["template"]["metadata"]["annotations"].get(
            resources.RESTARTED_AT
        )
        return value

    at = "2026-12-07T18:00:00Z"
    kube.patch_market(namespace, "ddd-usd", {"metadata": {"annotations": {RESTARTED_AT: at}}})
    wait_for(lambda: restarted("engine-ddd-usd") == restarted("mm-ddd-usd") == at,
             what="engine and mm restarted")  # fmt: skip
    hash_before = restarted("engine-ddd-usd"), _template(kube, namespace)

    kube.patch_market(namespace, "ddd-usd", {"metadata": {"annotations": {RECONCILE: "paused"}}})
    wait_for(lambda: kube.status(namespace, "ddd-usd").get("paused") is True, what="paused")
    kube.patch_market(namespace, "ddd-usd", {"spec": {"fees": {"takerBps": 30}}})
    kube.rest.delete(f"/apis/apps/v1/namespaces/{namespace}/deployments/mm-ddd-usd")
    await asyncio.sleep(4)  # more than a drift check
    assert kube.deployment(namespace, "mm-ddd-usd") is None
    assert (restarted("engine-ddd-usd"), _template(kube, namespace)) == hash_before

    kube.patch_market(namespace, "ddd-usd", {"metadata": {"annotations": {RECONCILE: None}}})
    wait_for(lambda: kube.deployment(namespace, "mm-ddd-usd"), what="the mm made again")
    wait_for(lambda: _template(kube, namespace) != hash_before[1], what="the fee change applied")
    assert "paused" not in kube.status(namespace, "ddd-usd")


def _template(kube: Kube, namespace: str) -> str:
    live = kube.deployment(namespace, "engine-ddd-usd") or {}
    value: str = live["spec"]["template"]["metadata"]["annotations"][resources.CONFIG_HASH]
    return value


def _mm_image(kube: Kube, namespace: str, market: str) -> str:
    live = wait_for(lambda: kube.deployment(namespace, f"mm-{market}"), what="mm")
    image: str = live["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def _mm_on(kube: Kube, namespace: str, image: str) -> list[str]:
    return [market for market in MARKETS if _mm_image(kube, namespace, market) == image]


def _mm_batch(kube: Kube, namespace: str, image: str) -> list[str] | None:
    on = _mm_on(kube, namespace, image)
    return on if len(on) == 2 else None


async def test_a_new_market_maker_image_rolls_in_batches_too(
    kube: Kube, namespace: str, start: Any, redis_client: redis.asyncio.Redis
) -> None:
    """After the engines' test: its Markets still hold their names in Redis unless emptied
    (redis_client empties it)."""
    old_mm, new_mm = "exchange/mm:1", "exchange/mm:2"
    first = start(mm_image=old_mm, engine_rollout_batch="2")
    for market in MARKETS:
        kube.create_market(namespace, market_manifest(market))
    for market in MARKETS:
        _engine(kube, namespace, market)
        kube.set_ready(namespace, f"engine-{market}")
        _mm_image(kube, namespace, market)
        kube.set_ready(namespace, f"mm-{market}")
    for market in MARKETS:
        kube.wait_phase(namespace, market, "Ready")
    first.terminate()

    start(mm_image=new_mm, engine_rollout_batch="2")
    batch = wait_for(lambda: _mm_batch(kube, namespace, new_mm),
                     what="a first batch of two market makers")  # fmt: skip
    (held,) = set(MARKETS) - set(batch)
    await asyncio.sleep(4)  # drift checks (3 s) and retries (0.5 s) of the held one run
    assert _mm_on(kube, namespace, new_mm) == batch
    kube.set_ready(namespace, f"mm-{batch[0]}")
    wait_for(lambda: _mm_image(kube, namespace, held) == new_mm, what="the held one admitted")
