"""Fixtures shared by all tests: real Redis and PostgreSQL servers, and clients to them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio
from hypothesis import settings

from tests.harness.servers import PostgresServer, RedisServer, start_postgres, start_redis

# Property tests are deterministic by default: the same examples on every run and machine.
# HYPOTHESIS_PROFILE=explore draws fresh random examples instead.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TESTS = Path(__file__).resolve().parent
# Folders whose tests need what only `make test` builds (markers in pyproject.toml): the
# Go-built control plane and helm, or Chromium. `make test-fast` deselects them.
FOLDER_MARKERS = {"operator": "kube", "helm": "kube", "frontend": "browser", "cluster": "kube"}
# tests/cluster runs a whole single-node cluster and the platform's images on it: only from
# `make e2e-cluster`, which builds what it needs and sets EXCHANGE_E2E_CLUSTER.
collect_ignore = [] if os.environ.get("EXCHANGE_E2E_CLUSTER") else ["cluster"]


def pytest_configure(config: pytest.Config) -> None:
    # The shared engine-load verification module reports its assertions' operands as test
    # modules do; registered before collection, since dbproc's tests import it too.
    pytest.register_assert_rewrite("tests.engine_service.load")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(TESTS):
            marker = FOLDER_MARKERS.get(item.path.relative_to(TESTS).parts[0])
            if marker is not None:
                item.add_marker(marker)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session, on a free port, with a throw-away data directory."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL 15 server for the session, with database exchange_test.

    Its directory is made under /tmp, not under pytest's temporary root: that one is private
    to the user running pytest, and as root the server runs as another user.
    """
    base_dir = Path(tempfile.mkdtemp(prefix="xch-pg-"))
    try:
        server = start_postgres(base_dir)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio Redis client to the session server (as its admin), which is emptied
    (FLUSHALL) first. The test fails if Redis refused any component a command or key on the
    way (ACL LOG): the harness runs each component as its own ACL user."""
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await client.flushall()
        await client.acl_log_reset()
        yield client
        # A connection of its own: the test may have restarted Redis under the client's.
        async with redis.asyncio.Redis.from_url(redis_server.url) as admin:
            refused = await admin.acl_log()
        assert not refused, f"refused by the Redis ACLs (files/redis-acl.yaml): {refused}"
    finally:
        await client.aclose()


@pytest.fixture
async def pg_conn(postgres_server: PostgresServer) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection to the session server's exchange_test database."""
    conn = await asyncpg.connect(postgres_server.url)
    try:
        yield conn
    finally:
        await conn.close()
