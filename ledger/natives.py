"""The names of interpreted modules that the compiled core uses on every operation, as C statics.

Compiled (`ledger.compiled.MODULES`), each use of a name imported from an interpreted module
(`xch.schemas`'s event classes and tuples, msgspec's `astuple`) is a lookup in the using
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

SIDES: Final = schemas.SIDES
STP_MODES: Final = schemas.STP_MODES
TIMES_IN_FORCE: Final = schemas.TIMES_IN_FORCE
STOP_TYPES: Final = schemas.STOP_TYPES
STOP_LIMIT_TYPES: Final = schemas.STOP_LIMIT_TYPES

AS_TUPLE: Final = astuple
"""`msgspec.structs.astuple`: a struct's fields in one C call."""
