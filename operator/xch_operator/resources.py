"""Pure builders: a Market in, the desired child objects out. No client, no I/O.

A builder returning None means "this object must not exist" (the market maker of a Market
whose marketMaker is disabled). Pod templates carry a hash of exactly the spec fields their
process reads at start, so a spec change rolls only the Deployments it affects: fees roll the
engine, marketMaker rolls the market maker, and a trading change rolls nothing (it reaches
the running engine as a command).
"""

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml

from xch.market import Market

MANAGED_BY = "xch-operator"
MARKET_LABEL = "exchange.dev/market"
CONFIG_HASH = "exchange.dev/config-hash"
REDIS_CREDENTIALS_HASH = "exchange.dev/redis-credentials-hash"
RESTARTED_AT = "exchange.dev/restartedAt"
"""In a Pod template: the Market's restart annotation, whose every new value rolls it."""
REDIS_URL_KEY = "url"
MANIFEST_FILE = "market.yaml"
CONFIG_DIR = "/etc/exchange"
HEALTH_PORT = 8081
MM_HEALTH_PORT = 8095
RUN_AS_USER = 10001

# The spec fields each process reads when it starts (by their names in the manifest).
ENGINE_FIELDS = ("base", "quote", "tickSize", "lotSize", "minNotional", "fees", "engine")
MM_FIELDS = ("base", "quote", "tickSize", "lotSize", "minNotional", "marketMaker")


@dataclass(frozen=True, slots=True)
class Images:
    """What the Pods run and where they connect: the operator's settings, as builders need."""

    engine: str
    mm: str
    pull_policy: str
    redis_url: str
    """The engine's Redis URL, with its ACL user's password: Pods get it from the Market's
    Secret (build_redis_secret), never as a plain value."""
    api_url: str
    mm_secret: str
    pull_secrets: tuple[str, ...] = ()
    """imagePullSecrets of the engine and mm Pods: Secrets of these names must exist in
    each Market's namespace."""
    eviction_seconds: int = 10
    """How long an engine or mm Pod stays bound to a node that is not ready or unreachable
    (Kubernetes' default is 300 s: a lost node would keep its markets down for 5 minutes)."""
    priority_class: str = ""
    """priorityClassName of the engine Pods (none when empty)."""


ENGINE_REQUESTS = {"cpu": "500m", "memory": "256Mi"}
"""Requests when spec.engine.resources gives none: the scheduler reserves room for the engine
(without requests it is BestEffort, the first evicted under pressure). No limits: a CPU limit
throttles matching, and a memory limit would kill an engine whose book outgrew a guess."""
MM_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}}


def configmap_name(market: str) -> str:
    return f"market-{market}"


def engine_name(market: str) -> str:
    return f"engine-{market}"


def redis_secret_name(market: str) -> str:
    return f"engine-{market}-redis"


def mm_name(market: str) -> str:
    return f"mm-{market}"


def labels(market: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": market,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        MARKET_LABEL: market,
    }


def _selector(market: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": component, MARKET_LABEL: market}


def spec_document(market: Market) -> dict[str, Any]:
    """The spec as the manifest holds it: aliases, every default filled in."""
    spec: dict[str, Any] = market.spec.model_dump(mode="json", by_alias=True)
    return spec


def config_hash(market: Market, fields: tuple[str, ...]) -> str:
    spec = spec_document(market)
    chosen = {name: spec[name] for name in fields}
    return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]


def build_configmap(market: Market) -> dict[str, Any]:
    """The Market manifest, mounted by the engine as its --manifest."""
    manifest = {
        "apiVersion": market.api_version,
        "kind": market.kind,
        "metadata": {"name": market.name},
        "spec": spec_document(market),
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": configmap_name(market.name), "labels": labels(market.name, "engine")},
        "data": {MANIFEST_FILE: yaml.safe_dump(manifest, sort_keys=True)},
    }


def _restricted_container() -> dict[str, Any]:
    """The container half of the `restricted` Pod Security Standard."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _restricted_pod() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "health"},
        "periodSeconds": period,
        "failureThreshold": failures,
    }


def _short_tolerations(seconds: int) -> list[dict[str, Any]]:
    """Tolerate a not-ready or unreachable node for `seconds` only, then be evicted and
    scheduled elsewhere (these replace the 300 s the API server would add)."""
    return [
        {"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": seconds}
        for taint in ("not-ready", "unreachable")
    ]  # fmt: skip


def _env(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in values.items()]


def build_redis_secret(market: Market, images: Images) -> dict[str, Any]:
    """The engine's Redis URL in the Market's namespace, where its Pod can reference it (a
    Pod reads Secrets of its own namespace only)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": redis_secret_name(market.name),
            "labels": labels(market.name, "engine"),
        },
        "type": "Opaque",
        "data": {REDIS_URL_KEY: base64.b64encode(images.redis_url.encode()).decode()},
    }


def _redis_credentials_hash(images: Images) -> str:
    """Rolls the engine when its Redis credentials change (a Secret change alone restarts
    nothing); a digest, so the annotation reveals nothing of the password."""
    return hashlib.sha256(images.redis_url.encode()).hexdigest()[:16]


STANDBY_STRATEGY = {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "100%"}}  # fmt: skip
"""How a warm standby's two Pods roll: all at once, new Pods starting as the old ones stop.
Only the leader is ready, so a rolling update that waits for a new Pod to be ready before
stopping an old one never ends (a new Pod leads only once the old leader is gone), and
Recreate starts the new Pods only after the old ones are gone (and wants both available to
call the rollout complete). The old leader hands the lease over as it stops."""


def _restart(restarted_at: str | None) -> dict[str, str]:
    return {RESTARTED_AT: restarted_at} if restarted_at else {}


def build_engine_deployment(
    market: Market, images: Images, restarted_at: str | None = None
) -> dict[str, Any]:
    """One engine per market: replicas 1 and Recreate, so a rollout never runs two (the
    Redis lease is the real guard; this keeps a standby from waiting out the old lease).
    With spec.engine.standby, two replicas sharing the lease, on different nodes if any:
    the standby leads once the leader's lease expires, or at once when it is stopped."""
    name = market.name
    standby = market.spec.engine.standby
    container = {
        "name": "engine",
        "image": images.engine,
        "imagePullPolicy": images.pull_policy,
        "command": ["python", "-m", "engine"],
        "args": ["--market", name, "--manifest", f"{CONFIG_DIR}/{MANIFEST_FILE}"],
        "env": [
            {
                "name": "EXCHANGE_ENGINE_REDIS_URL",
                "valueFrom": {
                    "secretKeyRef": {"name": redis_secret_name(name), "key": REDIS_URL_KEY}
                },
            },
            # Named as the lease's holder (status.leaseHolder); the host name is cut at 63.
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            *_env(
                {
                    "EXCHANGE_ENGINE_HEALTH_HOST": "0.0.0.0",
                    "EXCHANGE_ENGINE_HEALTH_PORT": str(HEALTH_PORT),
                }
            ),
        ],
        "ports": [{"name": "health", "containerPort": HEALTH_PORT}],
        # /healthz: the process serves; /readyz: it holds the lease and has recovered.
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 2, 1),
        "resources": market.spec.engine.resources or {"requests": ENGINE_REQUESTS},
        "securityContext": _restricted_container(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            # The snapshot fork writes nothing to disk, but Python wants a writable /tmp.
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return _deployment(
        name=engine_name(name),
        market=name,
        component="engine",
        config_hash=config_hash(market, ENGINE_FIELDS),
        pull_secrets=images.pull_secrets,
        annotations={
            REDIS_CREDENTIALS_HASH: _redis_credentials_hash(images),
            **_restart(restarted_at),
        },
        replicas=2 if standby else 1,
        strategy=STANDBY_STRATEGY if standby else None,
        pod_spec={
            "securityContext": _restricted_pod(),
            "terminationGracePeriodSeconds": 30,
            "tolerations": _short_tolerations(images.eviction_seconds),
            **({"affinity": _apart(name, "engine")} if standby else {}),
            **({"priorityClassName": images.priority_class} if images.priority_class else {}),
            "containers": [container],
            "volumes": [
                {"name": "config", "configMap": {"name": configmap_name(name)}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
    )


def _apart(market: str, component: str) -> dict[str, Any]:
    """Prefer nodes that run no other Pod of this market's `component`: one node lost or
    drained does not take both the leader and its standby."""
    term = {"labelSelector": {"matchLabels": _selector(market, component)},
            "topologyKey": "kubernetes.io/hostname"}  # fmt: skip
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": term}]}}  # fmt: skip


def build_engine_pdb(market: Market) -> dict[str, Any] | None:
    """The engine's PodDisruptionBudget, for a warm standby only (a single engine has none:
    a budget of 0 disruptions would block every drain of its node).

    Only the leader is ready, and the budget counts ready Pods: with 2 Pods expected and 1
    ready, `maxUnavailable: 1` (as `minAvailable: 1`) allows 0 disruptions. Evictions
    (drains) then take the standby (a Pod that is not ready may always be evicted: also
    when no engine is ready, else a market that cannot start would block every drain) but
    never the leader; draining the leader's node waits until it hands over: `kubectl
    delete pod` of the leader, or a restart (`operator.exchange.dev/restartedAt`), moves it
    in about a second. Without a budget, drains of two nodes at once could stop the leader
    and then the standby that has just taken over."""
    if not market.spec.engine.standby:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": engine_name(market.name), "labels": labels(market.name, "engine")},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": _selector(market.name, "engine")},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def build_mm_deployment(
    market: Market, images: Images, restarted_at: str | None = None
) -> dict[str, Any] | None:
    """The market maker, an ordinary API client reading the same manifest; None when
    spec.marketMaker is disabled. Its API credentials come from an optional Secret."""
    if not market.spec.market_maker.enabled:
        return None
    container = {
        "name": "mm",
        "image": images.mm,
        "imagePullPolicy": images.pull_policy,
        "command": ["python", "-m", "mm"],
        "args": ["--market", market.name, "--manifest", f"{CONFIG_DIR}/{MANIFEST_FILE}"],
        "env": _env(
            {
                "EXCHANGE_MM_API_URL": images.api_url,
                "EXCHANGE_MM_HEALTH_HOST": "0.0.0.0",
                "EXCHANGE_MM_HEALTH_PORT": str(MM_HEALTH_PORT),
            }
        ),
        "envFrom": [{"secretRef": {"name": images.mm_secret, "optional": True}}],
        "ports": [{"name": "health", "containerPort": MM_HEALTH_PORT}],
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 5, 1),
        "resources": MM_RESOURCES,
        "securityContext": _restricted_container(),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    return _deployment(
        name=mm_name(market.name),
        market=market.name,
        component="mm",
        config_hash=config_hash(market, MM_FIELDS),
        pull_secrets=images.pull_secrets,
        annotations=_restart(restarted_at),
        pod_spec={
            "securityContext": _restricted_pod(),
            "tolerations": _short_tolerations(images.eviction_seconds),
            "containers": [container],
            "volumes": [{"name": "config", "configMap": {"name": configmap_name(market.name)}}],
        },
    )


def build_metrics_service(market: Market) -> dict[str, Any]:
    """Prometheus scrapes the engine's /metrics through this Service."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": engine_name(market.name),
            "labels": labels(market.name, "engine"),
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(HEALTH_PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "selector": _selector(market.name, "engine"),
            "ports": [{"name": "metrics", "port": HEALTH_PORT, "targetPort": "health"}],
        },
    }


def _deployment(
    *,
    name: str,
    market: str,
    component: str,
    config_hash: str,
    pod_spec: dict[str, Any],
    pull_secrets: tuple[str, ...],
    annotations: dict[str, str] | None = None,
    replicas: int = 1,
    strategy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if pull_secrets:
        pod_spec = {**pod_spec, "imagePullSecrets": [{"name": name} for name in pull_secrets]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels(market, component)},
        "spec": {
            "replicas": replicas,
            "strategy": strategy or {"type": "Recreate"},
            "selector": {"matchLabels": _selector(market, component)},
            "template": {
                "metadata": {
                    "labels": labels(market, component),
                    "annotations": {CONFIG_HASH: config_hash, **(annotations or {})},
                },
                "spec": {"automountServiceAccountToken": False, **pod_spec},
            },
        },
    }


def build_children(
    market: Market, images: Images, restarted_at: str | None = None
) -> list[tuple[str, dict[str, Any] | None]]:
    """Every child as (kind/name, object or None): what apply.py makes true, in this order
    (the ConfigMap and the Secret before the engine that reads them). `restarted_at`: the
    Market's restart annotation, which rolls its Pods when it changes."""
    children: list[tuple[str, dict[str, Any] | None]] = [
        (f"ConfigMap/{configmap_name(market.name)}", build_configmap(market)),
        (f"Secret/{redis_secret_name(market.name)}", build_redis_secret(market, images)),
        (
            f"Deployment/{engine_name(market.name)}",
            build_engine_deployment(market, images, restarted_at),
        ),
        (f"Service/{engine_name(market.name)}", build_metrics_service(market)),
        (f"PodDisruptionBudget/{engine_name(market.name)}", build_engine_pdb(market)),
        (f"Deployment/{mm_name(market.name)}", build_mm_deployment(market, images, restarted_at)),
    ]
    return children
