"""streams/heap.py: the start-up heap leaves the collector's generations; what comes later is collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from llmwatch.streams.heap import freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # other tests' processes keep their usual collector


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_freeze_moves_the_heap_out_and_later_cycles_are_still_collected(unfrozen: None) -> None:
    before = _Node()
    frozen = freeze_startup_heap("test")
    # frozen objects may still be freed (by this thread's logging, or threads earlier tests left running), which
    # lowers the count; nothing joins the permanent generation without another freeze
    assert frozen > 1000 and 1000 < gc.get_freeze_count() <= frozen
    assert not any(o is before for o in gc.get_objects())  # frozen objects are out of every generation

    collected = []
    later = _Node()
    ref = weakref.ref(later, collected.append)
    del later
    gc.collect()
    assert ref() is None and collected  # made after the freeze: collected as before
