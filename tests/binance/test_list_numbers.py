"""The OCO list records and numbers of the Binance-compatible routes (xch.order_lists): no
stack needed."""

from api.services.list_plans import leg_ids
from xch.order_lists import (
    MAX_LIST_NUMBER,
    ListRecord,
    binance_list_id,
    decode_list,
    encode_list,
    list_number,
)


def test_list_numbers_round_trip_and_legs_are_order_ids_below_2_53() -> None:
    for number in (1, 2, 4095, MAX_LIST_NUMBER):
        list_id = binance_list_id("btc-usd", number)
        assert list_number(list_id) == number
        for leg in leg_ids(list_id):
            market, _, digits = leg.partition(".")
            assert market == "btc-usd" and len(digits) == 16
            assert 2**52 <= int(digits, 16) < 2**53
    assert leg_ids(binance_list_id("btc-usd", 5)) == (
        "btc-usd.0010000000000050",
        "btc-usd.0010000000000051",
    )


def test_a_native_list_id_is_its_hex_number() -> None:
    assert list_number("btc-usd.00000000000000ff") == 255


def test_records_round_trip() -> None:
    record = ListRecord(
        "btc-usd", binance_list_id("btc-usd", 7), "mine", [("a", "x"), ("b", "")], 9
    )
    assert decode_list(encode_list(record)) == record
