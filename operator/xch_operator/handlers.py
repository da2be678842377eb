"""Kopf handlers for Markets: one cause each, thin, over reconcile() and wind_down().

- create / resume / update / drift timer: `reconcile` (queue, storage, children, status).
  Every step is idempotent and children are diffed before they are applied, so running it
  again after a crash, an edit by hand or a spec change converges, and a spec change rolls
  only the Deployments whose config hash it changes. A new engine image waits for a place
  in the rollout batch, and a Market annotated as paused is left alone (rollout.py).
- field spec.trading: the new trading state reaches the running engine as a command.
- delete (finalizer): `wind_down` halts and closes the market, waits until the engine has
  applied the close (every order cancelled, its funds unlocked), deletes the children,
  removes the registry entry and keeps or drops the history as retention.onDelete says.

`register(settings)` attaches them to Kopf's registry; nothing registers at import time.
"""

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
import asyncpg
import kopf
import pydantic
import redis.asyncio
import redis.exceptions

from runtime.redis_client import redis_client
from xch.market import API_GROUP, API_VERSION, KIND, Market, OnDelete, Trading
from xch_operator import observe, provisioning, resources, rollout
from xch_operator.apply import (
    ApplyFailed,
    NotOurs,
    child_path,
    delete_children,
    ensure_children,
    get_or_forbidden,
    update_status,
)
from xch_operator.config import Settings
from xch_operator.crd import PLURAL
from xch_operator.kube import KubeClient, KubeError, resource_path
from xch_operator.lastresort import close_with_own_engine
from xch_operator.metrics import forget_market, instrumented, observe_market
from xch_operator.status import (
    APPLY_FAILED,
    ENGINE_READY,
    INVALID_MARKET,
    MM_READY,
    QUEUE_READY,
    SPEC_VALID,
    STORAGE_READY,
    Check,
    deleting_status,
    deployment_check,
    market_status,
)

RESOURCE = (API_GROUP, API_VERSION, PLURAL)
FINALIZER = f"{API_GROUP}/finalizer"
CLOSE_ANNOTATION = f"{API_GROUP}/close-entry"
MEMO_KEY = "xch"
MANAGED_LABEL = "app.kubernetes.io/managed-by"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Context:
    """What every handler uses, made once at startup and kept in Kopf's memo."""

    settings: Settings
    kube: KubeClient
    redis: redis.asyncio.Redis
    images: resources.Images
    rollouts: rollout.Rollouts
    mm_rollouts: rollout.Rollouts
    reads: observe.ReadPool
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, body: kopf.Body) -> asyncio.Lock:
        """One lock per Market: Kopf runs the drift timer concurrently with the change
        handlers, and two reconciles of one Market must not interleave."""
        return self.lock_of(body.metadata.uid or "")

    def lock_of(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())


def context(memo: kopf.Memo) -> Context:
    return cast(Context, memo[MEMO_KEY])


class InvalidMarket(kopf.PermanentError):
    """The Market model refuses what the API server accepted."""


def market_of(body: kopf.Body) -> Market:
    """The Market model of a resource; InvalidMarket if the model refuses what the API
    server accepted (rules the CRD's CEL cannot state exactly)."""
    try:
        return Market.model_validate({"metadata": {"name": body.metadata.name},
                                      "spec": dict(body.spec)})  # fmt: skip
    except pydantic.ValidationError as exc:
        errors = "; ".join(error["msg"] for error in exc.errors())
        raise InvalidMarket(f"invalid Market: {errors}") from exc


def market_path(namespace: str, name: str) -> str:
    return resource_path(f"{API_GROUP}/{API_VERSION}", PLURAL, namespace, name)


async def write_status(
    ctx: Context,
    namespace: str,
    name: str,
    checks: dict[str, Check],
    generation: int | None,
    report: dict[str, Any] | None = None,
) -> None:
    """Merge `checks` into the Market's conditions and recompute its phase, on a fresh read
    under the Market's lock. `generation` None: the generation last reconciled. `report`:
    what the engine has done (xch_operator.observe), written beside them. The phase follows
    the trading state the engine reports (status.engineTrading), the spec's while none does
    (no engine leads, or one from before that reports none)."""

    def edit(live: dict[str, Any]) -> dict[str, Any]:
        current = live.get("status") or {}
        observed = generation
        if observed is None:
            observed = int(current.get("observedGeneration") or live["metadata"]["generation"])
        reported = {**current, **(report or {})}.get("engineTrading")
        trading = Trading(reported or live["spec"].get("trading", Trading.ENABLED.value))
        status = {**market_status(current, checks, observed, trading), **(report or {})}
        observe_market(namespace, name, status)
        return status

    await update_status(ctx.kube, market_path(namespace, name), edit)


def owner_of(body: kopf.Body) -> str:
    return f"{body.metadata.namespace}/{body.metadata.uid}"


async def _queue_check(ctx: Context, market: Market, owner: str) -> Check:
    try:
        if not await provisioning.queue_exists(ctx.redis, market, owner):
            await provisioning.provision_queue(ctx.redis, market, owner)
    except provisioning.Refused as exc:
        return Check.failed(exc.reason, str(exc))
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        return Check.failed("RedisUnavailable", str(exc))
    return Check.ok("Provisioned", "streams, dbproc group and registry entry exist")


async def _storage_check(ctx: Context, market: Market, body: kopf.Body) -> Check | None:
    """Provision storage unless it is done for this generation and still all there (a
    read-only check at each drift: a dropped view or refresh policy is made again); None:
    no news."""
    done = any(
        condition.get("type") == STORAGE_READY
        and condition.get("status") == "True"
        and condition.get("observedGeneration") == body.metadata.get("generation")
        for condition in body.status.get("conditions") or []
    )
    try:
        if done:
            missing = await ctx.reads.missing_storage(market)
            if not missing:
                return None
            kopf.warn(body, reason="StorageMissing", message=", ".join(missing))
        await provisioning.provision_storage(ctx.settings.postgres_dsn, market)
    except (OSError, asyncpg.PostgresError) as exc:
        return Check.failed("StorageUnavailable", str(exc))
    return Check.ok("Provisioned", "market row and klines relations exist")


@dataclass(frozen=True, slots=True)
class Children:
    checks: dict[str, Check]
    engine: dict[str, Any] | None
    waiting_for: str | None
    """The engine image this Market waits to roll to (its batch is full)."""
    mm_waiting_for: str | None
    """The same for its market maker."""


async def _children(ctx: Context, market: Market, body: kopf.Body) -> Children:
    engine_key = f"Deployment/{resources.engine_name(market.name)}"
    namespace = body.metadata.namespace or ""
    live_engine = await ctx.kube.get(
        child_path("Deployment", namespace, resources.engine_name(market.name))
    )
    live_mm = await ctx.kube.get(
        child_path("Deployment", namespace, resources.mm_name(market.name))
    )
    async with (
        rollout.image_to_run(ctx.rollouts, live_engine, ctx.images.engine) as engine_image,
        rollout.image_to_run(ctx.mm_rollouts, live_mm, ctx.images.mm) as mm_image,
    ):
        images = dataclasses.replace(ctx.images, engine=engine_image.now, mm=mm_image.now)
        restarted_at = body.metadata.annotations.get(rollout.RESTARTED_AT)
        children = resources.build_children(market, images, restarted_at)
        outcomes = await ensure_children(ctx.kube, body, children)
    for outcome in outcomes:
        if outcome.action != "unchanged":
            kopf.info(body, reason=outcome.action.capitalize(), message=outcome.key)
    live = {outcome.key: outcome.live for outcome in outcomes}
    engine = live[engine_key]
    checks = {ENGINE_READY: deployment_check(engine, "engine")}
    if market.spec.market_maker.enabled:
        mm = live[f"Deployment/{resources.mm_name(market.name)}"]
        checks[MM_READY] = deployment_check(mm, "market maker")
    else:
        checks[MM_READY] = Check.ok("Disabled", "spec.marketMaker.enabled is false")
    return Children(checks, engine, engine_image.waiting_for, mm_image.waiting_for)


async def reconcile(body: kopf.Body, memo: kopf.Memo) -> None:
    ctx = context(memo)
    namespace = body.metadata.namespace or ""
    generation = int(body.metadata.get("generation", 0))
    try:
        market = market_of(body)
    except InvalidMarket as exc:
        await _invalid(ctx, body, str(exc), generation)
        return
    if rollout.is_paused(body.metadata.annotations):
        await rollout.note_status(ctx.kube, market_path(namespace, market.name), None, paused=True)
        return
    queue = await _queue_check(ctx, market, owner_of(body))
    if queue.reason in (provisioning.ScaleConflict.reason, provisioning.NameTaken.reason):
        # Nothing else is made for a Market that can never trade as it stands.
        await write_status(ctx, namespace, market.name, {QUEUE_READY: queue}, generation)
        raise kopf.PermanentError(queue.message)
    checks = {
        SPEC_VALID: Check.ok("Valid", "the Market model accepts the spec"),
        QUEUE_READY: queue,
    }
    storage = await _storage_check(ctx, market, body)
    if storage is not None:
        checks[STORAGE_READY] = storage
    try:
        children = await _children(ctx, market, body)
    except NotOurs as exc:
        checks[ENGINE_READY] = Check.failed("ChildNotOwned", str(exc))
        await write_status(ctx, namespace, market.name, checks, generation)
        raise
    except ApplyFailed as exc:
        mm = exc.key == f"Deployment/{resources.mm_name(market.name)}"
        checks[MM_READY if mm else ENGINE_READY] = Check.failed(APPLY_FAILED, str(exc))
        await write_status(ctx, namespace, market.name, checks, generation)
        # The same object would be refused again: retried at the drift check's pace.
        raise kopf.TemporaryError(str(exc), delay=ctx.settings.drift_seconds) from exc
    checks.update(children.checks)
    report = await observe.engine_report(ctx.redis, ctx.reads, market.name)
    await write_status(ctx, namespace, market.name, checks, generation, report)
    await rollout.note_status(ctx.kube, market_path(namespace, market.name), children.engine,
                              paused=None, pendingEngineImage=children.waiting_for)  # fmt: skip
    failed = [check for kind, check in checks.items()
              if kind in (QUEUE_READY, STORAGE_READY) and check.status != "True"]  # fmt: skip
    if failed:
        raise kopf.TemporaryError(failed[0].message, delay=ctx.settings.retry_seconds)
    for what, image in (("engine", children.waiting_for), ("mm", children.mm_waiting_for)):
        if image:
            raise kopf.TemporaryError(
                f"waiting for a place in the {what} rollout to {image}",
                delay=ctx.settings.retry_seconds,
            )


async def _invalid(ctx: Context, body: kopf.Body, message: str, generation: int) -> None:
    """Say so in the status (phase Invalid) and in a Warning event, and make nothing: the
    next edit of the spec is reconciled again. No PermanentError, which would stop the
    drift timer for good; the event only when the verdict is new, not at every tick."""
    said = any(condition.get("type") == SPEC_VALID and condition.get("message") == message
               for condition in body.status.get("conditions") or [])  # fmt: skip
    check = Check.failed(INVALID_MARKET, message)
    await write_status(ctx, body.metadata.namespace or "", body.metadata.name or "",
                       {SPEC_VALID: check}, generation)  # fmt: skip
    if not said:
        kopf.warn(body, reason=INVALID_MARKET, message=message)


async def trading_changed(
    body: kopf.Body, old: Any, new: Any, memo: kopf.Memo, logger: kopf.Logger
) -> None:
    """A halt or resume for the running engine. At creation there is nothing to tell: the
    engine starts with the trading state of its manifest."""
    if old is None or new is None:
        return
    ctx = context(memo)
    entry = await provisioning.set_trading(ctx.redis, body.metadata.name or "", str(new))
    logger.info("trading %s -> %s enqueued as %s", old, new, entry)
    kopf.info(body, reason="Trading", message=f"{old} -> {new}")


async def wind_down(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    ctx = context(memo)
    name = body.metadata.name or ""
    namespace = body.metadata.namespace or ""
    path = market_path(namespace, name)
    await _deleting(ctx, path, "Finalizing", "closing the market, then removing what it made")
    if not await provisioning.owns(ctx.redis, name, owner_of(body)):
        # Refused (the name is another Market's) or never provisioned: nothing of ours runs.
        await delete_children(ctx.kube, namespace, _child_keys(name))
        return
    entry = body.metadata.annotations.get(CLOSE_ANNOTATION)
    if entry is None:
        await provisioning.set_trading(ctx.redis, name, Trading.HALTED.value)
        entry = await provisioning.close(ctx.redis, name)
        patch.metadata.annotations[CLOSE_ANNOTATION] = entry
    if not await _closed(ctx, body, entry):
        waiting = (
            f"waiting for the engine to apply the close ({entry}); if it can never run, "
            f"delete Deployment {resources.engine_name(name)}: the operator then closes "
            "the market itself"
        )
        await _deleting(ctx, path, "WaitingForEngineClose", waiting)
        raise kopf.TemporaryError(waiting, delay=ctx.settings.retry_seconds)
    await delete_children(ctx.kube, namespace, _child_keys(name))
    on_delete = market_of(body).spec.retention.on_delete
    await provisioning.release_storage(ctx.settings.postgres_dsn, name, on_delete)
    if on_delete is OnDelete.DELETE:
        await provisioning.drop_queue(ctx.redis, name)
    await provisioning.unregister(ctx.redis, name)
    kopf.info(body, reason="Deleted", message=f"closed; history: {on_delete.value}")


async def _deleting(ctx: Context, path: str, reason: str, message: str) -> None:
    def edit(live: dict[str, Any]) -> dict[str, Any]:
        status = deleting_status(live.get("status") or {}, reason, message)
        observe_market(live["metadata"]["namespace"], live["metadata"]["name"], status)
        return status

    await update_status(ctx.kube, path, edit)


async def _closed(ctx: Context, body: kopf.Body, entry: str) -> bool:
    """True once close `entry` is applied, or nothing can be locked in the market. If the
    engine's Deployment is gone or going (its namespace is being deleted, perhaps its Role
    with it), the operator applies the close itself with the engine's own code (the engine
    lease keeps that safe should the engine still run)."""
    name = body.metadata.name or ""
    if await provisioning.applied_through(ctx.redis, name, entry):
        return True
    if await provisioning.nothing_locked(ctx.redis, name):
        return True
    engine = await get_or_forbidden(
        ctx.kube,
        resource_path(
            "apps/v1", "deployments", body.metadata.namespace, resources.engine_name(name)
        ),
    )
    if engine is not None and not engine["metadata"].get("deletionTimestamp"):
        return False
    kopf.info(body, reason="Closing", message="no engine left: closing in the operator")
    return await close_with_own_engine(ctx.settings.redis_url, name, entry, timeout=30)


async def deployment_changed(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo) -> None:
    """EngineReady and MarketMakerReady follow their Deployment's ready replicas as they
    change, without waiting for the drift timer; a deleted one is made again at once."""
    owner = next((ref for ref in body.metadata.get("ownerReferences") or []
                  if ref.get("kind") == KIND and ref.get("controller")), None)  # fmt: skip
    component = body.metadata.labels.get("app.kubernetes.io/name")
    if owner is None or component not in ("engine", "mm"):
        return
    ctx = context(memo)
    namespace = body.metadata.namespace or ""
    live = None if event.get("type") == "DELETED" else dict(body)
    market = await ctx.kube.get(market_path(namespace, owner["name"]))
    if market is None or market["metadata"].get("deletionTimestamp"):
        return
    if component == "engine":
        checks = {ENGINE_READY: deployment_check(live, "engine")}
    elif market["spec"].get("marketMaker", {}).get("enabled"):
        checks = {MM_READY: deployment_check(live, "market maker")}
    else:
        return
    async with ctx.lock_of(owner["uid"]):
        await write_status(ctx, namespace, owner["name"], checks, None)
        if component == "engine":
            await rollout.note_status(ctx.kube, market_path(namespace, owner["name"]), live)
        if live is None:
            await _recreate(market, memo)


async def _recreate(market: dict[str, Any], memo: kopf.Memo) -> None:
    """A Deployment the Market wants was deleted (by hand, by a script): make it again now,
    not at the next drift check. A reconcile that cannot finish is left to the drift timer,
    which retries it."""
    try:
        await reconcile(kopf.Body(cast(kopf.RawBody, market)), memo)
    except (kopf.TemporaryError, kopf.PermanentError) as exc:
        name = market["metadata"]["name"]
        log.info("market %s: recreating a deleted child waits for the drift check: %s", name, exc)


def _child_keys(name: str) -> list[str]:
    """Market maker first, then the engine (nothing must trade on a closed market)."""
    return [
        f"Deployment/{resources.mm_name(name)}",
        f"Deployment/{resources.engine_name(name)}",
        f"Service/{resources.engine_name(name)}",
        f"PodDisruptionBudget/{resources.engine_name(name)}",
        f"ConfigMap/{resources.configmap_name(name)}",
    ]


async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Kopf keeps its progress in annotations (the CRD's status schema holds only ours)."""
    ours: Settings = memo[f"{MEMO_KEY}.settings"]
    settings.watching.server_timeout = ours.watch_server_timeout
    settings.watching.client_timeout = ours.watch_client_timeout
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    info, source = credentials(settings)
    if info is None:
        raise kopf.PermanentError("no Kubernetes credentials: neither in-cluster nor kubeconfig")
    kube = KubeClient(info)
    await _say_who(kube, source)
    memo[MEMO_KEY] = Context(
        settings=ours,
        kube=kube,
        redis=redis_client(ours.redis_url),
        images=resources.Images(
            engine=ours.engine_image,
            mm=ours.mm_image,
            pull_policy=ours.image_pull_policy,
            redis_url=ours.pod_redis_url,
            api_url=ours.api_url,
            mm_secret=ours.mm_secret,
            pull_secrets=ours.image_pull_secrets,
            eviction_seconds=ours.eviction_seconds,
            priority_class=ours.engine_priority_class,
        ),
        rollouts=rollout.Rollouts(kube, ours.namespaces, ours.engine_rollout_batch),
        mm_rollouts=rollout.Rollouts(
            kube, ours.namespaces, ours.engine_rollout_batch, rollout.MARKET_MAKER
        ),
        reads=observe.ReadPool(ours.postgres_dsn),
    )


async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    ctx = context(memo)
    await ctx.kube.close()
    await ctx.redis.aclose()
    await ctx.reads.close()


IN_CLUSTER = "in-cluster with the Pod's ServiceAccount"
FROM_KUBECONFIG = "with the kubeconfig"


def credentials(settings: kopf.OperatorSettings) -> tuple[kopf.ConnectionInfo | None, str]:
    """The operator's Kubernetes credentials and where they come from: inside a cluster its
    Pod's ServiceAccount token, elsewhere the kubeconfig."""
    info = kopf.login_with_service_account(settings=settings)
    if info is not None:
        return info, IN_CLUSTER
    return kopf.login_with_kubeconfig(settings=settings), FROM_KUBECONFIG


def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    return credentials(settings)[0]


async def _say_who(kube: KubeClient, source: str) -> None:
    """Log how and as whom the operator logged in: what an administrator checks first when
    it is refused something (and what the cluster test asserts)."""
    try:
        user = await kube.username()
    except (KubeError, aiohttp.ClientError, TimeoutError) as exc:
        user = f"a user the API server did not name ({exc})"
    log.info("logged in %s as %s", source, user)


def register(settings: Settings, registry: kopf.OperatorRegistry) -> kopf.Memo:
    """Attach every handler to `registry`; returns the memo Kopf passes to them."""
    backoff = settings.retry_seconds

    @instrumented("reconcile")
    async def on_reconcile(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        async with context(memo).lock(body):
            await reconcile(body, memo)

    @instrumented("trading")
    async def on_trading(
        body: kopf.Body, old: Any, new: Any, memo: kopf.Memo, logger: kopf.Logger, **_: Any
    ) -> None:
        await trading_changed(body, old, new, memo, logger)

    @instrumented("delete")
    async def on_delete(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        ctx = context(memo)
        async with ctx.lock(body):
            await wind_down(body, patch, memo)
        ctx.locks.pop(body.metadata.uid or "", None)
        forget_market(body.metadata.namespace or "", body.metadata.name or "")

    kopf.on.login(registry=registry)(login)
    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
    for cause in (kopf.on.resume, kopf.on.create, kopf.on.update):
        cause(*RESOURCE, registry=registry, backoff=backoff, id="reconcile")(on_reconcile)
    kopf.on.field(*RESOURCE, field="spec.trading", registry=registry, backoff=backoff,
                  id="trading")(on_trading)  # fmt: skip

    kopf.timer(*RESOURCE, interval=settings.drift_seconds, initial_delay=settings.drift_seconds,
               registry=registry, backoff=backoff, id="drift")(on_reconcile)  # fmt: skip
    kopf.on.delete(*RESOURCE, registry=registry, backoff=backoff, id="delete")(on_delete)

    @instrumented("deployment")
    async def on_deployment(
        body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **_: Any
    ) -> None:
        await deployment_changed(body, event, memo)

    kopf.on.event("apps", "v1", "deployments", labels={MANAGED_LABEL: resources.MANAGED_BY},
                  registry=registry)(on_deployment)  # fmt: skip
    memo = kopf.Memo()
    memo[f"{MEMO_KEY}.settings"] = settings
    return memo
