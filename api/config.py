"""The api's settings, from EXCHANGE_API_* environment variables (and the JWT secret shared
with ws, EXCHANGE_JWT_SECRET)."""

import secrets
from decimal import Decimal
from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.keyring import MIN_KEY_CHARS
from runtime.addresses import trusted_networks

WEAK_SECRETS = {"changethis", "secret", "changeme"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EXCHANGE_API_", frozen=True, populate_by_name=True
    )

    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "postgresql://exchange@127.0.0.1:5432/exchange"
    jwt_secret: str = Field(min_length=32, validation_alias="EXCHANGE_JWT_SECRET")
    secrets_key: str = Field(default="", repr=False, validate_default=True)
    """Seals API-key secrets in PostgreSQL (api.keyring): at least 32 random characters."""
    secrets_old_keys: list[str] = Field(default_factory=list, repr=False)
    """Earlier secrets keys (JSON list), still opening what they sealed while the api reseals
    it under `secrets_key` (key rotation, docs/operations.md)."""
    access_ttl_seconds: int = Field(default=900, ge=10)
    refresh_ttl_seconds: int = Field(default=7 * 86400, ge=60)
    instance: str = Field(default_factory=lambda: f"api-{secrets.token_hex(6)}")
    """Names this process's reply channel, xch:reply:{instance}."""
    reply_timeout_seconds: float = Field(default=2.0, gt=0)
    """How long a place or cancel waits for the engine's commit before answering 202."""
    faucet_enabled: bool = True
    funds_reference_ttl_seconds: int = Field(default=90 * 86400, ge=3600)
    """How long an admin deposit's or withdrawal's reference stays claimed: a retry within it
    moves nothing again, another request under it is refused (409)."""
    faucet_max: Decimal = Field(default=Decimal("100000"), gt=0)
    """Most whole units of an asset one faucet call may hand out (local and demo mode)."""
    rate_limit_user: int = Field(default=50, ge=1)
    rate_limit_ip: int = Field(default=100, ge=1)
    rate_limit_window_seconds: int = Field(default=1, ge=1)
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks (CIDR) of the proxies in front of the api, an ingress controller's:
    X-Forwarded-For is believed only from these. Empty: the TCP peer is the client."""
    auth_failures_ip: int = Field(default=20, ge=1)
    """Refused credentials an address may present before it must back off."""
    auth_failures_account: int = Field(default=5, ge=1)
    """Refused credentials naming one account (a wrong password or signature) before it must
    back off, from any address."""
    auth_failure_memory_seconds: int = Field(default=600, ge=1)
    """How long after its last failure (and wait) an address or account is forgiven."""
    auth_backoff_max_seconds: int = Field(default=900, ge=1)
    """The longest wait: waits start at 1 s and double with each further failure."""
    max_body_bytes: int = Field(default=16_384, ge=256)
    cors_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:5173"])
    recv_window_ms: int = Field(default=5000, ge=100)
    """How far a signed request's timestamp may be from the server's clock."""
    api_key_cache_seconds: float = Field(default=2.0, ge=0)
    """How long a looked-up API key (or that there is no such key) is trusted before PostgreSQL
    is asked again (revocation takes effect within this time)."""
    client_order_id_ttl_seconds: int = Field(default=7 * 86400, ge=60)
    binance_client_order_id_ttl_seconds: int = Field(default=86400, ge=60)
    """How long a Binance order's `newClientOrderId` stays claimed (with the first answer):
    Binance keeps a client id unique among open orders only, and every Binance order has one,
    so a week of them per order would grow Redis by the order rate."""
    generated_client_order_id_ttl_seconds: int = Field(default=600, ge=60)
    """How long the id the api makes up for a Binance order sent without `newClientOrderId`
    stays claimed: only until dbproc has stored the order (lookups by it read PostgreSQL then);
    no client can retry with an id it never sent."""
    list_record_ttl_seconds: int = Field(default=86400, ge=300)
    """How long Redis keeps a Binance OCO list's record (and its listClientOrderId); storage
    answers for it afterwards (api.binance.lists)."""
    registry_cache_seconds: float = Field(default=1.0, ge=0)
    db_pool_size: int = Field(default=10, ge=1)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19_456, ge=1024)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: str = "info"

    _trusted_proxies = field_validator("trusted_proxies")(trusted_networks)

    @field_validator("jwt_secret")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        if value.lower() in WEAK_SECRETS:
            raise ValueError("set EXCHANGE_JWT_SECRET to a real secret")
        return value

    @field_validator("secrets_key", "secrets_old_keys")
    @classmethod
    def _strong_keys(cls, value: str | list[str]) -> str | list[str]:
        for key in [value] if isinstance(value, str) else value:
            if len(key) < MIN_KEY_CHARS or key.lower() in WEAK_SECRETS:
                raise ValueError(
                    f"set EXCHANGE_API_SECRETS_KEY (and each of EXCHANGE_API_SECRETS_OLD_KEYS) "
                    f"to at least {MIN_KEY_CHARS} random characters"
                )
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
