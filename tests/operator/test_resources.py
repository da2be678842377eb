"""Pure builders, status and diff logic: no cluster, no Redis."""

from __future__ import annotations

import base64
import dataclasses
import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest
import yaml

from engine.store import Snapshot
from tests.harness.operator import market_manifest
from xch.market import Market, Trading
from xch_operator import resources
from xch_operator.apply import is_subset
from xch_operator.observe import SNAPSHOT_HEAD, snapshot_input_id
from xch_operator.provisioning import scale_conflicts
from xch_operator.quantity import amount
from xch_operator.rollout import rolled_out
from xch_operator.status import (
    ENGINE_READY,
    MM_READY,
    QUEUE_READY,
    STORAGE_READY,
    Check,
    deployment_check,
    merge_conditions,
    phase_of,
)

IMAGES = resources.Images(engine="engine:1", mm="mm:1", pull_policy="IfNotPresent",
                          redis_url="redis://engine:secret@redis:6379/0", api_url="http://api:8000",
                          mm_secret="exchange-mm")  # fmt: skip


def _market(name: str = "btc-usd", **spec: Any) -> Market:
    return Market.model_validate(market_manifest(name, **spec))


def test_engine_deployment_is_one_replica_recreate_restricted_with_probes() -> None:
    deployment = resources.build_engine_deployment(_market(), IMAGES)
    assert deployment["metadata"]["name"] == "engine-btc-usd"
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["args"] == ["--market", "btc-usd", "--manifest", "/etc/exchange/market.yaml"]
    assert {"name": "config", "configMap": {"name": "market-btc-usd"}} in pod["volumes"]


def test_a_warm_standby_is_two_engines_apart_rolled_at_once_with_a_budget() -> None:
    single, standby = _market(), _market(engine={"standby": True})
    assert resources.build_engine_pdb(single) is None
    spec = resources.build_engine_deployment(standby, IMAGES)["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": "100%"}
    (preferred,) = spec["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    term = preferred["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    pdb = resources.build_engine_pdb(standby)
    assert pdb is not None
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": spec["selector"],
                           "unhealthyPodEvictionPolicy": "AlwaysAllow"}  # fmt: skip
    # the engines read the same manifest, hashed the same: standby is the operator's alone
    assert resources.config_hash(single, resources.ENGINE_FIELDS) == resources.config_hash(
        standby, resources.ENGINE_FIELDS
    )
    assert "standby" not in resources.build_configmap(standby)["data"]["market.yaml"]
    assert "standby" not in standby.registry_entry()


def test_pods_request_resources_and_leave_a_lost_node_within_seconds() -> None:
    engine = resources.build_engine_deployment(_market(), IMAGES)["spec"]["template"]["spec"]
    mm = (resources.build_mm_deployment(_market(), IMAGES) or {})["spec"]["template"]["spec"]
    assert engine["containers"][0]["resources"] == {"requests": {"cpu": "500m",
                                                                 "memory": "256Mi"}}  # fmt: skip
    assert mm["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    for pod in (engine, mm):
        assert {(t["key"], t["tolerationSeconds"]) for t in pod["tolerations"]} == {
            ("node.kubernetes.io/not-ready", 10),
            ("node.kubernetes.io/unreachable", 10),
        }
    assert "priorityClassName" not in engine
    own = {"requests": {"cpu": 2}, "limits": {"memory": "4Gi"}}
    tuned = resources.build_engine_deployment(
        _market(engine={"resources": own}),
        dataclasses.replace(IMAGES, eviction_seconds=3, priority_class="exchange-critical"),
    )["spec"]["template"]["spec"]
    assert tuned["containers"][0]["resources"] == own
    assert tuned["priorityClassName"] == "exchange-critical"
    assert {t["tolerationSeconds"] for t in tuned["tolerations"]} == {3}


def test_the_engine_reads_its_redis_credentials_from_the_markets_secret() -> None:
    market = _market()
    secret = resources.build_redis_secret(market, IMAGES)
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "engine-btc-usd-redis"
    assert base64.b64decode(secret["data"]["url"]).decode() == IMAGES.redis_url
    children = [key for key, _ in resources.build_children(market, IMAGES)]
    assert children.index("Secret/engine-btc-usd-redis") < children.index(
        "Deployment/engine-btc-usd"
    )
    deployment = resources.build_engine_deployment(market, IMAGES)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {entry["name"]: entry for entry in container["env"]}
    assert env["EXCHANGE_ENGINE_REDIS_URL"] == {
        "name": "EXCHANGE_ENGINE_REDIS_URL",
        "valueFrom": {"secretKeyRef": {"name": "engine-btc-usd-redis", "key": "url"}},
    }
    assert IMAGES.redis_url not in json.dumps(deployment)


def test_the_engine_knows_its_pod_name_to_name_the_lease_holder() -> None:
    deployment = resources.build_engine_deployment(_market(), IMAGES)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {entry["name"]: entry for entry in container["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_new_redis_credentials_roll_the_engine() -> None:
    market = _market()
    rotated = dataclasses.replace(IMAGES, redis_url="redis://engine:new@redis:6379/0")
    old, new = (
        resources.build_engine_deployment(market, images)["spec"]["template"]["metadata"]
        for images in (IMAGES, rotated)
    )
    key = resources.REDIS_CREDENTIALS_HASH
    assert old["annotations"][key] != new["annotations"][key]
    assert "new" not in new["annotations"][key]


def test_pods_pull_with_the_configured_secrets() -> None:
    market = _market()
    for build in (resources.build_engine_deployment, resources.build_mm_deployment):
        plain = build(market, IMAGES)
        assert plain is not None and "imagePullSecrets" not in plain["spec"]["template"]["spec"]
        pulling = build(market, dataclasses.replace(IMAGES, pull_secrets=("regcred", "mirror")))
        assert pulling is not None
        assert pulling["spec"]["template"]["spec"]["imagePullSecrets"] == [
            {"name": "regcred"},
            {"name": "mirror"},
        ]


def test_configmap_holds_a_manifest_the_engine_accepts() -> None:
    market = _market()
    data = resources.build_configmap(market)["data"][resources.MANIFEST_FILE]
    assert Market.model_validate(yaml.safe_load(data)) == market


def test_mm_deployment_exists_only_when_enabled() -> None:
    enabled = resources.build_mm_deployment(_market(), IMAGES)
    assert enabled is not None and enabled["metadata"]["name"] == "mm-btc-usd"
    (container,) = enabled["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["--market", "btc-usd", "--manifest", "/etc/exchange/market.yaml"]
    assert container["envFrom"] == [{"secretRef": {"name": "exchange-mm", "optional": True}}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert resources.build_mm_deployment(_market(marketMaker={"enabled": False}), IMAGES) is None


def test_metrics_service_selects_the_engine() -> None:
    service = resources.build_metrics_service(_market())
    engine = resources.build_engine_deployment(_market(), IMAGES)
    labels = engine["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "health"


@pytest.mark.parametrize(
    ("change", "engine_rolls", "mm_rolls"),
    [
        ({"fees": {"makerBps": 5, "takerBps": 20}}, True, False),
        ({"minNotional": "2.00"}, True, True),
        ({"marketMaker": {"enabled": True, "spreadBps": 30}}, False, True),
        ({"trading": "Halted"}, False, False),
        ({"klines": {"intervals": ["1m"]}}, False, False),
    ],
)
def test_a_spec_change_rolls_only_what_reads_it(
    change: dict[str, Any], engine_rolls: bool, mm_rolls: bool
) -> None:
    before, after = _market(), _market(**change)

    def template(market: Market, build: Any) -> Any:
        return build(market, IMAGES)["spec"]["template"]

    engine = resources.build_engine_deployment
    mm = resources.build_mm_deployment
    assert (template(before, engine) != template(after, engine)) is engine_rolls
    assert (template(before, mm) != template(after, mm)) is mm_rolls


def test_conditions_keep_their_transition_time_until_the_status_changes() -> None:
    first = merge_conditions([], {QUEUE_READY: Check.ok("Provisioned")}, 1, "t1")
    same = merge_conditions(first, {QUEUE_READY: Check.ok("Provisioned", "again")}, 2, "t2")
    assert same[0]["lastTransitionTime"] == "t1" and same[0]["observedGeneration"] == 2
    flipped = merge_conditions(same, {QUEUE_READY: Check.failed("RedisUnavailable")}, 2, "t3")
    assert flipped[0]["lastTransitionTime"] == "t3" and flipped[0]["status"] == "False"


def test_phase_follows_the_conditions_and_trading() -> None:
    def conditions(**statuses: str) -> list[dict[str, Any]]:
        return [{"type": kind, "status": value, "reason": "R"} for kind, value in statuses.items()]

    ready = {QUEUE_READY: "True", STORAGE_READY: "True", ENGINE_READY: "True", MM_READY: "True"}
    assert phase_of(conditions(**ready), Trading.ENABLED)[0] == "Ready"
    assert phase_of(conditions(**ready), Trading.HALTED)[0] == "Halted"
    assert phase_of(conditions(**{**ready, ENGINE_READY: "False"}), Trading.ENABLED)[0] == (
        "Degraded"
    )
    assert phase_of(conditions(**{**ready, STORAGE_READY: "False"}), Trading.ENABLED)[0] == (
        "Provisioning"
    )
    assert phase_of([], Trading.ENABLED)[0] == "Provisioning"


def test_deployment_check_wants_the_current_generation_ready() -> None:
    def deployment(generation: int, observed: int, ready: int) -> dict[str, Any]:
        return {"metadata": {"generation": generation},
                "status": {"observedGeneration": observed, "readyReplicas": ready}}  # fmt: skip

    assert deployment_check(deployment(2, 2, 1), "engine").status == "True"
    assert deployment_check(deployment(3, 2, 1), "engine").status == "False"
    assert deployment_check(deployment(2, 2, 0), "engine").status == "False"
    assert deployment_check(None, "engine").reason == "Missing"


def test_deployment_check_says_what_the_deployment_controller_says() -> None:
    def deployment(*conditions: dict[str, str]) -> dict[str, Any]:
        return {"metadata": {"generation": 1},
                "status": {"observedGeneration": 1, "conditions": list(conditions)}}  # fmt: skip

    rolling = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
               "message": 'ReplicaSet "engine-a-1" is progressing.'}  # fmt: skip
    stuck = {**rolling, "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": 'ReplicaSet "engine-a-1" has timed out progressing.'}  # fmt: skip
    quota = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
             "message": 'pods "engine-a-1-x" is forbidden: exceeded quota: q'}  # fmt: skip

    check = deployment_check(deployment(rolling), "engine")
    assert (check.reason, check.message) == (
        "ReplicaNotReady",
        '0 ready replica(s); Deployment: ReplicaSet "engine-a-1" is progressing.',
    )
    check = deployment_check(deployment(stuck), "engine")
    assert (check.status, check.reason) == ("False", "ProgressDeadlineExceeded")
    assert check.message.endswith("has timed out progressing.")
    check = deployment_check(deployment(rolling, quota), "engine")
    assert (check.reason, check.message) == (
        "FailedCreate",
        f"0 ready replica(s); Deployment: {quota['message']}",
    )
    assert deployment_check(deployment(), "engine").message == "0 ready replica(s)"


def test_is_subset_ignores_what_the_server_adds() -> None:
    desired = {"spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
    live = {"spec": {"ports": [{"port": 80, "protocol": "TCP"}], "selector": {"a": "b"},
                     "clusterIP": "10.0.0.1"}, "status": {}}  # fmt: skip
    assert is_subset(desired, live)
    assert not is_subset({"spec": {"ports": [{"port": 81}]}}, live)
    assert not is_subset({"spec": {"ports": [{"port": 80}, {"port": 81}]}}, live)


def test_scale_conflicts_name_the_asset_and_the_market() -> None:
    registry = {"btc-usd": _market().registry_entry()}
    mine = _market("btc-eur", base={"asset": "BTC", "scale": 6},
                   quote={"asset": "EUR", "scale": 6})  # fmt: skip
    assert scale_conflicts(mine, registry) == ["BTC has scale 8 in market btc-usd, not 6"]
    assert scale_conflicts(_market(), registry) == []


def test_is_subset_compares_requests_and_limits_as_amounts() -> None:
    """The API server answers quantities canonically: `cpu: 0.5` is live as "500m"."""
    live = {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2"}}}
    assert is_subset({"resources": {"requests": {"cpu": 0.5, "memory": "1024Mi"},
                                    "limits": {"cpu": 2}}}, live)  # fmt: skip
    assert not is_subset({"resources": {"requests": {"cpu": "0.6"}}}, live)
    assert not is_subset({"resources": {"requests": {"memory": "1G"}}}, live)
    assert not is_subset({"resources": {"requests": {"cpu": "half"}}}, live)
    assert not is_subset({"replicas": 1}, {"replicas": "1"}), "only quantities are amounts"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500m", "0.5"), ("1", "1"), (2, "2"), (0.25, "0.25"), ("1Ki", "1024"), ("1e3", "1000"),
     ("1.5Gi", str(int(1.5 * 2**30))), ("100n", "1E-7"), (".5", "0.5")],
)  # fmt: skip
def test_quantity_amounts(text: object, expected: str) -> None:
    assert amount(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["", "m", "1.2.3", "5x", "1 Gi", True, None, [1]])
def test_what_is_not_a_quantity(text: object) -> None:
    assert amount(text) is None


def test_an_engine_has_rolled_out_when_no_old_pod_is_left_and_one_leads() -> None:
    def deployment(wanted: int, **status: int) -> dict[str, Any]:
        return {"metadata": {"generation": 2}, "spec": {"replicas": wanted},
                "status": {"observedGeneration": 2, **status}}  # fmt: skip

    assert rolled_out(deployment(2, replicas=2, updatedReplicas=2, readyReplicas=1))
    assert rolled_out(deployment(1, replicas=1, updatedReplicas=1, readyReplicas=1))
    # an old Pod still runs, none is ready yet, or the controller has not seen the change
    assert not rolled_out(deployment(2, replicas=3, updatedReplicas=2, readyReplicas=1))
    assert not rolled_out(deployment(2, replicas=2, updatedReplicas=2, readyReplicas=0))
    stale = deployment(1, replicas=1, updatedReplicas=1, readyReplicas=1)
    stale["status"]["observedGeneration"] = 1
    assert not rolled_out(stale)


@pytest.mark.parametrize(
    "input_id", ["0-0", "1767323045000-7", "1767323045000-18446744073709551615"]
)
def test_the_input_id_is_read_from_the_head_of_an_engine_snapshot(input_id: str) -> None:
    """The operator reads a snapshot's first bytes only; the engine's own encoding (short ids
    a fixstr, long ones a str8) must keep the id there."""
    encoded = msgspec.msgpack.encode(Snapshot(input_id, 9, b"x" * 10_000))
    assert snapshot_input_id(encoded[:SNAPSHOT_HEAD]) == input_id
    assert snapshot_input_id(b"") is None
    assert snapshot_input_id(b"not a snapshot") is None
    assert snapshot_input_id(encoded[:12]) is None  # cut inside the id
