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
held events. So `HeldOffsets` acks a partition's events only once every earlier one it holds is released.
"""

from __future__ import annotations

import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Held:
    event: Any
    released: bool = False
    stale: bool = False  # from a read before a seek back (rebalance): acked when released, out of order


class HeldOffsets:
    """The events one stream holds, per partition in the order they were read."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._queues: dict[Any, deque[_Held]] = {}
        self._entries: dict[int, _Held] = {}  # id(message) → entry; the entry keeps the message alive
        self._ack_next: list[Any] = []

    def hold(self, event: Any) -> Any:
        """Keep `event`'s offset uncommitted until `release`; returns the event."""
        message = event.message
        if id(message) in self._entries:
            return event  # held already: one hold, one release
        message.incref()
        queue = self._queues.setdefault(message.tp, deque())
        if queue and queue[-1].event.message.offset >= message.offset:
            self._seeked_back(queue)
        entry = _Held(event)
        queue.append(entry)
        self._entries[id(message)] = entry
        return event

    async def release(self, events: Iterable[Any]) -> None:
        """Mark `events` done; ack every partition's longest released prefix."""
        touched = set()
        while self._ack_next:
            await self.stream.ack(self._ack_next.pop())
        for event in events:
            entry = self._entries.pop(id(event.message), None)
            if entry is None:
                log.debug("release of an event that is not held: %s", event.message.offset)
                continue
            if entry.stale:
                await self.stream.ack(entry.event)
                continue
            entry.released = True
            touched.add(event.message.tp)
        for tp in touched:
            queue = self._queues[tp]
            while queue and queue[0].released:
                await self.stream.ack(queue.popleft().event)

    def held(self) -> int:
        return len(self._entries)

    def forget(self, partitions: set[int]) -> int:
        """Drop the holds on `partitions` without acking them: they moved to another consumer (a rebalance), which
        reads them again from the last commit. Returns how many were dropped."""
        dropped = 0
        for tp in [tp for tp in self._queues if tp.partition in partitions]:
            for entry in self._queues.pop(tp):
                self._entries.pop(id(entry.event.message), None)
                dropped += 1
        return dropped

    def _seeked_back(self, queue: deque[_Held]) -> None:
        """The partition is read again from an earlier offset (a rebalance seeks to the committed offset):
        what this process still holds from the earlier read no longer orders the new one. Those events are
        acked as they are released, as Faust would; it ignores an ack below its last commit."""
        log.info("a partition is read again from an earlier offset; %d earlier holds set apart", len(queue))
        while queue:
            entry = queue.popleft()
            entry.stale = True
            if entry.released:  # released already, waiting on an older one: acked with the next release
                self._ack_next.append(entry.event)


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
