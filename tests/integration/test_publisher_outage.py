"""The publisher across a real broker outage: nothing lost within the buffer bound, drops counted exactly beyond it.

The broker stopped and restarted here is a private one (own port, own data dir) started through the same
library as `llmwatch kafka up`; the shared broker is never touched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from llmwatch.inference.publisher import EventPublisher
from llmwatch.local.kafka import LocalKafka
from llmwatch.local.kafka_config import free_port
from llmwatch.schemas import InferenceEvent
from llmwatch.settings import Settings
from llmwatch.sim.events import scenario_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BOUND = 2_000
EXTRA = 750  # published beyond the bound while Kafka is down: each must be refused and counted


@pytest.fixture
async def private_broker(tmp_path: Path) -> AsyncIterator[LocalKafka]:
    shared = Settings()
    settings = Settings(
        kafka=f"127.0.0.1:{free_port('127.0.0.1')}",
        data_dir=tmp_path,
        cache_dir=shared.cache_dir,  # the jars the shared broker already provisioned
        partitions=2,
        kafka_heap_mb=256,
    )
    broker = LocalKafka(settings)
    await asyncio.to_thread(broker.up)
    try:
        yield broker
    finally:
        await asyncio.to_thread(broker.down, 30.0, True)


async def _event_ids_on(settings: Settings, topic: str, expected: int, timeout_s: float = 30.0) -> list[str]:
    consumer = AIOKafkaConsumer(
        topic, **settings.kafka_client_kwargs(), group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    ids: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(ids) < expected:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    ids.extend(InferenceEvent.decode(r.value).event_id for r in records)
        # anything past `expected` would be a duplicate: read a little longer so the count is honest
        for records in (await consumer.getmany(timeout_ms=1_000)).values():
            ids.extend(InferenceEvent.decode(r.value).event_id for r in records)
    finally:
        await consumer.stop()
    return ids


async def test_outage_loses_nothing_within_the_bound_and_counts_every_drop(private_broker: LocalKafka) -> None:
    settings = private_broker.settings
    events = iter(scenario_events("steady", 10_000, seed=7, rate=500.0))
    accepted: list[str] = []
    refused: list[str] = []

    def publish(n: int) -> None:
        for _ in range(n):
            event = next(events)
            (accepted if publisher.publish(event) else refused).append(event.event_id)

    publisher = EventPublisher(settings, max_buffer=BOUND, linger_ms=5, stall_s=1.0)
    await publisher.start()
    try:
        # 1. Kafka up: a first batch goes through.
        publish(300)
        assert await publisher.flush(30)
        assert publisher.stats.sent == 300 and publisher.connected

        # 2. Stop the broker mid-run, while events keep coming at ~500/s.
        stopping = asyncio.create_task(asyncio.to_thread(private_broker.down, 30.0))
        while not stopping.done():
            publish(5)
            await asyncio.sleep(0.01)
        await stopping
        assert not refused, "nothing may be refused while the buffer has room"

        # 3. Kafka down: fill the buffer to its bound, then go EXTRA beyond it.
        await asyncio.sleep(0.5)
        sent_while_down = publisher.stats.sent
        room = BOUND - publisher.stats.queued
        assert room > 0
        publish(room + EXTRA)
        assert len(refused) == EXTRA
        assert publisher.stats.dropped == EXTRA
        assert publisher.stats.queued == BOUND
        assert publisher.stats.sent == sent_while_down  # no broker, no acks
        await asyncio.sleep(1.5)
        assert not publisher.connected  # deliveries stalled for longer than stall_s

        # 4. Kafka back: everything accepted gets delivered, with no restart of the publisher.
        await asyncio.to_thread(private_broker.up)
        broker_back = time.monotonic()
        assert await publisher.flush(60), f"not drained: {publisher.stats}"
        drain_s = time.monotonic() - broker_back
        assert publisher.connected
    finally:
        await publisher.stop(drain_timeout=10)

    stats = publisher.stats
    assert stats.accepted == len(accepted)
    assert stats.sent == stats.accepted and stats.failed == 0 and stats.queued == 0
    assert stats.dropped == len(refused) == EXTRA

    on_topic = await _event_ids_on(settings, settings.topics.events, expected=len(accepted))
    assert set(on_topic) == set(accepted), "every accepted event, and no refused one, is on the topic"
    duplicates = len(on_topic) - len(set(on_topic))
    print(
        f"\npublisher outage: accepted={stats.accepted} sent={stats.sent} dropped={stats.dropped} "
        f"retries={stats.retries} duplicates={duplicates} drained {drain_s:.2f}s after the broker answered"
    )
