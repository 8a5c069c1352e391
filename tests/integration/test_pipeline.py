"""The stream pipeline end to end on the real broker and the real ClickHouse engine:
events → score → window → sink, with bad input dead-lettered, and a full replay that changes no count."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from llmwatch.harness import WorkerProcess, parse_metrics, produce_sync, query_scalar, wait_for
from llmwatch.schemas import topic_registry, utcnow
from llmwatch.settings import EvaluatorSettings, Settings, WorkerSettings
from llmwatch.sim.events import scenario_events
from llmwatch.streams.worker import group_id

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: the light evaluators: what the pipeline must carry at thousands of events per second
LIGHT = ["pii"]
N_GOOD, N_BAD = 5000, 500


@pytest.fixture
def pipeline_settings(isolated_topics: Settings, tmp_path: Path) -> Settings:
    return isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "eval": EvaluatorSettings(enabled=LIGHT, redact=True),
            "worker": WorkerSettings(
                app_id=f"test-pipeline-{uuid.uuid4().hex[:8]}",
                window_size_s=60,
                window_lateness_s=5,
                window_idle_close_s=2,
                sink_within_s=0.3,
            ),
        }
    )


def bad_payloads(n: int) -> list[bytes]:
    """Malformed records of every kind the score agent must dead-letter."""
    good = json.loads(next(scenario_events("steady", 1, seed=99)).encode())
    kinds = [
        lambda: b"{truncated json",
        lambda: b"\xff\xfe\xfd invalid utf-8",
        lambda: json.dumps({k: v for k, v in good.items() if k != "model"}).encode(),  # missing field
        lambda: json.dumps(good | {"ttft_ms": "fast"}).encode(),  # wrong type
        lambda: json.dumps(good | {"schema_version": "9.0"}).encode(),  # unknown major version
        lambda: json.dumps(good).encode().replace(b'"prompt": "', b'"prompt": "\x00', 1),  # raw NUL byte
        lambda: json.dumps([1, 2, 3]).encode(),
        lambda: json.dumps(good | {"prompt": "a" * 1_200_000}).encode(),  # oversized
    ]
    return [kinds[i % len(kinds)]() for i in range(n)]


def _reset_group_to_beginning(settings: Settings, group: str) -> None:
    async def reset() -> None:
        consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [
                TopicPartition(spec.name, p)
                for spec in topic_registry(settings).values()
                for p in range(spec.partitions)
            ]
            consumer.assign(tps)
            await consumer.commit({tp: 0 for tp in tps})
        finally:
            await consumer.stop()

    asyncio.run(reset())


def test_counts_windows_dlq_and_replay(pipeline_settings: Settings, tmp_path: Path) -> None:
    s = pipeline_settings
    start = utcnow() - timedelta(minutes=20)
    good = [
        *scenario_events("steady", N_GOOD // 2, seed=1, start_ts=start, rate=5.0, canary_weight=0.2),
        *scenario_events(
            "latency-regression",
            N_GOOD // 2,
            seed=2,
            start_ts=start + timedelta(seconds=500),
            rate=5.0,
            canary_weight=0.2,
            onset_s=100,
        ),
    ]
    bad = bad_payloads(N_BAD)
    records: list[object] = list(good)
    for i, raw in enumerate(bad):  # spread the bad ones through the good ones
        records.insert((i * 11) % len(records), raw)

    worker = WorkerProcess(s, ["score", "window", "sink"], tmp_path / "worker.log").start()
    try:
        assert produce_sync(s, s.topics.events, records) == N_GOOD + N_BAD

        def landed() -> bool:
            return (
                query_scalar(s, "SELECT count() FROM inference_events FINAL") == N_GOOD
                and query_scalar(s, "SELECT sum(count) FROM window_metrics FINAL") == N_GOOD
                and query_scalar(s, "SELECT count() FROM dead_letters FINAL") == N_BAD
            )

        wait_for(landed, 240, "5,000 events, their windows and 500 dead letters", processes=[worker])
        pid = worker.pid
        assert query_scalar(s, "SELECT count() FROM eval_scores FINAL") == N_GOOD
        assert query_scalar(s, "SELECT uniqExact(event_id) FROM inference_events") == N_GOOD
        reasons = query_scalar(s, "SELECT groupUniqArray(error_type) FROM dead_letters")
        assert {"schema", "encoding", "unsupported_version", "oversized"} <= set(reasons)
        assert query_scalar(s, "SELECT countIf(reason = '') FROM dead_letters") == 0
        # redaction is on: no raw email address from the corpus reached ClickHouse
        assert (
            query_scalar(
                s,
                "SELECT countIf(match(prompt || response, '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\\\.[a-z]{2,}'))"
                " FROM inference_events",
            )
            == 0
        )

        # p95 TTFT per window agrees with the exact quantile of the raw rows (same rank definition: lower)
        rows = query_scalar(
            s,
            """
            SELECT groupArray((w.ttft_p95_ms, e.exact)) FROM (
              SELECT window_id, window_start, deployment, model_version, variant, ttft_p95_ms, count
              FROM window_metrics FINAL WHERE count >= 20) AS w
            INNER JOIN (
              SELECT deployment, model_version, variant, toStartOfInterval(ts, INTERVAL 60 SECOND) AS ws,
                     arraySort(groupArray(ttft_ms)) AS v, v[toUInt64(floor(0.95 * (length(v) - 1))) + 1] AS exact
              FROM inference_events FINAL WHERE ttft_ms IS NOT NULL
              GROUP BY deployment, model_version, variant, ws) AS e
            ON w.deployment = e.deployment AND w.model_version = e.model_version AND w.variant = e.variant
               AND w.window_start = e.ws""",
        )
        assert len(rows) >= 10
        for sketch_p95, exact_p95 in rows:
            assert abs(sketch_p95 - exact_p95) <= 0.02 * exact_p95, (sketch_p95, exact_p95)

        # replay: the whole consumer group from the beginning changes no count
        assert worker.alive() and worker.pid == pid  # the bad input never restarted the worker
        assert worker.stop() == 0
        for role in ("score", "window", "sink"):  # each agent role consumes in a group of its own
            _reset_group_to_beginning(s, group_id(s, role))
        worker = WorkerProcess(s, ["score", "window", "sink"], tmp_path / "worker.log").start()

        # everything is read again: the events (re-scored and stored again by the score agent), and the scores
        # topic, which now holds every score twice (the first run's and the replay's): the second copies and the
        # second rows must change nothing
        expected = {
            ("llmwatch_agent_events_total", "agent", "score"): N_GOOD + N_BAD,
            ("llmwatch_agent_events_total", "agent", "window"): 2 * N_GOOD,
            ("llmwatch_agent_events_total", "agent", "sink.scores"): N_GOOD,
            ("llmwatch_held_events", None, None): 0,
            ("llmwatch_open_windows", None, None): 0,
        }

        def replayed() -> bool:
            got = parse_metrics(worker.metrics())
            missing = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
            if missing:
                raise AssertionError(f"not yet (got, want): {missing}")
            return True

        wait_for(replayed, 240, "the replay to be written", processes=[worker])
        assert query_scalar(s, "SELECT count() FROM inference_events FINAL") == N_GOOD
        assert query_scalar(s, "SELECT count() FROM eval_scores FINAL") == N_GOOD
        assert query_scalar(s, "SELECT sum(count) FROM window_metrics FINAL") == N_GOOD
        assert query_scalar(s, "SELECT count() FROM dead_letters FINAL") == N_BAD
    finally:
        worker.stop()
