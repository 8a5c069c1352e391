"""Payload schemas: JSON round-trips, tolerant reading, named errors, JSON Schema export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from llmwatch.schemas import (
    PAYLOADS,
    SYSTEM_CHARS_ATTR,
    Alert,
    CanaryVerdict,
    ControlCommand,
    DeadLetter,
    EvalScores,
    ExperimentSpec,
    Feedback,
    InferenceEvent,
    MetricVerdict,
    SchemaError,
    TrafficWeights,
    WindowMetrics,
)
from llmwatch.schemas.events import otel_attributes
from llmwatch.schemas.export import export_json_schemas

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _event(**kw: object) -> InferenceEvent:
    base: dict[str, object] = dict(
        deployment="demo",
        model="tiny-llama",
        model_version="v1",
        prompt="hi",
        response="hello",
        input_tokens=3,
        output_tokens=5,
        ttft_ms=12.5,
        tpot_ms=3.0,
        e2e_ms=24.5,
        ts=NOW,
    )
    base.update(kw)
    return InferenceEvent(**base)


SAMPLES = [
    _event(context=["passage"], user_id="u1", attributes={"k": "v"}),
    Feedback(event_id="e1", deployment="demo", thumbs=1, ts=NOW),
    EvalScores(
        event_id="e1",
        ts=NOW,
        deployment="demo",
        model_version="v1",
        toxicity_response=0.2,
        pii_response=["EMAIL_ADDRESS"],
        pii_leak=True,
        hallucination=None,
    ),
    WindowMetrics(
        window_id="w",
        window_start=NOW,
        window_end=NOW + timedelta(seconds=60),
        size_s=60,
        deployment="demo",
        model_version="v1",
        count=10,
        ttft_p95_ms=80.0,
    ),
    CanaryVerdict(
        deployment="demo",
        baseline_version="v1",
        canary_version="v2",
        judge="msprt@1",
        result="fail",
        metrics=[MetricVerdict(metric="pii_leak_rate", result="fail", critical=True, p_value=0.001)],
        window_start=NOW,
        window_end=NOW,
    ),
    TrafficWeights(
        deployment="demo",
        weights={"v1": 0.95, "v2": 0.05},
        baseline_version="v1",
        canary_version="v2",
        experiment=ExperimentSpec(name="ab", salt="s", arms={"v1": 0.5, "v2": 0.5}),
    ),
    ControlCommand(deployment="demo", action="start", canary_version="v2"),
    Alert(deployment="demo", rule="canary_failed", fingerprint="f", summary="canary v2 failed"),
    DeadLetter.of(
        raw=b"\xff\xfe not json",
        key=None,
        topic="t",
        partition=0,
        offset=7,
        reason="bad",
        error_type="schema",
        stage="score",
    ),
]


def test_every_payload_has_a_sample() -> None:
    assert {type(s) for s in SAMPLES} == set(PAYLOADS)


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: type(p).__name__)
def test_json_round_trip(payload) -> None:
    again = type(payload).decode(payload.encode())
    assert again == payload


def test_missing_model_is_rejected_naming_the_field() -> None:
    raw = _event().model_dump(mode="json")
    del raw["model"]
    with pytest.raises(SchemaError) as err:
        InferenceEvent.decode(json.dumps(raw))
    assert "'model'" in str(err.value)
    assert "required" in str(err.value).lower()


def test_unknown_minor_fields_are_tolerated() -> None:
    raw = _event().model_dump(mode="json")
    raw["schema_version"] = "1.7"
    raw["some_future_field"] = {"nested": True}
    ev = InferenceEvent.decode(json.dumps(raw))
    assert ev.schema_version == "1.7"
    assert not hasattr(ev, "some_future_field")


def test_other_major_version_is_refused() -> None:
    raw = _event().model_dump(mode="json") | {"schema_version": "2.0"}
    with pytest.raises(SchemaError, match="major version 2"):
        InferenceEvent.decode(json.dumps(raw))


@pytest.mark.parametrize(
    "raw, needle",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "JSON"),
        (b"[]", "InferenceEvent"),
        (json.dumps({"deployment": "d", "model": "m", "ttft_ms": "fast"}).encode(), "ttft_ms"),
        (json.dumps({"deployment": "d", "model": "m", "ttft_ms": float("nan")}).encode(), "finite number"),
        (json.dumps({"deployment": "d", "model": "m", "ttft_ms": 50, "e2e_ms": 10}).encode(), "exceeds e2e_ms"),
        (json.dumps({"deployment": "", "model": "m"}).encode(), "deployment"),
    ],
)
def test_bad_payloads_raise_schema_error(raw: bytes, needle: str) -> None:
    with pytest.raises(SchemaError) as err:
        InferenceEvent.decode(raw)
    assert needle in str(err.value)


def test_timestamps_are_utc() -> None:
    cet = timezone(timedelta(hours=1))
    ev = _event(ts=datetime(2026, 1, 1, 13, 0, tzinfo=cet))
    assert ev.ts == datetime(2026, 1, 1, 12, 0, tzinfo=UTC) and ev.ts.tzinfo is UTC
    naive = InferenceEvent.decode(json.dumps(_event().model_dump(mode="json") | {"ts": "2026-01-01T12:00:00"}))
    assert naive.ts.tzinfo is UTC


def test_context_accepts_one_string() -> None:
    assert _event(context="one passage").context == ["one passage"]


def test_traffic_weights_must_be_a_distribution() -> None:
    with pytest.raises(ValueError, match="sum to"):
        TrafficWeights(deployment="d", weights={"v1": 0.9, "v2": 0.2}, baseline_version="v1")
    with pytest.raises(ValueError, match="outside"):
        TrafficWeights(deployment="d", weights={"v1": 1.5, "v2": -0.5}, baseline_version="v1")
    with pytest.raises(ValueError, match="has no weight"):
        TrafficWeights(deployment="d", weights={"v1": 1.0}, baseline_version="v1", canary_version="v2")


def test_feedback_needs_a_signal() -> None:
    with pytest.raises(ValueError, match="thumbs or score"):
        Feedback(event_id="e", deployment="d")


def test_dead_letter_keeps_raw_bytes_and_true_size() -> None:
    dl = DeadLetter.of(
        raw=b"x" * 50,
        key=b"k",
        topic="t",
        partition=1,
        offset=2,
        reason="r",
        error_type="oversized",
        stage="score",
        keep_bytes=10,
    )
    assert dl.raw() == b"x" * 10 and dl.raw_size == 50


def test_event_documents_otel_attributes() -> None:
    props = InferenceEvent.model_json_schema()["properties"]
    # in `$comment`, the annotation JSON Schema reserves for this (ajv's strict mode refuses unknown keywords)
    assert props["input_tokens"]["$comment"] == "otel: gen_ai.usage.input_tokens"
    assert props["ttft_ms"]["$comment"] == "otel: gen_ai.server.time_to_first_token"
    mapping = otel_attributes(InferenceEvent)
    assert mapping["provider_name"] == "gen_ai.provider.name" and "engine" not in mapping
    assert mapping["finish_reasons"] == "gen_ai.response.finish_reasons" and "finish_reason" not in mapping
    assert mapping["error_type"] == "error.type" and "error" not in mapping
    assert mapping["input_messages"] == "gen_ai.input.messages"
    assert not any("otel" in prop for prop in props.values())
    required_fields = {
        "event_id",
        "ts",
        "deployment",
        "model",
        "model_version",
        "variant",
        "prompt_version",
        "user_id",
        "session_id",
        "prompt",
        "response",
        "context",
        "input_tokens",
        "output_tokens",
        "ttft_ms",
        "tpot_ms",
        "e2e_ms",
        "status",
        "error",
        "finish_reason",
    }
    assert required_fields <= set(props)


def test_json_schema_export_is_valid(tmp_path) -> None:
    files = export_json_schemas(tmp_path)
    assert len(files) == len(PAYLOADS)
    for path in files:
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
    event_schema = json.loads((tmp_path / "InferenceEvent.schema.json").read_text())
    jsonschema.validate(_event().model_dump(mode="json"), event_schema)
    bad = _event().model_dump(mode="json")
    del bad["model"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, event_schema)


def test_docs_name_every_event_field_and_its_attribute() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "schemas.md").read_text()
    for name in InferenceEvent.model_fields:
        assert f"`{name}`" in docs, name
    for attr in otel_attributes(InferenceEvent).values():
        if " " not in attr:  # attribute names, not notes such as "(span start time)"
            assert f"`{attr}`" in docs, attr


def test_flat_fields_are_derived_from_structured_ones() -> None:
    ev = InferenceEvent(
        deployment="d",
        model="m",
        system_instructions=[{"type": "text", "content": "Be brief."}],
        input_messages=[{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}],
        output_messages=[
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Paris"}}],
                "finish_reason": "tool_calls",
            }
        ],
        error_type="TimeoutError",
    )
    assert ev.prompt == "system: Be brief.\nuser: Weather in Paris?"
    assert ev.attributes[SYSTEM_CHARS_ATTR] == str(len("system: Be brief."))  # the trusted lead, as the gateway sets
    assert ev.response == ""
    assert ev.finish_reasons == ["tool_calls"] and ev.finish_reason == "tool_calls"
    assert ev.error == "TimeoutError"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in ev.tool_calls] == [
        ("call_1", "weather", {"city": "Paris"})
    ]


def test_flat_fields_win_and_old_events_read_the_same() -> None:
    old = {"deployment": "d", "model": "m", "prompt": "p", "response": "r", "finish_reason": "length"}
    ev = InferenceEvent.decode({**old, "schema_version": "1.0"})
    assert (ev.prompt, ev.response, ev.finish_reason, ev.finish_reasons) == ("p", "r", "length", ["length"])
    assert ev.input_messages is None and ev.trace_id is None and ev.cached_input_tokens == 0
    given = InferenceEvent(
        **old,
        input_messages=[{"role": "user", "parts": [{"type": "text", "content": "other"}]}],
        finish_reasons=["stop"],
    )
    assert (given.prompt, given.finish_reason, given.finish_reasons) == ("p", "length", ["stop"])


def test_trace_context_is_checked() -> None:
    ev = InferenceEvent(
        deployment="d", model="m", trace_id="0AF7651916CD43DD8448EB211C80319C", span_id="b7ad6b7169203331"
    )
    assert ev.trace_id == "0af7651916cd43dd8448eb211c80319c"
    with pytest.raises(SchemaError, match="trace_id"):
        InferenceEvent.decode({"deployment": "d", "model": "m", "trace_id": "not-hex"})


def test_structured_text_is_mapped_for_redaction() -> None:
    ev = InferenceEvent(
        deployment="d",
        model="m",
        input_messages=[{"role": "user", "parts": [{"type": "text", "content": "mail bob@example.com"}]}],
        output_messages=[
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "name": "send", "arguments": {"to": "bob@example.com"}}],
            }
        ],
    )
    update = ev.structured_text_mapped(lambda t: t.replace("bob@example.com", "<EMAIL>"))
    stored = ev.model_copy(update=update)
    assert "bob@example.com" not in stored.model_dump_json(include=set(update))  # the prompt is redacted apart
    assert "<EMAIL>" in (stored.input_messages[0].parts[0].content or "")
    assert stored.tool_calls[0].name == "send" and "<EMAIL>" in stored.tool_calls[0].arguments
