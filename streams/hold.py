"""Holding an event's offset back from commit until its effect is durable.

Faust acks an event (making its offset committable) when the stream moves past it; `stream.take`
even acks a batch whose processing raised. A sink or a window must only release an offset once the
write or the emit is durable, so we take one more reference on the message (Faust's own refcount,
the mechanism it uses when several agents read one topic) and release it ourselves.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


def hold(event: Any) -> Any:
    """Keep `event`'s offset uncommitted until `release` is called; returns the event."""
    event.message.incref()
    return event


async def release(stream: Any, events: list[Any]) -> None:
    """Ack held events (their offsets become committable)."""
    for event in events:
        await stream.ack(event)


async def process_held(
    stream: Any, batch: list[Any], process: Callable[[], Awaitable[Any]], *, agent: str, metrics: Any
) -> bool:
    """Hold every event of `batch`, run `process()`, then release them. If it raises, the offsets stay held:
    never committed by this process and replayed after its restart (outputs are idempotent downstream), and
    `llmwatch_stuck_batches_total` shows the stall. A worker outlives one bad batch."""
    held = [hold(e) for e in batch]
    try:
        await process()
    except Exception:
        log.exception("%s: a batch of %d failed; its offsets stay uncommitted", agent, len(batch))
        metrics.stuck_batches.labels(agent=agent).inc()
        return False
    await release(stream, held)
    return True
