"""The book the market maker keeps under the taker simulator's flow, on the real stack
(engine, dbproc, api, `python -m mm`, `python -m mm.traders`): a minute of `make bench-mm`,
held to the same targets (issue 26)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.mm import WARM_UP_SECONDS, maker_trades, report, sample, trading
from tests.harness.engine import EXAMPLE
from tests.harness.processes import http_get
from tests.harness.servers import PostgresServer
from tests.harness.stacks import Stack, running_stack

SECONDS = 60.0


@pytest.fixture(scope="module")
def quality_stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("mm-quality"),
        postgres_server,
        [EXAMPLE],
        database="mm_quality",
        dbproc_env={"EXCHANGE_DBPROC_BLOCK_MS": "50"},
    ) as stack:
        yield stack


def test_a_tight_deep_book_under_a_market_like_flow(quality_stack: Stack) -> None:
    with trading(quality_stack) as maker:
        time.sleep(WARM_UP_SECONDS)
        samples = asyncio.run(sample(quality_stack.api.url, SECONDS))
        status, body = asyncio.run(http_get(maker.health_port, "/metrics"))
    assert status == 200
    metrics = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    figures = report(samples, asyncio.run(maker_trades(quality_stack.database_url)))
    assert all(figures["targets"].values()), figures
    assert figures["maker_trades"]["made"] > 0, "the traders traded with the maker"
    spread = metrics[("mm_spread_bps", ())]
    assert 0 < spread <= 5 * figures["spread_bps"]["configured"], metrics
    for side in ("buy", "sell"):
        depth = metrics[("mm_depth_base", (("side", side), ("within_bps", "100")))]
        assert depth >= 10 * figures["depth_within_1pct_base"]["order_size"], metrics
    assert metrics[("mm_fills_total", ())] > 0 and 0 < metrics[("mm_fill_ratio", ())] <= 1
    assert ("mm_pnl_quote", ()) in metrics and ("mm_inventory", (("asset", "BTC"),)) in metrics
