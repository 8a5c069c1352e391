"""Steady traffic that follows a rollout, as gateways would send it: the canary's share read from the weights
topic (its one reader, llmwatch/weights_topic.py), timestamps of now. For tests that walk a real rollout."""

from __future__ import annotations

import asyncio
import threading
import time

from aiokafka import AIOKafkaProducer

from llmwatch.settings import Settings
from llmwatch.sim.events import scenario_events
from llmwatch.weights_topic import WeightsChange, WeightsReader


def follow_and_produce(
    settings: Settings, stop: threading.Event, rate: float, sent: list[int], *, deployment: str = "demo"
) -> None:
    """Produce `rate` events/s of the simulator's `steady` scenario for `deployment` until `stop` is set, each
    batch at the canary share the weights topic holds now; `sent[0]` counts them. Blocks: run it in a thread."""

    async def main() -> None:
        share = {"canary": 0.0}

        def follow(change: WeightsChange) -> None:
            if change.deployment == deployment and change.weights is not None:
                share["canary"] = change.weights.weights.get("canary", 0.0)

        reader = WeightsReader(settings, follow)
        reader.start()
        producer = AIOKafkaProducer(**settings.kafka_client_kwargs(), acks="all", linger_ms=5)
        await producer.start()
        try:
            chunk, seed = max(1, int(rate / 4)), 0
            while not stop.is_set():
                tick = time.monotonic()
                seed += 1
                for e in scenario_events("steady", chunk, seed=seed, rate=None, canary_weight=share["canary"]):
                    await producer.send(settings.topics.events, e.encode(), key=e.event_id.encode())
                await producer.flush()
                sent[0] += chunk
                await asyncio.sleep(max(0.0, 0.25 - (time.monotonic() - tick)))
        finally:
            await producer.stop()
            await reader.stop()

    asyncio.run(main())
