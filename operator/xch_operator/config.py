"""The operator's settings, from EXCHANGE_OPERATOR_* environment variables (Helm values)."""

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_OPERATOR_", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    """The platform's Redis primary: registry, streams and groups, engine commands."""
    postgres_dsn: str = "postgresql://exchange@127.0.0.1:5432/exchange"
    """The platform's database, where each Market's storage is provisioned."""
    engine_redis_url: str | None = None
    """The Redis URL the engine and mm Pods get, when it differs from redis_url."""
    api_url: str = "http://api:8000"
    """Where market makers send their orders."""
    mm_secret: str = "exchange-mm"
    """The Secret (optional) holding the market makers' EXCHANGE_MM_* API credentials."""
    engine_image: str = "exchange/engine:latest"
    mm_image: str = "exchange/mm:latest"
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: tuple[str, ...] = ()
    """imagePullSecrets for the engine and mm Pods (Secrets in each Market's namespace)."""
    eviction_seconds: int = Field(default=10, ge=0)
    """Seconds an engine or mm Pod tolerates a not-ready or unreachable node."""
    engine_rollout_batch: int = Field(default=1, ge=1)
    """How many engines roll to a new engine image at once: the next starts when one of
    them is ready on it. Market makers roll to a new mm image in batches of the same size."""
    engine_priority_class: str = ""
    """priorityClassName of the engine Pods; empty: none."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means every namespace."""
    drift_seconds: float = Field(default=30.0, gt=0)
    """How often each Market's children and engine readiness are checked against its spec."""
    retry_seconds: float = Field(default=2.0, gt=0)
    """Delay before retrying a step that is waiting for something (e.g. the engine's close)."""
    watch_server_timeout: int = Field(default=300, gt=0)
    """Seconds the API server keeps one watch open before ending it; the watch is then made
    again. Without a bound a watch can go silent forever behind a proxy or load balancer
    that drops idle connections (nolar/kopf#585), and the operator stops seeing changes."""
    watch_client_timeout: float = Field(default=330, gt=0)
    """The operator's own bound on one watch, a little longer than the server's."""
    health_host: str = "0.0.0.0"
    health_port: int = Field(default=8080, ge=1, le=65535)
    """Kopf's liveness endpoint, /healthz."""
    metrics_port: int = Field(default=9090, ge=0, le=65535)
    """Prometheus /metrics; 0 turns it off."""

    leader_election: bool = True
    """Reconcile only while holding a Lease (xch_operator.leader): of several replicas, one
    acts and the others stand by. Off: this process acts alone, whatever else runs."""
    lease_name: str = "xch-operator"
    lease_namespace: str = ""
    """The Lease's namespace; empty: the Pod's own (its ServiceAccount's)."""
    lease_seconds: int = Field(default=15, ge=1)
    """How long a standby waits after the holder's last renewal before taking over."""
    renew_deadline_seconds: float = Field(default=10, gt=0)
    """How long the holder acts without renewing; then it exits (shorter than the lease)."""
    lease_retry_seconds: float = Field(default=2, gt=0)
    """How often the holder renews and a standby tries to take over."""

    @model_validator(mode="after")
    def _deadline_within_lease(self) -> Self:
        if self.renew_deadline_seconds >= self.lease_seconds:
            raise ValueError("renew_deadline_seconds must be shorter than lease_seconds")
        return self

    @property
    def pod_redis_url(self) -> str:
        return self.engine_redis_url or self.redis_url
