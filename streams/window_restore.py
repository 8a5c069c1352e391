"""Closed windows read back from llm.window.metrics when a window agent starts.

Why: a window's events are released once its metrics are emitted, but Kafka commits offsets per partition
and only up to the first event still held; so after a crash, events of windows that were already emitted
can be replayed. Without the emitted state the agent would rebuild such a window from the replayed part
alone and emit it again with a smaller count, and the latest emit is what ClickHouse keeps (FINAL).
With it, `TumblingWindower.restore_closed` recognises the replayed events as duplicates by source position.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from llmwatch.schemas import SchemaError, WindowMetrics
from llmwatch.settings import Settings

log = logging.getLogger(__name__)


async def recent_window_metrics(
    settings: Settings, topic: str, since_s: float, *, timeout_s: float = 60.0
) -> list[WindowMetrics]:
    """Every WindowMetrics on `topic` written in the last `since_s` seconds (all partitions, no group)."""
    if topic not in await _topics(settings):
        return []
    # subscribed without a group: the consumer takes every partition itself once it has the topic's metadata
    consumer = AIOKafkaConsumer(topic, **settings.kafka_client_kwargs(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    out: list[WindowMetrics] = []
    try:
        deadline = time.monotonic() + 10
        while not consumer.assignment() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        tps = sorted(consumer.assignment())
        if not tps:
            log.warning("no partitions of %s were assigned within 10 s; nothing restored", topic)
            return out
        start_ms = int((time.time() - since_s) * 1000)
        starts = await consumer.offsets_for_times({tp: start_ms for tp in tps})
        ends = await consumer.end_offsets(tps)
        pending: dict[TopicPartition, int] = {}
        for tp in tps:
            found = starts.get(tp)
            if found is None or found.offset >= ends[tp]:
                continue
            consumer.seek(tp, found.offset)
            pending[tp] = ends[tp]
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batches.items():
                for r in records:
                    try:
                        out.append(WindowMetrics.decode(r.value))
                    except SchemaError as e:
                        log.warning("skipping an unreadable window record at %s:%d (%s)", tp, r.offset, e)
            for tp in list(pending):  # by position, not by record: compaction and markers leave offset gaps
                if await consumer.position(tp) >= pending[tp]:
                    del pending[tp]
        if pending:
            log.warning("window restore stopped after %.0f s with %d partitions unread", timeout_s, len(pending))
    finally:
        await consumer.stop()
    return out


async def _topics(settings: Settings) -> set[str]:
    consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        return set(await consumer.topics())
    finally:
        await consumer.stop()
