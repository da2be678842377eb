"""`kubectl exchange`: the platform's Markets from kubectl (installed as `kubectl-exchange`).

kubectl exchange markets [-A]       each Market: phase, readiness, input lag, last trade,
                                    snapshot time, lease token and holder (the engine Pod)
kubectl exchange halt MARKET        stop trading (cancels still work; the book is kept)
kubectl exchange resume MARKET      trade again
kubectl exchange close MARKET --yes delete the Market: halt, cancel every order (funds
                                    unlocked), remove its engine, keep or drop its history
kubectl exchange why MARKET         why it is not Ready: its conditions, its Deployments'
                                    and its recent warning events

It logs in as kubectl does, from KUBECONFIG or ~/.kube/config (its current context and that
context's namespace; -n overrides). Everything goes through the API server, with the rights
of the kubeconfig's user: reading Markets, patching them (halt, resume), deleting them.
"""

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import kopf

from xch.market import API_GROUP, API_VERSION, Trading
from xch_operator.crd import PLURAL
from xch_operator.kube import KubeClient, KubeError, resource_path
from xch_operator.status import READY_CONDITION

COLUMNS = ("NAME", "PHASE", "READY", "LAG", "LAST TRADE", "SNAPSHOT", "LEASE", "HOLDER",
           "REASON")  # fmt: skip
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"


class Failed(Exception):
    """What the user is told before exit status 1."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kubectl exchange", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    top.add_argument("-n", "--namespace", help="the Markets' namespace (default: the context's)")
    commands = top.add_subparsers(dest="command", required=True)
    markets = commands.add_parser("markets", help="each Market: phase, readiness, lag, last trade")
    markets.add_argument("-A", "--all-namespaces", action="store_true")
    for name, what in (("halt", "stop trading"), ("resume", "trade again"),
                       ("why", "why a Market is not Ready")):  # fmt: skip
        commands.add_parser(name, help=what).add_argument("market")
    close = commands.add_parser("close", help="delete a Market: close it and remove its engine")
    close.add_argument("market")
    close.add_argument("--yes", action="store_true", help="yes, close it (orders are cancelled)")
    return top


def market_path(namespace: str, name: str | None = None) -> str:
    return resource_path(GROUP_VERSION, PLURAL, namespace, name)


def condition(market: dict[str, Any], kind: str) -> dict[str, Any]:
    for found in (market.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return {}


def market_row(market: dict[str, Any], with_namespace: bool) -> tuple[str, ...]:
    status = market.get("status") or {}
    name = market["metadata"]["name"]
    if with_namespace:
        name = f"{market['metadata']['namespace']}/{name}"
    lag, token = status.get("inputLag"), status.get("leaseToken")
    return (
        name,
        status.get("phase", "-"),
        condition(market, READY_CONDITION).get("status", "Unknown"),
        "-" if lag is None else str(lag),
        status.get("lastTradeTime") or "never",
        status.get("snapshotTime") or "none",
        "free" if token is None else str(token),
        status.get("leaseHolder") or "-",
        status.get("phaseReason", ""),
    )


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows)  # fmt: skip
    return "\n".join(line.rstrip() for line in lines)


async def markets(kube: KubeClient, namespace: str, everywhere: bool) -> str:
    listed = await kube.get(market_path("" if everywhere else namespace))
    items = sorted((listed or {}).get("items") or [],
                   key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))  # fmt: skip
    if not items:
        return "no Markets" + ("" if everywhere else f" in namespace {namespace}")
    return table([COLUMNS, *(market_row(market, everywhere) for market in items)])


async def set_trading(kube: KubeClient, namespace: str, name: str, trading: Trading) -> str:
    patched = await kube.merge_patch(
        market_path(namespace, name), {"spec": {"trading": trading.value}}
    )
    if patched is None:
        raise Failed(f"no Market {name} in namespace {namespace}")
    return f"market {name}: trading {trading.value} (the engine applies it in a moment)"


async def close(kube: KubeClient, namespace: str, name: str, confirmed: bool) -> str:
    if not confirmed:
        raise Failed(
            f"closing {name} cancels every open order and removes its engine; "
            "run again with --yes to close it"
        )
    if await kube.get(market_path(namespace, name)) is None:
        raise Failed(f"no Market {name} in namespace {namespace}")
    await kube.delete(market_path(namespace, name))
    return (
        f"market {name}: closing (halt, cancel every order, remove its engine); "
        f"`kubectl exchange why {name}` says what it waits for"
    )


async def why(kube: KubeClient, namespace: str, name: str) -> str:
    market = await kube.get(market_path(namespace, name))
    if market is None:
        raise Failed(f"no Market {name} in namespace {namespace}")
    status = market.get("status") or {}
    ready = condition(market, READY_CONDITION)
    lines = [f"market {name}: phase {status.get('phase', '-')} "
             f"({status.get('phaseReason', 'not reconciled yet')})"]  # fmt: skip
    if ready.get("status") == "True":
        return "\n".join([*lines, "Ready: every component is ready"])
    for found in status.get("conditions") or []:
        if found.get("status") != "True":
            lines.append(
                f"  {found['type']}: {found.get('reason', '')}: {found.get('message', '')}"
            )
    lines += await _deployment_lines(kube, namespace, name)
    lines += await _warning_lines(kube, namespace, name)
    return "\n".join(lines)


async def _deployment_lines(kube: KubeClient, namespace: str, name: str) -> list[str]:
    """What the Deployment controller says of the engine and market maker when they are not
    available (an image that does not pull, a quota, a Pod that does not schedule)."""
    lines = []
    for child in (f"engine-{name}", f"mm-{name}"):
        live = await kube.get(resource_path("apps/v1", "deployments", namespace, child))
        for found in ((live or {}).get("status") or {}).get("conditions") or []:
            if found.get("status") != "True" or found.get("type") == "ReplicaFailure":
                lines.append(f"  Deployment {child} {found['type']}: {found.get('message', '')}")
    return lines


async def _warning_lines(kube: KubeClient, namespace: str, name: str) -> list[str]:
    selector = quote(f"involvedObject.name={name},type=Warning")
    events = await kube.get(f"{resource_path('v1', 'events', namespace)}?fieldSelector={selector}")
    items = (events or {}).get("items") or []
    return [
        f"  event {event.get('reason', '')}: {event.get('message', '')}" for event in items[-5:]
    ]


async def run(args: argparse.Namespace, kube: KubeClient, namespace: str) -> str:
    match args.command:
        case "markets":
            return await markets(kube, namespace, args.all_namespaces)
        case "halt":
            return await set_trading(kube, namespace, args.market, Trading.HALTED)
        case "resume":
            return await set_trading(kube, namespace, args.market, Trading.ENABLED)
        case "close":
            return await close(kube, namespace, args.market, args.yes)
        case _:
            return await why(kube, namespace, args.market)


async def main_async(args: argparse.Namespace) -> str:
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    if info is None:
        raise Failed("no kubeconfig: set KUBECONFIG or create ~/.kube/config")
    kube = KubeClient(info)
    try:
        return await run(args, kube, args.namespace or info.default_namespace or "default")
    except KubeError as exc:
        raise Failed(str(exc)) from None
    finally:
        await kube.close()


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        print(asyncio.run(main_async(args)))
    except Failed as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
