"""The benchmark's load client (bench/wsload, in Go) against the real stack: it builds, and a
small plan's messages all arrive and are timed, through one replica and through two sharing
one port (SO_REUSEPORT)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.ws import Options, build_wsload, ceiling, measure, next_rate

CLIENTS = 20


@pytest.fixture(scope="module")
def wsload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wsload(tmp_path_factory.mktemp("wsload") / "wsload")


@pytest.mark.parametrize("replicas", [1, 2])
async def test_a_small_plan_is_delivered_whole_and_timed(wsload: Path, replicas: int) -> None:
    options = Options(CLIENTS, replicas, rate=40, seconds=5, quiet_load=None, grace=10)
    result = await measure(options, wsload)
    assert result["connected"] == CLIENTS
    (step,) = result["steps"]
    assert step["undelivered"] == 0, step
    assert step["resynced_clients"] == step["closed_clients"] == 0
    for kind in ("trade", "depth", "orders", "binance_trade", "binance_depth"):
        assert step["owed"][kind] > 0, kind  # every kind of stream was followed and accounted
    assert step["received"]["trade"] == step["owed"]["trade"]
    assert step["received"]["orders"] == step["owed"]["orders"]
    assert step["latency"]["samples"] > 0 and step["latency_merged"]["samples"] > 0
    assert step["latency_unresolved"] == 0
    assert 0 < step["latency"]["p50_ms"] <= step["latency"]["max_ms"]
    assert step["client_cpu_seconds"] > 0
    assert all(sent > 0 for sent in step["ws_messages_out_by_replica"])
    assert step["ws_writes_per_sec"] > 0 and step["ws_cpu_wait_percent_of_one_core"] >= 0
    assert len(step["ws_messages_out_by_replica"]) == replicas
    assert result["rss_per_client_kib"] > 0


def step(rate: int, p99_ms: float, undelivered: int = 0) -> dict[str, Any]:
    return {
        "orders_per_sec": rate,
        "latency_p99_ms": p99_ms,
        "undelivered": undelivered,
        "resynced_clients": 0,
    }


def test_the_ceiling_search_doubles_while_it_passes_and_halves_while_it_fails() -> None:
    within = (25, 2400)
    assert next_rate([step(300, 20)], within) == 600
    assert next_rate([step(300, 20), step(600, 150)], within) is None
    assert ceiling([step(300, 20), step(600, 40), step(1200, 150)]) == 600
    assert next_rate([step(300, 400)], within) == 150
    assert next_rate([step(300, 400), step(150, 90)], within) is None
    assert ceiling([step(300, 400), step(150, 90)]) == 150
    assert ceiling([step(300, 20, undelivered=3)]) is None  # a loss fails a step however fast
    assert next_rate([step(2400, 20)], within) is None
    assert next_rate([step(25, 400)], within) is None
