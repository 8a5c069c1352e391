"""`llmwatch bench gateway`: what the gateway and its publisher add to a request over calling the engine directly.

Each round runs three open-loop phases at the same rate with the simulated engine set to ~zero latency, so whatever
remains is overhead: (1) the engine called in-process through `timed_stream`, (2) the same request through `llmwatch
serve` over HTTP, plain JSON, (3) the same streamed (SSE). The verdict reads the median over rounds, each round
against its own direct baseline: a single p99 on a shared machine moves by about a millisecond. The gateway runs as
its own process, publishing every event to a real Kafka topic. Requests go out on schedule whether or not earlier
ones finished (open loop); the client is a minimal keep-alive HTTP/1.1 client so that its own cost stays small.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx
import numpy as np

from llmwatch.harness import GatewayProcess, cpu_seconds, private_run
from llmwatch.inference.engine_base import ChatMessage, GenerationRequest, Timing, timed_stream
from llmwatch.inference.engines import EngineSpec, build_engine
from llmwatch.settings import Settings

#: ~zero engine latency: the simulator still streams 16 tokens through the whole path.
ZERO_PROFILE = {
    "ttft_ms": {"median": 0.001},
    "tpot_ms": {"median": 0.001},
    "output_tokens": {"median": 16, "sigma": 0},
    "error_rate": 0.0,
    "toxic_rate": 0.0,
    "pii_rate": 0.0,
}
PROMPT = "What does a canary release protect against?"
DIRECT = "engine, called directly"
JSON_PATH = "gateway + publisher, HTTP JSON"
SSE_PATH = "gateway + publisher, HTTP SSE"
QUANTILES = (50, 90, 99, 99.9)


@dataclass
class Phase:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0
    #: CPU seconds the gateway process used during the phase (user + system), when it could be read
    server_cpu_s: float | None = None
    #: share of requests the gateway itself finished within 1 ms and 2.5 ms (its own duration histogram)
    server_within: dict[str, float] = field(default_factory=dict)
    #: which round of the run the phase belongs to (1-based)
    round: int = 1

    def q(self, p: float) -> float:
        return float(np.percentile(self.latencies_ms, p)) if self.latencies_ms else float("nan")

    @property
    def rate(self) -> float:
        return (len(self.latencies_ms) + self.errors) / self.wall_s if self.wall_s else 0.0


async def open_loop(name: str, rate: float, duration_s: float, call: Callable[[], Awaitable[bool]]) -> Phase:
    """Start one call every 1/rate s for duration_s; latency is from each call's start to its end."""
    phase = Phase(name)
    n = max(1, round(rate * duration_s))
    begin = time.perf_counter() + 0.01

    async def one(scheduled: float) -> None:
        started = time.perf_counter()
        ok = await call()
        done = time.perf_counter()
        if ok:
            phase.latencies_ms.append((done - started) * 1000)
            phase.lateness_ms.append(max(0.0, started - scheduled) * 1000)
        else:
            phase.errors += 1

    tasks = []
    for i in range(n):
        scheduled = begin + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    phase.wall_s = time.perf_counter() - begin
    return phase


class LeanHttp:
    """Keep-alive HTTP/1.1 POSTs over raw asyncio streams: a few microseconds of client cost per request."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        # round robin (FIFO) keeps every pooled connection busy, so none reaches the server's keep-alive timeout
        self._idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()
        self._all: list[asyncio.StreamWriter] = []
        self.reconnects = 0

    async def post(self, path: str, body: bytes) -> int:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        for attempt in range(2):
            if self._idle and attempt == 0:
                reader, writer = self._idle.popleft()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self._all.append(writer)
            writer.write(head + body)
            status_line = await reader.readline()
            if status_line:
                break
            self.reconnects += 1  # the server closed an idle connection: retry once on a new one
            writer.close()
        else:
            raise ConnectionError("the gateway closed the connection twice")
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await reader.readexactly(length)
        self._idle.append((reader, writer))
        return status

    async def close(self) -> None:
        for writer in self._all:
            writer.close()


def _scrape(metrics: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.M)
    return float(m.group(1)) if m else float("nan")


_BUCKET = re.compile(r"^llmwatch_gateway_request_duration_seconds_bucket\{(?P<labels>[^}]*)\} (?P<n>\S+)$", re.M)


async def _buckets(url: str, stream: bool) -> dict[str, float]:
    """The gateway's own request-duration histogram (cumulative counts by `le`), summed over its series."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{url}/metrics")).text
    out: dict[str, float] = {}
    for m in _BUCKET.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group("labels")))
        if labels.get("stream") == ("true" if stream else "false"):
            out[labels["le"]] = out.get(labels["le"], 0.0) + float(m.group("n"))
    return out


async def run_bench(
    rate: float, duration_s: float, warmup_s: float, stream: bool, rounds: int = 1
) -> tuple[list[Phase], dict]:
    from llmwatch.settings import get_settings

    with private_run(get_settings(), "bench.gateway") as settings:
        return await _run_phases(settings, rate, duration_s, warmup_s, stream, rounds)


async def _run_phases(
    settings: Settings, rate: float, duration_s: float, warmup_s: float, stream: bool, rounds: int
) -> tuple[list[Phase], dict]:
    """`rounds` × (direct, JSON[, SSE]) against one gateway process, so each round has its own same-moment baseline."""
    spec = {"kind": "simulated", "versions": ["baseline", "canary"], "options": {"profile": ZERO_PROFILE}}
    engine = build_engine(EngineSpec.model_validate(spec))
    chat = json.dumps({"model": "demo", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64})

    async def direct() -> bool:
        request = GenerationRequest(
            model_version="baseline",
            messages=(ChatMessage("user", PROMPT),),
            max_tokens=64,
            request_id=uuid.uuid4().hex,
        )
        text = "".join([c.text async for c in timed_stream(engine, request, Timing())])
        return bool(text)

    workdir = Path(tempfile.mkdtemp(prefix="llmwatch-bench-"))
    config = workdir / "gateway.json"
    config.write_text(json.dumps({"engines": [spec], "deployments": [{"name": "demo"}]}))
    gateway = GatewayProcess(settings, workdir / "gateway.log", args=["--config", str(config)]).start()
    url = gateway.url
    client = LeanHttp("127.0.0.1", gateway.port)
    phases: list[Phase] = []
    try:
        await asyncio.to_thread(gateway.wait_ready, 60)
        bodies = {"plain": chat.encode(), "stream": json.dumps({**json.loads(chat), "stream": True}).encode()}

        def via_gateway(kind: str) -> Callable[[], Awaitable[bool]]:
            async def call() -> bool:
                return await client.post("/v1/chat/completions", bodies[kind]) == 200

            return call

        kinds = ["plain", "stream"] if stream else ["plain"]
        for number in range(1, rounds + 1):
            await open_loop(DIRECT, rate, warmup_s, direct)
            phase = await open_loop(DIRECT, rate, duration_s, direct)
            phase.round = number
            phases.append(phase)
            for kind in kinds:
                label = JSON_PATH if kind == "plain" else SSE_PATH
                await open_loop(label, rate, warmup_s, via_gateway(kind))
                buckets_before, cpu_before = await _buckets(url, kind == "stream"), cpu_seconds(gateway.pid)
                phase = await open_loop(label, rate, duration_s, via_gateway(kind))
                buckets_after, cpu_after = await _buckets(url, kind == "stream"), cpu_seconds(gateway.pid)
                phase.round = number
                if cpu_before is not None and cpu_after is not None:
                    phase.server_cpu_s = cpu_after - cpu_before
                total = buckets_after.get("+Inf", 0) - buckets_before.get("+Inf", 0)
                for le in ("0.001", "0.0025"):
                    phase.server_within[le] = (buckets_after.get(le, 0) - buckets_before.get(le, 0)) / max(total, 1)
                phases.append(phase)
        async with httpx.AsyncClient(timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:  # let the publisher drain, then read its counters
                metrics = (await http.get(f"{url}/metrics")).text
                if _scrape(metrics, "llmwatch_gateway_publish_queue_depth") == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        publisher = {k: _scrape(metrics, f"llmwatch_gateway_publish_{k}_total") for k in ("sent", "failed", "dropped")}
    finally:
        await client.close()
        gateway.stop()
    return phases, publisher


def overheads(phases: list[Phase]) -> dict[str, list[tuple[float, float]]]:
    """(p50, p99) overhead per gateway path and round: the path's quantile − the same round's direct quantile."""
    direct = {p.round: p for p in phases if p.name == DIRECT}
    out: dict[str, list[tuple[float, float]]] = {}
    for p in phases:
        if p.name != DIRECT:
            base = direct[p.round]
            out.setdefault(p.name, []).append((p.q(50) - base.q(50), p.q(99) - base.q(99)))
    return out


def report(
    phases: list[Phase], publisher: dict, rate: float, duration_s: float, load: tuple[float, float]
) -> tuple[str, bool]:
    rounds = max(p.round for p in phases)
    head = (
        "| round | path | requests | errors | achieved rate | p50 ms | p90 ms | p99 ms | p99.9 ms "
        "| start lateness p99 ms | gateway CPU per request | gateway's own time ≤ 1 ms / ≤ 2.5 ms |"
    )
    rows = [head, "|" + " --- |" * 12]
    for p in phases:
        qs = " | ".join(f"{p.q(q):.3f}" for q in QUANTILES)
        lateness = float(np.percentile(p.lateness_ms, 99)) if p.lateness_ms else float("nan")
        n = len(p.latencies_ms)
        cpu = f"{p.server_cpu_s / max(n, 1) * 1e6:.0f} µs" if p.server_cpu_s is not None else "–"
        within = " / ".join(f"{p.server_within[le]:.1%}" for le in ("0.001", "0.0025")) if p.server_within else "–"
        rows.append(
            f"| {p.round} | {p.name} | {n} | {p.errors} | {p.rate:.0f}/s | {qs} | {lateness:.3f} | {cpu} | {within} |"
        )
    lines = [
        f"Open loop at {rate:.0f} requests/s for {duration_s:.0f} s per path (after a warm-up), simulated engine "
        f"at ~zero latency (16 tokens per answer), events published to a real Kafka topic; {rounds} round(s), each "
        "measuring the engine called directly right before the gateway paths, so that every overhead has a "
        "baseline taken at the same moment.",
        "",
        *rows,
        "",
        "Overhead = quantile through the gateway − the same round's quantile calling the engine directly; the "
        "verdict reads the median over rounds (one round's p99 on a shared 2-core machine moves by ±1 ms):",
        "",
    ]
    errors = sum(p.errors for p in phases)
    ok = errors == 0
    for name, values in overheads(phases).items():
        o50 = float(np.median([v[0] for v in values]))
        o99 = float(np.median([v[1] for v in values]))
        ok = ok and o99 < 2.0
        each = " / ".join(f"{v[1]:.3f}" for v in values)
        lines.append(
            f"- {name}: median p50 **{o50:.3f} ms**, median p99 **{o99:.3f} ms** (target p99 < 2 ms; "
            f"p99 per round {each} ms)"
        )
    lines += [
        "",
        f"Publisher after the run: sent {publisher['sent']:.0f}, failed {publisher['failed']:.0f}, "
        f"dropped {publisher['dropped']:.0f}. Load average (1 min) before/after the run: "
        f"{load[0]:.2f}/{load[1]:.2f} on {os.cpu_count()} cores (Kafka and anything else on the machine included).",
        "",
        f"Verdict: **{'PASS' if ok else 'FAIL'}** (median p99 overhead under 2 ms on every gateway path, no errors).",
    ]
    return "\n".join(lines), ok


@click.command("gateway")
@click.option("--rate", type=float, default=500.0, show_default=True, help="Requests per second (open loop).")
@click.option("--duration", type=float, default=20.0, show_default=True, help="Seconds measured per path.")
@click.option("--warmup", type=float, default=3.0, show_default=True, help="Seconds of warm-up per path.")
@click.option(
    "--rounds",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Rounds of (direct, gateway paths); the verdict reads the median overhead over rounds.",
)
@click.option("--stream/--no-stream", default=True, show_default=True, help="Also measure streamed (SSE) requests.")
@click.option("--write/--no-write", default=True, show_default=True, help="Write the section of BENCHMARKS.md.")
@click.option("--check", is_flag=True, help="Exit 1 when the p99 target is missed (CI on a quiet machine).")
def command(rate: float, duration: float, warmup: float, rounds: int, stream: bool, write: bool, check: bool) -> None:
    """Gateway + publisher overhead over the engine, p50/p99 per request, at a fixed open-loop rate."""
    from llmwatch.bench.report import write_section

    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.run
    load_before = os.getloadavg()[0]
    phases, publisher = runner(run_bench(rate, duration, warmup, stream, rounds))
    markdown, ok = report(phases, publisher, rate, duration, (load_before, os.getloadavg()[0]))
    click.echo(markdown)
    if write:
        click.echo(f"\nwritten to {write_section('gateway', markdown)}", err=True)
    if check and not ok:
        raise SystemExit(1)
