"""Fixtures of the engine service tests: engine processes that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.engine import EngineProcess, write_manifest
from tests.harness.servers import RedisServer


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path)


@pytest.fixture
def engines(
    redis_server: RedisServer, tmp_path: Path, manifest: Path
) -> Iterator[Callable[..., EngineProcess]]:
    """A factory of started engine processes for `manifest`; all are killed at teardown."""
    started: list[EngineProcess] = []

    def start(
        env: dict[str, str] | None = None, market_manifest: Path | None = None
    ) -> EngineProcess:
        engine = EngineProcess(
            market_manifest or manifest,
            redis_server.url,
            tmp_path / f"engine-{len(started)}.log",
            env=env or {},
        )
        engine.start()
        started.append(engine)
        return engine

    try:
        yield start
    finally:
        for engine in started:
            engine.kill()
