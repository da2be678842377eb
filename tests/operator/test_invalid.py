"""A Market the API server stored but the Market model refuses (here: stored while the CRD
lacked one of its rules, as under an older CRD) is reported, never silently dropped: SpecValid
False, phase Invalid, a Warning event; nothing is provisioned; fixing the spec reconciles it."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis.asyncio
import yaml

from tests.harness.kube import ApiError
from tests.harness.operator import CRD_FILE, Kube, OperatorProcess, market_manifest, wait_for
from xch import keys

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/markets.exchange.dev"
DRIFT_SECONDS = 3
"""The tests' operators check every Market this often."""
LOOSENED = "minNotional must be a whole number of quote minor units"


@contextmanager
def loosened_crd(kube: Kube) -> Iterator[None]:
    """The CRD without the minNotional rule, for the time the block runs."""
    crd: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    loose = copy.deepcopy(crd["spec"]["versions"])
    spec = loose[0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = spec["x-kubernetes-validations"]
    spec["x-kubernetes-validations"] = [rule for rule in rules if rule["message"] != LOOSENED]
    assert len(spec["x-kubernetes-validations"]) == len(rules) - 1
    kube.rest.patch(CRD_PATH, {"spec": {"versions": loose}})
    try:
        yield
    finally:
        kube.rest.patch(CRD_PATH, {"spec": {"versions": crd["spec"]["versions"]}})


def _create_when_accepted(kube: Kube, namespace: str, manifest: dict[str, Any]) -> None:
    """The API server takes a moment to serve a changed CRD's rules."""

    def created() -> bool:
        try:
            kube.create_market(namespace, manifest)
        except ApiError as exc:
            assert exc.status == 422, exc
            return False
        return True

    wait_for(created, what="the Market accepted by the loosened CRD")


async def test_an_invalid_market_is_reported_and_fixed(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    redis_client: redis.asyncio.Redis,
) -> None:
    name = "bad-usd"
    # Not a whole number of the quote's minor units (USD has 6 decimals here).
    with loosened_crd(kube):
        _create_when_accepted(kube, namespace, market_manifest(name, minNotional="0.0000001"))

    kube.wait_conditions(namespace, name, SpecValid="False", Ready="False")
    status = kube.status(namespace, name)
    assert (status["phase"], status["phaseReason"]) == ("Invalid", "InvalidMarket")
    (valid,) = [c for c in status["conditions"] if c["type"] == "SpecValid"]
    assert valid["reason"] == "InvalidMarket"
    assert "minNotional must be a whole number of USD minor units" in valid["message"]

    def warnings() -> list[dict[str, Any]]:
        events = kube.rest.get(f"/api/v1/namespaces/{namespace}/events") or {}
        return [event for event in events.get("items", [])
                if event["involvedObject"]["name"] == name
                and event["reason"] == "InvalidMarket"]  # fmt: skip

    wait_for(warnings, what="an InvalidMarket event")
    time.sleep(DRIFT_SECONDS + 0.5)  # another drift check: no second event
    (warning,) = warnings()
    assert warning["type"] == "Warning"
    assert not await redis_client.hexists(keys.MARKETS, name)
    assert kube.deployment(namespace, f"engine-{name}") is None

    kube.patch_market(namespace, name, {"spec": {"minNotional": "0.01"}})
    kube.wait_conditions(namespace, name, SpecValid="True", QueueReady="True")
    assert kube.status(namespace, name)["phase"] != "Invalid"
    assert await redis_client.hexists(keys.MARKETS, name)
