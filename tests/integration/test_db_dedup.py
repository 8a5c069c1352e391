"""At-least-once input: a redelivered event is counted once by FINAL reads and by the hourly roll-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmwatch.db.tables import spec_for
from llmwatch.schemas import EvalScores, InferenceEvent, WindowMetrics

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def _event(i: int, **kw: Any) -> InferenceEvent:
    base: dict[str, Any] = dict(
        event_id=f"e{i}",
        ts=T0 + timedelta(seconds=i),
        deployment="chat",
        model="m",
        model_version="v1",
        ttft_ms=float(10 * (i + 1)),
        e2e_ms=5000.0,
        input_tokens=100,
        output_tokens=10,
    )
    return InferenceEvent(**(base | kw))


def _count(client: Any, sql: str) -> Any:
    return client.query(sql).result_rows[0][0]


def test_redelivered_event_counts_once(ch_client: Any) -> None:
    spec = spec_for(InferenceEvent)
    spec.insert(ch_client, [_event(0), _event(1)])
    spec.insert(ch_client, [_event(1), _event(2)])  # e1 again, in a different batch (a replay)
    assert _count(ch_client, "SELECT count() FROM inference_events") == 4  # stored twice until merged
    assert _count(ch_client, "SELECT count() FROM inference_events FINAL") == 3
    assert _count(ch_client, "SELECT sum(events) FROM events_hourly_v") == 3
    ch_client.command("OPTIMIZE TABLE inference_events FINAL")
    assert _count(ch_client, "SELECT count() FROM inference_events") == 3


def test_retried_identical_batch_leaves_sums_exact(ch_client: Any) -> None:
    spec = spec_for(InferenceEvent)
    batch = [_event(i) for i in range(5)]
    spec.insert(ch_client, batch)
    spec.insert(ch_client, batch)  # the sink's retry of the same batch
    row = ch_client.query("SELECT events, input_tokens, output_tokens FROM events_hourly_v").result_rows
    assert row == [(5, 500, 50)]
    assert _count(ch_client, "SELECT count() FROM inference_events") == 5


def test_hourly_view_matches_the_raw_rows(ch_client: Any) -> None:
    spec = spec_for(InferenceEvent)
    events = [_event(i) for i in range(20)] + [_event(99, status="error", ttft_ms=None, e2e_ms=None)]
    events += [_event(100, ts=T0 + timedelta(hours=1), model_version="v2")]
    spec.insert(ch_client, events[:10])
    spec.insert(ch_client, events[10:])
    rows = ch_client.query(
        "SELECT hour, model_version, events, errors, ttft_p50_ms, ttft_p99_ms FROM events_hourly_v ORDER BY hour"
    ).result_rows
    assert rows[0][:4] == (T0, "v1", 21, 1)
    # ttft 10..200 ms (NULL of the error row skipped): exact below 8192 values, linear interpolation
    assert rows[0][4] == pytest.approx(105.0)
    assert rows[0][5] == pytest.approx(10 + 0.99 * 190)
    assert rows[1][:4] == (T0 + timedelta(hours=1), "v2", 1, 0)


def test_rescore_replaces_and_window_keeps_latest_emit(ch_client: Any) -> None:
    scores = spec_for(EvalScores)
    first = EvalScores(event_id="e1", ts=T0, deployment="chat", model_version="v1", toxicity_response=0.9)
    later = first.model_copy(update={"toxicity_response": 0.1, "scored_at": first.scored_at + timedelta(seconds=5)})
    scores.insert(ch_client, [later])
    scores.insert(ch_client, [first])  # arrives last but was scored first: must not win
    assert ch_client.query("SELECT toxicity_response FROM eval_scores FINAL").result_rows == [(0.1,)]

    windows = spec_for(WindowMetrics)
    common: dict[str, Any] = dict(
        window_id="chat/v1/baseline/default/0/60",
        window_start=T0,
        window_end=T0 + timedelta(minutes=1),
        size_s=60,
        deployment="chat",
        model_version="v1",
    )
    early = WindowMetrics(**common, count=3, final=False, emitted_at=T0 + timedelta(seconds=30))
    final = WindowMetrics(**common, count=7, final=True, emitted_at=T0 + timedelta(seconds=65))
    windows.insert(ch_client, [early])
    windows.insert(ch_client, [final])
    windows.insert(ch_client, [early])  # a replayed early emit
    assert ch_client.query("SELECT count, final FROM window_metrics FINAL").result_rows == [(7, True)]
