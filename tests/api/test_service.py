"""The service around the routes: limits, request ids, CORS, health, metrics, docs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio

from api.errors import ApiError
from api.ratelimit import RateLimiter
from tests.harness.api import ApiProcess, signup
from tests.harness.stacks import Stack


@pytest.fixture
def strict_api(stack: Stack, tmp_path: Path) -> Iterator[ApiProcess]:
    """A second api process on the same stack, with a limit of 5 requests per 10 s a user."""
    api = ApiProcess(
        stack.redis_url,
        stack.database_url,
        tmp_path / "strict-api.log",
        env={
            "EXCHANGE_API_RATE_LIMIT_USER": "5",
            "EXCHANGE_API_RATE_LIMIT_WINDOW_SECONDS": "10",
        },
    )
    api.start()
    try:
        api.wait_ready_blocking()
        yield api
    finally:
        api.terminate()


async def test_per_user_rate_limit_with_retry_after(strict_api: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=strict_api.url) as http:
        trader = await signup(http)
        answers = [await trader.get("/api/v1/balances") for _ in range(7)]
        assert [a.status_code for a in answers].count(200) <= 5
        limited = answers[-1]
        assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
        # Another user is not limited by this one.
        assert (await (await signup(http)).get("/api/v1/balances")).status_code == 200


async def test_ip_limiter_counts_per_window(stack: Stack) -> None:
    client = redis.asyncio.Redis.from_url(stack.redis_url)
    try:
        limiter = RateLimiter(client, window_seconds=60)
        for _ in range(3):
            await limiter.hit(("ip", "203.0.113.9", 3))
        with pytest.raises(ApiError) as refused:
            await limiter.hit(("ip", "203.0.113.9", 3))
        assert refused.value.status == 429 and refused.value.headers is not None
        assert await limiter.hit(("ip", "203.0.113.10", 3), claim="xch:test", claim_ms=1000)
        assert not await limiter.hit(claim="xch:test", claim_ms=1000)
    finally:
        await client.aclose()


async def test_limiter_counters_and_claims_expire(stack: Stack) -> None:
    """One Lua call counts, sets each counter's expiry once, and claims."""
    client = redis.asyncio.Redis.from_url(stack.redis_url)
    try:
        limiter = RateLimiter(client, window_seconds=3600)
        counters = (("ip", "203.0.113.20", 10), ("user", "expiry-test", 10))
        assert await limiter.hit(*counters, claim="xch:test-expiry", claim_ms=5000)
        assert not await limiter.hit(*counters, claim="xch:test-expiry", claim_ms=5000)
        for kind, who, _ in counters:
            [key] = await client.keys(f"xch:rl:{kind}:{who}:*")
            assert await client.get(key) == b"2"
            assert 0 < await client.ttl(key) <= 3601
        assert 0 < await client.pttl("xch:test-expiry") <= 5000
    finally:
        await client.aclose()


async def test_limiter_draws_a_sequence_number_in_the_same_call(stack: Stack) -> None:
    """A Binance order's number comes with the limiter's verdict, with or without a claim;
    a replayed claim still draws one (numbers may go unused, never repeat)."""
    client = redis.asyncio.Redis.from_url(stack.redis_url)
    try:
        limiter = RateLimiter(client, window_seconds=60)
        counter = ("user", "sequence-test", 10)
        sequence = "xch:test-sequence"
        first = await limiter.hit_numbered(
            counter, claim="xch:test-seq", claim_ms=1000, sequence=sequence
        )
        # Numbers have a clock floor (docs/storage.md, "Redis rollback"): each is above the last.
        assert first[0] is True and first[1] > 0
        again = await limiter.hit_numbered(
            counter, claim="xch:test-seq", claim_ms=1000, sequence=sequence
        )
        assert again[0] is False and again[1] > first[1]
        third = await limiter.hit_numbered(counter, sequence=sequence)
        assert third[0] is True and third[1] > again[1]
        assert await limiter.hit_numbered(counter) == (True, 0)
        [key] = await client.keys("xch:rl:user:sequence-test:*")
        assert await client.get(key) == b"4"
    finally:
        await client.aclose()


async def test_request_id_and_body_limit(http: httpx.AsyncClient) -> None:
    echoed = await http.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    assert len((await http.get("/healthz")).headers["x-request-id"]) == 16
    huge = await http.post("/api/v1/signup", content=b"x" * 20_000)
    assert huge.status_code == 413 and huge.json()["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 1000

    streamed = await http.post(
        "/api/v1/signup", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_cors_health_metrics_docs(http: httpx.AsyncClient) -> None:
    preflight = await http.options(
        "/api/v1/order",
        headers={
            "Origin": "http://127.0.0.1:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1:5173"
    foreign = await http.get("/api/v1/markets", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers

    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert (await http.get("/readyz")).json() == {"status": "ready"}
    metrics = (await http.get("/metrics")).text
    assert 'api_requests_total{method="GET",route="/healthz",status="200"}' in metrics
    assert "api_engine_reply_seconds_bucket" in metrics and "api_orders_total" in metrics
    docs = await http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = (await http.get("/openapi.json")).json()
    assert "/api/v1/order" in schema["paths"]
    missing = await http.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    wrong_method = await http.put("/api/v1/markets")
    assert wrong_method.status_code == 405 and set(wrong_method.json()) == {"code", "message"}
