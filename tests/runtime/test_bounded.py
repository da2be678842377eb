"""runtime/bounded.py: the API-key cache and the remembered waits keep at most their size."""

from runtime.bounded import put_newest


def test_the_oldest_entry_goes_first() -> None:
    mapping: dict[str, int] = {}
    for number, key in enumerate("abc"):
        put_newest(mapping, key, number, most=3)
    put_newest(mapping, "a", 10, most=3)  # updated: now the newest
    put_newest(mapping, "d", 11, most=3)
    assert mapping == {"c": 2, "a": 10, "d": 11}
    assert list(mapping) == ["c", "a", "d"]
