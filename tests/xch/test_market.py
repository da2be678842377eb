"""xch.market: the Market manifest as the CRD validates it, and the integer MarketRules."""

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from xch.market import Market, MarketRules, OnDelete, Trading
from xch.money import AmountError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "markets" / "btc-usd.yaml"


def example() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(data, dict)
    return data


def with_spec(path: str, value: Any) -> dict[str, Any]:
    """The example manifest with spec field `path` (dotted) set to `value`."""
    data = copy.deepcopy(example())
    node = data["spec"]
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return data


def minimal(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "base": {"asset": "ABC", "scale": 2},
        "quote": {"asset": "XYZ", "scale": 2},
        "tickSize": "1",
        "lotSize": "1",
    }
    base.update(spec)
    return {"metadata": {"name": "abc-xyz"}, "spec": base}


def rules_of(data: dict[str, Any]) -> MarketRules:
    return Market.model_validate(data).rules()


# ---- valid manifests ------------------------------------------------------------------------


def test_example_btc_usd_rules() -> None:
    market = Market.model_validate(example())
    assert market.name == "btc-usd"
    assert market.rules() == MarketRules(
        name="btc-usd",
        base="BTC",
        quote="USD",
        base_scale=8,
        quote_scale=6,
        tick=Decimal("0.01"),
        lot=Decimal("0.0001"),
        base_per_lot=10_000,  # 0.0001 BTC = 10_000 satoshi
        quote_per_tick_lot=1,  # 0.01 x 0.0001 = 0.000001 USD = one minor unit
        min_notional=1_000_000,  # 1.00 USD
        maker_bps=10,
        taker_bps=20,
        trading=Trading.ENABLED,
    )


def test_example_spec_fields() -> None:
    spec = Market.model_validate(example()).spec
    assert spec.klines.intervals == ("1m", "5m", "1h", "1d")
    assert spec.market_maker.enabled is True
    assert spec.market_maker.spread_bps == 20
    assert spec.market_maker.levels == 5
    assert spec.market_maker.reference_price == "30000.00"
    assert spec.engine.snapshot_every == 10_000
    assert spec.retention.on_delete is OnDelete.RETAIN


def test_defaults_of_a_minimal_manifest() -> None:
    market = Market.model_validate(minimal())
    spec = market.spec
    assert market.api_version == "exchange.dev/v1alpha1"
    assert market.kind == "Market"
    assert spec.min_notional == "0"
    assert (spec.fees.maker_bps, spec.fees.taker_bps) == (10, 20)
    assert spec.trading is Trading.ENABLED
    assert spec.market_maker.enabled is False
    assert spec.retention.on_delete is OnDelete.RETAIN
    rules = market.rules()
    assert (rules.base_per_lot, rules.quote_per_tick_lot, rules.min_notional) == (100, 100, 0)


def test_field_names_work_too() -> None:
    data = minimal(tick_size="0.5", lot_size="0.02", fees={"maker_bps": 0, "taker_bps": 5})
    del data["spec"]["tickSize"], data["spec"]["lotSize"]
    rules = rules_of(data)
    # lot 0.02 ABC = 2 minor units; tick x lot = 0.01 XYZ = 1 minor unit
    assert (rules.base_per_lot, rules.quote_per_tick_lot) == (2, 1)
    assert (rules.maker_bps, rules.taker_bps) == (0, 5)


def test_status_and_unknown_top_level_fields_are_ignored() -> None:
    data = example()
    data["status"] = {"phase": "Ready"}
    data["metadata"]["labels"] = {"team": "x"}
    assert Market.model_validate(data).name == "btc-usd"


@pytest.mark.parametrize(
    ("tick", "lot", "base_scale", "quote_scale", "base_per_lot", "quote_per_tick_lot"),
    [
        ("0.01", "0.0001", 8, 6, 10_000, 1),
        ("0.5", "0.1", 1, 2, 1, 5),
        ("1", "1", 0, 0, 1, 1),
        ("10", "0.001", 3, 2, 1, 1),
        ("0.001", "1000", 0, 0, 1000, 1),
    ],
)
def test_unit_sizes(
    tick: str,
    lot: str,
    base_scale: int,
    quote_scale: int,
    base_per_lot: int,
    quote_per_tick_lot: int,
) -> None:
    rules = rules_of(
        minimal(
            base={"asset": "ABC", "scale": base_scale},
            quote={"asset": "XYZ", "scale": quote_scale},
            tickSize=tick,
            lotSize=lot,
        )
    )
    assert rules.base_per_lot == base_per_lot
    assert rules.quote_per_tick_lot == quote_per_tick_lot


@pytest.mark.parametrize("trading", ["Enabled", "CancelOnly", "Halted"])
def test_trading_states(trading: str) -> None:
    assert rules_of(minimal(trading=trading)).trading == Trading(trading)


# ---- refusals -------------------------------------------------------------------------------

BAD_SPECS: list[tuple[str, Any, str, str]] = [
    # (spec field, value, error location, message fragment)
    ("quote", {"asset": "BTC", "scale": 8}, "spec", "base and quote must be different assets"),
    (
        "quote.scale",
        2,
        "spec",
        "tickSize x lotSize must be a whole number of USD minor units",
    ),  # 0.01 x 0.0001 = 0.000001 USD, not a whole number of cents
    ("tickSize", "0.001", "spec", "tickSize x lotSize must be a whole number of USD minor units"),
    ("base.scale", 2, "spec", "lotSize must be a whole number of BTC minor units"),
    ("lotSize", "0.000000001", "spec", "lotSize must be a whole number of BTC minor units"),
    ("minNotional", "1.0000001", "spec", "minNotional must be a whole number of USD minor units"),
    ("minNotional", "-1", "spec.minNotional", "String should match pattern"),
    ("minNotional", "1e3", "spec.minNotional", "String should match pattern"),
    ("tickSize", "0", "spec", "tickSize and lotSize must be positive"),
    ("lotSize", "0.0000", "spec", "tickSize and lotSize must be positive"),
    ("tickSize", "1e-2", "spec.tickSize", "String should match pattern"),
    ("tickSize", ".01", "spec.tickSize", "String should match pattern"),
    ("tickSize", "-0.01", "spec.tickSize", "String should match pattern"),
    ("tickSize", " 0.01", "spec.tickSize", "String should match pattern"),
    ("tickSize", 0.01, "spec.tickSize", "Input should be a valid string"),  # never a float
    ("lotSize", 1, "spec.lotSize", "Input should be a valid string"),
    ("base.asset", "btc", "spec.base.asset", "String should match pattern"),
    ("base.asset", "B", "spec.base.asset", "String should match pattern"),
    ("base.asset", "BTC-X", "spec.base.asset", "String should match pattern"),
    ("base.asset", "1BTC", "spec.base.asset", "String should match pattern"),
    ("base.asset", "ABCDEFGHIJK", "spec.base.asset", "String should match pattern"),
    ("quote.asset", "", "spec.quote.asset", "String should match pattern"),
    ("base.scale", 19, "spec.base.scale", "less than or equal to 18"),
    ("quote.scale", -1, "spec.quote.scale", "greater than or equal to 0"),
    ("klines.intervals", ["1s"], "spec.klines.intervals", "bad kline interval '1s'"),
    ("klines.intervals", ["0m"], "spec.klines.intervals", "bad kline interval '0m'"),
    ("klines.intervals", ["m"], "spec.klines.intervals", "bad kline interval 'm'"),
    ("klines.intervals", ["1M"], "spec.klines.intervals", "bad kline interval '1M'"),
    ("klines.intervals", ["5 m"], "spec.klines.intervals", "bad kline interval '5 m'"),
    ("klines.intervals", ["1m", "1m"], "spec.klines.intervals", "must be unique"),
    ("fees.makerBps", -1, "spec.fees.makerBps", "greater than or equal to 0"),
    ("fees.takerBps", -5, "spec.fees.takerBps", "greater than or equal to 0"),
    ("fees.takerBps", 1001, "spec.fees.takerBps", "less than or equal to 1000"),
    ("fees.rebateBps", 1, "spec.fees.rebateBps", "Extra inputs are not permitted"),
    ("surprise", True, "spec.surprise", "Extra inputs are not permitted"),
    ("base.precision", 8, "spec.base.precision", "Extra inputs are not permitted"),
    ("trading", "Paused", "spec.trading", "Input should be 'Enabled', 'CancelOnly' or 'Halted'"),
    ("marketMaker.spreadBps", 0, "spec.marketMaker.spreadBps", "greater than or equal to 1"),
    ("marketMaker.referencePrice", "1e4", "spec.marketMaker.referencePrice", "pattern"),
    ("engine.snapshotEvery", 10, "spec.engine.snapshotEvery", "greater than or equal to 100"),
    ("retention.onDelete", "Keep", "spec.retention.onDelete", "Input should be 'Retain'"),
]


@pytest.mark.parametrize(
    ("field", "value", "loc", "message"), BAD_SPECS, ids=[f"{f}={v!r}" for f, v, *_ in BAD_SPECS]
)
def test_bad_spec_is_refused(field: str, value: Any, loc: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Market.model_validate(with_spec(field, value))
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    assert ".".join(str(part) for part in errors[0]["loc"]) == loc
    assert message in errors[0]["msg"]


@pytest.mark.parametrize("field", ["base", "quote", "tickSize", "lotSize"])
def test_required_spec_fields(field: str) -> None:
    data = example()
    del data["spec"][field]
    with pytest.raises(ValidationError, match="Field required"):
        Market.model_validate(data)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"apiVersion": "exchange.dev/v1"}, "Input should be 'exchange.dev/v1alpha1'"),
        ({"kind": "Markets"}, "Input should be 'Market'"),
        ({"metadata": {"name": "BTC_USD"}}, "String should match pattern"),
        ({"metadata": {"name": "-btc"}}, "String should match pattern"),
        ({"metadata": {}}, "Field required"),
    ],
)
def test_bad_envelope_is_refused(patch: dict[str, Any], message: str) -> None:
    data = example()
    data.update(patch)
    with pytest.raises(ValidationError, match=message):
        Market.model_validate(data)


def test_market_is_frozen() -> None:
    market = Market.model_validate(example())
    with pytest.raises(ValidationError, match="frozen"):
        market.spec.tick_size = "0.02"  # type: ignore[misc]


# ---- conversions ----------------------------------------------------------------------------


@pytest.fixture
def btc_usd() -> MarketRules:
    return rules_of(example())


@pytest.mark.parametrize(
    ("text", "ticks"),
    [("30000.01", 3_000_001), ("0.01", 1), ("0", 0), ("30000.010", 3_000_001), ("1", 100)],
)
def test_price_to_ticks(btc_usd: MarketRules, text: str, ticks: int) -> None:
    assert btc_usd.price_to_ticks(text) == ticks


@pytest.mark.parametrize(
    ("text", "lots"), [("1.5", 15_000), ("0.0001", 1), ("0.00010000", 1), ("2", 20_000)]
)
def test_qty_to_lots(btc_usd: MarketRules, text: str, lots: int) -> None:
    assert btc_usd.qty_to_lots(text) == lots


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30000.015", "is not a multiple of 0.01"),
        ("0.001", "is not a multiple of 0.01"),
        ("-1", "must not be negative"),
        ("1e2", "not a plain decimal string"),
        ("NaN", "not a plain decimal string"),
        ("", "not a plain decimal string"),
    ],
)
def test_price_to_ticks_refuses(btc_usd: MarketRules, text: str, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        btc_usd.price_to_ticks(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.00015", "is not a multiple of 0.0001"),
        ("0.00001", "is not a multiple of 0.0001"),
        ("-0.0001", "must not be negative"),
        ("1E-4", "not a plain decimal string"),
    ],
)
def test_qty_to_lots_refuses(btc_usd: MarketRules, text: str, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        btc_usd.qty_to_lots(text)


def test_price_to_ticks_refuses_floats(btc_usd: MarketRules) -> None:
    with pytest.raises(AmountError, match="amount must be a decimal string, got float"):
        btc_usd.price_to_ticks(30000.01)  # type: ignore[arg-type]


def test_asset_amounts_to_minor(btc_usd: MarketRules) -> None:
    assert btc_usd.base_to_minor("1.00000001") == 100_000_001
    assert btc_usd.quote_to_minor("30000.000001") == 30_000_000_001
    with pytest.raises(AmountError, match="is not a multiple of"):
        btc_usd.base_to_minor("0.000000001")
    with pytest.raises(AmountError, match="is not a multiple of"):
        btc_usd.quote_to_minor("0.0000001")


def test_quote_value_of_lots_is_exact(btc_usd: MarketRules) -> None:
    # 1.5 BTC at 30000.01 USD = 45000.015 USD = 45_000_015_000 micro-USD, in integers only.
    ticks, lots = btc_usd.price_to_ticks("30000.01"), btc_usd.qty_to_lots("1.5")
    assert ticks * lots * btc_usd.quote_per_tick_lot == btc_usd.quote_to_minor("45000.015")
    assert lots * btc_usd.base_per_lot == btc_usd.base_to_minor("1.5")


def test_tick_times_lot_is_checked_exactly() -> None:
    # 1.00000000000001 x 1.00000000000001 = 1.0000000000000200000000000001 (29 digits): not a
    # whole number of 1e-18 units.
    data = minimal(
        base={"asset": "ABC", "scale": 18},
        quote={"asset": "XYZ", "scale": 18},
        tickSize="1.00000000000001",
        lotSize="1.00000000000001",
    )
    with pytest.raises(ValidationError, match="tickSize x lotSize must be a whole number"):
        Market.model_validate(data)


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        ({"orderSize": "0.00015"}, "orderSize must be a whole number of lots"),
        ({"orderSize": "0"}, "orderSize must be positive"),
        ({"maxInventory": "0.000000001"}, "maxInventory must be a whole number of BTC"),
    ],
)
def test_market_maker_amounts_must_fit_the_grid(maker: dict[str, str], message: str) -> None:
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["spec"]["marketMaker"].update(maker)
    with pytest.raises(ValidationError, match=message):
        Market.model_validate(manifest)
