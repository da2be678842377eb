"""`exchange`: run the exchange locally and look after it.

exchange up                       Redis, PostgreSQL, migrations, the example markets, and
                                  every component under a supervisor; prints where to go
exchange down                     stop everything (data stays in the state directory)
exchange status                   each component's health, engine lag, last trade, and
                                  each market maker's spread, depth, inventory and P&L
exchange markets                  the markets and their trading state
exchange market apply -f FILE     add or change a market while the stack runs
exchange market delete NAME       halt, close (funds unlocked) and remove a market
exchange admin grant|revoke EMAIL make an account an admin (deposits, withdrawals) or not
exchange bench                    run the benchmarks and print their figures
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from api import admin
from launcher import markets, servers
from launcher.config import LocalConfig
from mm.client import ApiClient, ApiError
from runtime.redis_client import redis_client
from storage.migrate import upgrade
from xch import keys
from xch.market import Market
from xch_operator import observe

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
BENCH_RESULTS = servers.ROOT / "bench" / "results"
BENCHMARKS = ("engine", "engine_service", "dbproc", "api", "ws", "operator")


def _color(text: str, code: str) -> str:
    return f"\033[{code}m{text}\033[0m" if sys.stdout.isatty() else text


def _line(name: str, state: str, detail: str = "", ok: bool = True) -> None:
    mark = _color("●", "32" if ok else "31")
    print(f"  {mark} {name:<18} {state:<10} {detail}", flush=True)


def _healthy(url: str) -> bool:
    if not url:
        return True
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# ---- up / down ---------------------------------------------------------------------------


def _supervisor_pidfile(config: LocalConfig) -> Path:
    return config.run_dir / "supervisor.pid"


def supervisor_pid(config: LocalConfig) -> int | None:
    try:
        pid = int(_supervisor_pidfile(config).read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _start_supervisor(config: LocalConfig) -> int:
    pid = supervisor_pid(config)
    if pid is not None:
        return pid
    config.run_dir.mkdir(parents=True, exist_ok=True)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    with (config.log_dir / "supervisor.log").open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "launcher.supervisor"],
            cwd=servers.ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _supervisor_pidfile(config).write_text(str(process.pid))
    return process.pid


async def _provision_examples(config: LocalConfig) -> list[str]:
    client = redis_client(config.redis_url("operator"))
    try:
        names = []
        for path in sorted(markets.EXAMPLES.glob("*.yaml")):
            market = markets.read_manifest(path)
            await markets.apply(client, config.database_url, market)
            names.append(market.name)
        return names
    finally:
        await client.aclose()


def _wait_healthy(urls: Sequence[str], timeout: float) -> list[str]:
    """The URLs still not healthy after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    waiting = list(urls)
    while waiting and time.monotonic() < deadline:
        waiting = [url for url in waiting if not _healthy(url)]
        time.sleep(0.25)
    return waiting


def _health_urls(config: LocalConfig, timeout: float = 30) -> list[str]:
    """Every supervised component's health URL, once the supervisor has started them all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervised = _supervised(config)
        if any(name.startswith("engine ") for name in supervised):
            return [info["health"] for info in supervised.values() if info["health"]]
        time.sleep(0.2)
    raise servers.StackError("the supervisor started nothing; see its log")


async def _demo_account(config: LocalConfig) -> None:
    client = ApiClient(config.api_url)
    try:
        await client.sign_in_or_up(DEMO_EMAIL, DEMO_PASSWORD)
        balances = await client.request("GET", "/balances")
        if not any(row["free"] != "0" for row in balances):
            for market in await client.request("GET", "/markets"):
                for asset, amount in ((market["base"], "10"), (market["quote"], "100000")):
                    try:
                        await client.request(
                            "POST", "/faucet", body={"asset": asset, "amount": amount}
                        )
                    except ApiError:
                        continue
    finally:
        await client.aclose()


def up(config: LocalConfig) -> int:
    print(_color("Starting the exchange", "1"), flush=True)
    for line in servers.up(config.layout, config.redis_users()):
        print(f"  {line}", flush=True)
    asyncio.run(upgrade(config.database_url))
    names = asyncio.run(_provision_examples(config))
    _start_supervisor(config)
    slow = _wait_healthy(_health_urls(config), timeout=180)
    if slow:
        print(f"not healthy yet: {', '.join(slow)}; see `exchange status`", flush=True)
    else:
        asyncio.run(_demo_account(config))
    status(config)
    print(
        f"\n  Open {_color(config.frontend_url, '1;36')}   API docs {config.api_url}/docs"
        f"\n  WebSocket {config.ws_url}   markets: {', '.join(names)}"
        f"\n  Demo account: {DEMO_EMAIL} / {DEMO_PASSWORD}"
        f"\n  Logs in {config.log_dir}; `exchange down` stops everything, data stays.",
        flush=True,
    )
    return 1 if slow else 0


def down(config: LocalConfig) -> int:
    pid = supervisor_pid(config)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while supervisor_pid(config) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        _supervisor_pidfile(config).unlink(missing_ok=True)
        print("stopped the components", flush=True)
    servers.down(config.layout)
    return 0


# ---- status and markets ------------------------------------------------------------------


def _supervised(config: LocalConfig) -> dict[str, dict[str, Any]]:
    path = config.run_dir / "supervisor.json"
    if supervisor_pid(config) is None or not path.exists():
        return {}
    state: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return state


async def _market_lines(config: LocalConfig) -> list[tuple[str, str, str, bool]]:
    client = redis_client(config.redis_url("operator"))
    try:
        entries = await client.hgetall(keys.MARKETS)
        rows = []
        markets = [Market.from_registry_entry(entry) for entry in entries.values()]
        last_trades = await _last_trades(config, [market.name for market in markets])
        for market in markets:
            lag = await observe.input_lag(client, market.name)
            detail = f"lag {lag} commands; last trade {last_trades.get(market.name, 'none')}"
            rows.append((market.name, market.spec.trading.value, detail, lag < observe.LAG_CAP))
        return sorted(rows)
    finally:
        await client.aclose()


async def _last_trades(config: LocalConfig, markets: list[str]) -> dict[str, str]:
    """Each market's newest trade."""
    try:
        conn = await asyncpg.connect(config.database_url)
    except (OSError, asyncpg.PostgresError):
        return {}
    try:
        last = {}
        for market in markets:
            row = await observe.last_trade(conn, market)
            if row is not None:
                last[market] = f"{row['price']:f} at {row['ts']:%H:%M:%S}"
        return last
    finally:
        await conn.close()


def status(config: LocalConfig) -> int:
    print(_color("Servers", "1"), flush=True)
    for line in servers.status_lines(config.layout):
        name, _, state = line.partition(" ")
        _line(name, state.strip(), ok="running" in state)
    print(_color("Components", "1"), flush=True)
    supervised = _supervised(config)
    if not supervised:
        _line("supervisor", "stopped", "run `exchange up`", ok=False)
    for name, info in supervised.items():
        healthy = info["alive"] and _healthy(info["health"])
        state = "healthy" if healthy else ("starting" if info["alive"] else "restarting")
        restarts = f"restarts {info['restarts']}  " if info["restarts"] else ""
        _line(name, state, f"{restarts}log {info['log']}", ok=healthy)
    makers = {n: i["health"] for n, i in supervised.items() if n.startswith("mm ") and i["alive"]}
    if makers:
        print(_color("Market makers", "1"), flush=True)
    for name, health in makers.items():
        summary = _maker_summary(health.removesuffix("/readyz") + "/metrics")
        _line(
            name.removeprefix("mm "),
            "quoting" if summary else "no metrics",
            summary,
            ok=bool(summary),
        )
    if servers.redis_pid(config.layout):
        print(_color("Markets", "1"), flush=True)
        for name, trading, detail, ok in asyncio.run(_market_lines(config)):
            _line(name, trading, detail, ok=ok)
    return 0


def _maker_summary(url: str) -> str:
    """A market maker's spread, depth within 1% of the mid, inventory, fill ratio and P&L,
    from its /metrics ("" if it does not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return ""
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return values.get((name, tuple(sorted(labels.items()))), float("nan"))

    inventory = " ".join(
        f"{amount:g} {dict(labels)['asset']}"
        for (name, labels), amount in values.items()
        if name == "mm_inventory"
    )
    return (
        f"spread {value('mm_spread_bps'):.1f} bps  "
        f"depth ±1% {value('mm_depth_base', side='buy', within_bps='100'):g}"
        f"/{value('mm_depth_base', side='sell', within_bps='100'):g}  "
        f"holds {inventory}  fill ratio {value('mm_fill_ratio'):.1%}  "
        f"P&L {value('mm_pnl_quote'):+.2f}"
    )


def list_markets(config: LocalConfig) -> int:
    for name, trading, detail, ok in asyncio.run(_market_lines(config)):
        _line(name, trading, detail, ok=ok)
    return 0


def market_apply(config: LocalConfig, path: Path) -> int:
    market = markets.read_manifest(path)

    async def run() -> None:
        client = redis_client(config.redis_url("operator"))
        try:
            await markets.apply(client, config.database_url, market)
        finally:
            await client.aclose()

    asyncio.run(run())
    print(f"market {market.name} applied; the supervisor starts its engine", flush=True)
    return 0


def market_delete(config: LocalConfig, name: str) -> int:
    async def run() -> None:
        client = redis_client(config.redis_url("operator"))
        try:
            await markets.delete(client, config.database_url, name)
        finally:
            await client.aclose()

    asyncio.run(run())
    print(f"market {name} closed and removed", flush=True)
    return 0


def admin_set(config: LocalConfig, action: str, email: str) -> int:
    """`python -m api.admin` against the local database: the only way to an admin account."""
    return admin.main([action, email, "--database-url", config.database_url])


# ---- bench -------------------------------------------------------------------------------


def bench() -> int:
    failed = []
    for name in BENCHMARKS:
        if not (servers.ROOT / "bench" / f"{name}.py").exists():
            continue
        print(_color(f"bench {name}", "1"), flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=servers.ROOT).returncode:
            failed.append(name)
    print(_color("\nResults (bench/results/*.json)", "1"))
    for path in sorted(BENCH_RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        figures = {k: v for k, v in result.items() if isinstance(v, int | float | str)}
        shown = ", ".join(f"{k} {v}" for k, v in list(figures.items())[:6])
        print(f"  {path.stem:<16} {shown}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


# ---- the command ---------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="exchange", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True)
    for name in ("up", "down", "status", "markets", "bench"):
        commands.add_parser(name)
    market = commands.add_parser("market").add_subparsers(dest="action", required=True)
    market.add_parser("apply").add_argument("-f", "--file", type=Path, required=True)
    market.add_parser("delete").add_argument("name")
    account = commands.add_parser("admin")
    account.add_argument("action", choices=("grant", "revoke"))
    account.add_argument("email")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = LocalConfig.from_env()
        if args.command == "up":
            return up(config)
        if args.command == "down":
            return down(config)
        if args.command == "status":
            return status(config)
        if args.command == "markets":
            return list_markets(config)
        if args.command == "bench":
            return bench()
        if args.command == "admin":
            return admin_set(config, args.action, args.email)
        if args.action == "apply":
            return market_apply(config, args.file)
        return market_delete(config, args.name)
    except (servers.StackError, LookupError, ValueError, TimeoutError) as error:
        print(f"exchange: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
