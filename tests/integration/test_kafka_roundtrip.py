"""Produce to and consume from the real broker with aiokafka."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from llmwatch.schemas import InferenceEvent, TrafficWeights
from llmwatch.settings import Settings

pytestmark = pytest.mark.integration


async def _read_all(settings: Settings, topic: str, expected: int, timeout_s: float = 15.0) -> list:
    consumer = AIOKafkaConsumer(
        topic, **settings.kafka_client_kwargs(), auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    records = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(records) < expected:
                batch = await consumer.getmany(timeout_ms=500)
                for msgs in batch.values():
                    records.extend(msgs)
    finally:
        await consumer.stop()
    return records


async def test_inference_event_round_trips_through_an_events_topic(kafka_settings: Settings, kafka_topic: str) -> None:
    event = InferenceEvent(
        deployment="chat",
        model="tiny-llama",
        model_version="v2",
        variant="canary",
        prompt="What is Kafka?",
        response="A distributed log.",
        input_tokens=4,
        output_tokens=5,
        ttft_ms=21.5,
        tpot_ms=3.25,
        e2e_ms=40.0,
    )
    producer = AIOKafkaProducer(**kafka_settings.kafka_client_kwargs(), acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(kafka_topic, event.encode(), key=event.event_id.encode())
    finally:
        await producer.stop()

    [record] = await _read_all(kafka_settings, kafka_topic, expected=1)
    assert record.key == event.event_id.encode()
    assert (record.partition, record.offset) == (meta.partition, meta.offset)
    assert InferenceEvent.decode(record.value) == event


async def test_keys_spread_over_partitions_and_keep_order(kafka_settings: Settings, topic_factory) -> None:
    topic = topic_factory("events", partitions=3)
    producer = AIOKafkaProducer(**kafka_settings.kafka_client_kwargs(), acks="all", linger_ms=5)
    await producer.start()
    try:
        sends = [
            await producer.send(topic, f"{key}:{i}".encode(), key=key.encode()) for i in range(20) for key in "abcdef"
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()

    records = await _read_all(kafka_settings, topic, expected=120)
    assert len(records) == 120
    by_key: dict[bytes, list[int]] = {}
    partitions_of_key: dict[bytes, set[int]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(int(r.value.split(b":")[1]))
        partitions_of_key.setdefault(r.key, set()).add(r.partition)
    assert all(seq == list(range(20)) for seq in by_key.values())  # per-key order survives
    assert all(len(p) == 1 for p in partitions_of_key.values())  # one key, one partition
    assert len({r.partition for r in records}) > 1  # six keys over three partitions use more than one


async def test_weights_topic_keeps_last_value_per_key(kafka_settings: Settings, topic_factory) -> None:
    """The compacted weights topic: the consumer sees both writes (compaction is lazy) and the last wins."""
    topic = topic_factory("weights")
    producer = AIOKafkaProducer(**kafka_settings.kafka_client_kwargs(), acks="all")
    await producer.start()
    try:
        for canary in (0.05, 0.25):
            weights = TrafficWeights(
                deployment="chat",
                weights={"v1": 1 - canary, "v2": canary},
                baseline_version="v1",
                canary_version="v2",
            )
            await producer.send_and_wait(topic, weights.encode(), key=b"chat")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(**kafka_settings.kafka_client_kwargs(), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, end - 1)
        last = await asyncio.wait_for(consumer.getone(), 10)
    finally:
        await consumer.stop()
    assert end == 2
    assert TrafficWeights.decode(last.value).weights["v2"] == pytest.approx(0.25)
