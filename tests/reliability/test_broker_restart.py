"""The Kafka broker stopped and started during a run, with the gateway publishing and the worker consuming.

Real processes end to end: `llmwatch serve` (simulated engine) ← open-loop HTTP traffic from the load generator,
its publisher → a *private* broker (own port and data dir, started through the same library as `llmwatch kafka
up`; the shared broker is never touched) → `llmwatch worker` (score, window, sink) → embedded ClickHouse.
About DOWN_AT_S into the traffic the broker is stopped, kept down DOWN_FOR_S, and started again on the same port
and data dir. Within the publisher's buffer bound nothing may be lost: every request the gateway answered is in
ClickHouse exactly once (event ids compared), with one score row, counted once in the windows, no dead letter;
the publisher neither dropped nor failed an event, and the worker reconnected by itself (same pid, alive).

Sizes: LLMWATCH_BROKER_RESTART_REQUESTS (default 4,000) at LLMWATCH_BROKER_RESTART_RATE requests/s (default 100).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from llmwatch.harness import (
    GatewayProcess,
    WorkerProcess,
    landed_counts,
    landing_report,
    metric_sums,
    parse_metrics,
    query_scalar,
    wait_for,
)
from llmwatch.local.kafka import LocalKafka
from llmwatch.local.kafka_config import free_port
from llmwatch.settings import EvaluatorSettings, GatewaySettings, Settings, WorkerSettings
from llmwatch.sim.loadgen import LoadgenConfig, LoadgenResult, run_loadgen

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

N = int(os.environ.get("LLMWATCH_BROKER_RESTART_REQUESTS", "4000"))
RATE = float(os.environ.get("LLMWATCH_BROKER_RESTART_RATE", "100"))
DOWN_AT_S = 10.0  # into the traffic
DOWN_FOR_S = 10.0  # after the broker has stopped, before it is started again
BOUND = 10_000  # the gateway's publish buffer (the default): the outage must stay within it
AGENTS = ["score", "window", "sink"]
#: the light evaluators (model-free): the run is about the broker, not scoring speed
LIGHT = EvaluatorSettings(
    enabled=["toxicity", "pii", "injection"], toxicity_backend="profanity", injection_backend="rules", redact=True
)


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own (port, data dir), with the registry's topics; removed afterwards."""
    shared = Settings()
    settings = Settings(
        kafka=f"127.0.0.1:{free_port('127.0.0.1')}",
        data_dir=tmp_path,
        cache_dir=shared.cache_dir,  # the jars the shared broker already provisioned
        kafka_heap_mb=256,
    )
    broker = LocalKafka(settings)
    broker.up()  # also creates every registry topic
    try:
        yield broker
    finally:
        broker.down(30.0, True)


def _settings(broker: LocalKafka, tmp_path: Path) -> Settings:
    return broker.settings.model_copy(
        update={
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "eval": LIGHT,
            "worker": WorkerSettings(
                app_id=f"test-broker-restart-{uuid.uuid4().hex[:8]}",
                window_size_s=5,
                window_lateness_s=2,
                window_idle_close_s=2,
                sink_within_s=0.3,
            ),
            "gateway": GatewaySettings(publish_buffer=BOUND),
        }
    )


def _publisher(gateway: GatewayProcess) -> dict[str, float]:
    m = parse_metrics(gateway.metrics())
    return {
        name: m.get((f"llmwatch_gateway_publish_{name}{suffix}", None, None), -1.0)
        for name, suffix in (("sent", "_total"), ("failed", "_total"), ("dropped", "_total"), ("queue_depth", ""))
    }


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def test_broker_restart_loses_nothing(private_broker: LocalKafka, tmp_path: Path) -> None:
    s = _settings(private_broker, tmp_path)
    worker = WorkerProcess(s, AGENTS, tmp_path / "worker.log").start()
    gateway = GatewayProcess(s, tmp_path / "gateway.log").start()
    try:
        wait_for(lambda: query_scalar(s, "SELECT 1") == 1, 180, "the worker to open ClickHouse", processes=[worker])
        wait_for(lambda: metric_sums(worker.metrics(), "llmwatch_consumer_lag"), 120, "partitions", processes=[worker])
        gateway.wait_ready(90)
        worker_pid = worker.pid

        # open-loop traffic in a thread of its own; every answer's event id is kept
        answers: list[tuple[int, str | None]] = []
        outcome: list[LoadgenResult | BaseException] = []
        config = LoadgenConfig(scenario="steady", target=gateway.url, rate=RATE, count=N, max_tokens=64, seed=3)

        def traffic() -> None:
            try:
                outcome.append(asyncio.run(run_loadgen(config, s, on_answer=lambda st, eid: answers.append((st, eid)))))
            except BaseException as e:
                outcome.append(e)

        thread = threading.Thread(target=traffic, name="loadgen", daemon=True)
        gateway_cpu = psutil.Process(gateway.pid)
        cpu_start = _cpu_s(gateway_cpu)
        started = time.monotonic()
        thread.start()
        max_depth = 0.0

        def sample_depth_until(t: float) -> None:
            nonlocal max_depth
            while time.monotonic() < t:
                max_depth = max(max_depth, _publisher(gateway)["queue_depth"])
                time.sleep(0.5)

        sample_depth_until(started + DOWN_AT_S)
        down_at = time.monotonic()
        cpu_before = _cpu_s(gateway_cpu)
        private_broker.down(30.0)  # SIGTERM: a controlled shutdown, as an operator's restart does
        stopped = time.monotonic()
        sample_depth_until(stopped + DOWN_FOR_S)
        cpu_down = _cpu_s(gateway_cpu)
        private_broker.up()  # same port, same data dir
        up_at = time.monotonic()
        outage_s = up_at - down_at  # from the stop request to the broker answering again
        assert gateway.alive() and worker.alive(), "a process died while the broker was down"

        while thread.is_alive():
            max_depth = max(max_depth, _publisher(gateway)["queue_depth"])
            thread.join(0.5)
        result = outcome[0]
        assert isinstance(result, LoadgenResult), result
        ids = [eid for _, eid in answers if eid]
        statuses = Counter(st for st, _ in answers)
        assert len(answers) == N, f"{N - len(answers)} requests got no answer: {result.error_kinds}"
        assert len(ids) == len(set(ids)) == N, "every answer names its own event"

        wait_for(lambda: _publisher(gateway)["queue_depth"] == 0, 120, "the gateway's buffer to drain")
        wait_for(
            lambda: landed_counts(s)[:3] == (N, N, N),
            300,
            f"{N} events, scores and window counts",
            processes=[worker],
            describe=lambda: landing_report(s, worker),
        )
        landed_s = time.monotonic() - up_at
        time.sleep(3)  # anything still replaying would change a count now
        events, scores, windowed, dlq = landed_counts(s)
        stored = set(query_scalar(s, "SELECT groupArray(event_id) FROM inference_events FINAL"))
        pub = _publisher(gateway)
        wm = parse_metrics(worker.metrics())
        lag = sum(metric_sums(worker.metrics(), "llmwatch_consumer_lag").values())
        windows = query_scalar(s, "SELECT count() FROM window_metrics FINAL")
        late = wm.get(("llmwatch_late_events_total", "outcome", "late"), 0.0)
        stuck = sum(metric_sums(worker.metrics(), "llmwatch_stuck_batches_total").values())
        log = (tmp_path / "worker.log").read_text(errors="replace")
        print(
            f"\nbroker restart: {N} requests at {RATE:g}/s ({dict(statuses)}; achieved {result.achieved_rate}/s, "
            f"latency {result.latency_ms}); broker stopped {DOWN_AT_S:g} s in, unreachable {outage_s:.1f} s "
            f"(stop {stopped - down_at:.1f} s + down {DOWN_FOR_S:g} s + start {up_at - stopped - DOWN_FOR_S:.1f} s); "
            f"gateway CPU {(cpu_before - cpu_start) / DOWN_AT_S:.0%} of a core before the outage, "
            f"{(cpu_down - cpu_before) / (stopped - down_at + DOWN_FOR_S):.0%} while the broker was down; "
            f"publisher buffer max depth {max_depth:.0f} of {BOUND}; sent={pub['sent']:.0f} "
            f"dropped={pub['dropped']:.0f} failed={pub['failed']:.0f}; ClickHouse events={events} scores={scores} "
            f"window sum={windowed} over {windows} windows (late re-emits {late:.0f}), dlq={dlq}; all landed "
            f"{landed_s:.1f} s after the broker was back; worker pid {worker_pid} → {worker.pid} alive="
            f"{worker.alive()}, consumer lag {lag:.0f}, stuck batches {stuck:.0f}, worker log lines mentioning "
            f"connection errors: {sum('onnect' in line for line in log.splitlines())}"
        )
        assert 0 < max_depth < BOUND, "the outage buffered nothing (not tested) or reached the bound"
        assert pub["dropped"] == 0 and pub["failed"] == 0, pub
        assert pub["sent"] == N, pub
        assert stored == set(ids), (
            f"missing {len(set(ids) - stored)}, unexpected {len(stored - set(ids))} event ids in ClickHouse"
        )
        assert (events, scores, windowed, dlq) == (N, N, N, 0)
        assert worker.alive() and worker.pid == worker_pid, "the worker needed a restart"
        assert gateway.alive()
        assert stuck == 0
    finally:
        gateway.stop()
        worker.stop()
