"""Fixtures of the ws tests: ws and engine processes that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.engine import EngineProcess, write_manifest
from tests.harness.servers import RedisServer
from tests.harness.ws import WsProcess


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path)


@pytest.fixture
def ws_servers(redis_server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., WsProcess]]:
    """A factory of started ws processes; all are killed at teardown."""
    started: list[WsProcess] = []

    def start(env: dict[str, str] | None = None, port: int | None = None) -> WsProcess:
        server = WsProcess(redis_server.url, tmp_path / f"ws-{len(started)}.log", env=env or {})
        if port is not None:
            server.health_port = port
        server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill()


@pytest.fixture
def engines(
    redis_server: RedisServer, tmp_path: Path, manifest: Path
) -> Iterator[Callable[..., EngineProcess]]:
    started: list[EngineProcess] = []

    def start() -> EngineProcess:
        engine = EngineProcess(manifest, redis_server.url, tmp_path / f"engine-{len(started)}.log")
        engine.start()
        started.append(engine)
        return engine

    try:
        yield start
    finally:
        for engine in started:
            engine.kill()
