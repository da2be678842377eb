"""Property-based requests generated from the api's own OpenAPI schema (schemathesis), sent
to the real api process by a signed-in user with funds: no 500s, and every answer's status,
content type and body as the schema documents them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.config import Settings
from api.main import create_app
from tests.harness.api import JWT_SECRET, SECRETS_KEY
from tests.harness.stacks import Stack

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def auth(stack: Stack) -> dict[str, str]:
    with httpx.Client(base_url=stack.api.url) as http:
        tokens = http.post(
            "/api/v1/signup",
            json={"email": "schemathesis@example.com", "password": "long enough pw"},
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        for asset, amount in (("USD", "100000"), ("BTC", "10"), ("ETH", "10")):
            http.post("/api/v1/faucet", json={"asset": asset, "amount": amount}, headers=headers)
    return headers


# The schema the api process publishes at /openapi.json: built by the same factory.
schema = schemathesis.openapi.from_dict(
    create_app(
        Settings.model_validate({"jwt_secret": JWT_SECRET, "secrets_key": SECRETS_KEY})
    ).openapi()
)


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(
    case: schemathesis.Case[Any], stack: Stack, auth: dict[str, str]
) -> None:
    case.call_and_validate(base_url=stack.api.url, headers=auth, checks=CHECKS)
