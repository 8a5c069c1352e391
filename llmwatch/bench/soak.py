"""`llmwatch bench soak`: the whole pipeline at a steady rate for a long time: memory flat, consumer lag bounded,
nothing lost, nothing dead-lettered.

Method (private topics on the configured broker, a private chDB folder, so a soak never touches other data):
- one `llmwatch worker` with every agent (score, window, sink, judge, controller, alerter) and one
  `llmwatch serve` (simulated engine): real child processes, started as an operator starts them;
- a canary rollout starts with the traffic (steps 20/50/100 %, each held at least a quarter of the run), so the
  judge and the controller work throughout and the gateway follows the weights they publish;
- open-loop HTTP traffic from the load generator (scenario `steady`) at --rate for --minutes;
- every --sample-every seconds: RSS of each process (by the Popen pid: Faust retitles the worker), the worker's
  consumer lag summed over partitions (its /metrics), rows landed, the gateway's publish queue;
- at the end: wait for everything to land, then compare the event id of every answer with ClickHouse's rows
  (FINAL), and count dead letters.
Memory growth is taken from the first sample after --warmup seconds (imports, lazy evaluator loads, chDB's first
parts and caches come before it) to the last sample under traffic.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from llmwatch.harness import (
    GatewayProcess,
    WaitTimeout,
    WorkerProcess,
    cpu_seconds,
    landed_counts,
    metric_sums,
    parse_metrics,
    private_run,
    query_scalar,
    rss_mb,
    wait_for,
)
from llmwatch.settings import JudgeSettings, RolloutSettings, Settings, WorkerSettings, get_settings

AGENTS = ["score", "window", "sink", "judge", "controller", "alerter"]
DEPLOYMENT = "demo"  # the simulated gateway's deployment
#: all (the default): every evaluator on its default backend (MiniLM ONNX int8 heads and groundedness,
#: the embedding cache on, as in production). Measured at 50 req/s on 2 shared cores: the worker used 0.45 of a
#: core against 0.30 with `light`, with the same lag (max ~560 records, events topic ~70) and drain time, so the
#: soak runs the real suite. light: the model-free evaluators, for higher rates or slower machines.
PROFILES: dict[str, dict[str, Any]] = {
    "light": {
        "enabled": ["toxicity", "pii", "injection"],
        "toxicity_backend": "profanity",
        "injection_backend": "rules",
    },
    "all": {"enabled": ["toxicity", "pii", "injection", "hallucination"]},
}
LAG_BOUND_S = 30.0  # max lag allowed, in seconds of traffic (lag < rate × this)
RSS_GROWTH_FRACTION, RSS_GROWTH_MB = 0.25, 150.0  # allowed growth: whichever is larger


@dataclass
class Sample:
    t: float  # seconds since the traffic started
    rss_mb: dict[str, float]
    cpu_s: dict[str, float]
    lag: dict[str, float]  # topic role → lag summed over its partitions
    rows: int | None
    answered: int
    queue: float | None


@dataclass
class SoakResult:
    minutes: float
    rate: float
    evaluators: str
    warmup_s: float
    samples: list[Sample] = field(default_factory=list)
    traffic_end_t: float = 0.0
    sent: int = 0
    answered: int = 0
    ok: int = 0
    http_errors: dict[str, int] = field(default_factory=dict)
    achieved_rate: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    late_sends: int = 0
    rows: int = 0
    scores: int = 0
    window_sum: int = 0
    lost: int = 0
    unexpected: int = 0
    dlq: int = 0
    drain_s: float = 0.0
    final_lag: float = -1.0
    publisher: dict[str, float] = field(default_factory=dict)
    rollout: dict[str, Any] = field(default_factory=dict)
    work_dir: str = ""

    # --- figures ------------------------------------------------------------------------------------
    def under_traffic(self) -> list[Sample]:
        return sorted((s for s in self.samples if s.t <= self.traffic_end_t + 1e-6), key=lambda s: s.t)

    def memory(self) -> dict[str, dict[str, float]]:
        """Per process: RSS after the warm-up, at the end of the traffic, max, growth and slope (MiB/min)."""
        import numpy as np

        out: dict[str, dict[str, float]] = {}
        steady = [s for s in self.under_traffic() if s.t >= self.warmup_s] or self.under_traffic()[-1:]
        for proc in ("gateway", "worker"):
            values = [s.rss_mb[proc] for s in steady]
            if not values:
                continue
            times = [s.t for s in steady]
            slope = float(np.polyfit(times, values, 1)[0]) * 60 if len(values) >= 3 else 0.0
            first, last = self.under_traffic()[0], self.under_traffic()[-1]
            busy = (last.cpu_s[proc] - first.cpu_s[proc]) / max(last.t - first.t, 1e-9)
            out[proc] = {
                "start_mb": values[0],
                "end_mb": values[-1],
                "max_mb": max(s.rss_mb[proc] for s in self.samples),
                "growth_mb": values[-1] - values[0],
                "allowed_mb": max(RSS_GROWTH_FRACTION * values[0], RSS_GROWTH_MB),
                "slope_mb_min": slope,
                "cpu": busy,
            }
        return out

    def max_lag(self, role: str | None = None) -> float:
        return max((s.lag.get(role, 0.0) if role else sum(s.lag.values()) for s in self.samples), default=0.0)

    def checks(self) -> dict[str, tuple[bool, str]]:
        """name → (passed, what was measured against what)."""
        bound = self.rate * LAG_BOUND_S
        out = {
            "every request answered": (self.answered == self.sent, f"{self.answered} of {self.sent}"),
            "zero lost": (
                self.lost == 0 and self.unexpected == 0 and self.rows == self.answered,
                f"{self.rows} rows (FINAL) for {self.answered} answers: {self.lost} missing, {self.unexpected} extra",
            ),
            "scores and windows count each event once": (
                self.scores == self.window_sum == self.answered,
                f"scores {self.scores}, window sum {self.window_sum}",
            ),
            "no dead letters": (self.dlq == 0, f"{self.dlq}"),
            "publisher dropped/failed nothing": (
                self.publisher.get("dropped") == 0 and self.publisher.get("failed") == 0,
                f"dropped {self.publisher.get('dropped')}, failed {self.publisher.get('failed')}",
            ),
            "lag bounded": (
                self.max_lag() < bound,
                f"max {self.max_lag():.0f} < {bound:.0f} (rate × {LAG_BOUND_S:g} s)",
            ),
            "lag drained": (self.final_lag == 0, f"{self.final_lag:.0f} at the end"),
            "controller answered the rollout": (
                bool(self.rollout.get("started")),
                f"state {self.rollout.get('state')}, {self.rollout.get('moves')} weight changes",
            ),
        }
        for proc, m in self.memory().items():
            out[f"{proc} memory flat"] = (
                m["growth_mb"] < m["allowed_mb"],
                f"{m['start_mb']:.0f} → {m['end_mb']:.0f} MiB (+{m['growth_mb']:.0f}, allowed +{m['allowed_mb']:.0f})",
            )
        return out

    def passed(self) -> bool:
        return all(ok for ok, _ in self.checks().values())

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "memory": self.memory(),
            "max_lag": self.max_lag(),
            "max_lag_events": self.max_lag("events"),
            "checks": {k: {"passed": ok, "detail": d} for k, (ok, d) in self.checks().items()},
            "passed": self.passed(),
        }


# ------------------------------------------------------------------------------------------------ the run
def soak_settings(base: Settings, evaluators: str, minutes: float) -> Settings:
    """The chosen evaluators and a rollout paced to the run (the private run adds topics, group and chDB)."""
    step_s = max(10.0, minutes * 60 / 4)
    return base.model_copy(
        update={
            "eval": base.eval.model_copy(update=PROFILES[evaluators]),
            "worker": WorkerSettings(
                agents=list(AGENTS),
                window_size_s=10,  # windows close well inside the lag bound (the scores' offsets wait for them)
                window_lateness_s=2,
                window_idle_close_s=2,
                sink_within_s=0.5,
            ),
            "rollout": RolloutSettings(
                steps=[0.2, 0.5, 1.0],
                min_sample=200,
                min_step_duration_s=step_s,
                hold_timeout_s=max(120.0, step_s * 2),
                rollback_timeout_s=max(600.0, step_s * 8),
                tick_interval_s=1,
            ),
            # pass on a few hundred canary requests (fail margins stay as strict)
            "judge": JudgeSettings(interval_s=5, pass_margin_scale=8, stratum_s=10, lateness_s=3, settle_s=2),
        }
    )


def run_soak(
    base: Settings,
    *,
    minutes: float,
    rate: float,
    root: Path,
    evaluators: str = "all",
    warmup_s: float = 30.0,
    sample_s: float = 10.0,
    seed: int = 0,
    say: Any = None,
) -> SoakResult:
    say = say or (lambda text: click.echo(text, err=True))
    root.mkdir(parents=True, exist_ok=True)
    with private_run(soak_settings(base, evaluators, minutes), "soak", data_dir=root) as s:
        return _soak(
            s,
            minutes=minutes,
            rate=rate,
            root=root,
            evaluators=evaluators,
            warmup_s=warmup_s,
            sample_s=sample_s,
            seed=seed,
            say=say,
        )


def _soak(
    s: Settings,
    *,
    minutes: float,
    rate: float,
    root: Path,
    evaluators: str,
    warmup_s: float,
    sample_s: float,
    seed: int,
    say: Any,
) -> SoakResult:
    from llmwatch.sim.loadgen import LoadgenConfig, run_loadgen

    result = SoakResult(minutes=minutes, rate=rate, evaluators=evaluators, warmup_s=warmup_s, work_dir=str(root))
    worker = WorkerProcess(s, AGENTS, root / "worker.log").start()
    gateway = GatewayProcess(s, root / "gateway.log").start()
    try:
        say(f"soak: worker pid {worker.pid}, gateway pid {gateway.pid}; topics {s.topics.events.rsplit('.', 1)[0]}.*")
        wait_for(lambda: query_scalar(s, "SELECT 1") == 1, 300, "the worker to open ClickHouse", processes=[worker])
        wait_for(lambda: _lag(worker.metrics(), s), 180, "the worker's partitions", processes=[worker])
        gateway.wait_ready(120)
        result.rollout["started"] = _start_rollout(s)
        say(f"soak: {rate:g} req/s for {minutes:g} min, evaluators {evaluators}; sampling every {sample_s:g} s")

        answers: list[str | None] = []
        stop = threading.Event()
        t0 = time.monotonic()
        sampler = threading.Thread(
            target=_sample_loop, args=(result, worker, gateway, s, answers, t0, sample_s, stop, say), daemon=True
        )
        sampler.start()
        config = LoadgenConfig(
            scenario="steady", target=gateway.url, rate=rate, duration_s=minutes * 60, max_tokens=64, seed=seed
        )
        traffic = asyncio.run(run_loadgen(config, s, on_answer=lambda status, eid: answers.append(eid)))
        result.traffic_end_t = time.monotonic() - t0
        result.samples.append(_sample(worker, gateway, s, answers, t0))
        result.sent, result.ok, result.answered = traffic.sent, traffic.ok, len(answers)
        result.http_errors = dict(traffic.error_kinds)
        result.achieved_rate, result.latency_ms, result.late_sends = (
            traffic.achieved_rate,
            traffic.latency_ms,
            traffic.late_sends,
        )

        ids = {eid for eid in answers if eid}
        n = len(answers)
        say(f"soak: traffic done ({n} answers); waiting for everything to land …")

        def drained() -> bool:
            counts = landed_counts(s)
            return counts[:3] == (n, n, n) and sum(_lag(worker.metrics(), s).values()) == 0

        try:
            wait_for(drained, 300, "every event to land and the lag to drain", processes=[worker])
        except WaitTimeout as e:
            say(str(e).splitlines()[0])
        stop.set()
        sampler.join(30)
        result.drain_s = time.monotonic() - t0 - result.traffic_end_t
        result.samples.append(_sample(worker, gateway, s, answers, t0))
        result.final_lag = sum(result.samples[-1].lag.values())
        result.rows, result.scores, result.window_sum, result.dlq = landed_counts(s)
        stored = set(query_scalar(s, "SELECT groupArray(event_id) FROM inference_events FINAL") or [])
        result.lost, result.unexpected = len(ids - stored), len(stored - ids)
        result.publisher = _publisher(gateway)
        result.rollout.update(_rollout_outcome(s))
        if not worker.alive() or not gateway.alive():
            raise click.ClickException(f"a process died during the soak:\n{worker.log_tail()}\n{gateway.log_tail()}")
        return result
    finally:
        gateway.stop()
        worker.stop()


def _start_rollout(s: Settings) -> bool:
    from llmwatch.schemas import ControlCommand
    from llmwatch.streams.control import send_command

    cmd = ControlCommand(
        deployment=DEPLOYMENT, action="start", baseline_version="baseline", canary_version="canary", requested_by="soak"
    )
    return asyncio.run(send_command(s, cmd, wait_s=60)) is not None


def _rollout_outcome(s: Settings) -> dict[str, Any]:
    moves = "FROM traffic_weights FINAL WHERE deployment = {deployment:String}"
    deployment = {"deployment": DEPLOYMENT}
    return {
        "state": query_scalar(s, f"SELECT argMax(state, seq) {moves}", deployment),
        "moves": int(query_scalar(s, f"SELECT count() {moves}", deployment) or 0),
        "verdicts": int(query_scalar(s, "SELECT count() FROM canary_verdicts FINAL") or 0),
        "alerts": int(query_scalar(s, "SELECT count() FROM alerts FINAL") or 0),
        "windows": int(query_scalar(s, "SELECT count() FROM window_metrics FINAL") or 0),
    }


def _lag(metrics_text: str, s: Settings) -> dict[str, float]:
    """Consumer lag per topic role, summed over partitions (empty until partitions are assigned)."""

    roles = {name: role for role, name in s.topics.model_dump().items()}
    by_topic = metric_sums(metrics_text, "llmwatch_consumer_lag", by="topic")
    return {roles.get(str(topic), str(topic)): value for topic, value in by_topic.items()}


def _publisher(gateway: Any) -> dict[str, float]:

    m = parse_metrics(gateway.metrics())
    return {
        name: m.get((f"llmwatch_gateway_publish_{name}{suffix}", None, None), -1.0)
        for name, suffix in (("sent", "_total"), ("failed", "_total"), ("dropped", "_total"), ("queue_depth", ""))
    }


def _sample(worker: Any, gateway: Any, s: Settings, answers: list[str | None], t0: float) -> Sample:

    def attempt(fn: Any, default: Any) -> Any:
        try:
            return fn()
        except Exception:  # a probe that fails once (a busy worker) leaves a gap, not a crash
            return default

    return Sample(
        t=round(time.monotonic() - t0, 2),
        rss_mb={"gateway": rss_mb(gateway.pid), "worker": rss_mb(worker.pid)},
        cpu_s={"gateway": cpu_seconds(gateway.pid) or 0.0, "worker": cpu_seconds(worker.pid) or 0.0},
        lag=attempt(lambda: _lag(worker.metrics(), s), {}),
        rows=attempt(lambda: int(query_scalar(s, "SELECT count() FROM inference_events") or 0), None),
        answered=len(answers),
        queue=attempt(lambda: _publisher(gateway)["queue_depth"], None),
    )


def _sample_loop(
    result: SoakResult,
    worker: Any,
    gateway: Any,
    s: Settings,
    answers: list[str | None],
    t0: float,
    every_s: float,
    stop: threading.Event,
    say: Any,
) -> None:
    next_at = t0
    while not stop.is_set():
        sample = _sample(worker, gateway, s, answers, t0)
        result.samples.append(sample)
        say(
            f"  t={sample.t:6.0f}s  rss gateway {sample.rss_mb['gateway']:6.0f} MiB  worker "
            f"{sample.rss_mb['worker']:6.0f} MiB  lag {sum(sample.lag.values()):5.0f} "
            f"(events {sample.lag.get('events', 0):.0f})  answered {sample.answered}  rows {sample.rows}"
        )
        next_at += every_s
        stop.wait(max(0.0, next_at - time.monotonic()))


# ------------------------------------------------------------------------------------------------ report
def report_markdown(r: SoakResult) -> str:
    mem = r.memory()
    lines = [
        "| process | RSS after warm-up (MiB) | RSS at end (MiB) | RSS max (MiB) | growth (MiB) | slope (MiB/min) "
        "| CPU (cores) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for proc, m in mem.items():
        lines.append(
            f"| {proc} | {m['start_mb']:.0f} | {m['end_mb']:.0f} | {m['max_mb']:.0f} | {m['growth_mb']:+.0f} "
            f"| {m['slope_mb_min']:+.1f} | {m['cpu']:.2f} |"
        )
    checks = "\n".join(f"- {'✅' if ok else '❌'} {name}: {detail}" for name, (ok, detail) in r.checks().items())
    ro = r.rollout
    facts = (
        f"Requests: {r.sent} sent at {r.rate:g}/s (achieved {r.achieved_rate:g}/s, {r.late_sends} late sends), "
        f"{r.answered} answered ({r.ok} ok, errors {r.http_errors or 'none'}), latency p50/p99 "
        f"{r.latency_ms.get('p50', 0):.0f}/{r.latency_ms.get('p99', 0):.0f} ms. ClickHouse (FINAL): {r.rows} events, "
        f"{r.scores} scores, window sum {r.window_sum}; dead letters {r.dlq}; everything landed "
        f"{r.drain_s:.1f} s after the traffic stopped. Consumer lag max {r.max_lag():.0f} (events topic "
        f"{r.max_lag('events'):.0f}), {r.final_lag:.0f} at the end. Publisher: sent {r.publisher.get('sent', 0):.0f}, "
        f"dropped {r.publisher.get('dropped', 0):.0f}, failed {r.publisher.get('failed', 0):.0f}. Rollout: "
        f"{ro.get('moves')} weight changes, last state {ro.get('state')}, {ro.get('verdicts')} verdicts, "
        f"{ro.get('alerts')} alerts, {ro.get('windows')} windows."
    )
    return "\n\n".join(["\n".join(lines), facts, checks])


@click.command("soak")
@click.option("--minutes", default=30.0, show_default=True, help="Minutes of traffic (the warm-up included).")
@click.option("--rate", default=50.0, show_default=True, help="Requests per second, open loop, through the gateway.")
@click.option("--evaluators", type=click.Choice(sorted(PROFILES)), default="all", show_default=True)
@click.option("--warmup", default=30.0, show_default=True, help="Seconds before the memory baseline is taken.")
@click.option("--sample-every", default=10.0, show_default=True, help="Seconds between samples.")
@click.option("--seed", default=0, show_default=True)
@click.option("--work-dir", type=click.Path(path_type=Path), default=None, help="Logs and chDB (default: temporary).")
@click.option("--json-out", type=click.Path(path_type=Path), default=None, help="Write every figure and sample here.")
@click.option("--write/--no-write", default=True, show_default=True, help="Update BENCHMARKS.md.")
def command(
    minutes: float,
    rate: float,
    evaluators: str,
    warmup: float,
    sample_every: float,
    seed: int,
    work_dir: Path | None,
    json_out: Path | None,
    write: bool,
) -> None:
    """Gateway → Kafka → worker (every agent) at a steady rate: memory flat, lag bounded, zero lost, no DLQ."""
    from llmwatch.bench.report import write_section

    root = work_dir or Path(tempfile.mkdtemp(prefix="llmwatch-soak-"))
    load_before = os.getloadavg()[0]
    result = run_soak(
        get_settings(),
        minutes=minutes,
        rate=rate,
        root=root,
        evaluators=evaluators,
        warmup_s=warmup,
        sample_s=sample_every,
        seed=seed,
    )
    body = report_markdown(result)
    click.echo(body)
    if json_out is not None:
        json_out.write_text(json.dumps(result.as_json(), indent=2, default=str))
    if write:
        note = (
            f"One `llmwatch serve` (simulated engine) and one `llmwatch worker` (agents {', '.join(AGENTS)}; "
            f"evaluators: {evaluators}; chDB embedded), open-loop traffic (scenario steady) for {minutes:g} min, a "
            f"canary rollout running meanwhile; samples every {sample_every:g} s, memory baseline after {warmup:g} s "
            "(the worker's figures include its scoring process). "
            f"Load average (1 min) before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f} on {os.cpu_count()} "
            "cores (Kafka and anything else on the machine included)."
        )
        verdict = f"Verdict: **{'PASS' if result.passed() else 'FAIL'}**."
        write_section("soak", "\n\n".join([note, body, verdict]))
    if work_dir is None and result.passed():
        shutil.rmtree(root, ignore_errors=True)
    if not result.passed():
        raise click.ClickException(f"the soak failed a check (logs in {root})")
