"""Storing scores: the score agent's own sink (`ScoreRows`, on the real engine) and the sink agent reading the
scores topic, which a worker without the score agent still uses."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from llmwatch.evaluators.base import load_suite
from llmwatch.evaluators.pii import redact
from llmwatch.harness import (
    WorkerProcess,
    produce_sync,
    query_rows,
    query_scalar,
    read_partitions,
    wait_for,
)
from llmwatch.settings import EvaluatorSettings, Settings, WorkerSettings
from llmwatch.sim.events import scenario_events
from llmwatch.streams.context import WorkerContext
from llmwatch.streams.score_sink import ScoreRows
from llmwatch.streams.scoring import EventScorer, Record, Scored, score_records
from llmwatch.streams.sink import BatchWriter, FaultInjector, SinkWriteError

pytestmark = pytest.mark.integration

LIGHT = EvaluatorSettings(
    enabled=["toxicity", "pii", "injection"], toxicity_backend="profanity", injection_backend="rules"
)


def _scored(n: int, *, rows: bool) -> list[Scored]:
    scorer = EventScorer(load_suite(Settings(eval=LIGHT)), redact)
    records = [Record(e.encode(), 0, i) for i, e in enumerate(scenario_events("pii-leak", n, seed=5))]
    out = score_records(scorer, records, max_bytes=1_000_000, rows=rows)
    assert all(isinstance(o, Scored) for o in out)
    return out  # type: ignore[return-value]


def _count(client: Any, table: str) -> int:
    return int(client.query(f"SELECT count() FROM {table} FINAL").result_rows[0][0])


def test_score_rows_resolve_once_durable_and_hold_the_agent_back_while_clickhouse_is_down(
    ch_client: Any, ch_settings: Settings, tmp_path: Path
) -> None:
    switch = tmp_path / "clickhouse-down"
    writer = BatchWriter(ch_client, retry_max_s=0.05, fault=FaultInjector(switch=switch))
    ctx = WorkerContext(settings=ch_settings, app=None, topics={})  # type: ignore[arg-type]  # no DLQ needed here
    scored = _scored(150, rows=True)

    async def scenario() -> None:
        rows = ScoreRows(ctx, writer, batch_rows=50, max_wait_s=0.2, max_pending=100)
        # a partial batch waits for max_wait_s, then is written by the timer's call
        partial = await rows.add(scored[:30])
        await rows.flush_due(time.monotonic())
        assert not partial.done() and _count(ch_client, "eval_scores") == 0
        await asyncio.sleep(0.25)
        await rows.flush_due(time.monotonic())
        assert partial.done() and partial.exception() is None
        assert (_count(ch_client, "inference_events"), _count(ch_client, "eval_scores")) == (30, 30)

        # ClickHouse down: a full batch is retried, not resolved; at max_pending rows `add` blocks
        switch.write_text("fail")
        first = await rows.add(scored[30:80])  # a full batch: its write starts (and keeps failing)
        second = await rows.add(scored[80:130])
        blocked = asyncio.ensure_future(rows.add(scored[130:150]))
        await asyncio.sleep(0.5)
        assert not first.done() and not second.done() and not blocked.done()
        assert _count(ch_client, "eval_scores") == 30 and writer.stats.retries >= 2

        switch.unlink()  # back: everything queued lands, and the blocked agent goes on
        last = await asyncio.wait_for(blocked, 10)
        await asyncio.wait_for(asyncio.gather(first, second), 10)
        await asyncio.sleep(0.25)
        await rows.flush_due(time.monotonic())
        await asyncio.wait_for(last, 10)
        assert (_count(ch_client, "inference_events"), _count(ch_client, "eval_scores")) == (150, 150)

        # stopping during an outage: the rows' future fails, so their offsets are never released
        switch.write_text("fail")
        doomed = await rows.add(scored[:10])
        flushing = asyncio.ensure_future(rows.flush())
        await asyncio.sleep(0.2)
        writer.stopping = True
        with pytest.raises(SinkWriteError):
            await asyncio.wait_for(doomed, 10)
        await flushing

    try:
        asyncio.run(scenario())
    finally:
        writer.close()


def test_a_worker_without_the_score_agent_stores_scores_from_the_topic(
    isolated_topics: Settings, tmp_path: Path
) -> None:
    """The topic path (`sink_scores_locally` needs the score agent in the same worker): the sink agent decodes
    each score and stores the same rows the scoring process maps."""
    s = isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "eval": LIGHT,
            "worker": WorkerSettings(app_id=f"test-score-sink-{uuid.uuid4().hex[:8]}", sink_within_s=0.3),
        }
    )
    scored = _scored(200, rows=True)
    worker = WorkerProcess(s, ["sink"], tmp_path / "worker.log").start()
    try:
        assert produce_sync(s, s.topics.scores, [o.value for o in scored]) == len(scored)
        sql = "SELECT count() FROM eval_scores FINAL"
        wait_for(lambda: query_scalar(s, sql) == len(scored), 120, "the score rows", processes=[worker])
        wait_for(lambda: query_scalar(s, "SELECT count() FROM inference_events FINAL") == len(scored), 60, "events")
        stored = query_rows(
            s,
            "SELECT event_id, prompt, response, toxicity_response, pii_leak FROM inference_events "
            "FINAL JOIN eval_scores FINAL USING event_id ORDER BY event_id",
        )
    finally:
        worker.stop()
    names = ("event_id", "prompt", "response", "toxicity_response", "pii_leak")
    want = []
    for o in scored:
        assert o.rows is not None
        event_row = dict(zip(_columns("inference_events"), o.rows[0], strict=True))
        score_row = dict(zip(_columns("eval_scores"), o.rows[1], strict=True))
        want.append(tuple((event_row | score_row)[n] for n in names))
    assert stored == sorted(want)
    assert any("<EMAIL_ADDRESS>" in row[1] + row[2] for row in stored)  # the pii-leak scenario, redacted


def _columns(table: str) -> list[str]:
    from llmwatch.db.tables import SPECS, Table

    return SPECS[Table(table)].column_names


def test_score_producer_places_keys_like_kafka_clients_and_keeps_their_order(isolated_topics: Settings) -> None:
    """Scores go out as one record batch per partition: every key on the partition Kafka's default partitioner
    gives it (so windows see a key on one partition, whoever produced it), in order, oversized records too."""
    from aiokafka.partitioner import DefaultPartitioner

    from llmwatch.schemas import topic_registry
    from llmwatch.streams.score_producer import ScoreProducer

    s = isolated_topics.model_copy(
        update={"worker": WorkerSettings(producer_batch_bytes=16 * 1024)}  # small batches: several per partition
    )
    spec = topic_registry(s)["scores"]
    keys = [f"deployment-{i % 7}/v{i % 3}".encode() for i in range(600)]
    records = [(k, f"{k.decode()}#{i}".encode() + (b"x" * 40_000 if i == 300 else b"")) for i, k in enumerate(keys)]

    async def publish() -> None:
        producer = ScoreProducer(s, spec.name)
        try:
            await producer.send(records[:300])
            await producer.send(records[300:])
        finally:
            await producer.stop()

    asyncio.run(publish())
    got = read_partitions(s, "scores")
    partitions = list(range(spec.partitions))
    want: dict[int, list[tuple[bytes | None, bytes]]] = {p: [] for p in partitions}
    for key, value in records:
        want[DefaultPartitioner()(key, partitions, partitions)].append((key, value))
    assert got == want
    assert sum(1 for p in got if got[p]) > 1  # the keys really spread over partitions
