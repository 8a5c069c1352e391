"""Every payload type round-trips through its table: each mapped column comes back as it went in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmwatch.db.tables import SPECS, Table
from llmwatch.schemas import (
    Alert,
    CanaryVerdict,
    DeadLetter,
    EvalScores,
    ExperimentSpec,
    Feedback,
    InferenceEvent,
    MetricVerdict,
    Payload,
    TrafficWeights,
    WindowMetrics,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)  # millisecond precision, as DateTime64(3) stores


def _samples() -> dict[Table, Payload]:
    return {
        Table.INFERENCE_EVENTS: InferenceEvent(
            ts=T0,
            deployment="chat",
            model="tiny",
            model_version="v2",
            variant="canary",
            experiment="exp1",
            user_id="u",
            session_id=None,
            prompt="hello <EMAIL>",
            response="hi",
            context=["p1", "p2"],
            input_tokens=12,
            output_tokens=3,
            ttft_ms=12.5,
            tpot_ms=1.25,
            e2e_ms=20.0,
            status="error",
            error="boom",
            finish_reason="error",
            engine="simulated",
            simulated=True,
            cost_usd=0.001,
            attributes={"region": "eu"},
        ),
        Table.EVAL_SCORES: EvalScores(
            event_id="e1",
            ts=T0,
            scored_at=T0,
            deployment="chat",
            model_version="v2",
            toxicity_response=0.25,
            pii_response=["EMAIL", "PHONE"],
            pii_leak=True,
            injection_success=None,
            evaluators={"toxicity": "toxicity@1/profanity"},
            redacted_prompt="<EMAIL>",
        ),
        Table.WINDOW_METRICS: WindowMetrics(
            window_id="w1",
            window_start=T0,
            window_end=T0 + timedelta(seconds=60),
            size_s=60,
            emitted_at=T0,
            deployment="chat",
            model_version="v2",
            count=10,
            ttft_p95_ms=33.5,
            sketches={"ttft": "AAEC"},
        ),
        Table.CANARY_VERDICTS: CanaryVerdict(
            ts=T0,
            deployment="chat",
            baseline_version="v1",
            canary_version="v2",
            judge="msprt@1",
            result="fail",
            window_start=T0,
            window_end=T0,
            metrics=[
                MetricVerdict(metric="ttft_p95", result="pass", p_value=0.5, baseline_n=10, canary_n=9),
                MetricVerdict(metric="toxicity", result="fail", critical=True, effect_size=0.2, reason="up 20%"),
            ],
            canary_weight=0.1,
        ),
        Table.TRAFFIC_WEIGHTS: TrafficWeights(
            deployment="chat",
            weights={"v1": 0.9, "v2": 0.1},
            baseline_version="v1",
            canary_version="v2",
            state="progressing",
            step_index=1,
            seq=4,
            verdict_id="vd1",
            experiment=ExperimentSpec(name="e", salt="s", arms={"v1": 0.5, "v2": 0.5}),
            updated_at=T0,
        ),
        Table.ALERTS: Alert(
            ts=T0, deployment="chat", rule="canary_failed", fingerprint="f", summary="s", starts_at=T0, ends_at=None
        ),
        Table.FEEDBACK: Feedback(event_id="e1", ts=T0, deployment="chat", thumbs=-1, comment="meh"),
        Table.DEAD_LETTERS: DeadLetter.of(
            raw=b"\xff{bad",
            key=b"k",
            topic="llm.inference.events",
            partition=2,
            offset=42,
            reason="r",
            error_type="schema",
            stage="score",
        ).model_copy(update={"ts": T0}),
    }


def test_every_payload_round_trips(ch_client: Any) -> None:
    """One fresh engine for all tables (each costs ~0.5 s to open); mismatches are collected per table."""
    mismatches: dict[str, Any] = {}
    for table, payload in _samples().items():
        spec = SPECS[table]
        assert spec.insert(ch_client, [payload]) == 1
        names = ", ".join(f"`{c}`" for c in spec.column_names)
        rows = ch_client.query(f"SELECT {names} FROM {table} FINAL").result_rows
        expected = dict(zip(spec.column_names, spec.rows_of([payload])[0], strict=True))
        stored = dict(zip(spec.column_names, rows[0], strict=True)) if len(rows) == 1 else {"rows": len(rows)}
        diff = {k: (stored.get(k), v) for k, v in expected.items() if stored.get(k) != v}
        if diff:
            mismatches[str(table)] = diff
    assert mismatches == {}


def test_unmapped_columns_have_defaults(ch_client: Any) -> None:
    rows = ch_client.query(
        "SELECT table, name, default_kind FROM system.columns WHERE database = currentDatabase()"
    ).result_rows
    for table in Table:
        unmapped = {name: kind for t, name, kind in rows if t == table and name not in SPECS[table].column_names}
        assert unmapped == {"ingested_at": "DEFAULT"}, table
