"""`make bench-operator`: the operator against a real kube-apiserver, Redis and PostgreSQL.

1. one: a Market created (as `kubectl apply` does: one POST) until all its conditions but
   EngineReady are true (no kubelet runs, and its market maker is disabled); target <= 3 s.
2. fifty: 50 Markets created at once until all are provisioned (QueueReady and StorageReady
   true, children applied); target <= 60 s.

The operator runs as a process with its ServiceAccount's token, as in the tests. Writes
bench/results/operator.json.
"""

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.report import RESULTS as RESULTS_DIR
from bench.report import write_result
from storage.migrate import upgrade_sync
from tests.harness.kube import VERSIONS_FILE, start_control_plane
from tests.harness.operator import (
    Kube,
    install_crd,
    market_manifest,
    markets_path,
    operator_identity,
    start_operator,
    watch_namespace,
)
from tests.harness.servers import start_postgres, start_redis

RESULTS = RESULTS_DIR / "operator.json"
NAMESPACE = "bench"
PROVISIONED = ("QueueReady", "StorageReady")
ALL_BUT_ENGINE = ("QueueReady", "StorageReady", "MarketMakerReady")


def _true(market: dict[str, Any], kinds: tuple[str, ...]) -> bool:
    conditions = (market.get("status") or {}).get("conditions") or []
    true = {c["type"] for c in conditions if c["status"] == "True"}
    return set(kinds) <= true


def _market_true(kube: Kube, name: str, kinds: tuple[str, ...]) -> bool:
    return _true(kube.get_market(NAMESPACE, name) or {}, kinds)


def _until(done: Callable[[], bool], timeout: float, poll: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done in {timeout} s")
        time.sleep(poll)


def one_market(kube: Kube, runs: int) -> dict[str, Any]:
    seconds = []
    for run in range(runs):
        name = f"one-{run}"
        started = time.perf_counter()
        kube.create_market(NAMESPACE, market_manifest(name, marketMaker={"enabled": False}))
        _until(partial(_market_true, kube, name, ALL_BUT_ENGINE), 30, 0.01)
        seconds.append(time.perf_counter() - started)
    return {
        "runs": runs,
        "p50_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "target_s": 3,
    }


def fifty_markets(kube: Kube, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    for index in range(count):
        base = {"asset": f"M{index:02d}", "scale": 8}
        kube.create_market(NAMESPACE, market_manifest(f"m{index:02d}-usd", base=base))
    applied = time.perf_counter() - started

    def all_provisioned() -> bool:
        items = kube.rest.request("GET", markets_path(NAMESPACE))["items"]
        fifty = [m for m in items if m["metadata"]["name"].startswith("m")]
        return len(fifty) == count and all(_true(m, PROVISIONED) for m in fifty)

    _until(all_provisioned, 300, 0.1)
    return {
        "markets": count,
        "apply_s": round(applied, 3),
        "all_provisioned_s": round(time.perf_counter() - started, 3),
        "target_s": 60,
    }


def run(workdir: Path, runs: int, count: int) -> dict[str, Any]:
    redis_server = start_redis(workdir / "redis")
    postgres = start_postgres(Path(tempfile.mkdtemp(prefix="xch-pg-")))
    plane = start_control_plane(workdir / "kube")
    operator = None
    try:
        upgrade_sync(postgres.url)
        kube = Kube(plane.admin())
        install_crd(kube)
        kubeconfig = operator_identity(plane, kube)
        watch_namespace(kube, NAMESPACE)
        operator = start_operator(kubeconfig, NAMESPACE, redis_server.url, postgres.url, workdir)
        return {
            "benchmark": "operator",
            "control_plane": VERSIONS_FILE.read_text().strip(),
            "one_market_to_conditions": one_market(kube, runs),
            "markets_at_once_to_provisioned": fifty_markets(kube, count),
        }
    finally:
        if operator is not None:
            operator.terminate()
        plane.stop()
        postgres.stop()
        shutil.rmtree(postgres.base_dir, ignore_errors=True)
        redis_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="single-Market runs")
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xch-bench-operator-") as workdir:
        result = run(Path(workdir), args.runs, args.markets)
    write_result(result, args.output)


if __name__ == "__main__":
    main()
