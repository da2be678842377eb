"""Decimal strings at the edges, integers inside.

A price, quantity or balance is never a float. Each asset has a scale (decimal places of its
minor unit); balances are integers in minor units. Conversion refuses anything that would
lose precision instead of rounding it away.
"""

from decimal import Decimal, InvalidOperation

MAX_SCALE = 18


class AmountError(ValueError):
    """A decimal string that is not a valid amount for the unit asked for."""


def parse_decimal(text: str) -> Decimal:
    """Parse a plain decimal string ("30000.01"); refuse exponents, NaN, infinities, floats."""
    if not isinstance(text, str):
        raise AmountError(f"amount must be a decimal string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped or stripped != text or any(c not in "0123456789.-" for c in text):
        raise AmountError(f"not a plain decimal string: {text!r}")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise AmountError(f"not a decimal: {text!r}") from exc
    if not value.is_finite():
        raise AmountError(f"not a finite decimal: {text!r}")
    return value


def to_units(text: str, unit: Decimal) -> int:
    """How many whole `unit`s `text` is; refuses a remainder and negative amounts."""
    value = parse_decimal(text)
    if value < 0:
        raise AmountError(f"amount must not be negative: {text!r}")
    count, remainder = divmod(value, unit)
    if remainder != 0:
        raise AmountError(f"{text!r} is not a multiple of {unit}")
    return int(count)


def minor_unit(scale: int) -> Decimal:
    """The minor unit of an asset with `scale` decimal places, e.g. 6 -> Decimal('0.000001')."""
    if not 0 <= scale <= MAX_SCALE:
        raise AmountError(f"scale must be between 0 and {MAX_SCALE}, got {scale}")
    return Decimal(1).scaleb(-scale)


def to_minor(text: str, scale: int) -> int:
    """A decimal string as integer minor units of an asset with `scale` decimals."""
    return to_units(text, minor_unit(scale))


def format_units(count: int, unit: Decimal) -> str:
    """`count` units of `unit` as a decimal string with exactly the unit's decimal places."""
    places = max(0, -unit.as_tuple().exponent)  # type: ignore[operator]
    value = Decimal(count) * unit
    return f"{value:.{places}f}"


def format_minor(count: int, scale: int) -> str:
    """Integer minor units as a decimal string with `scale` decimals: 1500000, 6 -> '1.500000'."""
    return format_units(count, minor_unit(scale))


def units_per(unit: Decimal, smaller: Decimal) -> int:
    """How many `smaller` make one `unit`; refuses a unit that is not a whole multiple."""
    count, remainder = divmod(unit, smaller)
    if remainder != 0 or count <= 0:
        raise AmountError(f"{unit} is not a whole positive multiple of {smaller}")
    return int(count)
