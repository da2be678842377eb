"""The processes of the local stack, given the markets in the registry: pure data."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from launcher.config import LocalConfig
from launcher.servers import HOST, ROOT

MM_QUOTE_FUNDS = "100000"
"""What each market maker takes from the faucet in the quote asset (whole units)."""


@dataclass(frozen=True)
class Process:
    """One process to keep running: `python -m <argv>` (or `node <argv>` for the trading
    page's server) with `env`, its output in `log`."""

    name: str
    argv: tuple[str, ...]
    log: Path
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    runtime: str = "python"

    @property
    def command(self) -> list[str]:
        if self.runtime == "node":
            return ["node", *self.argv]
        return [sys.executable, "-m", *self.argv]

    @property
    def cwd(self) -> Path:
        return ROOT


@dataclass(frozen=True)
class MarketInfo:
    """What the plan needs of a market: its name, assets and whether it has a market maker."""

    name: str
    base: str
    quote: str
    market_maker: bool
    mm_base_funds: str = "1"
    """What its market maker takes from the faucet in the base asset: half its inventory
    bound, so it starts balanced."""


def shared(config: LocalConfig) -> list[Process]:
    """The services every market shares: dbproc, api, ws."""
    common = {"EXCHANGE_JWT_SECRET": config.jwt_secret}
    return [
        Process(
            "dbproc",
            ("dbproc",),
            config.log_dir / "dbproc.log",
            f"http://{HOST}:{config.dbproc_port}/readyz",
            {
                "EXCHANGE_DBPROC_REDIS_URL": config.redis_url("dbproc"),
                "EXCHANGE_DBPROC_DATABASE_URL": config.database_url,
                "EXCHANGE_DBPROC_CONSUMER": "dbproc-local",
                "EXCHANGE_DBPROC_HEALTH_PORT": str(config.dbproc_port),
            },
        ),
        Process(
            "api",
            ("api",),
            config.log_dir / "api.log",
            f"{config.api_url}/readyz",
            common
            | {
                "EXCHANGE_API_REDIS_URL": config.redis_url("api"),
                "EXCHANGE_API_DATABASE_URL": config.database_url,
                "EXCHANGE_API_SECRETS_KEY": config.secrets_key,
                "EXCHANGE_API_PORT": str(config.api_port),
                "EXCHANGE_API_FAUCET_ENABLED": "true",
                "EXCHANGE_API_CORS_ORIGINS": json.dumps(["*"]),
            },
        ),
        Process(
            "ws",
            ("ws",),
            config.log_dir / "ws.log",
            f"http://{HOST}:{config.ws_port}/readyz",
            common
            | {
                "EXCHANGE_WS_REDIS_URL": config.redis_url("ws"),
                "EXCHANGE_WS_POSTGRES_DSN": config.database_url,
                "EXCHANGE_WS_PORT": str(config.ws_port),
                "EXCHANGE_WS_API_URL": config.api_url,
            },
        ),
    ]


def per_market(config: LocalConfig, slot: int, market: MarketInfo) -> list[Process]:
    """The engine (and market maker, if the Market enables one) of one market; `slot`
    numbers its health ports."""
    engine_port = config.engine_base_port + slot
    processes = [
        Process(
            f"engine {market.name}",
            ("engine", "--market", market.name),
            config.log_dir / f"engine-{market.name}.log",
            f"http://{HOST}:{engine_port}/readyz",
            {
                "EXCHANGE_ENGINE_REDIS_URL": config.redis_url("engine"),
                "EXCHANGE_ENGINE_HEALTH_PORT": str(engine_port),
            },
        )
    ]
    if market.market_maker:
        mm_port = config.mm_base_port + slot
        faucet = {market.base: market.mm_base_funds, market.quote: MM_QUOTE_FUNDS}
        processes.append(
            Process(
                f"mm {market.name}",
                ("mm", "--market", market.name),
                config.log_dir / f"mm-{market.name}.log",
                f"http://{HOST}:{mm_port}/readyz",
                {
                    "EXCHANGE_MM_REDIS_URL": config.redis_url("mm"),
                    "EXCHANGE_MM_API_URL": config.api_url,
                    "EXCHANGE_MM_EMAIL": f"mm-{market.name}@local.exchange",
                    "EXCHANGE_MM_PASSWORD": config.mm_password,
                    "EXCHANGE_MM_FAUCET": json.dumps(faucet),
                    "EXCHANGE_MM_HEALTH_PORT": str(mm_port),
                },
            )
        )
    return processes


def frontend(config: LocalConfig) -> Process:
    """The trading page (frontend/out, built by `make frontend`) with the api and ws behind
    the same origin."""
    return Process(
        "frontend",
        (
            str(ROOT / "frontend" / "serve.mjs"),
            "--port",
            str(config.frontend_port),
            "--api",
            config.api_url,
            "--ws",
            f"http://{HOST}:{config.ws_port}",
        ),
        config.log_dir / "frontend.log",
        f"{config.frontend_url}/",
        runtime="node",
    )


def traders(config: LocalConfig) -> Process:
    """The taker simulator, so the demo has trades and a living chart."""
    return Process(
        "traders",
        ("mm.traders", "--api-url", config.api_url, "--users", "4", "--rate", "1.5"),
        config.log_dir / "traders.log",
        "",
    )
