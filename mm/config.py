"""The market maker's settings, from EXCHANGE_MM_* environment variables."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_MM_", frozen=True)

    market: str = Field(min_length=1)
    manifest: Path | None = None
    """A Market YAML file (local mode, or the operator's ConfigMap); else the registry."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Only to read the Market from the registry when no manifest is given."""
    api_url: str = "http://127.0.0.1:8000"
    api_key: str = ""
    api_secret: SecretStr = SecretStr("")
    email: str = ""
    password: SecretStr = SecretStr("")
    """Without an API key: sign up (or in) with these and create a trade-scoped key."""
    faucet: dict[str, str] = Field(default_factory=dict)
    """Demo mode: top each asset up to this amount from the api's faucet, e.g.
    {"BTC": "10", "USD": "300000"}."""
    interval_seconds: float = Field(default=1.0, gt=0)
    requote_bps: int | None = Field(default=None, ge=1)
    """How far a live quote may drift before it is replaced; half a level spacing if unset."""
    requests_per_second: float = Field(default=20.0, gt=0)
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=8095, ge=0, le=65535)
