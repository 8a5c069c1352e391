"""`llmwatch loadgen --target kafka` as a user runs it: simulated events straight onto the real events topic."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from aiokafka import AIOKafkaConsumer

from llmwatch.schemas import InferenceEvent
from llmwatch.settings import Settings

pytestmark = pytest.mark.integration


async def _events(settings: Settings, topic: str, n: int, timeout_s: float = 30.0) -> list[InferenceEvent]:
    consumer = AIOKafkaConsumer(
        topic, **settings.kafka_client_kwargs(), group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[InferenceEvent] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(out) < n:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    out.extend(InferenceEvent.decode(r.value) for r in records)
    finally:
        await consumer.stop()
    return out


async def test_cli_publishes_paced_scenario_events(kafka_settings: Settings, kafka_topic: str) -> None:
    env = {**os.environ, "LLMWATCH_KAFKA": kafka_settings.kafka, "LLMWATCH_TOPICS__EVENTS": kafka_topic}
    cmd = [sys.executable, "-m", "llmwatch", "loadgen", "--scenario", "drift", "--target", "kafka"]
    cmd += ["--rate", "400", "--duration", "2", "--onset", "1", "--canary-weight", "0.25", "--seed", "9", "--json"]
    proc = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert (result["planned"], result["sent"], result["ok"], result["errors"]) == (800, 800, 800, 0)
    assert result["achieved_rate"] == pytest.approx(400, rel=0.1)

    events = await _events(kafka_settings, kafka_topic, 800)
    assert len({e.event_id for e in events}) == 800
    assert all(e.simulated and e.engine == "simulated" and e.source == "loadgen" for e in events)
    assert sum(e.variant == "canary" for e in events) / 800 == pytest.approx(0.25, abs=0.05)
    events.sort(key=lambda e: e.ts)
    span = (events[-1].ts - events[0].ts).total_seconds()
    assert span == pytest.approx(799 / 400, abs=0.01)  # stamped on the schedule
    topics = [e for e in events if e.attributes["sim.prompt_kind"] == "topic"]
    first_second = [e for e in topics if (e.ts - events[0].ts).total_seconds() < 1]
    assert not any(e.attributes["sim.topic_set"] == "drift" for e in first_second)
    assert sum(e.attributes["sim.topic_set"] == "drift" for e in topics) > 0.3 * len(topics)
