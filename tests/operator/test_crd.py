"""The Market CRD: generated from the model, and enforced by a real API server."""

from __future__ import annotations

import itertools
from typing import Any

import pydantic
import pytest

from tests.harness.kube import ApiError
from tests.harness.operator import CRD_FILE, Kube, market_manifest
from xch.market import Market
from xch_operator.crd import render

_names = itertools.count(1)


def test_committed_crd_is_the_generated_one() -> None:
    assert CRD_FILE.read_text() == render(), "run `python -m xch_operator.crd`"


def _refusal(kube: Kube, namespace: str, manifest: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as caught:
        kube.create_market(namespace, manifest)
    assert caught.value.status == 422, caught.value.body
    return caught.value.message


def _model_accepts(manifest: dict[str, Any]) -> bool:
    try:
        Market.model_validate(manifest)
    except pydantic.ValidationError:
        return False
    return True


def test_defaults_are_filled_in(kube: Kube, market_crd: None, namespace: str) -> None:
    manifest = market_manifest(
        "defaults", fees=None, trading=None, klines=None, marketMaker=None, engine=None,
        retention=None, minNotional=None,
    )  # fmt: skip
    spec = kube.create_market(namespace, manifest)["spec"]
    assert spec["fees"] == {"makerBps": 10, "takerBps": 20}
    assert spec["trading"] == "Enabled"
    assert spec["klines"] == {"intervals": ["1m", "5m", "1h", "1d"]}
    assert spec["marketMaker"] == {"enabled": False, "spreadBps": 20, "levels": 5,
                                   "levelSpacingBps": 10}  # fmt: skip
    assert spec["retention"] == {"onDelete": "Retain"}
    assert spec["minNotional"] == "0"
    assert Market.model_validate({"metadata": {"name": "defaults"}, "spec": spec}).spec == (
        Market.model_validate(manifest).spec
    )


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("same-assets", {"quote": {"asset": "BTC", "scale": 8}},
     "base and quote must be different assets"),
    ("zero-tick", {"tickSize": "0.00"}, "must be positive"),
    ("zero-lot", {"lotSize": "0"}, "must be positive"),
    ("float-tick", {"tickSize": "1e-2"}, "spec.tickSize: Invalid value"),
    ("lot-below-base-unit", {"lotSize": "0.000000001"},
     "lotSize must be a whole number of base minor units"),
    ("tick-lot-below-quote-unit", {"tickSize": "0.001", "lotSize": "0.0001"},
     "tickSize x lotSize must be a whole number of quote minor units"),
    ("tick-lot-product", {"quote": {"asset": "USD", "scale": 0}, "tickSize": "0.5",
                          "lotSize": "0.4", "minNotional": "1"},
     "tickSize x lotSize must be a whole number of quote minor units"),
    ("min-notional", {"minNotional": "1.0000001"},
     "minNotional must be a whole number of quote minor units"),
    ("trading", {"trading": "Paused"}, 'Unsupported value: "Paused"'),
    ("fees", {"fees": {"makerBps": 2000}}, "should be less than or equal to 1000"),
    ("interval-pattern", {"klines": {"intervals": ["1x"]}}, "spec.klines.intervals[0]"),
    ("interval-twice", {"klines": {"intervals": ["1m", "1m"]}}, "Duplicate value"),
    ("asset", {"base": {"asset": "btc", "scale": 8}}, "spec.base.asset"),
    ("scale", {"base": {"asset": "BTC", "scale": 19}}, "should be less than or equal to 18"),
    ("spread", {"marketMaker": {"enabled": True, "spreadBps": 0}},
     "should be greater than or equal to 1"),
    ("order-size-zero", {"marketMaker": {"enabled": True, "orderSize": "0.0000"}},
     "must be positive"),
    ("order-size-lots", {"marketMaker": {"enabled": True, "orderSize": "0.00015"}},
     "marketMaker.orderSize must be a whole number of lots"),
    ("order-size-lots-coarse", {"lotSize": "0.5", "minNotional": "1",
                                "marketMaker": {"enabled": True, "orderSize": "1.2"}},
     "marketMaker.orderSize must be a whole number of lots"),
    ("inventory", {"marketMaker": {"enabled": True, "maxInventory": "0.000000001"}},
     "marketMaker.maxInventory must be a whole number of base minor units"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "spec", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_markets_are_refused(
    kube: Kube, market_crd: None, namespace: str, case: str, spec: dict[str, Any], message: str
) -> None:
    manifest = market_manifest(f"bad-{next(_names)}", **spec)
    assert message in _refusal(kube, namespace, manifest)
    assert not _model_accepts(manifest), f"the model accepts what the CRD refuses ({case})"


VALID: list[tuple[str, dict[str, Any]]] = [
    ("example", {}),
    ("product-whole", {"quote": {"asset": "USD", "scale": 0}, "tickSize": "0.5",
                       "lotSize": "2", "minNotional": "1", "marketMaker": {"enabled": False}}),
    ("trailing-zeros", {"tickSize": "0.0100", "lotSize": "0.00010000"}),
    ("integers", {"tickSize": "1", "lotSize": "1", "base": {"asset": "ETH", "scale": 0},
                  "marketMaker": {"enabled": False}}),
    ("mm-amounts", {"marketMaker": {"enabled": True, "orderSize": "0.0300",
                                    "maxInventory": "2.5"}}),
    ("mm-coarse-lot", {"lotSize": "0.5", "minNotional": "1",
                       "marketMaker": {"enabled": True, "orderSize": "1.50"}}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "spec"), VALID, ids=[c[0] for c in VALID])
def test_valid_markets_are_accepted(
    kube: Kube, market_crd: None, namespace: str, case: str, spec: dict[str, Any]
) -> None:
    manifest = market_manifest(f"good-{next(_names)}", **spec)
    assert _model_accepts(manifest)
    kube.create_market(namespace, manifest)


def test_invalid_name_is_refused(kube: Kube, market_crd: None, namespace: str) -> None:
    assert "a Market's name is a DNS label" in _refusal(kube, namespace, market_manifest("btc.usd"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base", {"asset": "BTC", "scale": 6}),
        ("quote", {"asset": "EUR", "scale": 6}),
        ("tickSize", "0.1"),
        ("lotSize", "0.001"),
    ],
)
def test_identity_fields_are_immutable(
    kube: Kube, market_crd: None, namespace: str, field: str, value: Any
) -> None:
    name = f"immutable-{next(_names)}"
    kube.create_market(namespace, market_manifest(name))
    with pytest.raises(ApiError) as caught:
        kube.patch_market(namespace, name, {"spec": {field: value}})
    assert caught.value.status == 422
    assert f"{field} is immutable" in caught.value.message
    changed = kube.patch_market(namespace, name, {"spec": {"trading": "Halted"}})
    assert changed["spec"]["trading"] == "Halted"
