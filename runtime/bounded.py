"""Dicts that must not grow with what clients send."""

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def put_newest(mapping: dict[K, V], key: K, value: V, most: int) -> None:
    """`mapping[key] = value` as its newest entry, the oldest forgotten to keep at most `most`
    (a dict keeps insertion order: the first is the oldest)."""
    mapping.pop(key, None)
    if len(mapping) >= most:
        del mapping[next(iter(mapping))]
    mapping[key] = value
