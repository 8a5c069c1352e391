"""HeldOffsets: Faust only ever sees a contiguous prefix of each partition acked, whatever order releases come in.

The commit offset is computed by faust-streaming's own `Consumer._new_offset` over what was acked, so these
tests check the property that matters (nothing held is ever below the commit) against the library's code.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from intervaltree import IntervalTree

from llmwatch.streams.hold import HeldOffsets, process_held


@dataclass(eq=False)
class FakeMessage:
    tp: str
    offset: int
    refcount: int = 1  # the agent's own reference, dropped when the stream moves past it

    def incref(self) -> None:
        self.refcount += 1


@dataclass(eq=False)
class FakeEvent:
    message: FakeMessage


@dataclass(eq=False)
class FakeStream:
    """Decrefs like Faust's Stream.ack; a message whose count reaches 0 is acked to the consumer."""

    acked: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    async def ack(self, event: FakeEvent) -> bool:
        event.message.refcount -= 1
        if event.message.refcount == 0:
            self.acked[event.message.tp].append(event.message.offset)
            return True
        return False

    async def moved_past(self, events: list[FakeEvent]) -> None:
        for e in events:
            await self.ack(e)


def faust_commit_offset(acked: list[int], committed: int | None) -> int | None:
    """What faust-streaming would commit for these acks (its own code, on a stand-in for the consumer)."""
    fake = SimpleNamespace(
        _acked={"tp": sorted(acked)},
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None, {"tp": committed}),
        _acked_index=defaultdict(set),
    )
    return Consumer._new_offset(fake, "tp")


def test_faust_commits_past_a_held_offset_when_acks_come_out_of_order() -> None:
    """Why HeldOffsets exists: with no commit yet, acks 5-7 while 0-4 are held commit 8 (so do 101-103 after a
    commit of 100 with 100 held). If a future faust fixes this, the ordering is still right, only no longer needed."""
    assert faust_commit_offset([5, 6, 7], None) == 8
    assert faust_commit_offset([101, 102, 103], 100) == 104


async def test_releases_out_of_order_are_acked_in_offset_order() -> None:
    stream = FakeStream()
    held = HeldOffsets(stream)
    events = [FakeEvent(FakeMessage("tp", i)) for i in range(10)]
    for e in events:
        held.hold(e)
    await stream.moved_past(events)
    await held.release(events[5:])
    assert stream.acked["tp"] == [], "acked past offsets 0-4, which are still held"
    assert held.held() == 5
    await held.release(events[:5])
    assert stream.acked["tp"] == list(range(10))
    assert held.held() == 0


async def test_partitions_are_ordered_independently() -> None:
    stream = FakeStream()
    held = HeldOffsets(stream)
    a = [FakeEvent(FakeMessage("a", i)) for i in range(3)]
    b = [FakeEvent(FakeMessage("b", i)) for i in range(3)]
    for e in a + b:
        held.hold(e)
    await stream.moved_past(a + b)
    await held.release([b[0], a[1]])
    assert stream.acked == {"b": [0]}
    await held.release([a[0]])
    assert stream.acked == {"b": [0], "a": [0, 1]}


@pytest.mark.parametrize("seed", range(20))
async def test_commit_never_passes_a_held_offset(seed: int) -> None:
    """Random release orders (windows closing out of order, duplicates released at once) under Faust's own commit
    computation: after every release the commit offset stays at or below the oldest offset still held."""
    rng = random.Random(seed)
    stream = FakeStream()
    held = HeldOffsets(stream)
    events = [FakeEvent(FakeMessage("tp", i)) for i in range(200)]
    for e in events:
        held.hold(e)
    await stream.moved_past(events)
    pending = events[:]
    rng.shuffle(pending)
    committed: int | None = None
    while pending:
        n = rng.randint(1, 9)
        chunk, pending = pending[:n], pending[n:]
        await held.release(chunk)
        new = faust_commit_offset(stream.acked["tp"], committed) if stream.acked["tp"] else None
        if new is not None:
            still_held = [e.message.offset for e in events if e.message.refcount > 0]
            assert not still_held or new <= min(still_held), f"commit {new} passes held offset {min(still_held)}"
            committed = new
            stream.acked["tp"] = [o for o in stream.acked["tp"] if o >= committed]
    assert committed == 200


async def test_a_seek_back_sets_the_earlier_holds_apart() -> None:
    """After a rebalance the partition is read again from the commit: the new read is ordered on its own, and the
    earlier holds are acked as they are released (Faust ignores acks below its commit)."""
    stream = FakeStream()
    held = HeldOffsets(stream)
    first = [FakeEvent(FakeMessage("tp", i)) for i in range(4)]
    for e in first:
        held.hold(e)
    await stream.moved_past(first)
    await held.release([first[2]])  # waits on 0 and 1
    again = [FakeEvent(FakeMessage("tp", i)) for i in range(1, 4)]
    for e in again:
        held.hold(e)
    await stream.moved_past(again)
    await held.release([first[0]])  # stale: acked as released, and the waiting 2 goes with it
    assert sorted(stream.acked["tp"]) == [0, 2]
    await held.release(again[1:])
    assert sorted(stream.acked["tp"]) == [0, 2], "the new read's 2-3 wait on its 1"
    await held.release([again[0], first[1], first[3]])
    assert sorted(stream.acked["tp"]) == [0, 1, 1, 2, 2, 3, 3]
    assert held.held() == 0


async def test_a_failed_batch_keeps_later_batches_from_being_acked() -> None:
    """process_held: a batch that raised stays held, so the batches after it cannot be committed past it."""
    stream = FakeStream()
    metrics = SimpleNamespace(stuck_batches=SimpleNamespace(labels=lambda **_: SimpleNamespace(inc=lambda: None)))
    first = [FakeEvent(FakeMessage("tp", i)) for i in range(3)]
    second = [FakeEvent(FakeMessage("tp", i)) for i in range(3, 6)]

    async def fail() -> Any:
        raise RuntimeError("boom")

    async def ok() -> None:
        return None

    assert not await process_held(stream, first, fail, agent="t", metrics=metrics)
    await stream.moved_past(first)
    assert await process_held(stream, second, ok, agent="t", metrics=metrics)
    await stream.moved_past(second)
    assert stream.acked["tp"] == [], "offsets 3-5 were acked while 0-2 stay held"
