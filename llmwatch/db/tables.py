"""Payload → ClickHouse row mapping, one TableSpec per topic payload that is stored.

The sink calls `spec_for(type(payload)).insert(client, payloads)` (or builds `columns()` itself and passes
`column_oriented=True`). Values always travel as insert data, never as SQL text. Text is stored as given:
redacting prompts and responses is the caller's job (`event.model_copy(update={"prompt": ...})`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter
from typing import Any

from llmwatch.errors import ClickHouseError
from llmwatch.schemas import (
    Alert,
    CanaryVerdict,
    DeadLetter,
    EvalScores,
    Feedback,
    InferenceEvent,
    Payload,
    TrafficWeights,
    WindowMetrics,
)
from llmwatch.schemas.genai import RequestParams


class Table(StrEnum):
    INFERENCE_EVENTS = "inference_events"
    EVAL_SCORES = "eval_scores"
    WINDOW_METRICS = "window_metrics"
    CANARY_VERDICTS = "canary_verdicts"
    TRAFFIC_WEIGHTS = "traffic_weights"
    ALERTS = "alerts"
    FEEDBACK = "feedback"
    DEAD_LETTERS = "dead_letters"


#: Tables and views that migrations create besides the payload tables.
DERIVED = ("events_hourly", "events_hourly_mv", "events_hourly_v")


@dataclass(frozen=True)
class Column:
    name: str
    get: Callable[[Any], Any]
    fields: tuple[str, ...]  # payload fields it carries (a unit test checks every field is stored)


def col(name: str, convert: Callable[[Any], Any] | None = None, *, src: str | None = None) -> Column:
    """A column read from one payload field (default: the field of the same name), optionally converted."""
    field_name = src or name
    getter = attrgetter(field_name)
    get = getter if convert is None else (lambda p: convert(getter(p)))
    return Column(name, get, (field_name,))


def derived(name: str, get: Callable[[Any], Any], *fields: str) -> Column:
    return Column(name, get, fields)


@dataclass(frozen=True)
class TableSpec:
    table: Table
    payload: type[Payload]
    columns: tuple[Column, ...]
    elsewhere: tuple[str, ...] = ()  # payload fields deliberately not stored in this table (the sink stores them)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def columns_of(self, payloads: Sequence[Payload]) -> list[list[Any]]:
        """Column-oriented data: one list per column (pass `column_oriented=True` to client.insert)."""
        return [[c.get(p) for p in payloads] for c in self.columns]

    def rows_of(self, payloads: Iterable[Payload]) -> list[tuple[Any, ...]]:
        """Row-oriented data, for `client.insert(table, rows, column_names=spec.column_names)`."""
        return [self.row_of(p) for p in payloads]

    def row_of(self, payload: Payload) -> tuple[Any, ...]:
        return tuple(c.get(payload) for c in self.columns)

    def insert_rows(self, client: Any, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert rows mapped earlier (`row_of`, e.g. in the scoring process); raises like `insert`."""
        return self._insert(client, rows, len(rows))

    def insert(self, client: Any, payloads: Sequence[Payload], settings: dict[str, Any] | None = None) -> int:
        """Insert a batch; returns the rows written. Raises ClickHouseError (the driver's error is its cause)."""
        return self._insert(client, self.columns_of(payloads), len(payloads), column_oriented=True, settings=settings)

    def _insert(self, client: Any, data: Sequence[Any], n: int, **options: Any) -> int:
        if not n:
            return 0
        try:
            client.insert(str(self.table), data, column_names=self.column_names, **options)
        except Exception as e:
            raise ClickHouseError(f"insert of {n} rows into {self.table} failed: {e}") from e
        return n


def _or_empty(v: list[str] | None) -> list[str]:
    return v if v is not None else []


def _json_or_none(v: Any) -> str | None:
    return None if v is None else v.model_dump_json()


def _json_list(v: list[Any] | None) -> str:
    """A list of models or dicts as JSON text; '' when absent (the column's default)."""
    if not v:
        return ""
    return json.dumps([x.model_dump(mode="json", exclude_none=True) if hasattr(x, "model_dump") else x for x in v])


def _tool_calls(e: InferenceEvent) -> str:
    calls = e.tool_calls
    return json.dumps([c.model_dump() for c in calls]) if calls else ""


def _param(name: str) -> Column:
    """request_<name>: one request parameter (None when the event has no parameters or the caller gave none)."""
    default: Any = [] if name == "stop_sequences" else None

    def get(e: InferenceEvent) -> Any:
        return default if e.request_params is None else getattr(e.request_params, name)

    return derived(f"request_{name}", get, "request_params")


_SCHEMA = col("schema_version")

_EVENTS = TableSpec(
    Table.INFERENCE_EVENTS,
    InferenceEvent,
    (
        col("event_id"),
        col("ts"),
        col("deployment"),
        col("model"),
        col("model_version"),
        col("variant"),
        col("experiment"),
        col("prompt_version"),
        col("user_id"),
        col("session_id"),
        col("prompt"),
        col("response"),
        col("context", _or_empty),
        col("input_tokens"),
        col("output_tokens"),
        col("ttft_ms"),
        col("tpot_ms"),
        col("e2e_ms"),
        col("status"),
        col("error"),
        col("finish_reason"),
        col("engine"),
        col("simulated"),
        col("source"),
        col("cost_usd"),
        col("attributes"),
        _SCHEMA,
        # schema 1.1 (migration 0012)
        col("operation_name"),
        col("provider_name"),
        col("response_model"),
        col("response_id"),
        col("system_instructions", _json_list),
        col("input_messages", _json_list),
        col("output_messages", _json_list),
        col("tool_definitions", _json_list),
        derived("tool_calls", _tool_calls, "output_messages"),
        derived("tool_names", lambda e: [c.name for c in e.tool_calls], "output_messages"),
        col("finish_reasons"),
        *(_param(name) for name in RequestParams.model_fields),
        col("error_type"),
        col("cached_input_tokens"),
        col("reasoning_tokens"),
        col("trace_id"),
        col("span_id"),
        col("parent_span_id"),
    ),
    # a producer's PII findings (redaction at source) become the event's scores in eval_scores; the stored event
    # says so in attributes['llmwatch.redaction']
    elsewhere=("redacted_at_source",),
)

_SCORES = TableSpec(
    Table.EVAL_SCORES,
    EvalScores,
    tuple(
        col(name)
        for name in (
            "event_id",
            "ts",
            "scored_at",
            "deployment",
            "model_version",
            "variant",
            "experiment",
            "prompt_version",
            "status",
            "ttft_ms",
            "tpot_ms",
            "e2e_ms",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "toxicity_prompt",
            "toxicity_response",
            "pii_prompt",
            "pii_response",
            "pii_leak",
            "injection",
            "injection_success",
            "hallucination",
            "evaluators",
            "redacted_prompt",
            "redacted_response",
            "source_partition",
            "source_offset",
            "schema_version",
        )
    ),
    elsewhere=("event",),  # the embedded (redacted) InferenceEvent goes to inference_events
)

# Every WindowMetrics field has a column of the same name.
_WINDOWS = TableSpec(Table.WINDOW_METRICS, WindowMetrics, tuple(col(name) for name in WindowMetrics.model_fields))

_METRIC_FIELDS = (
    "metric",
    "result",
    "direction",
    "critical",
    "margin",
    "effect_size",
    "statistic",
    "p_value",
    "baseline_n",
    "canary_n",
    "baseline_value",
    "canary_value",
    "reason",
)


def _metric_column(name: str) -> Column:
    get = attrgetter(name)
    return derived(f"metrics.{name}", lambda v: [get(m) for m in v.metrics], "metrics")


_VERDICTS = TableSpec(
    Table.CANARY_VERDICTS,
    CanaryVerdict,
    (
        col("verdict_id"),
        col("ts"),
        col("deployment"),
        col("baseline_version"),
        col("canary_version"),
        col("judge"),
        col("judge_instance"),
        col("result"),
        col("reason"),
        col("window_start"),
        col("window_end"),
        col("baseline_n"),
        col("canary_n"),
        col("canary_weight"),
        col("next_weight"),
        col("pass_evidence"),
        col("pass_threshold"),
        col("srm_detected"),
        col("observed_share"),
        col("srm_p_value"),
        col("requests_needed"),
        *(_metric_column(name) for name in _METRIC_FIELDS),
        derived("metrics_json", lambda v: json.dumps([m.model_dump(mode="json") for m in v.metrics]), "metrics"),
        _SCHEMA,
    ),
)

_WEIGHTS = TableSpec(
    Table.TRAFFIC_WEIGHTS,
    TrafficWeights,
    (
        col("deployment"),
        col("seq"),
        col("updated_at"),
        col("epoch"),
        col("controller"),
        col("weights"),
        col("baseline_version"),
        col("canary_version"),
        col("state"),
        col("step_index"),
        col("reason"),
        col("verdict_id"),
        col("command_id"),
        col("applied_commands"),
        col("experiment", _json_or_none),
        _SCHEMA,
    ),
)

_ALERTS = TableSpec(Table.ALERTS, Alert, tuple(col(name) for name in Alert.model_fields))
_FEEDBACK = TableSpec(Table.FEEDBACK, Feedback, tuple(col(name) for name in Feedback.model_fields))
_DEAD_LETTERS = TableSpec(Table.DEAD_LETTERS, DeadLetter, tuple(col(name) for name in DeadLetter.model_fields))

SPECS: dict[Table, TableSpec] = {
    s.table: s for s in (_EVENTS, _SCORES, _WINDOWS, _VERDICTS, _WEIGHTS, _ALERTS, _FEEDBACK, _DEAD_LETTERS)
}
_BY_PAYLOAD: dict[type[Payload], TableSpec] = {s.payload: s for s in SPECS.values()}


def spec_for(payload_type: type[Payload]) -> TableSpec:
    """The table a payload type is stored in; KeyError names the types that have one."""
    try:
        return _BY_PAYLOAD[payload_type]
    except KeyError:
        known = ", ".join(sorted(t.__name__ for t in _BY_PAYLOAD))
        raise KeyError(f"{payload_type.__name__} has no table (stored payloads: {known})") from None
