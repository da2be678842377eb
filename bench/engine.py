"""`make bench-engine`: the standard workload through one market's engine, in process.

Each operation is what the exchange does for a command: lock funds (the api's rule), match,
emit events, settle them in the reference ledger; depth is flushed every BATCH operations,
as the service does once per batch. The same workload also runs through the minimal
reference engine (bench/reference_engine.py): `ratio` is our throughput over its. `build`
says whether the engine ran compiled (see ledger.compiled). Writes bench/results/engine.json.
"""

import argparse
import gc
import time
from pathlib import Path

from bench.reference_engine import ReferenceEngine
from bench.report import RESULTS as RESULTS_DIR
from bench.report import write_result
from bench.workload import standard_workload
from engine import BUILD
from engine.commands import FundsRequest
from engine.replay import ReplaySession
from xch.market import Market, MarketRules
from xch.schemas import Cancel, Place

RESULTS = RESULTS_DIR / "engine.json"
BATCH = 100
AMPLE = 10**15

MARKET = Market.model_validate(
    {
        "metadata": {"name": "bench"},
        "spec": {
            "base": {"asset": "BTC", "scale": 8},
            "quote": {"asset": "USD", "scale": 6},
            "tickSize": "0.01",
            "lotSize": "0.0001",
            "fees": {"makerBps": 10, "takerBps": 20},
        },
    }
)


def funded_session(rules: MarketRules, users: list[str]) -> ReplaySession:
    session = ReplaySession(rules)
    for user in users:
        session.submit_parsed(FundsRequest(user, rules.base, AMPLE), "0")
        session.submit_parsed(FundsRequest(user, rules.quote, AMPLE), "0")
    session.engine.take_events()
    return session


def run_throughput(
    rules: MarketRules, commands: list[Place | Cancel], users: list[str]
) -> tuple[float, int]:
    session = funded_session(rules, users)
    submit, end_batch, engine = session.submit_parsed, session.end_batch, session.engine
    start = time.perf_counter()
    for n, command in enumerate(commands):
        submit(command, "1")
        if n % BATCH == BATCH - 1:
            end_batch("1")
            engine.out.clear()
    elapsed = time.perf_counter() - start
    return elapsed, len(engine.orders)


def run_reference(commands: list[Place | Cancel]) -> float:
    engine = ReferenceEngine()
    process = engine.process
    start = time.perf_counter()
    for command in commands:
        process(command)
    return time.perf_counter() - start


def run_latency(
    rules: MarketRules, commands: list[Place | Cancel], users: list[str]
) -> tuple[list[int], list[int]]:
    """Nanoseconds per operation, and per depth flush (one per BATCH operations)."""
    session = funded_session(rules, users)
    submit, end_batch, engine = session.submit_parsed, session.end_batch, session.engine
    clock = time.perf_counter_ns
    samples = []
    flushes = []
    for n, command in enumerate(commands):
        t0 = clock()
        submit(command, "1")
        t1 = clock()
        samples.append(t1 - t0)
        if n % BATCH == BATCH - 1:
            end_batch("1")
            engine.out.clear()
            flushes.append(clock() - t1)
    return samples, flushes


def percentile(sorted_values: list[int], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))] / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs; the best counts")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rules = MARKET.rules()
    workload = standard_workload(args.orders)
    commands = workload.commands
    gc.collect()
    gc.freeze()
    runs = [run_throughput(rules, commands, workload.users) for _ in range(args.repeat)]
    best, resting = min(runs)
    reference_best = min(run_reference(commands) for _ in range(args.repeat))
    samples, flushes = (sorted(values) for values in run_latency(rules, commands, workload.users))
    result = {
        "benchmark": "engine",
        "workload": {
            "operations": len(commands),
            "orders": workload.places,
            "cancels": len(commands) - workload.places,
            "users": len(workload.users),
            "depth_flush_every": BATCH,
        },
        "build": BUILD,
        "ops_per_sec": round(len(commands) / best),
        "reference_ops_per_sec": round(len(commands) / reference_best),
        "ratio": round(reference_best / best, 2),
        "runs_seconds": [round(elapsed, 3) for elapsed, _ in runs],
        "p50_us": round(percentile(samples, 0.50), 2),
        "p99_us": round(percentile(samples, 0.99), 2),
        "p999_us": round(percentile(samples, 0.999), 2),
        "depth_flush_p50_us": round(percentile(flushes, 0.50), 2),
        "depth_flush_p99_us": round(percentile(flushes, 0.99), 2),
        "resting_orders_at_end": resting,
    }
    write_result(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
