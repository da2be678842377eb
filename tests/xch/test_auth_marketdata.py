import pytest

from xch.auth import InvalidToken, issue_token, verify_token
from xch.marketdata import Ticker, decode_ticker, encode_ticker, interval_seconds

SECRET = "s" * 32


def test_access_token_round_trip() -> None:
    token = issue_token("42", "access", SECRET, ttl_seconds=60)
    assert verify_token(token, "access", SECRET) == "42"


def test_refresh_token_is_not_an_access_token() -> None:
    token = issue_token("42", "refresh", SECRET, ttl_seconds=60)
    with pytest.raises(InvalidToken):
        verify_token(token, "access", SECRET)


def test_expired_and_foreign_tokens_are_refused() -> None:
    with pytest.raises(InvalidToken):
        verify_token(issue_token("42", "access", SECRET, ttl_seconds=-10), "access", SECRET)
    with pytest.raises(InvalidToken):
        verify_token(issue_token("42", "access", "t" * 32, ttl_seconds=60), "access", SECRET)
    with pytest.raises(InvalidToken):
        verify_token("not-a-jwt", "access", SECRET)


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [("1m", 60), ("15m", 900), ("4h", 14400), ("1d", 86400), ("1w", 604800)],
)
def test_interval_seconds(interval: str, seconds: int) -> None:
    assert interval_seconds(interval) == seconds


def test_ticker_json_round_trip() -> None:
    ticker = Ticker("btc-usd", 0, 1, "1.00", "2.00", "0.50", "1.50", "3", "4.5", 2, "0.50", "50.00")
    assert decode_ticker(encode_ticker(ticker)) == ticker
