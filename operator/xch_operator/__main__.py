"""`python -m xch_operator`: run the Market operator (Kopf) until SIGTERM.

One replica, standalone (no peering; the Deployment uses the Recreate strategy). Settings
come from EXCHANGE_OPERATOR_* variables; Kubernetes credentials from the Pod's ServiceAccount
or, outside a cluster, from the kubeconfig (KUBECONFIG). Logs are JSON lines; liveness is
served at /healthz and Prometheus metrics at /metrics.
"""

import logging

import kopf
import prometheus_client

from xch_operator.config import Settings
from xch_operator.handlers import register


def main() -> None:
    settings = Settings()
    kopf.configure(log_format=kopf.LogFormat.JSON, log_prefix=False, verbose=False)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    registry = kopf.OperatorRegistry()
    memo = register(settings, registry)
    if settings.metrics_port:
        prometheus_client.start_http_server(settings.metrics_port, addr=settings.health_host)
    kopf.run(
        registry=registry,
        memo=memo,
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=f"http://{settings.health_host}:{settings.health_port}/healthz",
    )


if __name__ == "__main__":
    main()
