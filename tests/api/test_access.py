"""Client addresses and failed authentication, black-box: real HTTP to `python -m api` on the
stack, from several loopback addresses (127.0.0.0/8 all reach the api), with the default
failure allowances (20 per address, 5 per account) and a per-IP limit of 50 per 10 s.

Each test speaks from its own source address (and, behind the proxy, its own forwarded
ones): the counters live in the stack's Redis, which the module's tests share."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from binance.exceptions import BinanceAPIException
from requests.adapters import HTTPAdapter

from api.errors import ApiError
from api.ratelimit import AuthFailures
from tests.binance.conftest import binance_client
from tests.harness.api import ApiProcess, signed_headers, signup
from tests.harness.stacks import Stack

PROXY = "127.0.0.2"
"""The trusted proxy of `proxied_api`."""
IP_LIMIT = 50
WINDOW = 10
ALLOWED_PER_ADDRESS = 20
ALLOWED_PER_ACCOUNT = 5
PASSWORD = "correct horse battery"


def _api(stack: Stack, directory: Path, **env: str) -> Iterator[ApiProcess]:
    api = ApiProcess(
        stack.redis_url,
        stack.database_url,
        directory / "api.log",
        env={
            "EXCHANGE_API_RATE_LIMIT_IP": str(IP_LIMIT),
            "EXCHANGE_API_RATE_LIMIT_WINDOW_SECONDS": str(WINDOW),
            **env,
        },
    )
    api.start()
    try:
        api.wait_ready_blocking()
        yield api
    finally:
        api.terminate()


@pytest.fixture(scope="module")
def plain_api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """The api as it runs locally: no trusted proxies."""
    yield from _api(stack, tmp_path_factory.mktemp("plain-api"))


@pytest.fixture(scope="module")
def proxied_api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """The api behind a proxy at PROXY, as behind the chart's Ingress."""
    directory = tmp_path_factory.mktemp("proxied-api")
    yield from _api(stack, directory, EXCHANGE_API_TRUSTED_PROXIES=json.dumps([PROXY]))


@asynccontextmanager
async def connected(api: ApiProcess, source: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connections come from `source`."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(base_url=api.url, transport=transport, timeout=10) as http:
        yield http


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def statuses(answers: list[httpx.Response]) -> list[int]:
    return [answer.status_code for answer in answers]


async def api_key(http: httpx.AsyncClient) -> tuple[str, str]:
    trader = await signup(http)
    created = await trader.post("/api/v1/api-keys", {"scopes": ["read", "trade"]})
    assert created.status_code == 201, created.text
    return created.json()["key"], created.json()["secret"]


async def unknown_key_lookups(http: httpx.AsyncClient) -> float:
    """How often this api process looked up an API key PostgreSQL did not have."""
    text = (await http.get("/metrics")).text
    prefix = 'api_key_lookups_total{found="false"} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def assert_throttled(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert 1 <= int(answer.headers["Retry-After"]) <= 900


# ---- 2. client address and rate limits ---------------------------------------------------


async def test_a_forged_forwarded_for_does_not_escape_the_ip_limit(plain_api: ApiProcess) -> None:
    """Locally nothing is a trusted proxy, 127.0.0.1 included (uvicorn's own default would
    trust it): a new X-Forwarded-For on each request is still the same client."""
    async with connected(plain_api, "127.0.0.1") as http:
        answers = [
            await http.get(
                "/api/v1/markets" if i % 2 else "/api/v3/time",
                headers=forwarded(f"198.51.100.{i % 250}, 203.0.113.{i % 250}"),
            )
            for i in range(300)
        ]
    # 50 per 10 s window: at most two windows' worth get through.
    assert statuses(answers).count(429) >= 300 - 2 * IP_LIMIT
    native = next(a for a in answers if a.status_code == 429 and "/api/v1/" in str(a.url))
    assert native.json()["code"] == "rate_limited"
    binance = next(a for a in answers if a.status_code == 429 and "/api/v3/" in str(a.url))
    assert binance.json()["code"] == -1003
    for answer in (native, binance):
        assert 1 <= int(answer.headers["Retry-After"]) <= WINDOW


async def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(
    proxied_api: ApiProcess,
) -> None:
    async with connected(proxied_api, PROXY) as proxy, connected(proxied_api, "127.0.0.3") as other:
        first = [
            await proxy.get("/api/v1/markets", headers=forwarded("203.0.113.1"))
            for _ in range(IP_LIMIT + 10)
        ]
        assert 429 in statuses(first)
        # Another client behind the proxy has its own bucket...
        second = await proxy.get("/api/v3/time", headers=forwarded("203.0.113.2"))
        assert second.status_code == 200, second.text
        # ...and the first one cannot get a new one by naming more hops: the last untrusted
        # hop, the one the proxy appended, is the client.
        renamed = await proxy.get("/api/v1/markets", headers=forwarded("6.6.6.6, 203.0.113.1"))
        assert renamed.status_code == 429
        # Whoever is not the proxy is its own client, whatever it forwards.
        direct = [
            await other.get("/api/v1/markets", headers=forwarded(f"198.51.100.{i}"))
            for i in range(IP_LIMIT + 10)
        ]
        assert 429 in statuses(direct)


# ---- 3. failed authentication --------------------------------------------------------------


async def test_bad_signatures_are_throttled_per_address_and_account(
    plain_api: ApiProcess,
) -> None:
    async with connected(plain_api, "127.0.0.11") as http:
        key, secret = await api_key(http)
        path = "/api/v1/balances"
        bad = {**signed_headers(key, secret, "GET", path), "X-API-SIGNATURE": "0" * 64}
        answers = [await http.get(path, headers=bad) for _ in range(400)]
        # The account's allowance runs out first.
        assert statuses(answers)[:ALLOWED_PER_ACCOUNT] == [401] * ALLOWED_PER_ACCOUNT
        assert set(statuses(answers)[ALLOWED_PER_ACCOUNT:]) == {429}
        assert_throttled(answers[-1])
        assert answers[-1].json()["code"] == "rate_limited"
        # Only failures wait: the key's owner, signing right, is served.
        good = await http.get(path, headers=signed_headers(key, secret, "GET", path))
        assert good.status_code == 200, good.text
    # From any address: the account is waiting.
    async with connected(plain_api, "127.0.0.12") as elsewhere:
        assert_throttled(await elsewhere.get(path, headers=bad))
        # Another account, from there, is refused as before.
        other_key, _ = await api_key(elsewhere)
        wrong = {**signed_headers(other_key, "x", "GET", path)}
        assert (await elsewhere.get(path, headers=wrong)).status_code == 401


async def test_invalid_tokens_are_throttled_per_address(plain_api: ApiProcess) -> None:
    async with connected(plain_api, "127.0.0.13") as http:
        forged = {"Authorization": "Bearer not.a.token"}
        answers = [await http.get("/api/v1/balances", headers=forged) for _ in range(40)]
        assert statuses(answers)[:ALLOWED_PER_ADDRESS] == [401] * ALLOWED_PER_ADDRESS
        assert set(statuses(answers)[ALLOWED_PER_ADDRESS:]) == {429}
        assert_throttled(answers[-1])


async def test_an_unknown_key_is_looked_up_once(plain_api: ApiProcess) -> None:
    async with connected(plain_api, "127.0.0.14") as http:
        before = await unknown_key_lookups(http)
        path = "/api/v1/balances"
        unknown = signed_headers(secrets.token_hex(16), "x", "GET", path)
        answers = [await http.get(path, headers=unknown) for _ in range(400)]
        assert await unknown_key_lookups(http) - before == 1
        assert statuses(answers)[:ALLOWED_PER_ADDRESS] == [401] * ALLOWED_PER_ADDRESS
        assert set(statuses(answers)[ALLOWED_PER_ADDRESS:]) == {429}


async def test_made_up_keys_stop_reaching_postgres(plain_api: ApiProcess) -> None:
    """A new key each time defeats the cache; the address's wait stops the lookups."""
    async with connected(plain_api, "127.0.0.15") as http:
        before = await unknown_key_lookups(http)
        path = "/api/v1/balances"
        started = time.monotonic()
        answers = [
            await http.get(path, headers=signed_headers(secrets.token_hex(16), "x", "GET", path))
            for _ in range(400)
        ]
        lookups = await unknown_key_lookups(http) - before
        # The allowance, then one each time a wait (1, 2, 4, ... s) ends.
        waits_ended = math.ceil(time.monotonic() - started).bit_length()
        assert lookups <= ALLOWED_PER_ADDRESS + 1 + waits_ended
        assert statuses(answers).count(429) >= 400 - lookups


async def test_sign_in_is_throttled_per_account_across_addresses(
    proxied_api: ApiProcess,
) -> None:
    """Guesses at one account's password from a new address each time: past the account's
    allowance it waits, the right password included; other accounts do not."""
    async with connected(proxied_api, PROXY) as http:
        victim = f"{secrets.token_hex(6)}@example.com"
        bystander = f"{secrets.token_hex(6)}@example.com"
        for email in (victim, bystander):
            await signup(http, email)

        async def sign_in(email: str, password: str, address: str) -> httpx.Response:
            body = {"email": email, "password": password}
            return await http.post("/api/v1/signin", json=body, headers=forwarded(address))

        guesses = [
            await sign_in(victim, f"wrong guess {i:04}", f"198.51.100.{i}")
            for i in range(ALLOWED_PER_ACCOUNT + 1)
        ]
        assert statuses(guesses) == [401] * ALLOWED_PER_ACCOUNT + [429]
        waiting = await sign_in(victim, PASSWORD, "198.51.100.200")
        assert_throttled(waiting)
        assert waiting.json()["code"] == "rate_limited"
        # The addresses are not waiting: one failure each.
        assert (await sign_in(bystander, PASSWORD, "198.51.100.1")).status_code == 200
        await asyncio.sleep(int(waiting.headers["Retry-After"]))
        assert (await sign_in(victim, PASSWORD, "198.51.100.201")).status_code == 200


async def test_sign_in_is_throttled_per_address(proxied_api: ApiProcess) -> None:
    """One address guessing at many accounts, one guess each."""
    async with connected(proxied_api, PROXY) as http:
        guesses = [
            await http.post(
                "/api/v1/signin",
                json={"email": f"{secrets.token_hex(6)}@example.com", "password": "wrong guess"},
                headers=forwarded("203.0.113.50"),
            )
            for _ in range(ALLOWED_PER_ADDRESS + 1)
        ]
        assert statuses(guesses) == [401] * ALLOWED_PER_ADDRESS + [429]
        assert_throttled(guesses[-1])


# ---- 3. the same on the Binance API --------------------------------------------------------


class SourceAddress(HTTPAdapter):
    """requests (python-binance's) connecting from `source`."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs, source_address=(self.source, 0))


async def test_bad_refresh_tokens_and_sign_outs_are_throttled_per_address(
    plain_api: ApiProcess,
) -> None:
    async with connected(plain_api, "127.0.0.18") as http:
        forged = {"refresh_token": "not.a.token"}
        answers = [
            await http.post("/api/v1/refresh" if i % 2 else "/api/v1/signout", json=forged)
            for i in range(ALLOWED_PER_ADDRESS + 5)
        ]
        assert statuses(answers) == [401] * ALLOWED_PER_ADDRESS + [429] * 5
        assert_throttled(answers[-1])
        assert answers[-1].json()["code"] == "rate_limited"


async def test_a_spent_refresh_token_is_throttled_per_account(proxied_api: ApiProcess) -> None:
    """A refresh token its owner has used, replayed from a new address each time: past the
    account's allowance it waits; the owner's own refresh still works (only failures wait)."""
    async with connected(proxied_api, PROXY) as http:
        body = {"email": f"{secrets.token_hex(6)}@example.com", "password": PASSWORD}
        created = await http.post("/api/v1/signup", json=body)
        assert created.status_code == 201, created.text
        stolen = {"refresh_token": created.json()["refresh_token"]}
        owned = await http.post("/api/v1/refresh", json=stolen, headers=forwarded("203.0.113.60"))
        assert owned.status_code == 200, owned.text
        replays = [
            await http.post(
                "/api/v1/refresh" if i % 2 else "/api/v1/signout",
                json=stolen,
                headers=forwarded(f"198.51.100.{60 + i}"),
            )
            for i in range(ALLOWED_PER_ACCOUNT + 1)
        ]
        assert statuses(replays) == [401] * ALLOWED_PER_ACCOUNT + [429]
        assert_throttled(replays[-1])
        fresh = {"refresh_token": owned.json()["refresh_token"]}
        again = await http.post("/api/v1/refresh", json=fresh, headers=forwarded("203.0.113.60"))
        assert again.status_code == 200, again.text


async def test_binance_bad_signatures_are_throttled(plain_api: ApiProcess) -> None:
    source = "127.0.0.16"
    async with connected(plain_api, source) as http:
        key, secret = await api_key(http)
        query = f"timestamp={int(time.time() * 1000)}&signature={'0' * 64}"
        answers = [
            await http.get(f"/api/v3/account?{query}", headers={"X-MBX-APIKEY": key})
            for _ in range(ALLOWED_PER_ACCOUNT + 5)
        ]
        codes = [answer.json()["code"] for answer in answers]
        assert codes == [-1022] * ALLOWED_PER_ACCOUNT + [-1003] * 5
        assert statuses(answers) == [400] * ALLOWED_PER_ACCOUNT + [429] * 5
        assert_throttled(answers[-1])
        # python-binance sees Binance's answer to a client that must back off.
        client = binance_client(plain_api.url, key, "not the secret")
        client.session.mount("http://", SourceAddress(source))
        try:
            with pytest.raises(BinanceAPIException) as refused:
                await asyncio.to_thread(client.get_account)
        finally:
            client.close_connection()
        assert refused.value.status_code == 429 and refused.value.code == -1003
        # Signed right, the key's owner is served.
        client = binance_client(plain_api.url, key, secret)
        client.session.mount("http://", SourceAddress(source))
        try:
            assert "balances" in await asyncio.to_thread(client.get_account)
        finally:
            client.close_connection()


async def test_binance_unknown_keys_are_throttled(plain_api: ApiProcess) -> None:
    async with connected(plain_api, "127.0.0.17") as http:
        before = await unknown_key_lookups(http)
        unknown = {"X-MBX-APIKEY": secrets.token_hex(16)}
        answers = [
            await http.post("/api/v3/userDataStream", headers=unknown)
            for _ in range(ALLOWED_PER_ADDRESS + 5)
        ]
        codes = [answer.json()["code"] for answer in answers]
        assert codes == [-2015] * ALLOWED_PER_ADDRESS + [-1003] * 5
        assert statuses(answers) == [401] * ALLOWED_PER_ADDRESS + [429] * 5
        assert_throttled(answers[-1])
        assert await unknown_key_lookups(http) - before == 1


async def test_waits_double_and_are_remembered(stack: Stack) -> None:
    """The back-off itself, against the stack's Redis: 1 s past the allowance, then twice as
    long each time, capped; the count outlives the wait by the memory."""
    client = redis.asyncio.Redis.from_url(stack.redis_url)
    try:
        failures = AuthFailures(client, memory_seconds=60, longest_seconds=4)
        subject = ("ip", "192.0.2.77", 2)
        await failures.failed(subject)
        await failures.failed(subject)
        await failures.check(subject)
        waits = []
        for _ in range(4):
            with pytest.raises(ApiError) as refused:
                await failures.failed(subject)
            assert refused.value.status == 429 and refused.value.headers is not None
            waits.append(int(refused.value.headers["Retry-After"]))
        assert waits == [1, 2, 4, 4]
        with pytest.raises(ApiError):
            await failures.check(subject)
        with pytest.raises(ApiError):
            failures.check_here("ip", "192.0.2.77")
        failures.check_here("ip", "192.0.2.78")
        assert 60_000 < await client.pttl("xch:authfail:ip:192.0.2.77") <= 64_000
    finally:
        await client.aclose()
