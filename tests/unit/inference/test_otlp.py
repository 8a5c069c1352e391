"""OTLP → InferenceEvent: spans made by the OpenTelemetry SDK, encoded by its own protobuf and JSON encoders, in the
three attribute dialects (GenAI conventions, OpenLLMetry, OpenInference); the ingest logic's answers (no broker)."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans as encode_json
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as encode_proto
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from llmwatch.inference import otlp
from llmwatch.inference.ingest import Ingest, Reply
from llmwatch.inference.protocol import ErrorResponse
from llmwatch.schemas import Feedback, InferenceEvent
from llmwatch.settings import GatewaySettings

PROTO = "application/x-protobuf"
GENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-x",
    "gen_ai.response.model": "gpt-x-2026-01",
    "gen_ai.response.id": "chatcmpl-1",
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 5,
    "gen_ai.usage.cache_read.input_tokens": 8,
    "gen_ai.request.temperature": 0.3,
    "gen_ai.request.max_tokens": 64,
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
    "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hi!"}]}]),
    "gen_ai.output.messages": json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": "Hello."}], "finish_reason": "stop"}]
    ),
    "user.id": "alice@example.com",
}


@contextmanager
def spans(service: str = "support-bot") -> Iterator[tuple[Any, list[ReadableSpan]]]:
    """A tracer of the real SDK, and the spans it finished."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    finished: list[ReadableSpan] = []
    yield provider.get_tracer("test"), finished
    finished.extend(memory.get_finished_spans())


def _events(body: bytes, content_type: str = PROTO) -> otlp.Mapped:
    request = otlp.decode_traces(body, content_type)
    return otlp.map_records(otlp.span_records(request), hash_id=lambda v: f"h({v})" if v else None)


def _one_llm_span(attrs: dict[str, Any], events: tuple[str, ...] = ()) -> list[ReadableSpan]:
    with (
        spans() as (tracer, finished),
        tracer.start_as_current_span("agent run"),
        tracer.start_as_current_span("chat gpt-x") as span,
    ):
        span.set_attributes(attrs)
        for name in events:
            time.sleep(0.002)
            span.add_event(name)
        time.sleep(0.005)
    return finished


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_a_genai_span_becomes_an_event_with_its_trace(encoding: str) -> None:
    finished = _one_llm_span(GENAI, events=("gen_ai.first_token",))
    if encoding == "protobuf":
        mapped = _events(encode_proto(finished).SerializeToString())
    else:
        mapped = _events(encode_json(finished).to_json().encode(), "application/json")
    llm = next(s for s in finished if s.name == "chat gpt-x")
    parent = next(s for s in finished if s.name == "agent run")
    assert mapped.not_llm == 1 and mapped.rejected == 0  # the agent span is counted, not mapped
    (ev,) = mapped.events
    assert ev.trace_id == f"{llm.context.trace_id:032x}" and ev.span_id == f"{llm.context.span_id:016x}"
    assert ev.parent_span_id == f"{parent.context.span_id:016x}"
    assert ev.event_id == ev.trace_id + ev.span_id  # a span sent twice is one event
    assert (ev.deployment, ev.source, ev.model, ev.model_version) == (
        "support-bot",
        "support-bot",
        "gpt-x",
        "gpt-x-2026-01",
    )
    assert (ev.input_tokens, ev.output_tokens, ev.cached_input_tokens) == (12, 5, 8)
    assert ev.prompt == "system: Be brief.\nuser: Hi!" and ev.response == "Hello."
    assert ev.input_messages[0].role == "user" and ev.output_messages[0].role == "assistant"
    assert ev.finish_reasons == ["stop"] and ev.finish_reason == "stop"
    assert ev.operation_name == "chat" and ev.provider_name == "openai" and ev.response_id == "chatcmpl-1"
    assert ev.request_params.temperature == 0.3 and ev.request_params.max_tokens == 64
    assert ev.user_id == "h(alice@example.com)"  # never the raw id
    assert ev.e2e_ms is not None and ev.ttft_ms is not None and 0 < ev.ttft_ms < ev.e2e_ms
    assert ev.tpot_ms == pytest.approx((ev.e2e_ms - ev.ttft_ms) / 4)


def test_ttft_attribute_in_seconds() -> None:
    mapped = _events(
        encode_proto(_one_llm_span({**GENAI, "gen_ai.response.time_to_first_chunk": 0.004})).SerializeToString()
    )
    assert mapped.events[0].ttft_ms == pytest.approx(4.0)
    assert _events(encode_proto(_one_llm_span(GENAI)).SerializeToString()).events[0].ttft_ms is None


def test_openllmetry_attributes() -> None:
    attrs = {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-x",
        "gen_ai.usage.prompt_tokens": 20,
        "gen_ai.usage.completion_tokens": 7,
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You help.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Weather in Oslo?",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.finish_reason": "tool_calls",
        "gen_ai.completion.0.tool_calls.0.id": "call_7",
        "gen_ai.completion.0.tool_calls.0.name": "get_weather",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Oslo"}',
        "llm.request.functions.0.name": "get_weather",
        "llm.request.functions.0.parameters": '{"type": "object"}',
    }
    (ev,) = _events(encode_proto(_one_llm_span(attrs)).SerializeToString()).events
    assert [m.role for m in ev.input_messages] == ["system", "user"]
    assert ev.prompt == "system: You help.\nuser: Weather in Oslo?"
    assert [(c.id, c.name, c.arguments) for c in ev.tool_calls] == [("call_7", "get_weather", '{"city": "Oslo"}')]
    assert ev.finish_reason == "tool_calls" and (ev.input_tokens, ev.output_tokens) == (20, 7)
    assert ev.provider_name == "openai" and ev.tool_definitions[0]["name"] == "get_weather"


def test_openinference_attributes() -> None:
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-y",
        "llm.provider": "openai",
        "llm.token_count.prompt": 11,
        "llm.token_count.completion": 3,
        "llm.token_count.completion_details.reasoning": 2,
        "llm.invocation_parameters": json.dumps({"temperature": 0.1, "max_tokens": 50, "seed": 3}),
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "2+2?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "4",
        "session.id": "s-1",
    }
    (ev,) = _events(encode_proto(_one_llm_span(attrs, events=("First Token Stream Event",))).SerializeToString()).events
    assert (ev.model, ev.prompt, ev.response, ev.reasoning_tokens) == ("gpt-y", "user: 2+2?", "4", 2)
    assert ev.request_params.temperature == 0.1 and ev.request_params.seed == 3
    assert ev.session_id == "h(s-1)" and ev.ttft_ms is not None


def test_an_error_span_is_an_error_event_with_its_type() -> None:
    with spans() as (tracer, finished), tracer.start_as_current_span("chat") as span:
        span.set_attributes({**GENAI, "error.type": "RateLimitError"})
        span.set_status(Status(StatusCode.ERROR, "429 Too Many Requests"))
    (ev,) = _events(encode_proto(finished).SerializeToString()).events
    assert (ev.status, ev.error_type, ev.error) == ("error", "RateLimitError", "429 Too Many Requests")


def test_non_llm_spans_are_counted_and_dropped() -> None:
    with spans() as (tracer, finished):
        for name, attrs in (
            ("GET /", {"http.request.method": "GET"}),
            ("embeddings", {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "e"}),
            ("execute_tool", {"gen_ai.operation.name": "execute_tool"}),
            ("retriever", {"openinference.span.kind": "RETRIEVER"}),
        ):
            with tracer.start_as_current_span(name) as span:
                span.set_attributes(attrs)
    mapped = _events(encode_proto(finished).SerializeToString())
    assert (len(mapped.events), mapped.not_llm, mapped.rejected) == (0, 4, 0)


def test_an_llm_span_that_is_not_a_valid_event_is_rejected_with_the_reason() -> None:
    bad = {**GENAI, "gen_ai.input.messages": json.dumps([{"parts": []}])}  # a message without a role
    mapped = _events(encode_proto(_one_llm_span(bad)).SerializeToString())
    assert mapped.rejected == 1 and not mapped.events
    assert "input_messages" in mapped.first_error and "role" in mapped.first_error


# --- the ingest logic --------------------------------------------------------------------------------


class Sink:
    def __init__(self, room: int = 1000) -> None:
        self.published: list[InferenceEvent | Feedback] = []
        self.free = room

    def publish(self, p: InferenceEvent | Feedback) -> bool:
        self.published.append(p)
        return True

    def room(self) -> int:
        return self.free


def _ingest(room: int = 1000) -> tuple[Ingest, Sink]:
    sink = Sink(room)
    return Ingest(GatewaySettings(max_body_bytes=64 * 1024), sink.publish, sink.room), sink


def test_traces_are_answered_in_kind_and_gzip_is_read() -> None:
    ingest, sink = _ingest()
    body = encode_proto(_one_llm_span(GENAI)).SerializeToString()
    reply = ingest.traces(gzip.compress(body), PROTO, "gzip")
    assert isinstance(reply, Reply) and reply.media_type == PROTO
    assert ExportTraceServiceResponse.FromString(reply.body).partial_success.rejected_spans == 0
    assert len(sink.published) == 1
    bad = {**GENAI, "gen_ai.input.messages": "[{}]"}
    reply = ingest.traces(encode_json(_one_llm_span(bad)).to_json().encode(), "application/json", None)
    assert isinstance(reply, Reply) and json.loads(reply.body)["partialSuccess"]["rejectedSpans"] == "1"


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "says"),
    [
        (b"\xff\x00garbage", PROTO, None, "not a valid OTLP ExportTraceServiceRequest in protobuf"),
        (b"{not json", "application/json", None, "not valid JSON"),
        (b'{"resourceSpans": 3}', "application/json", None, "not a valid OTLP ExportTraceServiceRequest in JSON"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
            "application/json",
            None,
            "not hex",
        ),
        (b"{}", "text/plain", None, "Content-Type must be"),
        (b"abc", PROTO, "gzip", "not valid gzip"),
        (gzip.compress(b"\x00" * 70_000), PROTO, "gzip", "inflates to more than"),
        (b"abc", PROTO, "br", "unsupported Content-Encoding"),
    ],
)
def test_bad_payloads_get_a_400_naming_the_problem(
    body: bytes, content_type: str, encoding: str | None, says: str
) -> None:
    ingest, sink = _ingest()
    reply = ingest.traces(body, content_type, encoding)
    assert isinstance(reply, ErrorResponse) and reply.status_code == 400
    assert says in reply.error.message
    assert sink.published == []


def test_a_batch_without_room_is_refused_whole() -> None:
    ingest, sink = _ingest(room=1)
    events = [InferenceEvent(deployment="d", model="m").model_dump(mode="json") for _ in range(2)]
    reply = ingest.events(json.dumps(events).encode())
    assert isinstance(reply, ErrorResponse) and reply.status_code == 503 and sink.published == []


def test_event_and_feedback_batches() -> None:
    ingest, sink = _ingest()
    ev = InferenceEvent(deployment="d", model="m", input_tokens=3)
    reply = ingest.events(json.dumps({"events": [ev.model_dump(mode="json")]}).encode())
    assert isinstance(reply, Reply) and json.loads(reply.body) == {"accepted": 1, "ids": [ev.event_id]}
    bad = [ev.model_dump(mode="json"), {"deployment": "d", "model": "m", "input_tokens": -1}]
    reply = ingest.events(json.dumps(bad).encode())
    assert isinstance(reply, ErrorResponse) and reply.status_code == 400
    assert "events[1]" in reply.error.message and "input_tokens" in reply.error.message
    reply = ingest.feedback(json.dumps({"event_id": ev.event_id, "deployment": "d", "thumbs": 1}).encode())
    assert isinstance(reply, Reply) and isinstance(sink.published[-1], Feedback)
    reply = ingest.feedback(json.dumps({"event_id": ev.event_id, "deployment": "d"}).encode())
    assert isinstance(reply, ErrorResponse) and "thumbs or score" in reply.error.message
    assert len(sink.published) == 2


def test_logs_map_operation_records_and_count_the_rest() -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    request = ExportLogsServiceRequest()
    scope_logs = request.resource_logs.add().scope_logs.add()
    trace, span = bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), bytes.fromhex("b7ad6b7169203331")
    details = scope_logs.log_records.add(
        event_name=otlp.OPERATION_EVENT, trace_id=trace, span_id=span, time_unix_nano=1_767_225_600_000_000_000
    )
    details.attributes.extend(otlp.new_attributes({k: v for k, v in GENAI.items() if k != "user.id"}))
    message = scope_logs.log_records.add(event_name="gen_ai.user.message", trace_id=trace, span_id=span)
    message.body.CopyFrom(AnyValue(string_value="hello"))
    ingest, sink = _ingest()
    reply = ingest.logs(request.SerializeToString(), PROTO, None)
    assert isinstance(reply, Reply)
    assert not ExportLogsServiceResponse.FromString(reply.body).HasField("partial_success")
    (event,) = sink.published
    assert isinstance(event, InferenceEvent)
    assert (event.trace_id, event.span_id) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert event.input_tokens == 12 and event.prompt.endswith("user: Hi!")
