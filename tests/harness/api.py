"""The api as a process (`python -m api`), the database it needs, and its clients (signed
requests, a signed-up trader, order bodies)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import yaml

from storage.klines import provision_market_storage
from storage.migrate import upgrade
from tests.harness.engine import EXAMPLE
from tests.harness.processes import ROOT, ServiceProcess, free_port
from tests.harness.servers import as_user

JWT_SECRET = "test-secret-" + "x" * 24
SECRETS_KEY = "test-secrets-key-" + "y" * 24
"""Seals the API-key secrets the api stores (api.keyring)."""
FORMER_ADMIN_EMAIL = "admin@example.com"
"""Named by EXCHANGE_API_ADMIN_EMAILS, the retired setting that made whoever signed up with
it an admin: the api tests' stack still sets it, and it must grant nothing."""


def market_manifest(directory: Path, name: str, base: str, trading: str = "Enabled") -> Path:
    """A Market manifest like the btc-usd example (quote USD) with another name and base."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["metadata"]["name"] = name
    data["spec"]["base"]["asset"] = base
    data["spec"]["trading"] = trading
    data["spec"]["marketMaker"]["enabled"] = False
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def prepare_database(dsn: str, manifests: list[Path]) -> None:
    from xch.market import Market

    await upgrade(dsn)
    for path in manifests:
        await provision_market_storage(dsn, Market.model_validate(yaml.safe_load(path.read_text())))


@dataclass
class ApiProcess(ServiceProcess):
    """`python -m api` on its own port (health on the same), with test settings: a known JWT
    secret, fast password hashing."""

    redis_url: str
    database_url: str
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    health_port: int = field(default_factory=free_port)
    ready_timeout = 30

    @property
    def port(self) -> int:
        return self.health_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arguments(self) -> list[str]:
        return ["api"]

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "EXCHANGE_API_REDIS_URL": as_user(self.redis_url, "api"),
            "EXCHANGE_API_DATABASE_URL": self.database_url,
            "EXCHANGE_JWT_SECRET": JWT_SECRET,
            "EXCHANGE_API_SECRETS_KEY": SECRETS_KEY,
            "EXCHANGE_API_PORT": str(self.port),
            "EXCHANGE_API_ARGON2_TIME_COST": "1",
            "EXCHANGE_API_ARGON2_MEMORY_KIB": "8192",
            **self.env,
        }


# ---- clients ----------------------------------------------------------------------------


def signed_headers(
    key: str, secret: str, method: str, path: str, body: bytes = b"", timestamp: int | None = None
) -> dict[str, str]:
    stamp = str(timestamp if timestamp is not None else int(time.time() * 1000))
    message = stamp.encode() + method.encode() + path.encode() + body
    return {
        "X-API-KEY": key,
        "X-API-TIMESTAMP": stamp,
        "X-API-SIGNATURE": hmac.new(secret.encode(), message, hashlib.sha256).hexdigest(),
    }


@dataclass
class Trader:
    """A signed-up user with a bearer token."""

    http: httpx.AsyncClient
    user_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.auth)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.auth)

    async def delete(self, path: str) -> httpx.Response:
        return await self.http.delete(path, headers=self.auth)

    async def place(self, **order: Any) -> httpx.Response:
        return await self.post("/api/v1/order", order)

    async def balances(self) -> dict[str, tuple[str, str]]:
        response = await self.get("/api/v1/balances")
        assert response.status_code == 200, response.text
        return {b["asset"]: (b["free"], b["locked"]) for b in response.json()}


def limit(
    side: str, price: str, quantity: str, market: str = "btc-usd", **extra: str
) -> dict[str, str]:
    """A limit order's body."""
    return {
        "market": market,
        "side": side,
        "type": "limit",
        "price": price,
        "quantity": quantity,
        **extra,
    }


async def signup(http: httpx.AsyncClient, email: str | None = None) -> Trader:
    email = email or f"{secrets.token_hex(6)}@example.com"
    response = await http.post(
        "/api/v1/signup", json={"email": email, "password": "correct horse battery"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Trader(http, body["user_id"], body["access_token"])


def set_admin(database_url: str, email: str, action: str = "grant") -> None:
    """What an operator does to make an account an admin: `python -m api.admin`."""
    done = subprocess.run(
        [sys.executable, "-m", "api.admin", action, email],
        cwd=ROOT,
        env={**os.environ, "EXCHANGE_API_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


async def new_admin(http: httpx.AsyncClient, database_url: str) -> Trader:
    """A new user made an admin by the operator's command."""
    email = f"admin-{secrets.token_hex(6)}@example.com"
    trader = await signup(http, email)
    set_admin(database_url, email)
    return trader


async def funded(http: httpx.AsyncClient, **amounts: str) -> Trader:
    """A new user given `amounts` (asset=decimal) by the faucet."""
    trader = await signup(http)
    for asset, amount in amounts.items():
        response = await trader.post("/api/v1/faucet", {"asset": asset, "amount": amount})
        assert response.status_code == 200, response.text
    return trader
