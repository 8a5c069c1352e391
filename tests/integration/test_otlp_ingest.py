"""OpenTelemetry in, end to end on the real broker and the real ClickHouse engine, with real third-party clients:

- the OpenTelemetry SDK with its OTLP/HTTP exporters (protobuf, and JSON) sends spans to `llmwatch ingest`;
- the official `openai` client, instrumented by OpenTelemetry's GenAI instrumentation (opentelemetry-instrumentation-
  openai-v2, latest conventions, content on the span), calls a gateway that also serves the ingest routes, and its
  spans go to that gateway too;
- `POST /v1/events` and `/v1/feedback` as a non-Python service would send them;

and a worker (score + sink, redaction on) stores what arrived. Every message on the events topic then validates
against the exported JSON Schemas with ajv, the JavaScript validator, in its default strict mode.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmwatch.harness import GatewayProcess, IngestProcess, WorkerProcess, query_rows, query_scalar, wait_for
from llmwatch.settings import EvaluatorSettings, GatewaySettings, Settings, WorkerSettings

from .ajv import ajv_validate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "sk-test-otlp"
AUTH = {"authorization": f"Bearer {KEY}"}


@pytest.fixture
def ingest_settings(isolated_topics: Settings, tmp_path: Path) -> Settings:
    return isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "eval": EvaluatorSettings(enabled=["pii"], redact=True),
            "worker": WorkerSettings(app_id=f"test-otlp-{uuid.uuid4().hex[:8]}", sink_within_s=0.3),
            "gateway": GatewaySettings(api_keys=[KEY]),
            "prices": {"gpt-x-2026-01": {"input": 2.0, "output": 8.0}},
        }
    )


def _genai_attributes(tag: str) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-x",
        "gen_ai.response.model": "gpt-x-2026-01",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 250,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "system", "parts": [{"type": "text", "content": "Answer briefly."}]},
                {"role": "user", "parts": [{"type": "text", "content": f"[{tag}] mail me at jane.doe@example.com"}]},
            ]
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "Sent."}], "finish_reason": "stop"}]
        ),
    }


def _export(url: str, encoding: str, tag: str) -> tuple[str, str, str]:
    """Spans through the SDK's own OTLP/HTTP exporter; (trace id, LLM span id, parent span id) as hex."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if encoding == "protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter  # type: ignore[no-redef]
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=AUTH, timeout=30)
    provider = TracerProvider(resource=Resource.create({"service.name": f"otel-{encoding}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("llmwatch-test")
    with tracer.start_as_current_span("handle request") as root:
        with tracer.start_as_current_span("SELECT docs") as db:
            db.set_attribute("db.system.name", "postgresql")
        with tracer.start_as_current_span("chat gpt-x") as llm:
            llm.set_attributes(_genai_attributes(tag))
            time.sleep(0.003)
            llm.add_event("gen_ai.first_token")
            time.sleep(0.005)
    assert provider.force_flush(30_000)
    provider.shutdown()
    return (
        f"{llm.get_span_context().trace_id:032x}",
        f"{llm.get_span_context().span_id:016x}",
        f"{root.get_span_context().span_id:016x}",
    )


def _rows_of_trace(s: Settings, trace_id: str) -> list[tuple[Any, ...]]:
    return query_rows(
        s,
        "SELECT span_id, parent_span_id, source, input_tokens, output_tokens, ttft_ms, e2e_ms, prompt, input_messages,"
        " cost_usd, finish_reasons, operation_name, provider_name FROM inference_events FINAL"
        " WHERE trace_id = {t:String}",
        {"t": trace_id},
    )


def test_otel_sdk_spans_in_protobuf_and_json_land_in_clickhouse(ingest_settings: Settings, tmp_path: Path) -> None:
    s = ingest_settings
    worker = WorkerProcess(s, ["score", "sink"], tmp_path / "worker.log").start()
    ingest = IngestProcess(s, tmp_path / "ingest.log").start()
    try:
        ingest.wait_ready(120)
        refused = httpx.post(f"{ingest.url}/v1/traces", content=b"", headers={"content-type": "application/x-protobuf"})
        assert refused.status_code == 401  # the gateway's keys guard the ingest routes too
        traces = {encoding: _export(ingest.url, encoding, encoding) for encoding in ("protobuf", "json")}

        def landed() -> bool:
            return all(len(_rows_of_trace(s, t)) == 1 for t, _, _ in traces.values())

        wait_for(landed, 240, "one event per exported LLM span in ClickHouse", processes=[worker, ingest])
        for encoding, (trace_id, span_id, parent_id) in traces.items():
            (row,) = _rows_of_trace(s, trace_id)
            span, parent, source, n_in, n_out, ttft, e2e, prompt, messages, cost, reasons, op, provider = row
            assert (span, parent, source) == (span_id, parent_id, f"otel-{encoding}")
            assert (n_in, n_out, reasons, op, provider) == (1000, 250, ["stop"], "chat", "openai")
            assert 0 < ttft < e2e
            assert cost == pytest.approx((1000 * 2.0 + 250 * 8.0) / 1e6)  # the price table applied in the worker
            assert [m["role"] for m in json.loads(messages)] == ["system", "user"]
            assert f"[{encoding}]" in prompt
            # redaction covers the structured messages as well as the flat prompt
            assert "jane.doe@example.com" not in prompt and "jane.doe@example.com" not in messages
        # the database spans are not LLM calls: counted and dropped, never stored nor dead-lettered
        assert query_scalar(s, "SELECT count() FROM inference_events FINAL") == 2
        assert query_scalar(s, "SELECT count() FROM dead_letters") == 0
        assert 'outcome="not_llm",signal="traces"} 4.0' in ingest.metrics()
    finally:
        ingest.stop()
        worker.stop()


def test_instrumented_openai_client_through_the_gateway(
    ingest_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openai
    from opentelemetry import propagate
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    s = ingest_settings
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    worker = WorkerProcess(s, ["score", "sink"], tmp_path / "worker.log").start()
    gateway = GatewayProcess(s, tmp_path / "gateway.log", args=("--engine", "simulated", "--ingest")).start()
    instrumentor = OpenAIInstrumentor()
    try:
        gateway.wait_ready(120)
        provider = TracerProvider(resource=Resource.create({"service.name": "support-api"}))
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{gateway.url}/v1/traces", headers=AUTH))
        )
        instrumentor.instrument(tracer_provider=provider)
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0)
        assert client.models.retrieve("demo").id == "demo"
        tracer = provider.get_tracer("support-api")
        with tracer.start_as_current_span("answer ticket") as root:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)  # the gateway records the caller's trace context
            raw = client.chat.completions.with_raw_response.create(
                model="demo",
                messages=[
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "What is a canary release?"},
                ],
                max_tokens=12,
                extra_headers=carrier,
            )
        completion = raw.parse()
        event_id = raw.headers["x-request-id"]
        assert event_id == completion.llmwatch["event_id"]  # type: ignore[attr-defined]
        with pytest.raises(openai.BadRequestError) as refused:  # the simulator cannot call tools: said, not dropped
            client.chat.completions.create(
                model="demo",
                messages=[{"role": "user", "content": "weather?"}],
                tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            )
        assert "tools" in str(refused.value)
        assert provider.force_flush(30_000)
        trace_id = f"{root.get_span_context().trace_id:032x}"

        # a non-Python service: the README's curl, as httpx
        sent = httpx.post(
            f"{gateway.url}/v1/events",
            headers=AUTH,
            json=[
                {
                    "deployment": "billing-bot",
                    "model": "gpt-x",
                    "model_version": "gpt-x-2026-01",
                    "input_tokens": 10,
                    "output_tokens": 2,
                    "prompt": "hello",
                    "response": "hi",
                    "source": "billing-go",
                }
            ],
        )
        assert sent.status_code == 200, sent.text
        posted_id = sent.json()["ids"][0]
        thumbs = httpx.post(
            f"{gateway.url}/v1/feedback",
            headers=AUTH,
            json={"event_id": posted_id, "deployment": "billing-bot", "thumbs": 1},
        )
        assert thumbs.status_code == 200, thumbs.text
        bad = httpx.post(f"{gateway.url}/v1/events", headers=AUTH, json=[{"deployment": "x"}])
        assert bad.status_code == 400 and "model" in bad.json()["error"]["message"]

        def landed() -> list[tuple[Any, ...]]:
            rows = query_rows(
                s,
                "SELECT event_id, source, span_id, parent_span_id, input_tokens, output_tokens, input_messages,"
                " engine FROM inference_events FINAL WHERE trace_id = {t:String} ORDER BY source",
                {"t": trace_id},
            )
            return rows if len(rows) == 2 else []

        rows = wait_for(
            landed, 240, "the gateway's event and the instrumentation's span event", processes=[worker, gateway]
        )
        by_source = {r[1]: r for r in rows}
        gw_row, span_row = by_source["gateway"], by_source["support-api"]
        usage = completion.usage
        assert usage is not None
        assert gw_row[0] == event_id and gw_row[3] == f"{root.get_span_context().span_id:016x}"  # traceparent recorded
        assert (span_row[4], span_row[5]) == (usage.prompt_tokens, usage.completion_tokens)
        assert (gw_row[4], gw_row[5]) == (usage.prompt_tokens, usage.completion_tokens)
        assert span_row[3] == f"{root.get_span_context().span_id:016x}"  # the client span's parent is ours
        for row in (gw_row, span_row):
            assert [m["role"] for m in json.loads(row[6])] == ["system", "user"]
        assert (
            query_scalar(s, "SELECT count() FROM inference_events FINAL WHERE event_id = {e:String}", {"e": posted_id})
            == 1
        )
        wait_for(
            lambda: (
                query_scalar(s, "SELECT count() FROM feedback FINAL WHERE event_id = {e:String}", {"e": posted_id}) == 1
            ),
            120,
            "the posted feedback",
            processes=[worker],
        )

        # every message on the events topic validates against the exported schemas in ajv's strict mode
        raw_events = _raw_topic(s, s.topics.events, expect=4)
        result = ajv_validate(tmp_path, [("InferenceEvent", json.loads(v)) for v in raw_events])
        assert result["valid"] == len(raw_events) and not result["invalid"]
    finally:
        instrumentor.uninstrument()
        gateway.stop()
        worker.stop()


def _raw_topic(s: Settings, topic: str, expect: int) -> list[bytes]:
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def read() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic, **s.kafka_client_kwargs(), group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        out: list[bytes] = []
        try:
            async with asyncio.timeout(60):
                while len(out) < expect:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        out.extend(r.value for r in records if r.value)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(read())
