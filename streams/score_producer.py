"""Publishing a batch of scores in one go through aiokafka's batch API, not one Faust `Topic.send` per score.

Why: each `Topic.send` passes Faust's channel, topic and producer layers and aiokafka's per-message future,
~15 % of the worker's event loop at the light drain rate (py-spy, `llmwatch bench pipeline`). Here a batch of
scores becomes one record batch per partition. Partitions come from aiokafka's DefaultPartitioner (murmur2 of
the key, as Kafka's Java clients and Faust place keys), so a window key lands where any other producer puts it.
`send` returns once the broker has every record (acks=all, idempotent): the score agent releases the events'
offsets only after that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from llmwatch.schemas.registry import MAX_MESSAGE_BYTES
from llmwatch.settings import Settings

log = logging.getLogger(__name__)


#: header of a score whose rows its worker stored itself (streams/score_sink.py); value: that worker's instance id
STORED_BY = "llmwatch.stored_by"


class ScoreProducer:
    def __init__(self, settings: Settings, topic: str, *, stored_by: str | None = None) -> None:
        """`stored_by`: mark every record with the STORED_BY header (this worker stores the rows itself)."""
        self.topic = topic
        self._headers: list[tuple[str, bytes]] = [(STORED_BY, stored_by.encode())] if stored_by else []
        w = settings.worker
        self._producer = AIOKafkaProducer(
            **settings.kafka_client_kwargs(),
            acks="all",
            enable_idempotence=True,
            compression_type=w.compression_type,
            linger_ms=w.producer_linger_ms,
            max_batch_size=w.producer_batch_bytes,
            max_request_size=MAX_MESSAGE_BYTES,
        )
        self._partitioner = DefaultPartitioner()
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self._producer.start()
            self._started = True

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._producer.stop()

    async def send(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Publish (key, value) records, in order per partition; returns once all are acknowledged. While the
        broker cannot take them (down, timing out) it retries the batch, so the agent waits (back-pressure): a
        record sent twice is one row downstream (windows and tables drop replays)."""
        delay = 0.5
        while True:
            try:
                return await self._send_once(records)
            except KafkaError as e:
                log.warning("publishing %d scores failed (%r); retrying in %.1f s", len(records), e, delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, 10.0)

    async def _send_once(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        if not records:
            return
        await self.start()
        partitions = sorted(await self._producer.partitions_for(self.topic))
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value in records:
            by_partition.setdefault(self._partitioner(key, partitions, partitions), []).append((key, value))
        delivered: list[asyncio.Future[object]] = []
        for partition, items in by_partition.items():
            batch = self._producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None, headers=self._headers) is not None:
                    continue
                if batch.record_count():  # full: send it and start the next one with this record
                    delivered.append(await self._producer.send_batch(batch, self.topic, partition=partition))
                    batch = self._producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None, headers=self._headers) is not None:
                        continue
                # larger than a whole batch: aiokafka's own send takes records up to max_request_size
                delivered.append(
                    await self._producer.send(self.topic, value, key=key, partition=partition, headers=self._headers)
                )
                batch = self._producer.create_batch()
            if batch.record_count():
                delivered.append(await self._producer.send_batch(batch, self.topic, partition=partition))
        await asyncio.gather(*delivered)
