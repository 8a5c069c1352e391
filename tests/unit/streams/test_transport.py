"""The consumer's record hand-off (streams/patches.py) keeps Faust's semantics: a hand-off that finishes at once
returns its result, one that has to wait still gives way to a rebalance or a stop, errors propagate."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmwatch.settings import Settings
from llmwatch.streams.app import create_app
from llmwatch.streams.patches import Consumer


def _consumer() -> Consumer:
    app = create_app(Settings())
    consumer = app.transport.create_consumer(
        callback=lambda message: None,
        on_partitions_revoked=lambda *a: None,
        on_partitions_assigned=lambda *a: None,
    )
    assert isinstance(consumer, Consumer)
    return consumer


async def test_a_hand_off_that_finishes_at_once_returns_its_result() -> None:
    consumer = _consumer()
    calls: list[int] = []

    async def hand_off() -> int:
        calls.append(1)
        return 7

    coro = hand_off()
    result = await consumer.wait_first(coro, consumer.suspend_flow.wait())
    assert (result.done, result.results, result.stopped) == ([coro], [7], False)
    assert calls == [1]


async def test_a_waiting_hand_off_completes_when_its_wait_ends() -> None:
    consumer = _consumer()
    room = asyncio.Event()

    async def hand_off() -> str:
        await room.wait()  # a full stream buffer
        return "delivered"

    waiting = asyncio.ensure_future(consumer.wait_first(hand_off(), consumer.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    room.set()
    result = await asyncio.wait_for(waiting, 1)
    assert result.results == ["delivered"] and not result.stopped


@pytest.mark.parametrize("interrupt", ["rebalance", "stop"])
async def test_a_waiting_hand_off_gives_way_to_a_rebalance_or_a_stop(interrupt: str) -> None:
    consumer = _consumer()
    outcome: list[str] = []

    async def hand_off() -> None:
        try:
            await asyncio.Event().wait()  # never gets room
            outcome.append("delivered")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    waiting = asyncio.ensure_future(consumer.wait_first(hand_off(), consumer.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    if interrupt == "rebalance":
        consumer.suspend_flow.set()
    else:
        consumer._stopped.set()
    result: Any = await asyncio.wait_for(waiting, 1)
    await asyncio.sleep(0)  # the cancellation reaches the hand-off
    assert outcome == ["cancelled"]
    assert result.stopped == (interrupt == "stop")
    assert result.results == ([True] if interrupt == "rebalance" else [])  # the winner: suspend_flow.wait()


async def test_a_hand_off_error_propagates() -> None:
    consumer = _consumer()

    async def hand_off() -> None:
        raise ValueError("bad record")

    with pytest.raises(ValueError, match="bad record"):
        await consumer.wait_first(hand_off(), consumer.suspend_flow.wait())


async def test_other_waits_take_faust_s_path() -> None:
    consumer = _consumer()

    async def slow() -> str:
        await asyncio.sleep(0.01)
        return "slow"

    async def never() -> None:
        await asyncio.Event().wait()

    result = await consumer.wait_first(slow(), never(), timeout=1)
    assert result.results == ["slow"]


async def test_the_worker_consumer_waits_at_most_the_configured_fetch_wait() -> None:
    app = create_app(Settings(worker={"fetch_max_wait_ms": 40}))
    consumer = app.transport.create_consumer(
        callback=lambda message: None,
        on_partitions_revoked=lambda *a: None,
        on_partitions_assigned=lambda *a: None,
    )
    kafka_consumer = consumer._thread._create_worker_consumer(app.transport)
    assert kafka_consumer._fetch_max_wait_ms == 40  # Faust's own would be 1,500
