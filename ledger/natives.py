"""The names of interpreted modules that the compiled core uses on every operation, as C statics.

Compiled (`ledger.compiled.MODULES`), each use of a name imported from an interpreted module
(`xch.schemas`'s event classes and sets of names, msgspec's `astuple`) is a lookup in the using
module's dict, about 130 instructions; a module-level `Final` of a compiled module is a C
static, read as a pointer. (A `Final` string or number, such as `xch.schemas.BUY`, needs
nothing: it compiles to its value.) The classes keep their own names for annotations.
"""

from typing import Final

from msgspec.structs import astuple

from xch import schemas

CANCEL: Final = schemas.Cancel
PLACE: Final = schemas.Place
ORDER_ACCEPTED: Final = schemas.OrderAccepted
ORDER_REJECTED: Final = schemas.OrderRejected
ORDER_DONE: Final = schemas.OrderDone
TRADE: Final = schemas.Trade
FUNDS: Final = schemas.Funds

# As sets: a value that is not in a tuple costs a string comparison per member.
SIDES: Final = frozenset(schemas.SIDES)
STP_MODES: Final = frozenset(schemas.STP_MODES)
TIMES_IN_FORCE: Final = frozenset(schemas.TIMES_IN_FORCE)
STOP_TYPES: Final = frozenset(schemas.STOP_TYPES)
STOP_LIMIT_TYPES: Final = frozenset(schemas.STOP_LIMIT_TYPES)

REASONS: Final = {code: code.reason for code in schemas.ResultCode}
"""Each result code's `reason`: the property is interpreted code (`Enum.name`, `str.lower`)."""

AS_TUPLE: Final = astuple
"""`msgspec.structs.astuple`: a struct's fields in one C call."""
