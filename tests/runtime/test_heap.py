"""runtime.heap: what startup built is exempt from later collections, its garbage is not."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from runtime.heap import freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_startup_garbage_is_collected_before_freezing() -> None:
    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle: only the collector frees it
    gone = weakref.ref(first)
    del first, second
    freeze_startup_heap()
    assert gone() is None


def test_what_survives_startup_is_exempt_from_collections() -> None:
    kept = Node()
    freeze_startup_heap()
    assert gc.get_freeze_count() > 10_000  # the interpreter's, pytest's, this module's
    later = gc.get_objects()  # what a collection walks
    assert len(later) < 100
    assert not any(obj is kept for obj in later)
