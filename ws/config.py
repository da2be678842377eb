"""The WebSocket service's settings, from EXCHANGE_WS_* environment variables (and the JWT
secret the api signs access tokens with, EXCHANGE_JWT_SECRET)."""

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.addresses import trusted_networks


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_WS_", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    postgres_dsn: str | None = None
    """Where candles are stored; without it a kline stream starts from the trades ws sees."""
    jwt_secret: str = Field(default="", validation_alias="EXCHANGE_JWT_SECRET")
    """Empty: JWT authentication is off (listen keys still work)."""
    api_url: str = ""
    """The api's address inside the cluster (`http://<api service>:8000`): the WebSocket API
    (`/ws-api/v3`) has it check a subscription's signature. Empty: that subscription is
    refused (503 -1001), everything else works."""
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    shared_port: int | None = Field(default=None, ge=1, le=65535)
    """Also listen here with SO_REUSEPORT: replicas on one machine sharing it are one address,
    the kernel spreading new connections over them (`port` stays each one's own)."""
    queue_size: int = Field(default=2000, ge=10)
    """Messages waiting for one client at most; a full queue means the client is too slow."""
    max_resyncs: int = Field(default=3, ge=0)
    """Times a slow client is resynced (queue dropped, fresh snapshots) before it is cut off."""
    send_timeout: float = Field(default=10.0, gt=0)
    """A single frame not written within this is a stalled client: it is cut off."""
    block_ms: int = Field(default=1000, ge=1)
    """XREAD block time of the events readers."""
    registry_seconds: float = Field(default=1.0, gt=0)
    """How often the market registry is re-read for new markets."""
    ticker_seconds: float = Field(default=0.5, gt=0)
    """Tickers are published at most once per this period (per market)."""
    depth_levels: int = Field(default=500, ge=1)
    """Levels per side in a depth snapshot."""
    max_streams: int = Field(default=200, ge=1)
    """Subscriptions per connection at most."""
    max_message_bytes: int = Field(default=65_536, ge=1024)
    """Largest frame a client may send (requests are small)."""
    max_messages_per_second: int = Field(default=50, ge=1)
    """Messages a client may send within one second; one more and it is cut off (close code
    1008), as Binance cuts off clients past its 5 a second."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks (CIDR) of the proxies in front of ws, an ingress controller's:
    X-Forwarded-For is believed only from these (runtime/addresses.py, as the api). Empty: the
    TCP peer is the client."""
    auth_failures_ip: int = Field(default=20, ge=1)
    """Refused credentials (a bad JWT, an unknown listen key) an address may present before it
    must back off; the counts are the api's (runtime.auth_failures): one budget for both."""
    auth_failure_memory_seconds: int = Field(default=600, ge=1)
    """How long after its last failure (and wait) an address is forgiven."""
    auth_backoff_max_seconds: int = Field(default=900, ge=1)
    """The longest wait: waits start at 1 s and double with each further failure."""
    auth_check_seconds: float = Field(default=30.0, gt=0)
    """How often an authenticated connection's JWT expiry or listen key is checked again."""
    ping_interval: float = Field(default=20.0, gt=0)
    """WebSocket protocol pings; a client that does not answer within the same time is closed."""
    retry_seconds: float = Field(default=0.5, gt=0)
    portfolio_seconds: float = Field(default=1.0, gt=0)
    """A user's `portfolio` stream is recomputed at most once per this period."""

    _trusted_proxies = field_validator("trusted_proxies")(trusted_networks)
