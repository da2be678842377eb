"""The api tests' stack: one per module (servers and processes take seconds to start)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.harness.api import FORMER_ADMIN_EMAIL, market_manifest
from tests.harness.servers import PostgresServer
from tests.harness.stacks import Stack, running_stack

# Two markets sharing the quote asset, each with an engine; a halted market; and a market
# whose engine is not running (its commands wait in its input: the api answers 202).
MARKETS = (
    ("btc-usd", "BTC", "Enabled"),
    ("eth-usd", "ETH", "Enabled"),
    ("sol-usd", "SOL", "Halted"),
    ("ada-usd", "ADA", "Enabled"),
)
ENGINES = 2


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("api-stack")
    manifests = [market_manifest(directory, *spec) for spec in MARKETS]
    with running_stack(
        directory,
        postgres_server,
        manifests,
        database="api",
        engines=ENGINES,
        dbproc_env={
            "EXCHANGE_DBPROC_REGISTRY_POLL_SECONDS": "0.2",
            "EXCHANGE_DBPROC_BLOCK_MS": "50",
        },
        api_env={
            "EXCHANGE_API_RATE_LIMIT_USER": "200",
            "EXCHANGE_API_RATE_LIMIT_IP": "100000",
            # Hostile-input tests present many bad credentials: no back-off here (test_access).
            "EXCHANGE_API_AUTH_FAILURES_IP": "100000",
            "EXCHANGE_API_AUTH_FAILURES_ACCOUNT": "100000",
            # A former release's setting, left in the environment: it must grant nothing.
            "EXCHANGE_API_ADMIN_EMAILS": json.dumps([FORMER_ADMIN_EMAIL]),
        },
    ) as running:
        yield running


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api.url, timeout=10) as client:
        yield client
