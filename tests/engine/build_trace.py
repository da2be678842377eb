"""`python -m tests.engine.build_trace`: the property and differential workloads and the
benchmark's, run through whichever engine build this process has (ledger.compiled), written
to stdout as lines: the build, then per run every event (JSON) and the state hash (balances
included) after every command, or every batch of the benchmark's. test_compiled_build.py
runs it once per build and compares the two outputs line by line.
"""

import sys
from collections.abc import Callable

import msgspec

from bench.engine import BATCH, MARKET, funded_session
from bench.workload import standard_workload
from engine import BUILD
from engine.commands import ParsedCommand
from engine.replay import ReplaySession
from engine.snapshot import state_hash
from tests.engine.strategies import BTC_USD, COARSE, Driver, seeded
from xch.schemas import Event

SEEDS = (1, 2, 3, 4)  # as test_properties' seeded runs, which the brute-force matcher checks
LONG = 4_000
BENCH_ORDERS = 20_000

Write = Callable[[str], object]


def trace_seeded(write: Write) -> None:
    for name, case in (("coarse", COARSE), ("btc-usd", BTC_USD)):
        for seed in SEEDS:
            write(f"run {name} seed {seed}\n")
            trace_run(write, Driver(case.rules, batch=seed), seeded(seed, case, LONG))


def trace_run(write: Write, driver: Driver, commands: list[ParsedCommand]) -> None:
    hashes: list[str] = []

    def after(session: ReplaySession, _: ParsedCommand, __: list[Event]) -> None:
        hashes.append(state_hash(session.engine, session.ledger))

    events = driver.run(commands, hook=after)
    encode = msgspec.json.Encoder().encode
    write("".join(encode(event).decode() + "\n" for event in events))
    write("".join(f"hash {digest}\n" for digest in hashes))


def trace_benchmark(write: Write) -> None:
    encode = msgspec.json.Encoder().encode
    workload = standard_workload(BENCH_ORDERS)
    session = funded_session(MARKET.rules(), workload.users)
    write("run benchmark\n")
    for n, command in enumerate(workload.commands):
        session.submit_parsed(command, str(n))
        if n % BATCH == BATCH - 1:
            session.end_batch(str(n))
            events = session.engine.take_events()
            write("".join(encode(event).decode() + "\n" for event in events))
            write(f"hash {state_hash(session.engine, session.ledger)}\n")


def main() -> int:
    write = sys.stdout.write
    write(f"build {BUILD}\n")
    trace_seeded(write)
    trace_benchmark(write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
