"""`python -m xch_operator`: run the Market operator (Kopf) until SIGTERM.

With leader election (the default) the process first waits for the operator's Lease
(xch_operator.leader), answering /healthz as a standby meanwhile, and runs Kopf only while it
holds the Lease: the chart can run two replicas, one acting, one ready to take over. Kopf
itself runs standalone (no peering: it is no election). Settings come from EXCHANGE_OPERATOR_*
variables; Kubernetes credentials from the Pod's ServiceAccount or, outside a cluster, from
the kubeconfig (KUBECONFIG). Logs are JSON lines; liveness is served at /healthz and
Prometheus metrics at /metrics.
"""

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import kopf
import prometheus_client
from aiohttp import web

from xch_operator.config import Settings
from xch_operator.handlers import login, register
from xch_operator.kube import KubeClient
from xch_operator.leader import Elector, Timing, new_identity

OWN_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
LEASE_LOST_EXIT = 3
"""Exit status of a holder that could not renew its Lease in time."""

log = logging.getLogger("xch_operator")


def main() -> None:
    settings = Settings()
    kopf.configure(log_format=kopf.LogFormat.JSON, log_prefix=False, verbose=False)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    registry = kopf.OperatorRegistry()
    memo = register(settings, registry)
    if settings.metrics_port:
        prometheus_client.start_http_server(settings.metrics_port, addr=settings.health_host)
    run = elected if settings.leader_election else operate
    asyncio.run(run(settings, registry, memo))


async def operate(settings: Settings, registry: kopf.OperatorRegistry, memo: kopf.Memo) -> None:
    await kopf.operator(
        registry=registry,
        memo=memo,
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=f"http://{settings.health_host}:{settings.health_port}/healthz",
    )


async def elected(settings: Settings, registry: kopf.OperatorRegistry, memo: kopf.Memo) -> None:
    """Wait for the Lease, then operate while renewing it; release it on a clean stop."""
    info = login(kopf.OperatorSettings())
    if info is None:
        sys.exit("no Kubernetes credentials: neither in-cluster nor kubeconfig")
    kube = KubeClient(info)
    timing = Timing(
        settings.lease_seconds, settings.renew_deadline_seconds, settings.lease_retry_seconds
    )
    elector = Elector(kube, lease_namespace(settings), settings.lease_name, new_identity(), timing)
    try:
        async with standby_health(settings):
            await elector.acquire()
        keeper = asyncio.create_task(elector.keep(lease_lost))
        try:
            await operate(settings, registry, memo)
        finally:
            keeper.cancel()
            await elector.release()
    finally:
        await kube.close()


def lease_namespace(settings: Settings) -> str:
    if settings.lease_namespace:
        return settings.lease_namespace
    return OWN_NAMESPACE.read_text().strip() if OWN_NAMESPACE.exists() else "default"


def lease_lost() -> None:
    """Stop acting at once: a handler half-way is as safe as after a kill -9 (every step is
    idempotent, Kopf's progress is in the Market), while a graceful stop would let handlers
    go on after another replica has taken over. Kubernetes restarts this one as a standby."""
    sys.stderr.flush()
    os._exit(LEASE_LOST_EXIT)


@asynccontextmanager
async def standby_health(settings: Settings) -> AsyncIterator[None]:
    """/healthz while waiting for the Lease (a standby is alive); Kopf serves it after."""

    async def healthy(_: web.Request) -> web.Response:
        return web.json_response({"standby": True})

    app = web.Application()
    app.router.add_get("/healthz", healthy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.health_host, settings.health_port).start()
    log.info("standing by for lease %s", settings.lease_name)
    try:
        yield
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()
