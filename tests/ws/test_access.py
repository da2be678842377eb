"""Failed authentication and floods on the WebSocket, black-box: a real ws process, clients
connecting from several loopback addresses (127.0.0.0/8 all reach it). Refused credentials
count against the client's address in the api's counters (runtime.auth_failures): past the
allowance (20) each refusal is answered RATE_LIMITED (code 10) until the wait ends."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from websockets.exceptions import ConnectionClosed

from api.errors import ApiError
from api.ratelimit import AuthFailures
from tests.harness.ws import WsClient, WsProcess
from tests.ws.test_protocol import SECRET, register
from xch import keys
from xch.auth import issue_token

ALLOWED_PER_ADDRESS = 20
AUTH_FAILED, RATE_LIMITED = 7, 10


async def from_address(url: str, source: str, forwarded_for: str = "") -> WsClient:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    return await WsClient.open(url, local_addr=(source, 0), additional_headers=headers)


async def bad_auth(url: str, source: str, forwarded_for: str = "") -> int:
    """The error code of a bad token on a new connection."""
    client = await from_address(url, source, forwarded_for)
    try:
        code: int = (await client.request("AUTH", {"token": "not.a.token"}))["error"]["code"]
        return code
    finally:
        await client.close()


def wait_of(reply: dict[str, Any]) -> int:
    """The seconds a RATE_LIMITED answer says to wait."""
    found = re.search(r"wait (\d+) s", reply["error"]["msg"])
    assert found, reply
    return int(found[1])


@pytest.fixture
async def server(
    redis_client: redis.asyncio.Redis, manifest: Path, ws_servers: Callable[..., WsProcess]
) -> WsProcess:
    await register(redis_client, manifest)
    await redis_client.set(keys.listen_key("lk-alice"), "alice", ex=60)
    started = ws_servers({"EXCHANGE_JWT_SECRET": SECRET})
    await started.wait_ready()
    return started


async def test_bad_tokens_and_listen_keys_back_off_per_address(
    redis_client: redis.asyncio.Redis, server: WsProcess
) -> None:
    client = await from_address(server.url, "127.0.0.21")
    other = await from_address(server.url, "127.0.0.22")
    try:
        codes = []
        for attempt in range(ALLOWED_PER_ADDRESS + 3):
            params = {"token": "not.a.token"} if attempt % 2 else {"listen_key": "made-up"}
            codes.append((await client.request("AUTH", params))["error"]["code"])
        assert codes == [AUTH_FAILED] * ALLOWED_PER_ADDRESS + [RATE_LIMITED] * 3
        reply = await client.request("AUTH", {"listen_key": "made-up"})
        assert reply["error"]["code"] == RATE_LIMITED and 1 <= wait_of(reply) <= 900
        # A new connection is the same address, and so waits as well.
        again = await from_address(server.url, "127.0.0.21")
        try:
            reply = await again.request("AUTH", {"token": "not.a.token"})
            assert reply["error"]["code"] == RATE_LIMITED
        finally:
            await again.close()
        # Only failures wait: a good credential from the waiting address is served.
        reply = await client.request("AUTH", {"token": issue_token("alice", "access", SECRET, 60)})
        assert reply["result"] == {"user": "alice"}
        assert (await client.request("AUTH", {"listen_key": "lk-alice"}))["result"]
        # Another address is refused as before.
        reply = await other.request("AUTH", {"listen_key": "made-up"})
        assert reply["error"]["code"] == AUTH_FAILED
    finally:
        await client.close()
        await other.close()
    # In the api's counters, under the api's names.
    assert (
        await redis_client.get("xch:authfail:ip:127.0.0.21")
        == str(ALLOWED_PER_ADDRESS + 5).encode()
    )
    assert await redis_client.pttl("xch:authwait:ip:127.0.0.21") > 0
    metrics = await server.metrics()
    assert metrics['ws_auth_failures_total{outcome="throttled"}'] == 5
    assert metrics['ws_auth_failures_total{outcome="refused"}'] == ALLOWED_PER_ADDRESS + 1


async def test_the_allowance_is_shared_with_the_api(
    redis_client: redis.asyncio.Redis, server: WsProcess
) -> None:
    """Failures the api counted for an address leave the ws none to spend."""
    api_failures = AuthFailures(redis_client, memory_seconds=600, longest_seconds=900)
    for _ in range(ALLOWED_PER_ADDRESS):
        await api_failures.failed(("ip", "127.0.0.23", ALLOWED_PER_ADDRESS))
    client = await from_address(server.url, "127.0.0.23")
    try:
        reply = await client.request("AUTH", {"token": "not.a.token"})
        assert reply["error"]["code"] == RATE_LIMITED
    finally:
        await client.close()
    # And the api sees the ws's failures: the address waits there too.
    with pytest.raises(ApiError) as refused:
        await api_failures.check(("ip", "127.0.0.23", ALLOWED_PER_ADDRESS))
    assert refused.value.status == 429


async def test_a_forged_forwarded_for_does_not_escape_the_count(server: WsProcess) -> None:
    """Locally nothing is a trusted proxy, 127.0.0.1 included (uvicorn's own default would
    trust it): a new X-Forwarded-For on each connection is still the same client."""
    codes = [
        await bad_auth(server.url, "127.0.0.1", f"198.51.100.{i}, 203.0.113.{i}")
        for i in range(ALLOWED_PER_ADDRESS + 2)
    ]
    assert codes == [AUTH_FAILED] * ALLOWED_PER_ADDRESS + [RATE_LIMITED] * 2


async def test_behind_a_trusted_proxy_each_client_has_its_own_count(
    redis_client: redis.asyncio.Redis, manifest: Path, ws_servers: Callable[..., WsProcess]
) -> None:
    await register(redis_client, manifest)
    proxied = ws_servers(
        {"EXCHANGE_JWT_SECRET": SECRET, "EXCHANGE_WS_TRUSTED_PROXIES": '["127.0.0.2"]'}
    )
    await proxied.wait_ready()
    url = proxied.url
    codes = [await bad_auth(url, "127.0.0.2", "203.0.113.1") for _ in range(ALLOWED_PER_ADDRESS)]
    assert codes == [AUTH_FAILED] * ALLOWED_PER_ADDRESS
    assert await bad_auth(url, "127.0.0.2", "203.0.113.1") == RATE_LIMITED
    # Another client behind the proxy has its own count...
    assert await bad_auth(url, "127.0.0.2", "203.0.113.2") == AUTH_FAILED
    # ...and the first cannot get a new one by naming more hops: the last untrusted hop,
    # the one the proxy appended, is the client.
    assert await bad_auth(url, "127.0.0.2", "6.6.6.6, 203.0.113.1") == RATE_LIMITED
    # Whoever is not the proxy is its own client, whatever it forwards.
    codes = [
        await bad_auth(url, "127.0.0.3", f"198.51.100.{i}") for i in range(ALLOWED_PER_ADDRESS + 1)
    ]
    assert codes[-1] == RATE_LIMITED
    assert await redis_client.exists("xch:authfail:ip:203.0.113.1", "xch:authfail:ip:127.0.0.3")
    assert not await redis_client.exists("xch:authfail:ip:127.0.0.2")


async def test_binance_listen_keys_back_off(server: WsProcess) -> None:
    """Made-up listen keys on a Binance raw connection: in SUBSCRIBE, and in the URL."""
    base = server.url.removesuffix("/ws")
    client = await from_address(f"{base}/ws/0", "127.0.0.24")
    try:
        messages = []
        for request_id in range(ALLOWED_PER_ADDRESS + 2):
            made_up = secrets.token_hex(30)
            await client.send({"method": "SUBSCRIBE", "params": [made_up], "id": request_id})
            messages.append((await client.recv())["msg"])
        assert set(messages[:ALLOWED_PER_ADDRESS]) == {
            "Invalid request: unknown or expired listen key"
        }
        for message in messages[ALLOWED_PER_ADDRESS:]:
            assert message.startswith("Invalid request: too many failed authentications")
    finally:
        await client.close()
    by_url = await from_address(f"{base}/ws/{secrets.token_hex(30)}", "127.0.0.24")
    try:
        assert (await by_url.recv())["msg"].startswith(
            "Invalid request: too many failed authentications"
        )
    finally:
        await by_url.close()


async def test_a_flooding_client_is_cut_off(
    redis_client: redis.asyncio.Redis, manifest: Path, ws_servers: Callable[..., WsProcess]
) -> None:
    """More messages within a second than `max_messages_per_second`: the connection is
    closed (1008) instead of each being answered."""
    await register(redis_client, manifest)
    server = ws_servers({"EXCHANGE_WS_MAX_MESSAGES_PER_SECOND": "10"})
    await server.wait_ready()
    client = await WsClient.open(server.url)
    answers: list[dict[str, Any]] = []
    try:
        with contextlib.suppress(ConnectionClosed):  # closed while sending: read it all
            for request_id in range(100):
                await client.send({"method": "PING", "id": request_id})
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                answers.append(await client.recv(timeout=5))
    finally:
        await client.close()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert answers[-1] == {"event": "disconnect", "reason": "too_many_requests"}
    assert 10 <= len(answers) - 1 <= 20  # the first second's, perhaps the next one's
    assert (await server.metrics())["ws_flooding_clients_total"] == 1
    # A client within the limit is served.
    polite = await WsClient.open(server.url)
    try:
        for _ in range(5):
            assert (await polite.request("PING"))["result"] == "pong"
    finally:
        await polite.close()
