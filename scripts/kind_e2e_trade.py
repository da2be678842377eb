"""One trade through a running platform, for `make kind-e2e`: two traders sign up and get test
funds from the faucet, one rests a sell, the other buys it; the trade must reach a WebSocket
subscriber of the market's trade stream.

python scripts/kind_e2e_trade.py --api http://127.0.0.1:18000 --ws ws://127.0.0.1:18090/ws
    --market eth-usd
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import urllib.request
from typing import Any

import websockets

API_V1 = "/api/v1"


def call(api: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
    """POST `body` to an /api/v1 endpoint, or GET it without one."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        api + API_V1 + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def trader(api: str, asset: str, amount: str) -> str:
    """A new user with test funds from the faucet: their access token."""
    credentials = {"email": f"e2e-{secrets.token_hex(4)}@example.com", "password": "e2e-password"}
    token: str = call(api, "/signup", credentials)["access_token"]
    call(api, "/faucet", {"asset": asset, "amount": amount}, token)
    return token


async def _first_trade(ws_url: str, market: str, placed: asyncio.Event) -> dict[str, Any]:
    async with websockets.connect(ws_url) as socket:
        await socket.send(
            json.dumps({"method": "SUBSCRIBE", "params": [f"trade@{market}"], "id": 1})
        )
        placed.set()
        while True:
            message = json.loads(await socket.recv())
            data = message.get("data", message)
            if isinstance(data, dict) and data.get("type") == "trade":
                return data


async def main(api: str, ws_url: str, market: str, base: str, quote: str) -> None:
    seller, buyer = trader(api, base, "1"), trader(api, quote, "1000")
    subscribed = asyncio.Event()
    watcher = asyncio.create_task(_first_trade(ws_url, market, subscribed))
    await asyncio.wait_for(subscribed.wait(), 10)
    await asyncio.sleep(0.5)
    order = {"market": market, "type": "limit", "price": "100.00", "quantity": "0.5"}
    call(api, "/order", {**order, "side": "sell"}, seller)
    call(api, "/order", {**order, "side": "buy"}, buyer)
    trade = await asyncio.wait_for(watcher, 30)
    print(f"trade on ws: {trade}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--ws", required=True)
    parser.add_argument("--market", required=True)
    parser.add_argument("--base", default="ETH")
    parser.add_argument("--quote", default="USD")
    arguments = parser.parse_args()
    asyncio.run(
        main(arguments.api, arguments.ws, arguments.market, arguments.base, arguments.quote)
    )
