"""Row mapping: every payload field reaches a column, and the two data layouts agree."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from llmwatch.db.migrations import discover
from llmwatch.db.tables import SPECS, Table, spec_for
from llmwatch.schemas import (
    CanaryVerdict,
    ControlCommand,
    ExperimentSpec,
    InferenceEvent,
    MetricVerdict,
    TrafficWeights,
)

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("table", list(Table))
def test_every_payload_field_is_stored(table: Table) -> None:
    spec = SPECS[table]
    stored = {f for c in spec.columns for f in c.fields}
    assert set(spec.payload.model_fields) - stored - set(spec.elsewhere) == set()
    assert not stored & set(spec.elsewhere)
    assert len(spec.column_names) == len(set(spec.column_names))


@pytest.mark.parametrize("table", list(Table))
def test_each_table_is_created_by_a_migration(table: Table) -> None:
    created = {m for mig in discover() for m in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", mig.up_sql)}
    assert str(table) in created


def test_spec_for_names_the_stored_types() -> None:
    assert spec_for(InferenceEvent).table is Table.INFERENCE_EVENTS
    with pytest.raises(KeyError, match="InferenceEvent"):
        spec_for(ControlCommand)


def test_event_columns_and_rows_agree() -> None:
    events = [
        InferenceEvent(deployment="d", model="m", ts=T0, context=None, ttft_ms=5.0, e2e_ms=9.0),
        InferenceEvent(deployment="d", model="m", ts=T0, context="one passage", attributes={"a": "b"}),
    ]
    spec = spec_for(InferenceEvent)
    columns = spec.columns_of(events)
    rows = spec.rows_of(events)
    assert [list(r) for r in zip(*columns, strict=True)] == [list(r) for r in rows]
    by_name = dict(zip(spec.column_names, columns, strict=True))
    assert by_name["context"] == [[], ["one passage"]]
    assert by_name["ttft_ms"] == [5.0, None]
    assert by_name["event_id"] == [e.event_id for e in events]


def test_verdict_metrics_become_parallel_arrays() -> None:
    verdict = CanaryVerdict(
        deployment="d",
        baseline_version="v1",
        canary_version="v2",
        judge="j@1",
        result="fail",
        window_start=T0,
        window_end=T0,
        metrics=[MetricVerdict(metric="ttft", result="pass"), MetricVerdict(metric="tox", result="fail", p_value=0.01)],
    )
    spec = spec_for(CanaryVerdict)
    row = dict(zip(spec.column_names, spec.rows_of([verdict])[0], strict=True))
    assert row["metrics.metric"] == ["ttft", "tox"]
    assert row["metrics.p_value"] == [None, 0.01]
    assert '"p_value": 0.01' in row["metrics_json"]


def test_weights_experiment_is_json() -> None:
    w = TrafficWeights(
        deployment="d",
        weights={"v1": 0.75, "v2": 0.25},
        baseline_version="v1",
        canary_version="v2",
        experiment=ExperimentSpec(name="e", salt="s", arms={"v1": 0.5, "v2": 0.5}),
    )
    spec = spec_for(TrafficWeights)
    row = dict(zip(spec.column_names, spec.rows_of([w])[0], strict=True))
    assert ExperimentSpec.model_validate_json(row["experiment"]) == w.experiment
    assert row["weights"] == {"v1": 0.75, "v2": 0.25}


def test_empty_batch_inserts_nothing() -> None:
    class Refuses:
        def insert(self, *a: object, **k: object) -> None:
            raise AssertionError("no insert expected for an empty batch")

    assert spec_for(InferenceEvent).insert(Refuses(), []) == 0
