"""Reading the compacted weights topic and talking to the controller, without a consumer group.

The weights topic is the truth about every rollout, so whoever needs that truth reads it whole, from the
beginning, with no group and no committed offsets: the controller on start (to rebuild its machines), the
judge (to know which canary it judges, then to follow), `llmwatch rollout` (status, --wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError as AioKafkaError

from llmwatch.errors import KafkaError
from llmwatch.schemas import ControlCommand, SchemaError, TrafficWeights
from llmwatch.settings import Settings

log = logging.getLogger(__name__)

WeightsHandler = Callable[[TrafficWeights], Any]


def newer(current: TrafficWeights | None, candidate: TrafficWeights) -> bool:
    """Whether `candidate` supersedes `current` (higher seq; a replayed copy never does)."""
    return current is None or candidate.seq > current.seq


def _consumer(settings: Settings, poll_ms: int = 100) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **settings.kafka_client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=poll_ms,
        metadata_max_age_ms=5_000,
    )


def _decode(value: bytes | None) -> TrafficWeights | None:
    if value is None:
        return None
    try:
        return TrafficWeights.decode(value)
    except SchemaError as e:
        log.warning("skipping a bad TrafficWeights record: %s", e.reason)
        return None


async def _replay(
    consumer: AIOKafkaConsumer, topic: str, handle: Callable[[TrafficWeights], Any], timeout_s: float, poll_ms: int
) -> None:
    """Subscribe (no group: every partition, from the beginning) and handle records until the end offsets of
    the moment the partitions were assigned; raise KafkaError when the topic doesn't appear within `timeout_s`."""
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout_s
    end: dict[TopicPartition, int] | None = None
    while True:
        for records in (await consumer.getmany(timeout_ms=poll_ms)).values():
            for r in records:
                w = _decode(r.value)
                if w is not None:
                    result = handle(w)
                    if isinstance(result, Awaitable):
                        await result
        assigned = list(consumer.assignment())
        if assigned and end is None:
            end = await consumer.end_offsets(assigned)
        if end is not None and all([await consumer.position(tp) >= off for tp, off in end.items()]):
            return
        if time.monotonic() > deadline:
            what = "does not exist (run `llmwatch kafka up`)" if not assigned else "could not be read to its end"
            raise KafkaError(f"topic {topic} {what} within {timeout_s:.0f} s")


async def read_weights(settings: Settings, *, timeout_s: float = 30.0) -> dict[str, TrafficWeights]:
    """The latest TrafficWeights per deployment: the whole topic, read to the end offsets of now."""
    latest: dict[str, TrafficWeights] = {}

    def keep(w: TrafficWeights) -> None:
        if newer(latest.get(w.deployment), w):
            latest[w.deployment] = w

    consumer = _consumer(settings)
    try:
        await consumer.start()
        await _replay(consumer, settings.topics.weights, keep, timeout_s, 100)
    except AioKafkaError as e:
        raise KafkaError(f"reading {settings.topics.weights}: {e!r}") from e
    finally:
        await consumer.stop()
    return latest


class WeightsFollower:
    """Replays the weights topic, then follows it, calling `handler` with every record in order.

    `caught_up` is set once the records that were on the topic at start have been handled; Kafka errors are
    retried with back-off (a reconnect replays the topic again: handlers must ignore what they already saw,
    which `newer` makes easy).
    """

    def __init__(self, settings: Settings, handler: WeightsHandler, *, poll_ms: int = 100) -> None:
        self.settings = settings
        self.handler = handler
        self.poll_ms = poll_ms
        self.caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="llmwatch-weights-follower")

    def cancel(self) -> None:
        """Stop following without waiting (from synchronous shutdown hooks)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            consumer = _consumer(self.settings, self.poll_ms)
            try:
                await consumer.start()
                await _replay(consumer, self.settings.topics.weights, self.handler, 3600.0, self.poll_ms)
                self.caught_up.set()
                backoff = 0.2
                while True:
                    for records in (await consumer.getmany(timeout_ms=self.poll_ms)).values():
                        for r in records:
                            w = _decode(r.value)
                            if w is not None:
                                result = self.handler(w)
                                if isinstance(result, Awaitable):
                                    await result
            except asyncio.CancelledError:
                raise
            except (AioKafkaError, KafkaError, OSError) as e:
                log.warning("weights follower: %r; retrying in %.1f s", e, backoff)
            finally:
                await consumer.stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


async def publish(settings: Settings, topic: str, key: str, value: bytes) -> None:
    """Send one record and wait until the broker has it (acks=all)."""
    producer = AIOKafkaProducer(**settings.kafka_client_kwargs(), acks="all", enable_idempotence=True)
    try:
        await producer.start()
        await producer.send_and_wait(topic, value=value, key=key.encode())
    except AioKafkaError as e:
        raise KafkaError(f"publishing to {topic}: {e!r}") from e
    finally:
        await producer.stop()


async def send_command(
    settings: Settings, cmd: ControlCommand, *, wait_s: float | None = None
) -> TrafficWeights | None:
    """Publish `cmd`; with `wait_s`, return the TrafficWeights that the controller wrote for it (None on
    timeout: the controller ignored the command, e.g. a pause with no rollout, or is not running)."""
    if wait_s is None:
        await publish(settings, settings.topics.control, cmd.deployment, cmd.encode())
        return None
    found: asyncio.Future[TrafficWeights] = asyncio.get_running_loop().create_future()

    def match(w: TrafficWeights) -> None:
        if w.command_id == cmd.command_id and not found.done():
            found.set_result(w)

    follower = WeightsFollower(settings, match)
    follower.start()  # follow before publishing, so the answer cannot slip past
    try:
        try:
            await asyncio.wait_for(follower.caught_up.wait(), 30.0)
        except TimeoutError:
            raise KafkaError(f"could not read {settings.topics.weights} within 30 s") from None
        await publish(settings, settings.topics.control, cmd.deployment, cmd.encode())
        try:
            return await asyncio.wait_for(found, wait_s)
        except TimeoutError:
            return None
    finally:
        await follower.stop()
