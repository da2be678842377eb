"""xch.money: decimal strings at the edges, exact integers inside, refusal instead of rounding."""

import contextlib
from decimal import Decimal
from typing import Any

import pytest

from xch.money import (
    MAX_SCALE,
    MAX_UNITS,
    AmountError,
    format_decimal,
    format_minor,
    format_units,
    minor_unit,
    parse_decimal,
    to_minor,
    to_units,
    units_per,
)

# ---- parse_decimal ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Decimal(0)),
        ("30000.01", Decimal("30000.01")),
        ("0.00000001", Decimal("1E-8")),
        ("007", Decimal(7)),
        ("1.500", Decimal("1.500")),
        ("-2.5", Decimal("-2.5")),  # parse_decimal keeps the sign; to_units refuses it
    ],
)
def test_parse_decimal_accepts_plain_decimals(text: str, expected: Decimal) -> None:
    value = parse_decimal(text)
    assert value == expected
    assert isinstance(value, Decimal)


@pytest.mark.parametrize(
    "value", [1.5, 1, 0, None, b"1", Decimal("1"), ["1"], True], ids=lambda v: type(v).__name__
)
def test_parse_decimal_refuses_non_strings(value: Any) -> None:
    with pytest.raises(AmountError, match="amount must be a decimal string, got"):
        parse_decimal(value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        " 1",
        "1 ",
        "\t1",
        "1\n",
        "1e5",
        "1E5",
        "1e-2",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "+1",
        "1,000",
        "1_000",
        "0x10",
        "\uff11",  # FULLWIDTH DIGIT ONE: Decimal() would take it
        "\u0661",  # ARABIC-INDIC DIGIT ONE
    ],
)
def test_parse_decimal_refuses_non_plain_strings(text: str) -> None:
    with pytest.raises(AmountError, match="not a plain decimal string"):
        parse_decimal(text)


@pytest.mark.parametrize("text", [".", "-", "1.2.3", "--1", "1-", "1-2", "-.", ".-1"])
def test_parse_decimal_refuses_malformed_numbers(text: str) -> None:
    with pytest.raises(AmountError, match="not a plain decimal string"):
        parse_decimal(text)


def test_amount_error_is_a_value_error() -> None:
    assert issubclass(AmountError, ValueError)


# ---- minor_unit and scale bounds ------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "unit"),
    [(0, Decimal(1)), (2, Decimal("0.01")), (6, Decimal("0.000001")), (18, Decimal("1E-18"))],
)
def test_minor_unit(scale: int, unit: Decimal) -> None:
    assert minor_unit(scale) == unit


@pytest.mark.parametrize("scale", [-1, MAX_SCALE + 1, 100])
def test_scale_out_of_bounds_is_refused(scale: int) -> None:
    message = f"scale must be between 0 and {MAX_SCALE}, got {scale}"
    with pytest.raises(AmountError, match=message):
        minor_unit(scale)
    with pytest.raises(AmountError, match=message):
        to_minor("1", scale)
    with pytest.raises(AmountError, match=message):
        format_minor(1, scale)


def test_max_scale_is_18() -> None:
    assert MAX_SCALE == 18
    assert to_minor("0.000000000000000001", 18) == 1
    assert format_minor(1, 18) == "0.000000000000000001"


# ---- to_minor / to_units ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scale", "minor"),
    [
        ("30000.01", 6, 30_000_010_000),
        ("0.00000001", 8, 1),
        ("1", 0, 1),
        ("0", 2, 0),
        ("0.00", 2, 0),
        ("1.5", 2, 150),
        ("1.50", 2, 150),
        ("1.500000", 2, 150),  # trailing zeros beyond the scale lose nothing
        ("21000000.00000000", 8, 2_100_000_000_000_000),
        ("123456789012345678.9", 1, 1_234_567_890_123_456_789),
    ],
)
def test_to_minor_is_exact(text: str, scale: int, minor: int) -> None:
    assert to_minor(text, scale) == minor
    assert type(to_minor(text, scale)) is int


@pytest.mark.parametrize(
    ("text", "scale"), [("0.001", 2), ("1.000000001", 8), ("0.5", 0), ("30000.0000001", 6)]
)
def test_to_minor_refuses_too_many_decimals(text: str, scale: int) -> None:
    with pytest.raises(AmountError, match=r"is not a multiple of"):
        to_minor(text, scale)


@pytest.mark.parametrize("text", ["-1", "-0.01", "-30000.01"])
def test_to_minor_refuses_negative(text: str) -> None:
    with pytest.raises(AmountError, match="must not be negative"):
        to_minor(text, 2)


@pytest.mark.parametrize("value", [0.1, 1, None], ids=lambda v: type(v).__name__)
def test_to_minor_refuses_non_strings(value: Any) -> None:
    with pytest.raises(AmountError, match="amount must be a decimal string"):
        to_minor(value, 2)


@pytest.mark.parametrize("text", ["1e5", "NaN", "Infinity", "", " 1", "1 "])
def test_to_minor_refuses_what_parse_decimal_refuses(text: str) -> None:
    with pytest.raises(AmountError):
        to_minor(text, 2)


@pytest.mark.parametrize(
    ("text", "unit", "count"),
    [
        ("0.05", Decimal("0.01"), 5),
        ("30000.01", Decimal("0.01"), 3_000_001),
        ("1.5", Decimal("0.0001"), 15_000),
        ("35", Decimal("5"), 7),
        ("1.5", Decimal("0.5"), 3),
    ],
)
def test_to_units(text: str, unit: Decimal, count: int) -> None:
    assert to_units(text, unit) == count


@pytest.mark.parametrize(
    ("text", "unit"), [("0.055", Decimal("0.01")), ("36", Decimal("5")), ("1.25", Decimal("0.5"))]
)
def test_to_units_refuses_non_multiples(text: str, unit: Decimal) -> None:
    with pytest.raises(AmountError, match=f"'{text}' is not a multiple of {unit}"):
        to_units(text, unit)


# ---- format_minor / format_units ------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "scale", "text"),
    [
        (1_500_000, 6, "1.500000"),
        (0, 2, "0.00"),
        (1, 8, "0.00000001"),
        (5, 0, "5"),
        (30_000_010_000, 6, "30000.010000"),
        (-150, 2, "-1.50"),
    ],
)
def test_format_minor(count: int, scale: int, text: str) -> None:
    assert format_minor(count, scale) == text


@pytest.mark.parametrize(
    ("count", "unit", "text"),
    [
        (3, Decimal("0.01"), "0.03"),
        (12_345, Decimal("0.0001"), "1.2345"),
        (7, Decimal("5"), "35"),
        (3, Decimal("0.50"), "1.50"),  # the unit's own decimal places
        (0, Decimal("0.001"), "0.000"),
    ],
)
def test_format_units(count: int, unit: Decimal, text: str) -> None:
    assert format_units(count, unit) == text


@pytest.mark.parametrize("scale", [0, 1, 2, 6, 8, 18])
@pytest.mark.parametrize("count", [0, 1, 9, 10, 99, 100, 12_345, 10**15 + 1, MAX_UNITS])
def test_minor_round_trip(count: int, scale: int) -> None:
    text = format_minor(count, scale)
    assert to_minor(text, scale) == count
    assert format_minor(to_minor(text, scale), scale) == text


@pytest.mark.parametrize(
    ("text", "scale"),
    [("30000.01", 2), ("0.00000001", 8), ("1", 0), ("0.000001", 6), ("123.450", 3)],
)
def test_canonical_string_round_trip(text: str, scale: int) -> None:
    assert format_minor(to_minor(text, scale), scale) == text


@pytest.mark.parametrize(
    ("text", "unit"), [("30000.01", Decimal("0.01")), ("1.2345", Decimal("0.0001"))]
)
def test_units_round_trip(text: str, unit: Decimal) -> None:
    assert format_units(to_units(text, unit), unit) == text


# ---- units_per ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "smaller", "count"),
    [
        (Decimal("0.0001"), Decimal("0.00000001"), 10_000),
        (Decimal("0.000001"), Decimal("0.000001"), 1),
        (Decimal("1"), Decimal("0.01"), 100),
        (Decimal("0.0100"), Decimal("0.01"), 1),
    ],
)
def test_units_per(unit: Decimal, smaller: Decimal, count: int) -> None:
    assert units_per(unit, smaller) == count


@pytest.mark.parametrize(
    ("unit", "smaller"),
    [
        (Decimal("1"), Decimal("0.3")),
        (Decimal("0.001"), Decimal("0.01")),  # smaller than one minor unit
        (Decimal("0"), Decimal("0.01")),
        (Decimal("-1"), Decimal("0.01")),
        (Decimal("0.015"), Decimal("0.01")),
    ],
)
def test_units_per_refuses_non_whole_or_non_positive(unit: Decimal, smaller: Decimal) -> None:
    with pytest.raises(AmountError, match="is not a whole positive multiple of"):
        units_per(unit, smaller)


# ---- precision beyond the default decimal context (28 digits) ------------------------------


@pytest.mark.parametrize(
    ("text", "scale"), [("1" + "0" * 30, 8), ("100000000000.000000000000000001", 18)]
)
def test_huge_amount_is_refused_with_amount_error(text: str, scale: int) -> None:
    # Either an exact answer or an AmountError is acceptable; another exception is not.
    with contextlib.suppress(AmountError):
        assert to_minor(text, scale) == int(Decimal(text).scaleb(scale))


def test_format_minor_is_exact_beyond_28_digits() -> None:
    # 100000000000.000000000000000001 units of an 18-decimal asset (1e11 tokens + 1 wei).
    assert format_minor(10**29 + 1, 18) == "100000000000.000000000000000001"


@pytest.mark.parametrize(("text", "scale"), [(str(MAX_UNITS + 1), 0), ("92233720368.54775808", 8)])
def test_amounts_beyond_a_64_bit_balance_are_refused(text: str, scale: int) -> None:
    # Redis keeps balances as signed 64-bit integers: one more minor unit cannot be held.
    with pytest.raises(AmountError, match="too large"):
        to_minor(text, scale)


def test_the_largest_64_bit_amount_is_exact() -> None:
    assert to_minor("92233720368.54775807", 8) == MAX_UNITS
    assert format_minor(MAX_UNITS, 8) == "92233720368.54775807"


@pytest.mark.parametrize("text", ["1.", ".5", "-0.", "1" * 65])
def test_parse_decimal_refuses_bare_points_and_huge_strings(text: str) -> None:
    with pytest.raises(AmountError, match="not a plain decimal string"):
        parse_decimal(text)


def test_negative_zero_is_refused_as_an_amount() -> None:
    with pytest.raises(AmountError, match="negative"):
        to_minor("-0", 2)


@pytest.mark.parametrize(
    ("value", "text"),
    [("0E-8", "0.00000000"), ("30000.01", "30000.01"), ("1E+3", "1000"), ("-0.50", "-0.50")],
)
def test_format_decimal_is_plain(value: str, text: str) -> None:
    assert format_decimal(Decimal(value)) == text
