"""The contracts xch defines once hold where other components meet them: the depth key's
value, the funds stream's fields, the kline origin, the order words of the schema and the
api's models that mirror xch structs."""

import re
from datetime import UTC, datetime
from typing import Any, get_args

import msgspec
import pytest
from pydantic import BaseModel

from api import models
from ledger.scripts import script_source
from storage.klines import ORIGIN
from xch import schemas
from xch.marketdata import (
    KLINE_ORIGIN,
    KLINE_ORIGIN_MS,
    DepthValue,
    Kline,
    Ticker,
    decode_depth,
    encode_depth,
)
from xch.wire import (
    FUNDS_AMOUNT,
    FUNDS_ASSET,
    FUNDS_REFERENCE,
    FUNDS_SEQ,
    FUNDS_TIME,
    FUNDS_USER,
    FundsEntry,
    decode_command,
    decode_funds_entry,
    encode_command,
)

# ---- the depth key ----------------------------------------------------------------------


def test_depth_value_round_trips_and_is_the_map_the_engine_always_wrote() -> None:
    depth = DepthValue(7, [(101, 3), (100, 5)], [(102, 1)])
    data = encode_depth(depth)
    assert decode_depth(data) == depth
    # The wire format: a MessagePack map {last_update_id, bids, asks}, levels [ticks, lots].
    assert data == msgspec.msgpack.encode(
        {"last_update_id": 7, "bids": [(101, 3), (100, 5)], "asks": [(102, 1)]}
    )


def test_no_depth_key_is_an_empty_book() -> None:
    assert decode_depth(None) == DepthValue(0, [], [])


# ---- the funds stream -------------------------------------------------------------------


def test_the_funds_script_writes_the_fields_xch_names() -> None:
    xadd = re.search(
        r"redis\.call\('XADD', KEYS\[3\], '\*',(.*?)\)\n", script_source("funds"), re.S
    )
    assert xadd is not None
    written = re.findall(r"'(\w+)', [^,]+", xadd.group(1))
    names = [FUNDS_SEQ, FUNDS_USER, FUNDS_ASSET, FUNDS_AMOUNT, FUNDS_REFERENCE, FUNDS_TIME]
    assert [name.encode() for name in written] == names


def test_a_funds_entry_decodes_from_its_fields() -> None:
    fields = {
        FUNDS_SEQ: b"12",
        FUNDS_USER: b"42",
        FUNDS_ASSET: b"USD",
        FUNDS_AMOUNT: b"-1500",
        FUNDS_REFERENCE: b"payout 9",
        FUNDS_TIME: b"1700000000000",
    }
    assert decode_funds_entry(fields) == FundsEntry(
        12, "42", "USD", -1500, "payout 9", 1700000000000
    )


# ---- kline buckets ----------------------------------------------------------------------


def test_kline_buckets_start_on_monday_2000_01_03_everywhere() -> None:
    assert datetime(2000, 1, 3, tzinfo=UTC) == KLINE_ORIGIN
    assert KLINE_ORIGIN.weekday() == 0
    assert KLINE_ORIGIN_MS == 946_857_600_000
    assert ORIGIN == "TIMESTAMPTZ '2000-01-03 00:00:00+00'"


# ---- order words ------------------------------------------------------------------------


def test_the_schema_tuples_list_the_literals() -> None:
    assert schemas.SIDES == (schemas.BUY, schemas.SELL) == get_args(schemas.Side)
    assert (schemas.LIMIT, schemas.MARKET, *schemas.STOP_TYPES) == schemas.ORDER_TYPES
    assert set(schemas.STOP_LIMIT_TYPES) < set(schemas.STOP_TYPES)
    assert schemas.TIMES_IN_FORCE == (schemas.GTC, schemas.IOC, schemas.FOK, schemas.POST_ONLY)
    assert schemas.STP_MODES == (
        schemas.STP_NONE,
        schemas.STP_EXPIRE_TAKER,
        schemas.STP_EXPIRE_MAKER,
        schemas.STP_EXPIRE_BOTH,
    )
    assert schemas.DEFAULT_STP in schemas.STP_MODES


def test_the_api_accepts_exactly_the_schema_words() -> None:
    assert get_args(models.Side) == schemas.SIDES
    assert get_args(models.OrderType) == schemas.ORDER_TYPES
    assert get_args(models.TimeInForce) == schemas.TIMES_IN_FORCE
    assert get_args(models.SelfTrade) == schemas.STP_MODES
    assert get_args(models.ListLegType) == ("limit_maker", *schemas.STOP_TYPES)


def test_a_command_with_a_word_outside_the_schema_does_not_decode() -> None:
    place = schemas.Place("o", "u", "buy", "limit", 100, 1, 0, "GTC", "NONE", 0)
    assert decode_command(encode_command(place)) == place
    for field in ("side", "type", "tif", "stp"):
        odd = msgspec.structs.replace(place, **{field: "odd"})
        with pytest.raises(msgspec.ValidationError):
            decode_command(encode_command(odd))


# ---- api models that mirror xch structs -------------------------------------------------


def _model_fields(model: type[BaseModel]) -> list[tuple[str, Any]]:
    return [(name, field.annotation) for name, field in model.model_fields.items()]


def _struct_fields(struct: type[msgspec.Struct]) -> list[tuple[str, Any]]:
    return [(field.name, field.type) for field in msgspec.structs.fields(struct)]


@pytest.mark.parametrize(
    ("model", "struct"), [(models.TickerOut, Ticker), (models.KlineOut, Kline)]
)
def test_api_market_data_models_are_the_xch_structs(
    model: type[BaseModel], struct: type[msgspec.Struct]
) -> None:
    assert _model_fields(model) == _struct_fields(struct)
