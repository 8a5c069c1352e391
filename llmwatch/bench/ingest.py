"""`llmwatch bench ingest`: how fast `llmwatch ingest` turns OTLP spans into events acknowledged by Kafka.

The spans are what the OpenTelemetry SDK makes for an instrumented chat call (GenAI attributes, messages on the
span, as opentelemetry-instrumentation-openai-v2 writes them), encoded by the SDK's own OTLP encoders in batches
like a BatchSpanProcessor's, and posted over HTTP to one `llmwatch ingest` process publishing to a private run's
real Kafka topic (acks=all). Two phases, protobuf then JSON, each a closed loop of `concurrency` clients: the figure
is spans per second from the first request until the publisher reports every event acknowledged, with the ingest
process's CPU per span and each batch's request latency.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx
import numpy as np

from llmwatch.harness import IngestProcess, cpu_seconds, private_run, wait_for
from llmwatch.settings import Settings


@dataclass
class Phase:
    encoding: str
    spans: int
    batch: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    accept_s: float = 0.0  # first request → last response
    land_s: float = 0.0  # first request → every event acknowledged by Kafka
    cpu_s: float | None = None

    def q(self, p: float) -> float:
        return float(np.percentile(self.latencies_ms, p)) if self.latencies_ms else float("nan")


def make_bodies(n_spans: int, batch: int, encoding: str) -> list[bytes]:
    """`n_spans` LLM-call spans from the SDK, encoded by its OTLP encoder, `batch` per request body."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench-service"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for i in range(n_spans):
        with tracer.start_as_current_span("chat gpt-x") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-x",
                    "gen_ai.response.model": "gpt-x-2026-01",
                    "gen_ai.response.id": f"chatcmpl-{i}",
                    "gen_ai.request.max_tokens": 256,
                    "gen_ai.request.temperature": 0.7,
                    "gen_ai.usage.input_tokens": 42 + i % 50,
                    "gen_ai.usage.output_tokens": 120 + i % 80,
                    "gen_ai.response.finish_reasons": ["stop"],
                    "gen_ai.input.messages": json.dumps(
                        [
                            {"role": "system", "parts": [{"type": "text", "content": "You are a support assistant."}]},
                            {
                                "role": "user",
                                "parts": [{"type": "text", "content": f"Ticket {i}: my invoice is wrong"}],
                            },
                        ]
                    ),
                    "gen_ai.output.messages": json.dumps(
                        [
                            {
                                "role": "assistant",
                                "parts": [{"type": "text", "content": "I am sorry to hear that. " * 8}],
                                "finish_reason": "stop",
                            }
                        ]
                    ),
                }
            )
            span.add_event("gen_ai.first_token")
    spans = memory.get_finished_spans()
    if encoding == "protobuf":
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        return [encode_spans(spans[i : i + batch]).SerializeToString() for i in range(0, len(spans), batch)]
    from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans as encode_json

    return [encode_json(spans[i : i + batch]).to_json().encode() for i in range(0, len(spans), batch)]


def _sent(metrics: str) -> float:
    found = re.search(r"^llmwatch_gateway_publish_sent_total (\S+)$", metrics, re.M)
    return float(found.group(1)) if found else 0.0


async def _post_all(url: str, bodies: list[bytes], content_type: str, concurrency: int, phase: Phase) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits, trust_env=False) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                resp = await client.post("/v1/traces", content=body, headers={"content-type": content_type})
                phase.latencies_ms.append((time.perf_counter() - started) * 1000)
                if resp.status_code != 200:
                    phase.errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def run_phase(ingest: IngestProcess, encoding: str, n_spans: int, batch: int, concurrency: int) -> Phase:
    content_type = "application/x-protobuf" if encoding == "protobuf" else "application/json"
    bodies = make_bodies(n_spans, batch, encoding)
    phase = Phase(encoding, n_spans, batch)
    before = _sent(ingest.metrics())
    cpu0 = cpu_seconds(ingest.pid)
    started = time.perf_counter()
    asyncio.run(_post_all(ingest.url, bodies, content_type, concurrency, phase))
    phase.accept_s = time.perf_counter() - started
    wait_for(lambda: _sent(ingest.metrics()) >= before + n_spans, 300, f"{n_spans} events acknowledged by Kafka")
    phase.land_s = time.perf_counter() - started
    cpu1 = cpu_seconds(ingest.pid)
    phase.cpu_s = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    return phase


def report(phases: list[Phase], concurrency: int, load: tuple[float, float], body_kib: dict[str, float]) -> str:
    lines = [
        f"One `llmwatch ingest` process, OTLP/HTTP spans made by the OpenTelemetry SDK (GenAI chat spans with their "
        f"messages, as opentelemetry-instrumentation-openai-v2 records them) and encoded by its own OTLP encoders, "
        f"{phases[0].batch} spans per request, {concurrency} concurrent clients (closed loop); every event published "
        f"to a real Kafka topic (acks=all). Landed = the publisher's count of events Kafka acknowledged.",
        "",
        "| encoding | spans | body per request | accepted spans/s | landed events/s | request p50 ms | request p99 ms "
        "| ingest CPU per span | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in phases:
        cpu = f"{p.cpu_s / p.spans * 1e6:.0f} µs" if p.cpu_s is not None else "–"
        lines.append(
            f"| {p.encoding} | {p.spans} | {body_kib[p.encoding]:.0f} KiB | {p.spans / p.accept_s:,.0f} "
            f"| {p.spans / p.land_s:,.0f} | {p.q(50):.1f} | {p.q(99):.1f} | {cpu} | {p.errors} |"
        )
    lines += [
        "",
        f"Load average (1 min) before/after the run: {load[0]:.2f}/{load[1]:.2f} on {os.cpu_count()} cores (Kafka and "
        "anything else on the machine included). For scale: the gateway section above serves 500 requests/s, one "
        "event each, at well under a core; the stream pipeline's figures (`pipeline`) say how fast the events are "
        "scored and stored after they land.",
    ]
    return "\n".join(lines)


@click.command("ingest")
@click.option("--spans", type=int, default=20_000, show_default=True, help="LLM spans per encoding.")
@click.option("--batch", type=int, default=200, show_default=True, help="Spans per OTLP request.")
@click.option("--concurrency", type=int, default=4, show_default=True, help="Concurrent HTTP clients.")
@click.option("--write/--no-write", default=True, show_default=True, help="Write the section of BENCHMARKS.md.")
def command(spans: int, batch: int, concurrency: int, write: bool) -> None:
    """OTLP spans → events acknowledged by Kafka, through `llmwatch ingest`, protobuf and JSON."""
    from llmwatch.bench.report import write_section

    load_before = os.getloadavg()[0]
    base = Settings()
    with (
        tempfile.TemporaryDirectory(prefix="llmwatch-bench-ingest-") as tmp,
        private_run(base, "bench-ingest", data_dir=Path(tmp)) as run,
    ):
        # the buffer holds a whole phase: the figure is the ingest path's, not back-pressure's
        settings = run.model_copy(
            update={"gateway": run.gateway.model_copy(update={"publish_buffer": max(spans, 10_000)})}
        )
        ingest = IngestProcess(settings, Path(tmp) / "ingest.log").start()
        try:
            ingest.wait_ready(120)
            run_phase(ingest, "protobuf", min(spans, 2 * batch), batch, concurrency)  # warm-up
            body_kib = {e: len(make_bodies(batch, batch, e)[0]) / 1024 for e in ("protobuf", "json")}
            phases = [run_phase(ingest, e, spans, batch, concurrency) for e in ("protobuf", "json")]
        finally:
            ingest.stop()
    markdown = report(phases, concurrency, (load_before, os.getloadavg()[0]), body_kib)
    click.echo(markdown)
    if write:
        click.echo(f"\nwritten to {write_section('ingest', markdown)}", err=True)
