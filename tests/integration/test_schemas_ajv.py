"""The exported JSON Schemas as a JavaScript service meets them: ajv (npm) in its default strict mode compiles every
one (no unknown keyword: the OpenTelemetry mapping is in `$comment`) and validates real payloads of every kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmwatch.schemas import PAYLOADS, Feedback, InferenceEvent
from llmwatch.sim.events import scenario_events

from .ajv import ajv_validate

pytestmark = pytest.mark.integration


def test_ajv_strict_compiles_every_schema_and_validates_events(tmp_path: Path) -> None:
    events = list(scenario_events("steady", 50, seed=4))
    structured = InferenceEvent(
        deployment="d",
        model="m",
        input_messages=[{"role": "user", "parts": [{"type": "text", "content": "weather?"}]}],
        output_messages=[
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": {"city": "Oslo"}}],
                "finish_reason": "tool_calls",
            }
        ],
        request_params={"temperature": 0.2, "stop_sequences": ["\n"]},
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        cached_input_tokens=3,
    )
    docs = [("InferenceEvent", e.model_dump(mode="json")) for e in [*events, structured]]
    docs.append(("Feedback", Feedback(event_id="e", deployment="d", score=0.5).model_dump(mode="json")))
    result = ajv_validate(tmp_path, docs)
    assert sorted(result["compiled"]) == sorted(p.schema_name for p in PAYLOADS)
    assert result["valid"] == len(docs) and result["invalid"] == []
    # and ajv does refuse what the schema forbids, so the check above could fail
    bad = structured.model_dump(mode="json") | {"trace_id": "not-a-trace", "input_tokens": -1}
    result = ajv_validate(tmp_path, [("InferenceEvent", bad)])
    assert result["valid"] == 0 and len(result["invalid"]) == 1
    failed = {e["instancePath"] for e in result["invalid"][0]["errors"]}
    assert "/trace_id" in failed or "/input_tokens" in failed
