"""The latest CanaryVerdict per deployment, from the tail of the verdicts topic (no consumer group).

`llmwatch rollout status` shows what the judge said last next to the weights: which metrics still block, how many
more requests a decision needs, the observed canary share, and what the judge is sure to stop at the current step
and traffic. Verdicts are keyed by deployment, so each one's latest sits near the end of one partition: reading the
last `depth` records of every partition finds it without reading the topic whole.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError as AioKafkaError

from llmwatch.errors import KafkaError
from llmwatch.schemas import CanaryVerdict, SchemaError
from llmwatch.settings import Settings

log = logging.getLogger(__name__)


async def latest_verdicts(settings: Settings, *, depth: int = 500, timeout_s: float = 15.0) -> dict[str, CanaryVerdict]:
    """deployment → its newest verdict among the last `depth` records of each verdicts partition."""
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_kwargs(), group_id=None, enable_auto_commit=False, metadata_max_age_ms=5_000
    )
    topic = settings.topics.verdicts
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        await consumer.start()
        consumer.subscribe([topic])  # no group: every partition is assigned once the topic's metadata is in
        while not consumer.assignment() and loop.time() < deadline:
            await consumer.getmany(timeout_ms=100, max_records=1)
        tps = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        if not tps:
            return {}
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(begin[tp], end[tp] - depth))
        latest: dict[str, CanaryVerdict] = {}
        while any([await consumer.position(tp) < end[tp] for tp in tps]) and loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    try:
                        v = CanaryVerdict.decode(r.value) if r.value is not None else None
                    except SchemaError as e:
                        log.debug("skipping a bad verdict record: %s", e.reason)
                        continue
                    if v is not None and (v.deployment not in latest or v.ts >= latest[v.deployment].ts):
                        latest[v.deployment] = v
        return latest
    except AioKafkaError as e:
        raise KafkaError(f"reading {topic}: {e}") from e
    finally:
        await consumer.stop()
