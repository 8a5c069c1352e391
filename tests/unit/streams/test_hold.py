"""HeldOffsets: Faust only ever sees a contiguous prefix of each partition acked, whatever order releases come in
and however often a partition is read.

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
    """What faust-streaming would commit for these acks (its own code, on a stand-in for the consumer, which keeps
    each acked offset once: `Consumer.ack` checks its `_acked_index`)."""
    fake = SimpleNamespace(
        _acked={"tp": sorted(set(acked))},
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


async def test_a_second_read_of_held_offsets_waits_for_the_first() -> None:
    """After a rebalance the partitions a worker keeps are read again from the commit, as new messages, while the
    first copies are still held. Releasing a copy acks nothing below an offset whose first copy is still held."""
    stream = FakeStream()
    held = HeldOffsets(stream)
    first = [FakeEvent(FakeMessage("tp", i)) for i in range(4)]
    for e in first:
        held.hold(e)
    await stream.moved_past(first)
    await held.release([first[0], first[2]])  # 2 waits on 1
    assert stream.acked["tp"] == [0]
    again = [FakeEvent(FakeMessage("tp", i)) for i in range(1, 4)]
    for e in again:
        held.hold(e)
    await stream.moved_past(again)
    await held.release(again)  # duplicates of what the first read still holds: released at once
    assert stream.acked["tp"] == [0], "a copy was acked while the first read still holds offset 1"
    await held.release([first[1]])
    assert sorted(stream.acked["tp"]) == [0, 1, 1, 2, 2], "the copy of 3 waits on its first copy"
    await held.release([first[3]])
    assert sorted(stream.acked["tp"]) == [0, 1, 1, 2, 2, 3, 3]
    assert held.held() == 0


@pytest.mark.parametrize("seed", range(10))
async def test_a_window_kept_over_a_rebalance_holds_the_commit(seed: int) -> None:
    """The scale-out failure, on the real windower and Faust's own commit computation: a worker keeps a partition
    over a rebalance with a window still open; the partition is read again from the commit and every record of the
    second read is a duplicate, released at once. The commit must not pass the open window's events (a kill -9
    would lose them) until the window is emitted."""
    from datetime import UTC, datetime, timedelta

    from llmwatch.schemas import EvalScores
    from llmwatch.streams.windowing import TumblingWindower, WindowConfig

    rng = random.Random(seed)
    windower = TumblingWindower(WindowConfig(size_s=60, lateness_s=0, idle_close_s=1000))
    stream = FakeStream()
    held = HeldOffsets(stream)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    n = rng.randint(5, 40)
    scores = [
        EvalScores(
            event_id=f"e{i}",
            ts=t0 + timedelta(seconds=i),
            deployment="d",
            model_version="v",
            source_partition=0,
            source_offset=i,
        )
        for i in range(n)
    ]

    async def read(copy: list[FakeEvent]) -> None:
        for e in copy:
            held.hold(e)
        for e in copy:
            outcome = windower.add(scores[e.message.offset], partition=0, offset=e.message.offset, wall_now=0.0)
            if outcome == "duplicate":
                await held.release([e])
        await stream.moved_past(copy)

    first = [FakeEvent(FakeMessage("tp", i)) for i in range(n)]
    await read(first)
    assert windower.open_windows == 1
    await read([FakeEvent(FakeMessage("tp", i)) for i in range(n)])  # the seek back to the commit (none yet)
    assert stream.acked["tp"] == [], f"offsets {stream.acked['tp']} acked while the open window holds them"
    (closing,) = windower.due(0.0, flush_all=True)
    assert closing.stats.count == n
    await held.release(first)  # the emit is durable
    assert faust_commit_offset(stream.acked["tp"], None) == n


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
