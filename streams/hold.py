"""Holding an event's offset back from commit until its effect is durable, and acking in offset order.

Faust acks an event (making its offset committable) when the stream moves past it; `stream.take`
even acks a batch whose processing raised. A sink or a window must only release an offset once the
write or the emit is durable, so we take one more reference on the message (Faust's own refcount,
the mechanism it uses when several agents read one topic) and release it ourselves.

Releases come out of order (a window closes while an older one is still open; a duplicate is released
at once), but Faust must only ever see a contiguous prefix acked. faust-streaming 0.15.3 commits the
first run of consecutive acked offsets without checking that it starts where the last commit ended when
no commit is known yet (or it was 0), and it lets a gap of exactly one held offset through otherwise
(`Consumer._new_offset`: acked 5-7 with 0-4 held commits 8). A kill -9 after such a commit loses the
held events. So `HeldOffsets` acks an event only once every event it holds at that offset or below on the same
partition is released.

Ordered by offset, not by reading order, because a partition can be read twice: a rebalance seeks every partition
a worker keeps back to its commit, so the same offsets arrive again as new messages while the first copies are
still held (in a window not yet emitted). The window agent releases the second copy at once (a duplicate); acking
it would commit the offset although its first copy's effect is not durable, and a kill -9 then loses it (it did:
tests/reliability/test_scale_out.py, once in four CI runs). Ordered by offset, the copy waits for the original.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Held:
    event: Any
    released: bool = False


class HeldOffsets:
    """The events one stream holds, per partition ordered by offset (then by when they were read)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._heaps: dict[Any, list[tuple[int, int, _Held]]] = {}  # tp → (offset, read order, entry)
        self._entries: dict[int, _Held] = {}  # id(message) → entry not yet released; the entry keeps it alive
        self._reads = itertools.count()

    def hold(self, event: Any) -> Any:
        """Keep `event`'s offset uncommitted until `release`; returns the event."""
        message = event.message
        if id(message) in self._entries:
            return event  # held already: one hold, one release
        message.incref()
        heap = self._heaps.setdefault(message.tp, [])
        entry = _Held(event)
        heapq.heappush(heap, (message.offset, next(self._reads), entry))
        self._entries[id(message)] = entry
        return event

    async def release(self, events: Iterable[Any]) -> None:
        """Mark `events` done; ack, per partition, every event with no unreleased one at or below its offset."""
        touched = set()
        for event in events:
            entry = self._entries.pop(id(event.message), None)
            if entry is None:
                log.debug("release of an event that is not held: %s", event.message.offset)
                continue
            entry.released = True
            touched.add(event.message.tp)
        for tp in touched:
            heap = self._heaps[tp]
            while heap and heap[0][2].released:
                await self.stream.ack(heapq.heappop(heap)[2].event)

    def held(self) -> int:
        return len(self._entries)

    def forget(self, partitions: set[int]) -> int:
        """Drop the holds on `partitions` without acking them: they moved to another consumer (a rebalance), which
        reads them again from the last commit. Returns how many were dropped."""
        dropped = 0
        for tp in [tp for tp in self._heaps if tp.partition in partitions]:
            for _, _, entry in self._heaps.pop(tp):
                self._entries.pop(id(entry.event.message), None)
                dropped += 1
        return dropped


_BY_STREAM: weakref.WeakKeyDictionary[Any, HeldOffsets] = weakref.WeakKeyDictionary()


def held_offsets(stream: Any) -> HeldOffsets:
    """The one HeldOffsets of `stream` (an agent's stream lives as long as the agent)."""
    found = _BY_STREAM.get(stream)
    if found is None:
        found = _BY_STREAM[stream] = HeldOffsets(stream)
    return found


async def process_held(
    stream: Any, batch: list[Any], process: Callable[[], Awaitable[Any]], *, agent: str, metrics: Any
) -> bool:
    """Hold every event of `batch`, run `process()`, then release them. If it raises, the offsets stay held:
    never committed by this process and replayed after its restart (outputs are idempotent downstream), and
    `llmwatch_stuck_batches_total` shows the stall. A worker outlives one bad batch."""
    offsets = held_offsets(stream)
    held = [offsets.hold(e) for e in batch]
    return await release_after(offsets, held, process, agent=agent, metrics=metrics)


async def release_after(
    offsets: HeldOffsets, held: list[Any], process: Callable[[], Awaitable[Any]], *, agent: str, metrics: Any
) -> bool:
    """`process_held` for events already held: release them once `process()` succeeded, keep them otherwise."""
    try:
        await process()
    except Exception:
        log.exception("%s: a batch of %d failed; its offsets stay uncommitted", agent, len(held))
        metrics.stuck_batches.labels(agent=agent).inc()
        return False
    await offsets.release(held)
    return True
