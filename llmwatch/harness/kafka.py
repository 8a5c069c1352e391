"""Producing test and benchmark traffic onto a topic, and reading a topic back whole."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from llmwatch.schemas import Payload, topic_registry
from llmwatch.settings import Settings


async def produce(
    settings: Settings,
    topic: str,
    records: Iterable[Payload | bytes],
    *,
    key_of: Callable[[Payload], str | None] | None = None,
) -> int:
    """Publish payloads (keyed by `key_of`, else their event_id) or raw bytes to `topic`; returns how many were
    sent, all acknowledged by every in-sync replica."""
    producer = AIOKafkaProducer(
        **settings.kafka_client_kwargs(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        compression_type="zstd",
        max_request_size=16 * 1024 * 1024,
    )
    await producer.start()
    n = 0
    try:
        for record in records:
            if isinstance(record, Payload):
                key = key_of(record) if key_of else getattr(record, "event_id", None)
                await producer.send(topic, value=record.encode(), key=key.encode() if key else None)
            else:
                await producer.send(topic, value=record)
            n += 1
        await producer.flush()
    finally:
        await producer.stop()
    return n


def produce_sync(settings: Settings, topic: str, records: Iterable[Payload | bytes]) -> int:
    return asyncio.run(produce(settings, topic, records))


def read_partitions(settings: Settings, role: str) -> dict[int, list[tuple[bytes | None, bytes]]]:
    """Every (key, value) in the topic of `role`, from the beginning, per partition in offset order."""
    spec = topic_registry(settings)[role]

    async def read() -> dict[int, list[tuple[bytes | None, bytes]]]:
        consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            out: dict[int, list[tuple[bytes | None, bytes]]] = {p: [] for p in range(spec.partitions)}
            while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
                for tp, records in (await consumer.getmany(*tps, timeout_ms=1000)).items():
                    out[tp.partition].extend((r.key, r.value) for r in records)
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())
