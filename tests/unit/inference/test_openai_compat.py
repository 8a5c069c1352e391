"""OpenAI compatibility of the gateway: tools and response_format (passed on, or refused with a 400, never dropped),
tool calls streamed back and recorded, GET /v1/models/{id}, x-request-id, traceparent, the GenAI fields of events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from llmwatch.inference.app import GatewayConfig, build_gateway, create_app
from llmwatch.inference.engine_base import TOOLS, ChatMessage, GenerationRequest, TokenChunk, ToolCallDelta
from llmwatch.inference.engine_openai import OpenAIEngine
from llmwatch.inference.engines import EngineSpec
from llmwatch.inference.protocol import ChatCompletionRequest, ErrorResponse
from llmwatch.inference.router import Router
from llmwatch.inference.serving import Deployment, EngineSlot, Serving, SSEStream, TraceParent
from llmwatch.schemas import InferenceEvent
from llmwatch.settings import GatewaySettings, Settings

from .test_serving import FAST, Harness, _payloads, _sse

session_loop = pytest.mark.asyncio(loop_scope="session")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}},
}


def _chat(**extra: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "demo", "messages": [{"role": "user", "content": "weather in Paris?"}], "max_tokens": 16, **extra}
    )


class ToolEngine:
    """A test engine that answers every request with one tool call, streamed in three pieces."""

    name = "tooly"
    features = frozenset({TOOLS})

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    def versions(self) -> list[str]:
        return ["baseline"]

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenChunk]:
        self.requests.append(request)
        yield TokenChunk(text="", tokens=1, tool_calls=(ToolCallDelta(0, id="call_1", name="get_weather"),))
        yield TokenChunk(text="", tokens=1, tool_calls=(ToolCallDelta(0, arguments='{"city": '),))
        yield TokenChunk(text="", tokens=1, tool_calls=(ToolCallDelta(0, arguments='"Paris"}'),))
        yield TokenChunk(text="", tokens=0, finish_reason="tool_calls", input_tokens=9)


def _tool_serving() -> tuple[Serving, ToolEngine, list[InferenceEvent]]:
    engine = ToolEngine()
    events: list[InferenceEvent] = []
    serving = Serving(
        deployments={"demo": Deployment("demo", "baseline", ("baseline",))},
        slots={"baseline": EngineSlot(engine=engine, state="ready")},  # type: ignore[arg-type]
        router=Router({"demo": "baseline"}),
        settings=GatewaySettings(),
        publish=lambda e: events.append(e) or True,
    )
    return serving, engine, events


@session_loop
@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [WEATHER]}, "tools"),
        ({"tools": [WEATHER], "tool_choice": "required"}, "tools"),
        ({"response_format": SCHEMA_FORMAT}, "response_format"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
    ],
)
async def test_an_engine_that_cannot_honour_a_field_answers_400_naming_it(extra: dict, param: str) -> None:
    h = Harness({"baseline": FAST})
    result = await h.serving.chat(_chat(**extra))
    assert isinstance(result, ErrorResponse) and result.status_code == 400
    assert result.error.param == param and "simulated" in result.error.message
    assert result.error.code == "unsupported_parameter"
    assert h.events == []  # nothing reached an engine


@session_loop
async def test_fields_that_ask_nothing_of_the_engine_are_served() -> None:
    h = Harness({"baseline": FAST})
    for extra in ({"tools": [WEATHER], "tool_choice": "none"}, {"response_format": {"type": "text"}}):
        assert not isinstance(await h.serving.chat(_chat(**extra)), ErrorResponse)
    assert len(h.events) == 2


def test_tool_choice_must_name_an_offered_tool() -> None:
    with pytest.raises(ValueError, match="not in tools"):
        _chat(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "other"}})
    with pytest.raises(ValueError, match="needs tools"):
        _chat(tool_choice="required")


@session_loop
async def test_tool_calls_are_answered_and_recorded() -> None:
    serving, engine, events = _tool_serving()
    req = _chat(tools=[WEATHER], tool_choice="auto", parallel_tool_calls=False, temperature=0.2, seed=7)
    result = await serving.chat(req)
    assert not isinstance(result, ErrorResponse | SSEStream)
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    sent = engine.requests[0]
    assert sent.tools == (WEATHER,) and sent.tool_choice == "auto" and sent.parallel_tool_calls is False
    (event,) = events
    assert [(c.name, json.loads(c.arguments)) for c in event.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert event.finish_reasons == ["tool_calls"] and event.tool_definitions[0]["function"]["name"] == "get_weather"
    assert event.operation_name == "chat" and event.provider_name == "tooly" and event.response_model == "baseline"
    assert event.input_messages[0].role == "user" and event.input_messages[0].parts[0].content == "weather in Paris?"
    params = event.request_params
    assert params is not None and (params.temperature, params.seed, params.tool_choice) == (0.2, 7, "auto")
    assert event.response_id == f"chatcmpl-{event.event_id}"


@session_loop
async def test_tool_calls_stream_as_openai_deltas() -> None:
    serving, _engine, events = _tool_serving()
    result = await serving.chat(_chat(tools=[WEATHER], stream=True, stream_options={"include_usage": True}))
    assert isinstance(result, SSEStream)
    payloads = _payloads(await _sse(result))
    deltas = [c["delta"]["tool_calls"][0] for p in payloads for c in p["choices"] if c["delta"].get("tool_calls")]
    assert deltas[0]["id"] == "call_1" and deltas[0]["function"]["name"] == "get_weather"
    assert "".join(d["function"]["arguments"] for d in deltas) == '{"city": "Paris"}'
    assert [c["finish_reason"] for p in payloads for c in p["choices"] if c.get("finish_reason")] == ["tool_calls"]
    assert events[0].tool_calls[0].arguments == '{"city": "Paris"}'


def test_traceparent_is_parsed_or_ignored() -> None:
    good = TraceParent.parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert good == TraceParent("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    for bad in (
        None,
        "",
        "garbage",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71-01",
        "ff-" + "a" * 32 + "-" + "b" * 16 + "-01",
    ):
        assert TraceParent.parse(bad) is None
    assert TraceParent.parse("00-" + "0" * 32 + "-b7ad6b7169203331-01") is None


def test_openai_engine_passes_tools_and_format_on() -> None:
    engine = OpenAIEngine("http://upstream.invalid/v1", models=["m"])
    named = {"type": "function", "function": {"name": "get_weather"}}
    request = GenerationRequest(
        model_version="m",
        messages=(
            ChatMessage("user", "hi"),
            ChatMessage(
                "assistant",
                "",
                tool_calls=({"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},),
            ),
            ChatMessage("tool", "sunny", tool_call_id="c1"),
        ),
        tools=(WEATHER,),
        tool_choice=named,
        parallel_tool_calls=True,
        response_format=SCHEMA_FORMAT,
    )
    path, body = engine._body(request)
    assert path == "/v1/chat/completions"
    assert body["tools"] == [WEATHER] and body["tool_choice"] == named and body["parallel_tool_calls"] is True
    assert body["response_format"] == SCHEMA_FORMAT
    assert body["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [request.messages[1].tool_calls[0]],
    }
    assert body["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": "c1"}


@session_loop
async def test_openai_engine_reads_streamed_tool_calls_and_usage_details() -> None:
    engine = OpenAIEngine("http://upstream.invalid/v1", models=["m"])

    async def payloads() -> AsyncIterator[str]:
        chunks = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]},
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "c9",
                                    "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""},
                                }
                            ]
                        },
                    }
                ]
            },
            {
                "choices": [
                    {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Oslo"}'}}]}}
                ]
            },
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
            {
                "choices": [],
                "usage": {
                    "prompt_tokens": 30,
                    "completion_tokens": 8,
                    "prompt_tokens_details": {"cached_tokens": 16},
                    "completion_tokens_details": {"reasoning_tokens": 3},
                },
            },
        ]
        for c in chunks:
            yield json.dumps(c)
        yield "[DONE]"

    out = [c async for c in engine._chunks(payloads())]
    calls = [d for c in out for d in c.tool_calls]
    assert calls[0].id == "c9" and calls[0].name == "get_weather" and calls[1].arguments == '{"city":"Oslo"}'
    final = out[-1]
    assert final.finish_reason == "tool_calls" and final.input_tokens == 30
    assert sum(c.tokens for c in out) == 8 and final.cached_tokens == 16 and final.reasoning_tokens == 3


@pytest.fixture
async def sim_client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(gateway=GatewaySettings(ingest=False))
    config = GatewayConfig(engines=[EngineSpec(kind="simulated")])
    gateway = build_gateway(settings, config, publish=False, watch_weights=False)
    app = create_app(gateway)
    async with gateway.running():
        await gateway.wait_ready(10)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client


@session_loop
async def test_http_model_retrieve_request_id_and_traceparent(sim_client: httpx.AsyncClient) -> None:
    card = await sim_client.get("/v1/models/demo")
    assert card.status_code == 200 and card.json()["id"] == "demo" and card.json()["object"] == "model"
    missing = await sim_client.get("/v1/models/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    resp = await sim_client.post("/v1/chat/completions", json=body, headers=headers)
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == resp.json()["llmwatch"]["event_id"] == resp.headers["x-llmwatch-event-id"]
    refused = await sim_client.post("/v1/chat/completions", json={**body, "tools": [WEATHER]})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tools"


@session_loop
async def test_event_records_the_incoming_trace_context() -> None:
    h = Harness({"baseline": FAST})
    trace = TraceParent("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    await h.serving.chat(_chat(), trace)
    (event,) = h.events
    assert event.trace_id == trace.trace_id and event.parent_span_id == trace.parent_span_id
    assert event.span_id is not None and len(event.span_id) == 16
    await h.serving.chat(_chat())
    assert h.events[1].trace_id is None and h.events[1].span_id is None
