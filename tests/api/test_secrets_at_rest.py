"""API-key secrets are sealed in PostgreSQL (api.keyring): what the database holds does not
sign requests, HMAC still verifies, rows from before sealing are sealed when the api starts,
keys rotate, and a missing or wrong key stops the api at its start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.harness.api import SECRETS_KEY, ApiProcess, signed_headers, signup
from tests.harness.stacks import Stack

NEW_KEY = "rotated-secrets-key-" + "z" * 24


@pytest.fixture
def apis() -> Iterator[list[ApiProcess]]:
    """Further api processes on the stack's Redis and database, all killed at teardown."""
    started: list[ApiProcess] = []
    try:
        yield started
    finally:
        for api in started:
            api.kill()


def start_api(stack: Stack, apis: list[ApiProcess], tmp_path: Path, **env: str) -> ApiProcess:
    api = ApiProcess(
        stack.redis_url, stack.database_url, tmp_path / f"api-{len(apis)}.log", env=env
    )
    api.start()
    apis.append(api)
    return api


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def new_key(http: httpx.AsyncClient) -> tuple[str, str]:
    trader = await signup(http)
    response = await trader.post("/api/v1/api-keys", {"label": "bot", "scopes": ["read"]})
    assert response.status_code == 201, response.text
    return response.json()["key"], response.json()["secret"]


async def signed_status(url: str, key: str, secret: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        headers = signed_headers(key, secret, "GET", "/api/v1/balances")
        return (await client.get("/api/v1/balances", headers=headers)).status_code


async def stored(db: asyncpg.Connection, key: str) -> str:
    secret = await db.fetchval("SELECT secret FROM api_keys WHERE key = $1", key)
    assert isinstance(secret, str)
    return secret


async def test_the_database_holds_a_sealed_secret_and_requests_still_verify(
    http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    key, secret = await new_key(http)
    sealed = await stored(db, key)
    assert sealed.startswith("v1:") and secret not in sealed
    assert await signed_status(str(http.base_url), key, secret) == 200
    # what the database holds does not sign
    assert await signed_status(str(http.base_url), key, sealed) == 401


async def test_plaintext_rows_are_sealed_at_start_and_keys_rotate(
    stack: Stack,
    http: httpx.AsyncClient,
    db: asyncpg.Connection,
    apis: list[ApiProcess],
    tmp_path: Path,
) -> None:
    key, secret = await new_key(http)
    # a row as a release before sealing stored it
    await db.execute("UPDATE api_keys SET secret = $2 WHERE key = $1", key, secret)
    api = start_api(stack, apis, tmp_path)
    await api.wait_ready()
    old_sealed = await stored(db, key)
    assert old_sealed.startswith("v1:") and secret not in old_sealed
    assert await signed_status(api.url, key, secret) == 200

    # rotation: the new key seals, the old one still opens until every row is resealed
    rotated = start_api(
        stack,
        apis,
        tmp_path,
        EXCHANGE_API_SECRETS_KEY=NEW_KEY,
        EXCHANGE_API_SECRETS_OLD_KEYS=json.dumps([SECRETS_KEY]),
    )
    await rotated.wait_ready()
    new_sealed = await stored(db, key)
    assert new_sealed.split(":")[1] != old_sealed.split(":")[1]  # another key id
    assert await signed_status(rotated.url, key, secret) == 200
    only_new = start_api(stack, apis, tmp_path, EXCHANGE_API_SECRETS_KEY=NEW_KEY)
    await only_new.wait_ready()
    assert await signed_status(only_new.url, key, secret) == 200

    # the former key alone no longer opens them: the api refuses to start, and says why
    former = start_api(stack, apis, tmp_path)
    assert await exit_code(former) != 0
    assert "which neither EXCHANGE_API_SECRETS_KEY" in former.log_file.read_text()
    assert await stored(db, key) == new_sealed


@pytest.mark.parametrize("value", ["", "short-key"])
async def test_a_missing_or_weak_key_stops_the_api_at_its_start(
    stack: Stack, apis: list[ApiProcess], tmp_path: Path, value: str
) -> None:
    api = start_api(stack, apis, tmp_path, EXCHANGE_API_SECRETS_KEY=value)
    assert await exit_code(api) != 0
    assert "set EXCHANGE_API_SECRETS_KEY" in api.log_file.read_text()


async def exit_code(api: ApiProcess) -> int:
    process = api.process
    assert process is not None
    for _ in range(300):
        code = process.poll()
        if code is not None:
            return code
        await asyncio.sleep(0.1)
    raise AssertionError(f"the api kept running:\n{api.log_tail()}")
