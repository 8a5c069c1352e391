"""OTLP/HTTP payloads → InferenceEvents: decoding (protobuf or JSON, optionally gzip) and the span mapping.

Decoding uses the official `opentelemetry-proto` messages; OTLP's JSON differs from protobuf's canonical JSON only in
its trace and span ids (hex, not base64), which are rewritten before `json_format` parses it.

A span (or a log record that carries a whole operation, `gen_ai.client.inference.operation.details`) is an LLM call
when it says so in one of the three attribute dialects in use:

- OpenTelemetry GenAI conventions: `gen_ai.operation.name` chat / text_completion / generate_content (or, from
  instrumentations older than that attribute, a `gen_ai.system` / `gen_ai.provider.name` with a model);
- OpenInference (Arize): `openinference.span.kind` = LLM, `llm.*` attributes, indexed `llm.input_messages.N.…`;
- OpenLLMetry (Traceloop): `llm.request.type` chat / completion, indexed `gen_ai.prompt.N.…`/`gen_ai.completion.N.…`.

Everything else (HTTP spans, tool executions, embeddings, agents) is counted and dropped: it is not an LLM call and
not an error. A span that claims to be one but cannot become a valid event is rejected with the reason (OTLP's
`partial_success`). The event id is the trace id and span id, so a span an exporter sends twice lands once.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from pydantic import ValidationError

from llmwatch.schemas import InferenceEvent
from llmwatch.schemas.genai import ChatMessage, MessagePart, OutputMessage, RequestParams, text_part, tool_call_part

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

#: operation names of an LLM call (the conventions' inference operations)
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
#: span events that mark the first token of a streamed answer (their time minus the span's start is the TTFT)
FIRST_TOKEN_EVENTS = frozenset(
    {"gen_ai.first_token", "gen_ai.content.first_token", "First Token Stream Event", "first_token", "llm.first_token"}
)
#: attributes that carry the TTFT in seconds
TTFT_SECONDS = ("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token", "llm.time_to_first_token")
#: the log record that carries a whole inference operation (the conventions' event-only content mode)
OPERATION_EVENT = "gen_ai.client.inference.operation.details"
_STATUS_ERROR = 2
_ID_KEYS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


class OtlpError(ValueError):
    """A payload that is not OTLP: the message names the problem (the 400's text)."""


# --- decoding ------------------------------------------------------------------------------------


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body after its Content-Encoding (gzip, deflate or none), refusing to inflate past `limit` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise OtlpError(f"unsupported Content-Encoding {encoding!r} (gzip, deflate or none)")
    try:
        inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        out = inflater.decompress(body, limit + 1)
    except (zlib.error, gzip.BadGzipFile) as e:
        raise OtlpError(f"the body is not valid {encoding}: {e}") from e
    if len(out) > limit or inflater.unconsumed_tail:
        raise OtlpError(f"the body inflates to more than {limit} bytes")
    return out


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects base64 for bytes fields."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            size = _ID_KEYS.get(k) or _ID_KEYS.get(_camel(k))
            if size is not None and isinstance(v, str):
                if v == "":
                    out[k] = v
                    continue
                try:
                    raw = bytes.fromhex(v)
                except ValueError:
                    raise OtlpError(f"{k} {v[:40]!r} is not hex") from None
                if len(raw) != size:
                    raise OtlpError(f"{k} {v[:40]!r} has {len(raw)} bytes, not {size}")
                out[k] = base64.b64encode(raw).decode()
            else:
                out[k] = _hex_ids_to_base64(v)
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p.title() for p in rest)


def _decode(body: bytes, content_type: str | None, message: Message, what: str) -> None:
    kind = media_type(content_type)
    if kind == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as e:
            raise OtlpError(f"the body is not a valid OTLP {what} in protobuf: {e}") from e
    elif kind == JSON:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise OtlpError(f"the body is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise OtlpError(f"an OTLP {what} in JSON is an object, not {type(data).__name__}")
        try:
            json_format.ParseDict(_hex_ids_to_base64(data), message, ignore_unknown_fields=True)
        except json_format.ParseError as e:
            raise OtlpError(f"the body is not a valid OTLP {what} in JSON: {e}") from e
    else:
        raise OtlpError(f"Content-Type must be {PROTOBUF} or {JSON}, not {kind or 'missing'!r}")


def decode_traces(body: bytes, content_type: str | None) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    _decode(body, content_type, request, "ExportTraceServiceRequest")
    return request


def decode_logs(body: bytes, content_type: str | None) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    _decode(body, content_type, request, "ExportLogsServiceRequest")
    return request


def encode_response(message: ExportTraceServiceResponse | ExportLogsServiceResponse, content_type: str) -> bytes:
    """The response in the request's encoding (OTLP/HTTP answers in kind)."""
    if media_type(content_type) == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


# --- attribute values ----------------------------------------------------------------------------


def any_value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw and any(raw) else None


@dataclass
class Record:
    """What the mapping needs of a span or an operation log record, independent of the OTLP message kind."""

    trace_id: str | None
    span_id: str | None
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attrs: dict[str, Any]
    resource: dict[str, Any]
    scope: str = ""
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    error: bool = False
    status_message: str = ""


def span_records(request: ExportTraceServiceRequest) -> Iterator[Record]:
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                yield Record(
                    trace_id=_hex(span.trace_id),
                    span_id=_hex(span.span_id),
                    parent_span_id=_hex(span.parent_span_id),
                    name=span.name,
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    attrs=attributes(span.attributes),
                    resource=resource,
                    scope=ss.scope.name,
                    events=[(e.name, e.time_unix_nano, attributes(e.attributes)) for e in span.events],
                    error=span.status.code == _STATUS_ERROR,
                    status_message=span.status.message,
                )


def log_records(request: ExportLogsServiceRequest) -> Iterator[Record | None]:
    """Operation records as Records; None for every other log record (counted, not mapped)."""
    for rl in request.resource_logs:
        resource = attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            for log in sl.log_records:
                attrs = attributes(log.attributes)
                name = log.event_name or str(attrs.get("event.name", ""))
                if name != OPERATION_EVENT:
                    yield None
                    continue
                body = any_value(log.body)
                if isinstance(body, dict):  # some emitters put the attributes in the body
                    attrs = {**body, **attrs}
                ts = log.time_unix_nano or log.observed_time_unix_nano
                yield Record(
                    trace_id=_hex(log.trace_id),
                    span_id=_hex(log.span_id),
                    parent_span_id=None,
                    name=name,
                    start_ns=ts,
                    end_ns=ts,
                    attrs=attrs,
                    resource=resource,
                    scope=sl.scope.name,
                    error="error.type" in attrs,
                )


# --- the mapping -----------------------------------------------------------------------------------


def _first(attrs: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return value
    return None


def is_llm_call(attrs: dict[str, Any]) -> bool:
    """Whether a span's attributes describe an LLM call, in any of the three dialects."""
    operation = attrs.get("gen_ai.operation.name")
    if operation is not None:
        return str(operation) in LLM_OPERATIONS
    kind = attrs.get("openinference.span.kind")
    if kind is not None:
        return str(kind).upper() == "LLM"
    request_type = attrs.get("llm.request.type")
    if request_type is not None:
        return str(request_type) in ("chat", "completion")
    has_provider = _first(attrs, "gen_ai.provider.name", "gen_ai.system") is not None
    return has_provider and _first(attrs, "gen_ai.request.model", "gen_ai.response.model") is not None


def indexed(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Flattened list attributes (`prefix.0.role`, `prefix.0.content`, …) as a list of dicts, in index order."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if index.isdigit() and rest:
            groups.setdefault(int(index), {})[rest] = value
    return [groups[i] for i in sorted(groups)]


def _json(value: Any) -> Any:
    """A structured attribute, whether the emitter set it as JSON text or as an OTLP array/kvlist."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and out not in (float("inf"), float("-inf")) else None


def _messages_openllmetry(groups: list[dict[str, Any]], output: bool) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for g in groups:
        parts: list[MessagePart] = []
        role = str(g.get("role") or ("assistant" if output else "user"))
        if g.get("tool_call_id") is not None:
            parts.append(MessagePart(type="tool_call_response", id=str(g["tool_call_id"]), response=g.get("content")))
        elif g.get("content") is not None:
            parts.append(text_part(str(g["content"])))
        for call in indexed(g, "tool_calls."):
            parts.append(tool_call_part(call.get("id"), str(call.get("name") or ""), call.get("arguments")))
        cls = OutputMessage if output else ChatMessage
        extra = {"finish_reason": g.get("finish_reason")} if output else {}
        out.append(cls(role=role, parts=parts, **extra))
    return out


def _messages_openinference(groups: list[dict[str, Any]], output: bool) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for g in groups:
        role = str(g.get("message.role") or ("assistant" if output else "user"))
        parts: list[MessagePart] = []
        content = g.get("message.content")
        if g.get("message.tool_call_id") is not None:
            parts.append(MessagePart(type="tool_call_response", id=str(g["message.tool_call_id"]), response=content))
        elif content is not None:
            parts.append(text_part(str(content)))
        for c in indexed(g, "message.contents."):
            if c.get("message_content.text") is not None:
                parts.append(text_part(str(c["message_content.text"])))
        for call in indexed(g, "message.tool_calls."):
            parts.append(
                tool_call_part(
                    call.get("tool_call.id"),
                    str(call.get("tool_call.function.name") or ""),
                    call.get("tool_call.function.arguments"),
                )
            )
        out.append(OutputMessage(role=role, parts=parts) if output else ChatMessage(role=role, parts=parts))
    return out


def _messages(attrs: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(system instructions, input messages, output messages) in whichever dialect the span carries them."""
    system = _json(attrs.get("gen_ai.system_instructions"))
    inputs = _json(attrs.get("gen_ai.input.messages"))
    outputs = _json(attrs.get("gen_ai.output.messages"))
    if inputs is None and (groups := indexed(attrs, "gen_ai.prompt.")):
        inputs = _messages_openllmetry(groups, output=False)
    if outputs is None and (groups := indexed(attrs, "gen_ai.completion.")):
        outputs = _messages_openllmetry(groups, output=True)
    if inputs is None and (groups := indexed(attrs, "llm.input_messages.")):
        inputs = _messages_openinference(groups, output=False)
    if outputs is None and (groups := indexed(attrs, "llm.output_messages.")):
        outputs = _messages_openinference(groups, output=True)
    if isinstance(system, str):
        system = [text_part(system)]
    return system, inputs, outputs


def _tool_definitions(attrs: dict[str, Any]) -> list[dict[str, Any]] | None:
    defs = _json(attrs.get("gen_ai.tool.definitions"))
    if isinstance(defs, list):
        return [d for d in defs if isinstance(d, dict)] or None
    functions = indexed(attrs, "llm.request.functions.")  # OpenLLMetry
    if functions:
        return [
            {"type": "function", "name": f.get("name"), "description": f.get("description"), **_params(f)}
            for f in functions
        ]
    tools = indexed(attrs, "llm.tools.")  # OpenInference
    out = [_json(t.get("tool.json_schema")) for t in tools]
    return [t for t in out if isinstance(t, dict)] or None


def _params(f: dict[str, Any]) -> dict[str, Any]:
    parameters = _json(f.get("parameters"))
    return {"parameters": parameters} if parameters is not None else {}


def _request_params(attrs: dict[str, Any]) -> RequestParams | None:
    invocation = _json(attrs.get("llm.invocation_parameters"))  # OpenInference: the request's JSON
    inv = invocation if isinstance(invocation, dict) else {}

    def pick(name: str, *other: str) -> Any:
        value = _first(attrs, f"gen_ai.request.{name}", *other)
        return value if value is not None else _first(inv, name)

    stop = pick("stop_sequences") or inv.get("stop") or []
    stream = _first(attrs, "gen_ai.request.stream", "llm.is_streaming")
    values = {
        "temperature": _float(pick("temperature")),
        "top_p": _float(pick("top_p")),
        "top_k": _float(pick("top_k")),
        "max_tokens": _int(pick("max_tokens", "llm.request.max_tokens")) or None,
        "seed": pick("seed", "gen_ai.openai.request.seed"),
        "stop_sequences": [str(s) for s in stop] if isinstance(stop, list) else [str(stop)],
        "frequency_penalty": _float(pick("frequency_penalty")),
        "presence_penalty": _float(pick("presence_penalty")),
        "stream": stream if isinstance(stream, bool) else None,
        "output_type": _first(attrs, "gen_ai.output.type"),
    }
    if isinstance(values["seed"], str | float):
        values["seed"] = int(values["seed"]) if str(values["seed"]).lstrip("-").isdigit() else None
    if all(v in (None, []) for v in values.values()):
        return None
    return RequestParams(**values)


def _ttft_ms(record: Record) -> float | None:
    seconds = _float(_first(record.attrs, *TTFT_SECONDS))
    if seconds is not None and seconds >= 0:
        return seconds * 1000
    for name, ts, _attrs in record.events:
        if name in FIRST_TOKEN_EVENTS and ts >= record.start_ns:
            return (ts - record.start_ns) / 1e6
    return None


def _exception(record: Record) -> tuple[str | None, str | None]:
    for name, _ts, attrs in record.events:
        if name == "exception":
            return attrs.get("exception.type"), attrs.get("exception.message")
    return None, None


def to_event(record: Record, *, hash_id: Callable[[str | None], str | None], source: str = "otlp") -> InferenceEvent:
    """The InferenceEvent of one LLM-call record (call `is_llm_call` first); ValidationError when it cannot be."""
    a, res = record.attrs, record.resource
    model = str(_first(a, "gen_ai.request.model", "llm.model_name", "gen_ai.response.model") or "unknown")
    response_model = _first(a, "gen_ai.response.model", "llm.response.model")
    provider = _first(a, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
    operation = _first(a, "gen_ai.operation.name", "llm.request.type") or "chat"
    system, inputs, outputs = _messages(a)
    input_tokens = _int(_first(a, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"))
    output_tokens = _int(
        _first(a, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion")
    )
    e2e = max(record.end_ns - record.start_ns, 0) / 1e6 if record.end_ns and record.start_ns else None
    ttft = _ttft_ms(record)
    if ttft is not None and e2e is not None:
        ttft = min(ttft, e2e)
    tpot = (e2e - ttft) / (output_tokens - 1) if ttft is not None and e2e is not None and output_tokens > 1 else None
    exc_type, exc_message = _exception(record)
    error_type = _first(a, "error.type") or exc_type or ("error" if record.error else None)
    reasons = _json(a.get("gen_ai.response.finish_reasons"))
    service = res.get("service.name")
    deployment = _first(a, "llmwatch.deployment") or _first(res, "llmwatch.deployment") or service or model
    ids = [record.trace_id or "", record.span_id or ""]
    attributes = {"otlp.span_name": record.name[:200]}
    if record.scope:
        attributes["otlp.scope"] = record.scope[:200]
    return InferenceEvent(
        **({"event_id": "".join(ids)} if any(ids) else {}),  # without ids the model makes one
        ts=datetime.fromtimestamp(record.start_ns / 1e9, UTC) if record.start_ns else datetime.now(UTC),
        deployment=str(deployment)[:200],
        model=model[:200],
        model_version=str(_first(a, "llmwatch.model_version") or response_model or model)[:200],
        variant=str(_first(a, "llmwatch.variant") or "baseline"),
        experiment=_first(a, "llmwatch.experiment"),
        prompt_version=str(_first(a, "llmwatch.prompt_version", "gen_ai.prompt.name") or "default"),
        user_id=hash_id(_str(_first(a, "user.id", "enduser.id"))),
        session_id=hash_id(_str(_first(a, "gen_ai.conversation.id", "session.id"))),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ttft_ms=ttft,
        tpot_ms=tpot,
        e2e_ms=e2e,
        status="error" if error_type else "ok",
        error=(record.status_message or exc_message or None) if error_type else None,
        engine=str(provider or "external")[:50],
        source=str(service or source)[:200],
        attributes=attributes,
        operation_name=str(operation)[:100],
        provider_name=_str(provider),
        response_model=_str(response_model),
        response_id=_str(_first(a, "gen_ai.response.id", "llm.response.id")),
        system_instructions=system,
        input_messages=inputs,
        output_messages=outputs,
        tool_definitions=_tool_definitions(a),
        finish_reasons=[str(r) for r in reasons] if isinstance(reasons, list) else ([str(reasons)] if reasons else []),
        request_params=_request_params(a),
        error_type=_str(error_type),
        cached_input_tokens=_int(
            _first(
                a,
                "gen_ai.usage.cache_read.input_tokens",
                "gen_ai.usage.cache_read_input_tokens",
                "llm.token_count.prompt_details.cache_read",
            )
        ),
        reasoning_tokens=_int(
            _first(
                a,
                "gen_ai.usage.reasoning.output_tokens",
                "gen_ai.usage.reasoning_tokens",
                "llm.token_count.completion_details.reasoning",
            )
        ),
        trace_id=record.trace_id,
        span_id=record.span_id,
        parent_span_id=record.parent_span_id,
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass
class Mapped:
    """What a batch of records became."""

    events: list[InferenceEvent] = field(default_factory=list)
    not_llm: int = 0  # records that are not LLM calls: counted and dropped
    rejected: int = 0  # LLM calls that could not become a valid event
    first_error: str = ""


def map_records(
    records: Iterator[Record | None], *, hash_id: Callable[[str | None], str | None], source: str = "otlp"
) -> Mapped:
    out = Mapped()
    for record in records:
        if record is None or not is_llm_call(record.attrs):
            out.not_llm += 1
            continue
        try:
            out.events.append(to_event(record, hash_id=hash_id, source=source))
        except (ValidationError, ValueError, TypeError, OverflowError) as e:
            out.rejected += 1
            if not out.first_error:
                out.first_error = f"span {record.span_id or '?'} ({record.name}): {_reason(e)}"
    return out


def _reason(e: Exception) -> str:
    if isinstance(e, ValidationError):
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(span)"
        return f"field '{loc}': {first['msg']}"
    return f"{type(e).__name__}: {e}"


def new_attributes(values: dict[str, Any]) -> list[KeyValue]:
    """OTLP KeyValues from plain values (for the bench and tests that build spans by hand)."""
    out = []
    for key, value in values.items():
        out.append(KeyValue(key=key, value=_any(value)))
    return out


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list | tuple):
        v = AnyValue()
        v.array_value.values.extend(_any(x) for x in value)
        return v
    return AnyValue(string_value=str(value))
