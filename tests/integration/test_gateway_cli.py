"""`llmwatch serve --engine simulated` as a user runs it: a process, real HTTP, real Kafka, weights that move it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from llmwatch.local.kafka_config import free_port
from llmwatch.schemas import TrafficWeights
from llmwatch.settings import Settings

from .test_gateway_transformers import events_on

pytestmark = pytest.mark.integration
session_loop = pytest.mark.asyncio(loop_scope="session")


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ, LLMWATCH_KAFKA=settings.kafka)
    for role, name in settings.topics.model_dump().items():
        env[f"LLMWATCH_TOPICS__{role.upper()}"] = name
    return env


@pytest.fixture
def served(isolated_topics: Settings) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port("127.0.0.1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmwatch", "serve", "--engine", "simulated", "--port", str(port)],
        env=_env(isolated_topics),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "gateway not ready within 60 s"
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@session_loop
async def test_serve_simulated_publishes_and_follows_the_weights_topic(
    served: tuple[str, subprocess.Popen[str]], isolated_topics: Settings
) -> None:
    url, proc = served
    body = {"model": "demo", "messages": [{"role": "user", "content": "What is a canary?"}], "user": "u1"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        first = await client.post("/v1/chat/completions", json=body)
        assert first.status_code == 200, first.text
        assert first.headers["x-llmwatch-variant"] == "baseline"  # no weights yet: 100% baseline

        weights = TrafficWeights(
            deployment="demo",
            weights={"baseline": 0.0, "canary": 1.0},
            baseline_version="baseline",
            canary_version="canary",
            seq=1,
        )
        producer = AIOKafkaProducer(**isolated_topics.kafka_client_kwargs())
        await producer.start()
        try:
            await producer.send_and_wait(isolated_topics.topics.weights, weights.encode(), key=b"demo")
        finally:
            await producer.stop()
        sent_at = time.monotonic()
        while True:
            moved = await client.post("/v1/chat/completions", json=body)
            if moved.headers["x-llmwatch-variant"] == "canary":
                break
            assert time.monotonic() - sent_at < 5, "weights not applied within 5 s"
        metrics = (await client.get("/metrics")).text

    ids = {first.json()["llmwatch"]["event_id"], moved.json()["llmwatch"]["event_id"]}
    events = await events_on(isolated_topics, ids)
    baseline, canary = (events[first.json()["llmwatch"]["event_id"]], events[moved.json()["llmwatch"]["event_id"]])
    assert (baseline.variant, baseline.model_version, canary.variant, canary.model_version) == (
        "baseline",
        "baseline",
        "canary",
        "canary",
    )
    assert baseline.simulated and baseline.engine == "simulated" and baseline.user_id not in (None, "u1")
    assert baseline.response == first.json()["choices"][0]["message"]["content"]
    assert 'variant="canary"' in metrics and "llmwatch_gateway_publish_queue_depth" in metrics

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def test_serve_refuses_an_engine_without_its_model() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmwatch", "serve", "--engine", "transformers", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "needs `model`" in done.stderr
