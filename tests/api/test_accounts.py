"""Accounts, tokens and API keys: who may do what, and how they prove it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio

from tests.harness.api import (
    FORMER_ADMIN_EMAIL,
    JWT_SECRET,
    funded,
    new_admin,
    set_admin,
    signed_headers,
    signup,
)
from tests.harness.stacks import Stack
from xch import keys
from xch.auth import issue_token
from xch.wire import decode_funds_entry


async def test_signup_signin_refresh(http: httpx.AsyncClient) -> None:
    creds = {"email": "Alice.Signup@example.com", "password": "long enough pw"}
    created = await http.post("/api/v1/signup", json=creds)
    assert created.status_code == 201, created.text
    again = await http.post("/api/v1/signup", json={**creds, "email": creds["email"].lower()})
    assert again.status_code == 409 and again.json()["code"] == "email_taken"

    signed_in = await http.post("/api/v1/signin", json=creds)
    assert signed_in.status_code == 200
    tokens = signed_in.json()
    assert tokens["user_id"] == created.json()["user_id"] and tokens["token_type"] == "bearer"
    wrong = await http.post("/api/v1/signin", json={**creds, "password": "not the password"})
    unknown = await http.post("/api/v1/signin", json={**creds, "email": "nobody@example.com"})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "code": "bad_credentials",
            "message": "wrong email or password",
        }
    )

    refreshed = await http.post("/api/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    # A refresh token works once; signing out spends the new one.
    reused = await http.post("/api/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert (
        reused.status_code == 401
        and reused.json()["message"] == "this refresh token was already used"
    )
    newer = refreshed.json()["refresh_token"]
    assert (await http.post("/api/v1/signout", json={"refresh_token": newer})).status_code == 204
    assert (await http.post("/api/v1/refresh", json={"refresh_token": newer})).status_code == 401
    access = refreshed.json()["access_token"]
    me = await http.get("/api/v1/balances", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 200 and me.json() == []
    # An access token is not a refresh token, nor the other way round.
    misuse = await http.post("/api/v1/refresh", json={"refresh_token": tokens["access_token"]})
    assert misuse.status_code == 401
    as_access = await http.get(
        "/api/v1/balances", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
    )
    assert as_access.status_code == 401


async def test_missing_expired_and_forged_tokens(http: httpx.AsyncClient) -> None:
    trader = await signup(http)
    expired = issue_token(trader.user_id, "access", JWT_SECRET, -10)
    forged = issue_token(trader.user_id, "access", "another-secret-of-enough-length-" + "y" * 8, 60)
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": "Bearer not.a.jwt"},
    ):
        response = await http.get("/api/v1/balances", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["code"] == "unauthorized"


async def test_bad_signup_input_is_a_json_422(http: httpx.AsyncClient) -> None:
    for body in (
        {"email": "no-at-sign", "password": "long enough pw"},
        {"email": "a@example.com", "password": "short"},
        {"email": "a@example.com"},
        {"email": "a@example.com", "password": "long enough pw", "extra": 1},
        # PostgreSQL text cannot hold NUL: found by the schemathesis run as a 500.
        {"email": "a\u0000@example.com", "password": "long enough pw"},
    ):
        response = await http.post("/api/v1/signup", json=body)
        assert response.status_code == 422
        assert set(response.json()) == {"code", "message"}
    lone_surrogate = await http.post(
        "/api/v1/signup",
        content=b'{"email": "a\\ud800@example.com", "password": "long enough pw"}',
        headers={"Content-Type": "application/json"},
    )
    assert lone_surrogate.status_code == 422
    broken = await http.post(
        "/api/v1/signup", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422 and broken.json()["code"] == "invalid_request"


async def _key(trader_http: httpx.AsyncClient, token: str, scopes: list[str]) -> dict[str, str]:
    response = await trader_http.post(
        "/api/v1/api-keys",
        json={"label": "bot", "scopes": scopes},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def test_signed_requests(http: httpx.AsyncClient) -> None:
    trader = await funded(http, USD="100")
    key = await _key(http, trader.token, ["read"])
    path = "/api/v1/balances"

    ok = await http.get(path, headers=signed_headers(key["key"], key["secret"], "GET", path))
    assert ok.status_code == 200 and ok.json()[0]["asset"] == "USD"

    # The same signed request again is a replay.
    headers = signed_headers(key["key"], key["secret"], "GET", path)
    assert (await http.get(path, headers=headers)).status_code == 200
    replay = await http.get(path, headers=headers)
    assert replay.status_code == 401 and replay.json()["message"] == "replayed request"

    wrong_secret = signed_headers(key["key"], "0" * 64, "GET", path)
    assert (await http.get(path, headers=wrong_secret)).status_code == 401
    stale = signed_headers(
        key["key"], key["secret"], "GET", path, timestamp=int(time.time() * 1000) - 60_000
    )
    assert (await http.get(path, headers=stale)).status_code == 401
    unknown = signed_headers("f" * 32, key["secret"], "GET", path)
    assert (await http.get(path, headers=unknown)).status_code == 401

    # A read-only key cannot trade; the body is part of what is signed.
    order = orjson.dumps(
        {"market": "btc-usd", "side": "buy", "type": "limit", "price": "1.00", "quantity": "1"}
    )
    signed = signed_headers(key["key"], key["secret"], "POST", "/api/v1/order", order)
    refused = await http.post(
        "/api/v1/order", content=order, headers={**signed, "Content-Type": "application/json"}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    tampered = signed_headers(key["key"], key["secret"], "POST", "/api/v1/order", b"{}")
    refused = await http.post(
        "/api/v1/order", content=order, headers={**tampered, "Content-Type": "application/json"}
    )
    assert refused.status_code == 401 and refused.json()["message"] == "bad signature"
    assert await trader.balances() == {"USD": ("100.000000", "0.000000")}


async def test_trade_key_places_and_revocation_ends_it(http: httpx.AsyncClient) -> None:
    trader = await funded(http, USD="100")
    key = await _key(http, trader.token, ["read", "trade"])
    order = orjson.dumps(
        {
            "market": "btc-usd",
            "side": "buy",
            "type": "limit",
            "price": "100.00",
            "quantity": "0.0100",
        }
    )
    signed = signed_headers(key["key"], key["secret"], "POST", "/api/v1/order", order)
    placed = await http.post(
        "/api/v1/order", content=order, headers={**signed, "Content-Type": "application/json"}
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["status"] == "new"

    listed = await trader.get("/api/v1/api-keys")
    assert [k["key"] for k in listed.json()] == [key["key"]]
    assert "secret" not in listed.json()[0]
    assert (await trader.delete(f"/api/v1/api-keys/{key['id']}")).status_code == 204
    assert (await trader.delete(f"/api/v1/api-keys/{key['id']}")).status_code == 404
    # Revocation takes effect within the key cache's lifetime (2 s by default).
    await asyncio.sleep(2.1)
    path = "/api/v1/balances"
    revoked = await http.get(path, headers=signed_headers(key["key"], key["secret"], "GET", path))
    assert revoked.status_code == 401


async def test_admin_is_granted_by_the_operator_never_by_sign_up(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    """The api runs with the retired EXCHANGE_API_ADMIN_EMAILS naming FORMER_ADMIN_EMAIL:
    whoever signs up with that address first gets no admin rights. `python -m api.admin`
    (the database's credentials) grants and revokes them."""
    squatter = await signup(http, FORMER_ADMIN_EMAIL)
    user = await signup(http)
    body = {"user_id": user.user_id, "asset": "USD", "amount": "1000000", "reference": "sq-1"}
    refused = await squatter.post("/api/v1/admin/deposit", body)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert (await squatter.post("/api/v1/api-keys", {"scopes": ["admin"]})).status_code == 403

    set_admin(stack.database_url, FORMER_ADMIN_EMAIL.upper())
    granted = await squatter.post("/api/v1/admin/deposit", body)
    assert granted.status_code == 200, granted.text
    set_admin(stack.database_url, FORMER_ADMIN_EMAIL, "revoke")
    again = {**body, "reference": "sq-2"}
    assert (await squatter.post("/api/v1/admin/deposit", again)).status_code == 403
    assert await user.balances() == {"USD": ("1000000.000000", "0.000000")}
    with pytest.raises(AssertionError, match="no account with the email"):
        set_admin(stack.database_url, "nobody-here@example.com")


async def test_admin_deposits_and_withdrawals(http: httpx.AsyncClient, stack: Stack) -> None:
    admin = await new_admin(http, stack.database_url)
    user = await signup(http)
    body = {"user_id": user.user_id, "asset": "USD", "amount": "250.5", "reference": "wire-1"}
    assert (await user.post("/api/v1/admin/deposit", body)).status_code == 403
    deposited = await admin.post("/api/v1/admin/deposit", body)
    assert deposited.status_code == 200, deposited.text
    assert deposited.json()["free"] == "250.500000"
    too_much = await admin.post("/api/v1/admin/withdraw", {**body, "amount": "300"})
    assert too_much.status_code == 400 and too_much.json()["code"] == "insufficient_funds"
    withdrawn = await admin.post("/api/v1/admin/withdraw", {**body, "amount": "50"})
    assert withdrawn.json()["free"] == "200.500000"
    for bad, code in (
        ({**body, "asset": "XYZ"}, "unknown_asset"),
        ({**body, "amount": "0.0000001"}, "invalid_amount"),
        ({**body, "amount": "0"}, "invalid_amount"),
        ({**body, "user_id": "999999999"}, "unknown_user"),
        ({**body, "reference": ""}, "invalid_request"),
    ):
        response = await admin.post("/api/v1/admin/deposit", bad)
        assert response.json()["code"] == code
    assert await user.balances() == {"USD": ("200.500000", "0.000000")}

    # Admin-scoped API keys only for admin accounts.
    refused = await user.post("/api/v1/api-keys", {"scopes": ["admin"]})
    assert refused.status_code == 403
    granted = await admin.post("/api/v1/api-keys", {"scopes": ["admin"]})
    assert granted.status_code == 201


async def test_faucet_limits(http: httpx.AsyncClient) -> None:
    user = await signup(http)
    too_much = await user.post("/api/v1/faucet", {"asset": "USD", "amount": "100001"})
    assert too_much.status_code == 400
    unknown = await user.post("/api/v1/faucet", {"asset": "DOGE", "amount": "1"})
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_asset"
    assert await user.balances() == {}


async def test_listen_key_names_the_user_for_ws(http: httpx.AsyncClient, stack: Stack) -> None:
    trader = await signup(http)
    created = await trader.post("/api/v1/listen-key", {})
    assert created.status_code == 201
    client = redis.asyncio.Redis.from_url(stack.redis_url)
    try:
        key = keys.listen_key(created.json()["listen_key"])
        assert await client.get(key) == trader.user_id.encode()
        assert 3500 < await client.ttl(key) <= 3600
    finally:
        await client.aclose()


async def test_an_admin_reference_moves_funds_once(http: httpx.AsyncClient, stack: Stack) -> None:
    """`reference` is the idempotency key of a deposit (and, in its own namespace, of a
    withdrawal): a retry, or many at once, get the first answer and move nothing again; another
    request under a used reference is refused (409) and moves nothing."""
    admin = await new_admin(http, stack.database_url)
    user, other = await signup(http), await signup(http)
    body = {"user_id": user.user_id, "asset": "USD", "amount": "100", "reference": "pay-1"}
    first = await admin.post("/api/v1/admin/deposit", body)
    assert first.status_code == 200, first.text
    assert first.json()["free"] == "100.000000"
    retried = await admin.post("/api/v1/admin/deposit", {**body, "amount": "100.00"})
    assert (retried.status_code, retried.json()) == (200, first.json())

    concurrent = {**body, "amount": "50", "reference": "pay-2"}
    answers = await asyncio.gather(
        *(admin.post("/api/v1/admin/deposit", concurrent) for _ in range(8))
    )
    assert {(a.status_code, a.json()["free"]) for a in answers} == {(200, "150.000000")}

    for changed in (
        {**body, "amount": "101"},
        {**body, "asset": "BTC"},
        {**body, "user_id": other.user_id},
    ):
        reused = await admin.post("/api/v1/admin/deposit", changed)
        assert reused.status_code == 409, reused.text
        assert reused.json() == {
            "code": "reference_reused",
            "message": "reference 'pay-1' was used by another deposit",
        }

    # Withdrawals have their own references: one may name the payment it reverses.
    payout = {**body, "amount": "30"}
    withdrawn = await admin.post("/api/v1/admin/withdraw", payout)
    assert withdrawn.json()["free"] == "120.000000"
    again = await admin.post("/api/v1/admin/withdraw", payout)
    assert (again.status_code, again.json()) == (200, withdrawn.json())
    reused = await admin.post("/api/v1/admin/withdraw", {**payout, "amount": "1"})
    assert reused.status_code == 409 and reused.json()["code"] == "reference_reused"

    assert await user.balances() == {"USD": ("120.000000", "0.000000")}
    assert await other.balances() == {}
    client = redis.asyncio.Redis.from_url(stack.redis_url)
    try:
        stream: Any = await client.xrange(keys.FUNDS)
        entries = [decode_funds_entry(fields) for _, fields in stream]
    finally:
        await client.aclose()
    journaled = [e for e in entries if e.user in (user.user_id, other.user_id)]
    assert [(e.amount, e.reference) for e in journaled] == [
        (100_000_000, "pay-1"),
        (50_000_000, "pay-2"),
        (-30_000_000, "pay-1"),
    ]
