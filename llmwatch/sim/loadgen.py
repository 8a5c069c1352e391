"""Open-loop load generation: scenario traffic to a gateway over HTTP, or simulated events straight to Kafka.

Open loop means requests leave on a fixed schedule (request i at i / rate seconds) whatever the responses do,
so a slow server meets the same load a real one would and its queueing shows up in the latencies, which are
measured from the scheduled send time (no coordinated omission). A send that leaves more than `late_ms`
after its slot counts as late: it means the generator itself could not keep up.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np
from pydantic import BaseModel, Field, model_validator

from llmwatch.errors import ConfigError
from llmwatch.settings import Settings

from .corpus import load_corpus
from .events import scenario_events
from .scenarios import SCENARIOS, draw_prompt, draw_user, get_scenario

Progress = Callable[[int, int], None]  # (done, planned)
#: (HTTP status, the gateway's x-llmwatch-event-id or None): lets a caller check every answered request downstream
OnAnswer = Callable[[int, str | None], None]


class LoadgenConfig(BaseModel):
    scenario: str
    target: str = Field(description="'kafka', or the gateway's base URL (http://host:port).")
    rate: float | None = Field(None, gt=0, description="Requests per second; None with count: as fast as possible.")
    duration_s: float | None = Field(None, gt=0)
    count: int | None = Field(None, ge=1)
    deployment: str = "demo"
    seed: int = 0
    canary_weight: float = Field(0.5, ge=0, le=1, description="Kafka target only (a gateway routes by its weights).")
    onset_s: float | None = Field(None, ge=0, description="When the scenario's regression starts (default: its own).")
    stream: bool = False
    max_tokens: int = Field(256, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    max_in_flight: int = Field(2_000, ge=1, description="Sends beyond this many unanswered ones are counted, not sent.")
    late_ms: float = Field(10.0, ge=0)

    @model_validator(mode="after")
    def _shape(self) -> LoadgenConfig:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; known: {', '.join(SCENARIOS)}")
        if self.count is None and (self.rate is None or self.duration_s is None):
            raise ValueError("give --rate and --duration, or --count")
        if self.count is not None and self.duration_s is not None:
            raise ValueError("give --duration or --count, not both")
        if self.rate is None and self.is_http:
            raise ValueError("an HTTP target needs --rate (open-loop traffic is paced)")
        if not self.is_http and self.target != "kafka":
            raise ValueError(f"--target must be 'kafka' or an http(s):// URL, got {self.target!r}")
        return self

    @property
    def is_http(self) -> bool:
        return self.target.startswith(("http://", "https://"))

    @property
    def planned(self) -> int:
        if self.count is not None:
            return self.count
        assert self.rate is not None and self.duration_s is not None
        return max(1, round(self.rate * self.duration_s))


class LoadgenResult(BaseModel):
    scenario: str
    target: str
    planned: int
    sent: int = 0
    ok: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = Field(default_factory=dict)
    late_sends: int = Field(0, description="Sends that left more than late_ms after their scheduled time.")
    max_late_ms: float = 0.0
    target_rate: float | None = None
    achieved_rate: float = Field(0.0, description="Sends per second over the sending period.")
    elapsed_s: float = 0.0
    latency_ms: dict[str, float] = Field(default_factory=dict, description="From scheduled send to last byte.")
    ttft_ms: dict[str, float] = Field(default_factory=dict, description="Streaming only: to the first content.")
    variants: dict[str, int] = Field(default_factory=dict, description="Responses per variant the gateway chose.")
    publisher: dict[str, int] = Field(default_factory=dict, description="Kafka target: the publisher's counters.")


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values, dtype=float)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "p50": round(float(p50), 2),
        "p90": round(float(p90), 2),
        "p99": round(float(p99), 2),
        "max": round(float(a.max()), 2),
    }


class _Schedule:
    """Paces sends by the clock: every wake-up sends all that are due, so high rates need few sleeps."""

    def __init__(self, n: int, rate: float | None, late_ms: float) -> None:
        self.n = n
        self.rate = rate
        self.late_s = late_ms / 1000
        self.late = 0
        self.max_late_s = 0.0
        self.start = 0.0
        self.last_send = 0.0

    async def run(self, send: Callable[[int, float], Awaitable[None] | None]) -> None:
        self.start = time.perf_counter()
        for i in range(self.n):
            due = self.start + i / self.rate if self.rate else time.perf_counter()
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
                now = time.perf_counter()
            elif not self.rate and i % 256 == 0:
                await asyncio.sleep(0)  # unpaced: still let the sender tasks run
            lateness = now - due
            if lateness > self.late_s:
                self.late += 1
            self.max_late_s = max(self.max_late_s, lateness)
            pending = send(i, due)
            if pending is not None:
                await pending
            self.last_send = now

    @property
    def sending_s(self) -> float:
        return max(self.last_send - self.start, 1e-9)


async def run_loadgen(
    config: LoadgenConfig, settings: Settings, progress: Progress | None = None, on_answer: OnAnswer | None = None
) -> LoadgenResult:
    """Run the traffic; `on_answer` (HTTP target only) sees every response's status and event id."""
    if config.is_http:
        return await _run_http(config, progress, on_answer)
    return await _run_kafka(config, settings, progress)


# --- straight to Kafka ---------------------------------------------------------------------------------


async def _run_kafka(config: LoadgenConfig, settings: Settings, progress: Progress | None) -> LoadgenResult:
    from llmwatch.inference.publisher import EventPublisher
    from llmwatch.kafka_topics import ensure_topics
    from llmwatch.schemas import topic_registry

    await ensure_topics(settings, [topic_registry(settings)["events"]])  # also fails fast when Kafka is away
    n = config.planned
    events = scenario_events(
        config.scenario,
        n,
        seed=config.seed,
        rate=config.rate,
        canary_weight=config.canary_weight,
        deployment=config.deployment,
        onset_s=config.onset_s,
    )
    publisher = EventPublisher(settings, max_buffer=max(10_000, min(n, 200_000)))
    schedule = _Schedule(n, config.rate, config.late_ms)
    result = LoadgenResult(scenario=config.scenario, target="kafka", planned=n, target_rate=config.rate)
    sent = 0

    async def send(i: int, due: float) -> None:
        nonlocal sent
        if config.rate is None and publisher.stats.queued >= publisher.max_buffer - 1:
            await publisher.flush(config.timeout_s)  # unpaced: wait for Kafka rather than drop
        publisher.publish(next(events))
        sent += 1
        if progress is not None and (i % 100 == 0 or i == n - 1):
            progress(publisher.stats.sent, n)

    await publisher.start()
    started = time.perf_counter()
    try:
        await schedule.run(send)
        await publisher.flush(config.timeout_s)
    finally:
        await publisher.stop(drain_timeout=config.timeout_s)
    if progress is not None:
        progress(publisher.stats.sent, n)
    stats = publisher.stats
    result.sent = sent
    result.ok = stats.sent
    result.errors = stats.failed + stats.dropped
    result.error_kinds = {k: v for k, v in {"dropped": stats.dropped, "failed": stats.failed}.items() if v}
    result.publisher = stats.as_dict()
    result.elapsed_s = round(time.perf_counter() - started, 3)
    _pace(result, schedule, sent)
    return result


# --- through a gateway ----------------------------------------------------------------------------------


async def _run_http(config: LoadgenConfig, progress: Progress | None, on_answer: OnAnswer | None) -> LoadgenResult:
    n = config.planned
    rate = config.rate
    assert rate is not None
    scenario = get_scenario(config.scenario, config.onset_s)
    corpus = load_corpus()
    rng = random.Random(f"loadgen:{config.seed}")
    url = config.target.rstrip("/") + "/v1/chat/completions"
    result = LoadgenResult(scenario=config.scenario, target=config.target, planned=n, target_rate=rate)
    latencies: list[float] = []
    ttfts: list[float] = []
    errors: Counter[str] = Counter()
    variants: Counter[str] = Counter()
    in_flight: set[asyncio.Task[None]] = set()
    done = 0

    def body(i: int) -> dict[str, Any]:
        t = i / rate
        user_id, session_id = draw_user(rng)
        spec = draw_prompt(scenario.prompt_mix(t), rng, corpus)
        return {
            "model": config.deployment,
            "messages": [{"role": "system", "content": corpus.system_prompt}, {"role": "user", "content": spec.text}],
            "max_tokens": config.max_tokens,
            "seed": config.seed * 1_000_003 + i,
            "stream": config.stream,
            "user": user_id,
            "session_id": session_id,
            "context": list(spec.context) if spec.context else None,
            "hints": {**scenario.hints(t), "item": spec.item_id},
        }

    async def call(session: aiohttp.ClientSession, payload: dict[str, Any], due: float) -> None:
        nonlocal done
        try:
            async with session.post(url, json=payload) as response:
                if on_answer is not None:
                    on_answer(response.status, response.headers.get("x-llmwatch-event-id"))
                if response.status != 200:
                    await response.read()
                    raise _HttpStatus(response.status)
                variants[response.headers.get("x-llmwatch-variant", "?")] += 1
                if config.stream:
                    first = await _first_content(response)
                    if first is not None:
                        ttfts.append((first - due) * 1000)
                else:
                    await response.read()
            latencies.append((time.perf_counter() - due) * 1000)
            result.ok += 1
        except _HttpStatus as e:
            errors[f"http {e.status}"] += 1
        except TimeoutError:
            errors["timeout"] += 1
        except aiohttp.ClientError as e:
            errors[type(e).__name__] += 1
        finally:
            done += 1
            if progress is not None:
                progress(done, n)

    def send(i: int, due: float) -> None:
        payload = body(i)
        result.sent += 1
        if len(in_flight) >= config.max_in_flight:
            errors["client: too many in flight"] += 1
            return
        task = asyncio.create_task(call(session, payload, due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    schedule = _Schedule(n, rate, config.late_ms)
    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=config.max_in_flight)
    timeout = aiohttp.ClientTimeout(total=config.timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await schedule.run(send)
        if in_flight:
            await asyncio.wait(set(in_flight), timeout=config.timeout_s + 5)
    result.elapsed_s = round(time.perf_counter() - started, 3)
    result.errors = sum(errors.values())
    result.error_kinds = dict(errors)
    result.variants = dict(variants)
    result.latency_ms = percentiles(latencies)
    result.ttft_ms = percentiles(ttfts)
    _pace(result, schedule, result.sent)
    return result


class _HttpStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def _first_content(response: aiohttp.ClientResponse) -> float | None:
    """Read a server-sent-events answer to its end; when its first content arrived."""
    first: float | None = None
    async for raw in response.content:
        line = raw.decode().strip()
        if first is not None or not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if any((c.get("delta") or {}).get("content") for c in chunk.get("choices", [])):
            first = time.perf_counter()
    return first


def _pace(result: LoadgenResult, schedule: _Schedule, sent: int) -> None:
    result.late_sends = schedule.late
    result.max_late_ms = round(schedule.max_late_s * 1000, 2)
    result.achieved_rate = round((sent - 1) / schedule.sending_s, 2) if sent > 1 else 0.0


def loadgen_config(**kwargs: Any) -> LoadgenConfig:
    """LoadgenConfig from CLI options, with errors as ConfigError (printed without a traceback)."""
    try:
        return LoadgenConfig(**kwargs)
    except ValueError as e:
        raise ConfigError(str(e)) from e
