"""The record of an OCO list placed through the Binance-compatible api, kept in the user's
`xch.keys.order_lists` hash as JSON: what the engine's events do not carry (the list's
client id) and the numbering Binance clients see. The api writes it, api and ws read it."""

import msgspec

LIST_ID_SEPARATOR = "."
CLIENT_FIELD_PREFIX = "c:"


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


def list_number(list_id: str) -> int:
    """Binance's integer `orderListId` of a list id `{market}.{hex}`."""
    return int(list_id.rpartition(LIST_ID_SEPARATOR)[2], 16)


def client_field(client_list_id: str) -> str:
    return f"{CLIENT_FIELD_PREFIX}{client_list_id}"
