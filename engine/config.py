"""The engine service's settings, from EXCHANGE_ENGINE_* environment variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_ENGINE_", frozen=True)

    market: str = Field(min_length=1)
    redis_url: str = "redis://127.0.0.1:6379/0"
    manifest: Path | None = None
    """A Market YAML file (local mode); otherwise the spec comes from the registry."""
    batch_max: int = Field(default=2000, ge=1)
    """Commands read, matched and committed together at most."""
    block_ms: int = Field(default=100, ge=1)
    lease_ttl_ms: int = Field(default=3000, ge=100)
    snapshot_every: int | None = Field(default=None, ge=1)
    """Commands between snapshots; the Market's spec.engine.snapshotEvery if unset."""
    snapshot_seconds: float = Field(default=60.0, gt=0)
    events_maxlen: int = Field(default=1_000_000, ge=1000)
    """Events stream entries kept at least; only what dbproc has acknowledged is trimmed."""
    events_trim_seconds: float = Field(default=1.0, gt=0)
    depth_levels: int = Field(default=500, ge=1)
    """Levels per side kept in the depth key."""
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=8081, ge=0, le=65535)
    """0 turns the health and metrics endpoint off."""
    retry_seconds: float = Field(default=0.5, gt=0)
    close_through: str | None = Field(default=None, pattern=r"^\d+-\d+$")
    """Run only until this input entry (the market's close) is applied, then exit: how the
    operator closes a market whose engine Pods are gone. No snapshot is taken."""
