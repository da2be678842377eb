"""Decimal strings at the edges, integers inside.

A price, quantity or balance is never a float. Each asset has a scale (decimal places of its
minor unit); balances are integers in minor units. Conversion refuses anything that would
lose precision instead of rounding it away, and anything a balance cannot hold: Redis keeps
balances as signed 64-bit integers.
"""

import re
from collections.abc import Callable
from decimal import Context, Decimal, Inexact, InvalidOperation, localcontext
from functools import wraps
from typing import Final, ParamSpec, TypeVar

MAX_SCALE = 18
MAX_UNITS = 2**63 - 1
MAX_TEXT = 64
BPS: Final = 10_000
"""Basis points in a whole: fee rates, allowances and spreads are given in bps."""

# Wide enough for any MAX_TEXT-character decimal times any unit; rounding would be a bug.
EXACT = Context(prec=200, traps=[InvalidOperation, Inexact])
_PLAIN = re.compile(r"-?[0-9]+(\.[0-9]+)?")

P = ParamSpec("P")
R = TypeVar("R")


class AmountError(ValueError):
    """A decimal string that is not a valid amount for the unit asked for."""


def _exact(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` in the EXACT decimal context; arithmetic trouble becomes AmountError."""

    @wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with localcontext(EXACT):
                return function(*args, **kwargs)
        except ArithmeticError as exc:
            raise AmountError(f"amount out of range: {exc!r}") from exc

    return run


def parse_decimal(text: str) -> Decimal:
    """Parse a plain decimal string ("30000.01", "-5"); refuse exponents, NaN, infinities,
    floats, signs other than a leading '-', bare or trailing points, and very long strings."""
    if not isinstance(text, str):
        raise AmountError(f"amount must be a decimal string, got {type(text).__name__}")
    if len(text) > MAX_TEXT or not _PLAIN.fullmatch(text):
        raise AmountError(f"not a plain decimal string: {text[:MAX_TEXT]!r}")
    return Decimal(text)


@_exact
def to_units(text: str, unit: Decimal) -> int:
    """How many whole `unit`s `text` is; refuses a remainder, negatives and overflow."""
    value = parse_decimal(text)
    if text.startswith("-"):
        raise AmountError(f"amount must not be negative: {text!r}")
    count, remainder = divmod(value, unit)
    if remainder != 0:
        raise AmountError(f"{text!r} is not a multiple of {unit}")
    if count > MAX_UNITS:
        raise AmountError(f"{text!r} is too large")
    return int(count)


def minor_unit(scale: int) -> Decimal:
    """The minor unit of an asset with `scale` decimal places, e.g. 6 -> Decimal('0.000001')."""
    if not 0 <= scale <= MAX_SCALE:
        raise AmountError(f"scale must be between 0 and {MAX_SCALE}, got {scale}")
    return Decimal(1).scaleb(-scale)


def to_minor(text: str, scale: int) -> int:
    """A decimal string as integer minor units of an asset with `scale` decimals."""
    return to_units(text, minor_unit(scale))


@_exact
def format_units(count: int, unit: Decimal) -> str:
    """`count` units of `unit` as a decimal string with exactly the unit's decimal places."""
    exponent = unit.as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    value = Decimal(count) * unit
    return f"{value:.{places}f}"


def format_minor(count: int, scale: int) -> str:
    """Integer minor units as a decimal string with `scale` decimals: 1500000, 6 -> '1.500000'."""
    return format_units(count, minor_unit(scale))


@_exact
def units_per(unit: Decimal, smaller: Decimal) -> int:
    """How many `smaller` make one `unit`; refuses a unit that is not a whole multiple."""
    count, remainder = divmod(unit, smaller)
    if remainder != 0 or count <= 0:
        raise AmountError(f"{unit} is not a whole positive multiple of {smaller}")
    return int(count)


@_exact
def product(a: Decimal, b: Decimal) -> Decimal:
    """a x b, exactly."""
    return a * b


def format_decimal(value: Decimal) -> str:
    """A Decimal (say, a NUMERIC read from PostgreSQL) as a plain decimal string, keeping its
    places and never using an exponent: Decimal('0E-8') -> '0.00000000'."""
    return f"{value:f}"
