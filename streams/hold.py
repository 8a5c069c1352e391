"""Holding an event's offset back from commit until its effect is durable.

Faust acks an event (making its offset committable) when the stream moves past it; `stream.take`
even acks a batch whose processing raised. A sink or a window must only release an offset once the
write or the emit is durable, so we take one more reference on the message (Faust's own refcount,
the mechanism it uses when several agents read one topic) and release it ourselves.
"""

from __future__ import annotations

from typing import Any


def hold(event: Any) -> Any:
    """Keep `event`'s offset uncommitted until `release` is called; returns the event."""
    event.message.incref()
    return event


async def release(stream: Any, events: list[Any]) -> None:
    """Ack held events (their offsets become committable)."""
    for event in events:
        await stream.ack(event)
