"""The Binance-compatible tests run on the api tests' stack (tests/api/conftest.py): Redis,
PostgreSQL, engines, dbproc and `python -m api`, one per module; the stream tests add a ws
process (`ws_server`)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from binance.client import Client

from tests.api.conftest import stack
from tests.harness.api import JWT_SECRET
from tests.harness.stacks import Stack
from tests.harness.ws import WsProcess

__all__ = ["stack"]


@pytest.fixture(scope="module")
def ws_server(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WsProcess]:
    directory: Path = tmp_path_factory.mktemp("ws")
    server = WsProcess(
        stack.redis_url,
        directory / "ws.log",
        env={
            "EXCHANGE_WS_POSTGRES_DSN": stack.database_url,
            "EXCHANGE_WS_BLOCK_MS": "100",
            "EXCHANGE_WS_AUTH_CHECK_SECONDS": "0.5",
            # The WebSocket API has the api check its signatures.
            "EXCHANGE_WS_API_URL": stack.api.url,
            "EXCHANGE_JWT_SECRET": JWT_SECRET,
        },
    )
    server.start()
    try:
        asyncio.run(server.wait_ready())
        yield server
    finally:
        server.terminate()


@dataclass
class Account:
    user_id: str
    key: str
    secret: str
    client: Client
    access_token: str = ""
    """The user's session token (a native api bearer token)."""


def binance_client(url: str, key: str, secret: str) -> Client:
    """python-binance pointed at our api: no ping at construction (it would go to Binance),
    every REST call to `url`/api/v3."""
    client = Client(key, secret, ping=False)
    client.API_URL = f"{url}/api"
    return client


@pytest.fixture(scope="module")
def accounts(stack: Stack) -> Iterator[Callable[..., Account]]:
    """A factory of users with an API key (`scopes`) and the faucet's `amounts`."""
    made: list[Account] = []

    def make(scopes: tuple[str, ...] = ("read", "trade"), **amounts: str) -> Account:
        with httpx.Client(base_url=stack.api.url, timeout=10) as http:
            email = f"{secrets.token_hex(6)}@example.com"
            tokens = http.post(
                "/api/v1/signup", json={"email": email, "password": "correct horse battery"}
            ).json()
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}
            for asset, amount in amounts.items():
                answer = http.post(
                    "/api/v1/faucet", json={"asset": asset, "amount": amount}, headers=auth
                )
                assert answer.status_code == 200, answer.text
            created = http.post("/api/v1/api-keys", json={"scopes": list(scopes)}, headers=auth)
            assert created.status_code == 201, created.text
            key, secret = created.json()["key"], created.json()["secret"]
        account = Account(
            tokens["user_id"],
            key,
            secret,
            binance_client(stack.api.url, key, secret),
            tokens["access_token"],
        )
        made.append(account)
        return account

    try:
        yield make
    finally:
        for account in made:
            account.client.close_connection()
