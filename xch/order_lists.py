"""The record of an OCO list placed through the Binance-compatible api, kept in the user's
`xch.keys.order_lists` hash as JSON: the numbering Binance clients see and a lookup by the
list's client id, per user, across markets (`GET /api/v3/orderList` names no symbol). The
api writes it, api and ws read it."""

import msgspec

LIST_ID_SEPARATOR = "."
CLIENT_FIELD_PREFIX = "c:"
LIST_NUMBER_BASE = 2**48
"""Binance list ids are `{market}.{LIST_NUMBER_BASE + n as 15 hex digits}` for orderListId n:
the engine's leg ids append a digit (api.services.list_plans.leg_ids), so the legs have 16
hex digits like every other order id, and numbers from 2^52 + 16n, below 2^53 (exact in
JavaScript) and above the numbers the order counter hands out (`xch:{M}:order_seq`, below
2^52 until about 2161: ledger.numbers)."""
LIST_HEX_DIGITS = 15
MAX_LIST_NUMBER = 2**48 - 1


class ListRecord(msgspec.Struct, frozen=True):
    market: str
    list_id: str
    """`{market}.{orderListId as 16 hex digits}`, as the engine knows the list."""
    client_list_id: str
    orders: list[tuple[str, str]]
    """(order id, client order id) of the legs, above leg first."""
    ts: int
    """When the api placed it, Unix ms."""


_decoder = msgspec.json.Decoder(ListRecord)


def encode_list(record: ListRecord) -> bytes:
    return msgspec.json.encode(record)


def decode_list(raw: bytes | str) -> ListRecord:
    return _decoder.decode(raw)


def binance_list_id(market: str, number: int) -> str:
    return f"{market}{LIST_ID_SEPARATOR}{LIST_NUMBER_BASE + number:0{LIST_HEX_DIGITS}x}"


def list_number(list_id: str) -> int:
    """Binance's integer `orderListId` of a list id: n for the Binance routes' lists, the hex
    number itself for a list placed through the native api (random digits)."""
    digits = list_id.rpartition(LIST_ID_SEPARATOR)[2]
    value = int(digits, 16)
    return value - LIST_NUMBER_BASE if len(digits) == LIST_HEX_DIGITS else value


def client_field(client_list_id: str) -> str:
    return f"{CLIENT_FIELD_PREFIX}{client_list_id}"
