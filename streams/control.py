"""Talking to the controller through Kafka: publishing a command and waiting for the move it caused.

The weights topic itself is read by llmwatch/weights_topic.py, the one reader of it (shared with the gateway's
router): the controller rebuilds its rollouts from it, the judge follows it, `llmwatch rollout` reads it.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError as AioKafkaError

from llmwatch.errors import KafkaError
from llmwatch.schemas import ControlCommand, TrafficWeights
from llmwatch.settings import Settings
from llmwatch.weights_topic import WeightsChange, WeightsReader


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
    timeout: the controller refused or ignored the command, e.g. a pause with no rollout, or is not running)."""
    if wait_s is None:
        await publish(settings, settings.topics.control, cmd.deployment, cmd.encode())
        return None
    found: asyncio.Future[TrafficWeights] = asyncio.get_running_loop().create_future()

    def match(change: WeightsChange) -> None:
        w = change.weights
        # a record replayed from before (the same command sent earlier) is not this send's answer
        if w is not None and w.command_id == cmd.command_id and reader.caught_up.is_set() and not found.done():
            found.set_result(w)

    reader = WeightsReader(settings, match)
    reader.start()  # follow before publishing, so the answer cannot slip past
    try:
        if not await reader.wait_caught_up(30.0):
            raise KafkaError(f"could not read {settings.topics.weights} within 30 s")
        await publish(settings, settings.topics.control, cmd.deployment, cmd.encode())
        try:
            return await asyncio.wait_for(found, wait_s)
        except TimeoutError:
            return None
    finally:
        await reader.stop()
