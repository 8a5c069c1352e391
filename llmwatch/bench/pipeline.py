"""`llmwatch bench pipeline`: end-to-end throughput and landing latency of one worker process.

Method (all in one run, on private topics and a private chDB folder):
1. The evaluators' own throughput: the same suite scores the same events in-process (batch = the worker's
   score batch). That is the ceiling the pipeline is compared with.
2. Sustained throughput: a backlog of N events is produced first, then one `llmwatch worker` (score,
   window, sink) starts; the rate is N over the drain, from the first event the score agent takes to the
   last rows visible in ClickHouse (inference_events, eval_scores) with every score taken by the window
   agent, so start-up is excluded.
3. Landing latency: a second worker on fresh topics receives open-loop traffic at 50 % of that rate with
   event time = send time; latency = ingested_at − ts of every row (p50/p95).
`--repeat N` runs each profile N times and reports the median of each column (the machine is shared).

`--workers 1,2,3` measures scale-out instead (section `pipeline-workers`): for each count k, one sink worker plus
k score+window workers (the layout docs/operators.md describes for chDB) drain the same backlog, produced once
every worker has joined its consumer groups; the single-process worker of step 2 runs in the same pass as the
reference. Rates are backlog ÷ drain as in step 2, CPU per event sums every process of the layout.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import re
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import click

from llmwatch.harness import (
    WorkerProcess,
    cpu_seconds,
    metric_sums,
    private_run,
    produce,
    produce_sync,
    query_scalar,
    wait_for,
)
from llmwatch.settings import Settings, get_settings

EVALUATORS = ["toxicity", "pii", "injection", "hallucination"]
#: profile → (evaluators, eval settings, worker settings): light = the issue's "light evaluators" (PII patterns,
#: injection rules, profanity); light-2proc = the same with two scoring processes; all = every evaluator on its
#: default (model) backend; all-sampled = the same, models on half of the events (`eval.model_sample`)
LIGHT: tuple[list[str], dict[str, str | float]] = (
    ["toxicity", "pii", "injection"],
    {"toxicity_backend": "profanity", "injection_backend": "rules"},
)
PROFILES: dict[str, tuple[list[str], dict[str, str | float], dict[str, int]]] = {
    "light": (*LIGHT, {}),
    # rules are one core's work per ~3,000 events/s: a second scoring process uses the core the worker leaves
    "light-2proc": (*LIGHT, {"score_processes": 2}),
    "all": (EVALUATORS, {}, {}),
    # the issue allows sampling heavy scoring where the statistics allow: rates from a uniform half stay unbiased
    "all-sampled": (EVALUATORS, {"model_sample": 0.5}, {}),
}


def _profile_settings(
    base: Settings, evaluators: list[str], backends: dict[str, str | float], worker: dict[str, int]
) -> Settings:
    """The profile's evaluators and worker settings (a private run adds its own topics, group and chDB)."""
    return base.model_copy(
        update={
            # the embedding cache stays on: `_events` makes every sentence users or the model wrote unique, so
            # it only shares what production shares (one event's texts across evaluators, the system prompt)
            "eval": base.eval.model_copy(update={"enabled": evaluators, **backends}),
            "worker": base.worker.model_copy(update={"window_idle_close_s": 2.0, **worker}),
        }
    )


def _events(n: int, seed: int, *, now_ts: bool) -> list[Any]:
    from llmwatch.schemas import utcnow
    from llmwatch.sim.events import scenario_events

    names = ["steady", "pii-leak", "prompt-injection-attack", "hallucination", "toxicity-regression", "drift"]
    per = -(-n // len(names))
    out = [
        e
        for i, name in enumerate(names)
        for e in scenario_events(
            name, per, seed=seed + i, start_ts=utcnow(), rate=None if now_ts else 1000.0, canary_weight=0.1
        )
    ]
    return [_uniquified(e) for e in out[:n]]


_SENTENCE_END = re.compile(r"([.!?])(?=\s|$)")


@functools.cache
def _tag_words() -> tuple[str, ...]:
    """Lower-case whole words of the embedding model's vocabulary (one wordpiece each), or () without it."""
    try:
        from llmwatch.evaluators.embeddings import default_model_path

        vocab = json.loads((default_model_path() / "tokenizer.json").read_text())["model"]["vocab"]
    except (ImportError, OSError, KeyError, ValueError):
        return ()
    return tuple(sorted(w for w in vocab if re.fullmatch(r"[a-z]{4,10}", w)))


def event_tag(event_id: str) -> str:
    """Two vocabulary words picked by the event id's hash: unique per event (~3.5·10⁸ pairs) for two tokens.

    Until 2026-12-07 the tag was `ref` + 8 hex digits, which the tokenizer cuts into ~7 wordpieces: 30 % of
    every embedded token was the tag, and the evaluators scored text 42 % longer than the simulator writes."""
    digest = int(hashlib.sha256(event_id.encode()).hexdigest()[:16], 16)
    words = _tag_words()
    if not words:
        return f"ref{digest % 16**8:08x}"
    return f"{words[digest % len(words)]} {words[(digest // len(words)) % len(words)]}"


def _uniquified(event: Any) -> Any:
    """The event with a tag of its own in every sentence of its prompt (after the operator's system lines),
    response and context: the simulator draws from a small corpus, and a repeated sentence would be a free
    embedding-cache hit that production traffic does not get."""
    from llmwatch.evaluators.injection import system_chars

    tag = event_tag(event.event_id)

    def tagged(text: str) -> str:
        lines = []
        for line in text.split("\n"):
            marked = _SENTENCE_END.sub(lambda m: f" {tag}{m.group(1)}", line)
            lines.append(marked if marked != line or not line.strip() else f"{line} {tag}")
        return "\n".join(lines)

    head = system_chars(event)
    return event.model_copy(
        update={
            "prompt": event.prompt[:head] + tagged(event.prompt[head:]),
            "response": tagged(event.response),
            "context": [tagged(c) for c in event.context] if event.context else event.context,
        }
    )


def evaluator_throughput(settings: Settings, events: list[Any], batch: int, warm_up: list[Any]) -> float:
    """Items/s of the evaluator suite alone (scoring + redaction), same events, same batch size.

    The warm-up (lazy model loads, ONNX sessions) scores other events: scoring the timed ones first would put
    their texts in the embedding cache, and the pipeline meets every event once. It did until 2026-12-06, and
    the free first batch inflated this baseline by ~15 % with the models (147 cold against 176 items/s)."""
    from llmwatch.evaluators.base import load_suite
    from llmwatch.evaluators.pii import redact
    from llmwatch.streams.scoring import EventScorer

    scorer = EventScorer(load_suite(settings), redact if settings.eval.redact else None)
    scorer.score(warm_up[:batch])
    started = time.perf_counter()
    for i in range(0, len(events), batch):
        scorer.score(events[i : i + batch])
    return len(events) / (time.perf_counter() - started)


def sustained_rate(settings: Settings, events: list[Any], log_dir: Path) -> tuple[float, float, float | None]:
    """(events/s draining the backlog, seconds to land all, worker CPU µs per event over the drain).

    The drain runs from the first event the score agent takes until the last rows are visible and the window
    agent has taken every score, so the worker's start (group join, warm-up) is left out and every stage is in:
    with a backlog the score agent runs ahead of the others, and a span between 10 % and 90 % landed would time
    mostly the slowest stage catching up.
    CPU per event is what a noisy shared machine cannot distort much: 1e6 / it is the rate one core could
    carry if the worker had it to itself."""
    produce_sync(settings, settings.topics.events, events)
    n = len(events)
    worker = WorkerProcess(settings, ["score", "window", "sink"], log_dir / "worker-throughput.log").start()
    try:
        started = time.monotonic()

        def scoring_began() -> bool:
            taken = metric_sums(worker.metrics(), "llmwatch_agent_events_total", by="agent").get("score", 0.0)
            return taken > 0

        wait_for(scoring_began, 300, "the score agent to take events", interval_s=0.05, processes=[worker])
        t0, cpu0 = time.monotonic(), cpu_seconds(worker.pid)

        def drained() -> bool:
            # every stage: rows of both tables (the score agent stores them, `sink_scores_locally`) and the window
            # agent, which reads the scores topic at its own pace and must not be left behind uncounted
            if int(query_scalar(settings, "SELECT count() FROM inference_events") or 0) < n:
                return False
            windowed = metric_sums(worker.metrics(), "llmwatch_agent_events_total", by="agent").get("window", 0.0)
            return windowed >= n and int(query_scalar(settings, "SELECT count() FROM eval_scores") or 0) >= n

        wait_for(drained, 1800, f"{n} rows and windowed scores", interval_s=0.2, processes=[worker])
        t1, cpu1 = time.monotonic(), cpu_seconds(worker.pid)
        cpu_us = (cpu1 - cpu0) / n * 1e6 if cpu0 is not None and cpu1 is not None else None
        return n / max(t1 - t0, 1e-9), t1 - started, cpu_us
    finally:
        worker.stop()


def _held(worker: WorkerProcess, group: str) -> float:
    try:
        return metric_sums(worker.metrics(), "llmwatch_assigned_partitions", by="group").get(group, 0.0)
    except Exception:  # not serving yet
        return 0.0


def _taken(workers: list[WorkerProcess], agent: str) -> float:
    total = 0.0
    for w in workers:
        try:
            total += metric_sums(w.metrics(), "llmwatch_agent_events_total", by="agent").get(agent, 0.0)
        except Exception:
            continue
    return total


def scale_out_rate(settings: Settings, events: list[Any], log_dir: Path, workers: int) -> tuple[float, float | None]:
    """(events/s, CPU µs per event of every process) for one sink worker + `workers` score,window workers.

    The backlog is produced once every worker holds its share of the events partitions (a worker joining later
    would stop the others for a rebalance mid-drain); the drain runs from the first event a score agent takes
    (polled while the backlog is produced) until the rows are visible and the window agents took every score."""
    app = settings.worker.app_id
    sink = WorkerProcess(settings, ["sink"], log_dir / f"scale-{workers}-sink.log").start()
    scorers = [
        WorkerProcess(settings, ["score", "window"], log_dir / f"scale-{workers}-{i}.log").start()
        for i in range(workers)
    ]
    procs = [sink, *scorers]
    n = len(events)
    try:

        def joined() -> bool:
            held = [_held(w, f"{app}.score") for w in scorers]
            windows = [_held(w, f"{app}.window") for w in scorers]
            return (
                min(held) > 0
                and sum(held) == settings.partitions
                and min(windows) > 0
                and sum(windows) == settings.partitions
                and _held(sink, f"{app}.sink") > 0
            )

        wait_for(joined, 600, f"{workers} score+window workers and the sink to join", interval_s=0.5, processes=procs)
        producing = threading.Thread(target=produce_sync, args=(settings, settings.topics.events, events), daemon=True)
        producing.start()
        wait_for(
            lambda: _taken(scorers, "score") > 0, 300, "a score agent to take events", interval_s=0.05, processes=procs
        )
        t0 = time.monotonic()
        cpu0 = [cpu_seconds(p.pid) for p in procs]

        def drained() -> bool:
            if int(query_scalar(settings, "SELECT count() FROM inference_events") or 0) < n:
                return False
            if int(query_scalar(settings, "SELECT count() FROM eval_scores") or 0) < n:
                return False
            return _taken(scorers, "window") >= n

        wait_for(drained, 1800, f"{n} rows and windowed scores", interval_s=0.2, processes=procs)
        t1 = time.monotonic()
        cpu1 = [cpu_seconds(p.pid) for p in procs]
        producing.join(60)
        spent = [b - a for a, b in zip(cpu0, cpu1, strict=True) if a is not None and b is not None]
        cpu_us = sum(spent) / n * 1e6 if len(spent) == len(procs) else None
        return n / max(t1 - t0, 1e-9), cpu_us
    finally:
        for p in procs:
            p.stop()


def run_scale_out(name: str, n: int, counts: list[int], partitions: int, root: Path, seed: int) -> list[dict[str, Any]]:
    """The single-process reference, then one sink + k score,window workers for each k, on the same events."""
    evaluators, backends, worker = PROFILES[name]
    base = _profile_settings(get_settings(), evaluators, backends, worker).model_copy(update={"partitions": partitions})
    events = _events(n, seed, now_ts=True)
    rows: list[dict[str, Any]] = []
    tag = uuid.uuid4().hex[:6]
    click.echo(f"[{name}] one process (score, window, sink), {partitions} partitions …", err=True)
    with private_run(base, f"bench.{name}-one", data_dir=root / f"{name}-one-{tag}") as s:
        rate, _total, cpu_us = sustained_rate(s, events, root)
    rows.append({"layout": "1 process: score, window, sink", "workers": 0, "rate": rate, "cpu_us": cpu_us})
    for k in counts:
        click.echo(f"[{name}] sink + {k} score,window worker(s) …", err=True)
        with private_run(base, f"bench.{name}-w{k}", data_dir=root / f"{name}-w{k}-{tag}") as s:
            rate, cpu_us = scale_out_rate(s, events, root, k)
        rows.append({"layout": f"sink + {k} × score,window", "workers": k, "rate": rate, "cpu_us": cpu_us})
    return rows


def landing_latency(settings: Settings, rate: float, seconds: float, log_dir: Path, seed: int) -> dict[str, float]:
    """Open-loop traffic at `rate` with ts = send time; p50/p95 of ingested_at − ts over every row.

    The events are made unique like the backlog's (`_events`: no free embedding-cache hits from the simulator's
    small corpus), and one warm-up event lands before the paced traffic starts and is left out: the worker's
    first batches (cold caches, first inserts) took up to 4 s and are a start-up figure, not this rate's."""
    from llmwatch.harness import WorkerProcess, produce_sync, query_scalar, wait_for
    from llmwatch.sim.events import scenario_events

    n = max(1, int(rate * seconds))
    events = [_uniquified(e) for e in scenario_events("steady", n + 1, seed=seed, rate=None)]
    warm_up, paced_events = events[0], events[1:]
    worker = WorkerProcess(settings, ["score", "window", "sink"], log_dir / "worker-latency.log").start()
    try:
        wait_for(worker.metrics, 120, "the worker's /metrics page", processes=[worker])
        produce_sync(settings, settings.topics.events, [warm_up.model_copy(update={"ts": _now()})])
        wait_for(
            lambda: query_scalar(settings, "SELECT count() FROM inference_events") >= 1,
            120,
            "the warm-up event to land",
            processes=[worker],
        )

        async def paced() -> None:
            interval = 1.0 / rate
            t0 = time.monotonic()

            def gen() -> Any:
                for i, ev in enumerate(paced_events):
                    delay = t0 + i * interval - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    yield ev.model_copy(update={"ts": _now()})

            await produce(settings, settings.topics.events, gen())

        asyncio.run(paced())
        wait_for(
            lambda: query_scalar(settings, "SELECT count() FROM inference_events FINAL") >= n + 1,
            300,
            "the paced events to land",
            processes=[worker],
        )
        p50, p95 = query_scalar(
            settings,
            "SELECT quantilesExact(0.5, 0.95)(dateDiff('millisecond', ts, ingested_at)) FROM inference_events "
            "WHERE event_id != {warm_up:String}",
            {"warm_up": warm_up.event_id},
        )
        return {"paced_events": float(n), "p50_ms": float(p50), "p95_ms": float(p95)}
    finally:
        worker.stop()


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Column by column median of repeated runs of one profile (text columns from the first run)."""
    import statistics

    out = dict(runs[0])
    for key in runs[0]:
        values = [r[key] for r in runs if isinstance(r.get(key), int | float) and not isinstance(r.get(key), bool)]
        if values:
            out[key] = statistics.median(values)  # "ratio" too: each run's own ratio, then their median
    out["runs"] = len(runs)
    return out


def _us(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} µs"


def _now() -> Any:
    from llmwatch.schemas import utcnow

    return utcnow()


def run_profile(name: str, n: int, latency_s: float, root: Path, seed: int) -> dict[str, Any]:
    evaluators, backends, worker = PROFILES[name]
    base = _profile_settings(get_settings(), evaluators, backends, worker)
    events = _events(n, seed, now_ts=True)
    click.echo(f"[{name}] evaluators alone on {len(events)} events …", err=True)
    warm_up = _events(base.worker.score_batch, seed + 1000, now_ts=True)  # other ids, so other texts
    own = evaluator_throughput(base, events[: min(len(events), 2000)], base.worker.score_batch, warm_up)
    click.echo(f"[{name}] {own:,.0f} items/s; pipeline backlog of {n} events …", err=True)
    # a fresh chDB folder per run: a repeat must not count the previous run's rows
    with private_run(base, f"bench.{name}-tput", data_dir=root / f"{name}-tput-{uuid.uuid4().hex[:6]}") as s1:
        rate, total_s, cpu_us = sustained_rate(s1, events, root)
    click.echo(f"[{name}] {rate:,.0f} events/s end to end; landing latency at {rate / 2:,.0f}/s …", err=True)
    with private_run(base, f"bench.{name}-lat", data_dir=root / f"{name}-lat-{uuid.uuid4().hex[:6]}") as s2:
        lat = landing_latency(s2, rate / 2, latency_s, root, seed + 100)
    return {
        "profile": name,
        "evaluators": ", ".join(
            f"{e} ({backends[e + '_backend']})" if e + "_backend" in backends else e for e in evaluators
        )
        + (f"; models on {backends['model_sample']:.0%} of events" if "model_sample" in backends else "")
        + (f"; {worker['score_processes']} scoring processes" if "score_processes" in worker else ""),
        "events": n,
        "evaluators_items_s": own,
        "pipeline_events_s": rate,
        "ratio": rate / own,
        "backlog_s": total_s,
        "worker_cpu_us": cpu_us,
        **lat,
    }


@click.command("pipeline")
@click.option("--light-events", default=20_000, show_default=True, help="Backlog for the light(-2proc) profiles.")
@click.option("--all-events", default=6_000, show_default=True, help="Backlog for the all-evaluator profile.")
@click.option("--sampled-events", default=6_000, show_default=True, help="Backlog for all-sampled.")
@click.option("--latency-seconds", default=30.0, show_default=True, help="Duration of the paced latency run.")
@click.option(
    "--profiles", default="light,light-2proc,all,all-sampled", show_default=True, help="Which profiles to run."
)
@click.option("--seed", default=0, show_default=True)
@click.option("--repeat", default=1, show_default=True, type=click.IntRange(1), help="Runs per profile; medians.")
@click.option(
    "--workers",
    default=None,
    help="Scale-out instead: comma-separated counts of score+window workers beside one sink worker (e.g. 1,2,3), "
    "for the first of --profiles.",
)
@click.option("--partitions", default=6, show_default=True, help="Partitions of each topic in the --workers runs.")
@click.option("--write/--no-write", default=True, show_default=True, help="Update BENCHMARKS.md.")
def command(
    light_events: int,
    all_events: int,
    sampled_events: int,
    latency_seconds: float,
    profiles: str,
    seed: int,
    repeat: int,
    workers: str | None,
    partitions: int,
    write: bool,
) -> None:
    """Sustained events/s (produce → rows visible) and landing latency of one worker process; with --workers,
    the same drain spread over several worker processes."""
    from llmwatch.bench.report import write_section

    sizes = {"light": light_events, "light-2proc": light_events, "all": all_events, "all-sampled": sampled_events}
    unknown = set(profiles.split(",")) - set(sizes)
    if unknown:
        raise click.BadParameter(f"unknown profile(s) {', '.join(sorted(unknown))}; known: {', '.join(sizes)}")
    if workers is not None:
        try:
            counts = [int(k) for k in workers.split(",")]
        except ValueError:
            raise click.BadParameter(f"--workers takes counts like 1,2,3, got {workers!r}") from None
        if not counts or min(counts) < 1:
            raise click.BadParameter("--workers counts must be 1 or more")
        _scale_out_command(profiles.split(",")[0], sizes, counts, partitions, seed, repeat, write)
        return
    results = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="llmwatch-bench-") as tmp:
        for name in profiles.split(","):
            runs = []
            for i in range(repeat):
                if repeat > 1:
                    click.echo(f"[{name}] run {i + 1} of {repeat}", err=True)
                runs.append(run_profile(name, sizes[name], latency_seconds, Path(tmp), seed))
            results.append(median_run(runs))
    lines = [
        "| profile | evaluators | backlog | evaluators alone (items/s) | pipeline (events/s) | ratio | "
        "worker CPU per event | landing p50 (ms) | landing p95 (ms) at 50 % rate |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['profile']} | {r['evaluators']} | {r['events']:,.0f} | {r['evaluators_items_s']:,.0f} "
            f"| {r['pipeline_events_s']:,.0f} | {r['ratio']:.0%} | {_us(r['worker_cpu_us'])} "
            f"| {r['p50_ms']:,.0f} | {r['p95_ms']:,.0f} |"
        )
    table = "\n".join(lines)
    click.echo(table)
    if write:
        note = (
            f"Medians of {repeat} run(s) per profile. "
            "One worker process (score, window, sink agents; chDB embedded), 4 partitions, the local broker on the "
            "same 2 cores. *Evaluators alone* scores the same events in-process at the worker's batch size, after a "
            "warm-up on other events (the pipeline meets each event once: no cached texts); every sentence a "
            "user or the model wrote carries a two-word tag of its event, so no two events share a text (the "
            "operator's system prompt stays shared, as in production). "
            "*ratio* is pipeline ÷ that (light-2proc's worker has two scoring processes; its evaluators alone, "
            "one). *Pipeline* = backlog ÷ the drain (first event taken by the score agent → last rows visible and "
            "every score taken by the window agent). "
            "With the models a drain has ~3 s that do not depend on its length: the first batch scores (~2 s) "
            "before anything lands, and the last rows land after the last batch; a 6,000-event backlog keeps them "
            "to ~7 % of the drain (at 1,500 events they were ~25 %). "
            "*Worker CPU per event*: the user+system CPU of the worker and "
            "its scoring process(es) over the drain ÷ the backlog; 10⁶ ÷ it is what one core could carry. "
            "Landing latency = ClickHouse `ingested_at − ts` per row at half the sustained rate, events made unique "
            "like the backlog's, after one warm-up event has landed (it is left out). "
            "Load average (1 min) before/after the run: "
            f"{load_before:.1f}/{os.getloadavg()[0]:.1f} on 2 cores (Kafka and anything else included)."
        )
        write_section("pipeline", note + "\n\n" + table)


def _scale_out_command(
    name: str, sizes: dict[str, int], counts: list[int], partitions: int, seed: int, repeat: int, write: bool
) -> None:
    import statistics

    from llmwatch.bench.report import write_section

    load_before = os.getloadavg()[0]
    runs: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="llmwatch-bench-") as tmp:
        for i in range(repeat):
            if repeat > 1:
                click.echo(f"[{name}] scale-out pass {i + 1} of {repeat}", err=True)
            runs.append(run_scale_out(name, sizes[name], counts, partitions, Path(tmp), seed))
    rows = []
    for j, first in enumerate(runs[0]):
        rates = [r[j]["rate"] for r in runs]
        cpus = [r[j]["cpu_us"] for r in runs if r[j]["cpu_us"] is not None]
        rows.append({**first, "rate": statistics.median(rates), "cpu_us": statistics.median(cpus) if cpus else None})
    one = next((r["rate"] for r in rows if r["workers"] == 1), None)
    lines = [
        "| layout | worker processes | pipeline (events/s) | × one score+window worker | CPU per event (all) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        ratio = f"{r['rate'] / one:.2f}" if one and r["workers"] else "–"
        procs = 1 if r["workers"] == 0 else 1 + r["workers"]
        lines.append(f"| {r['layout']} | {procs} | {r['rate']:,.0f} | {ratio} | {_us(r['cpu_us'])} |")
    table = "\n".join(lines)
    click.echo(table)
    if write:
        evaluators = PROFILES[name][0]
        note = (
            f"Profile {name} ({', '.join(evaluators)}), backlog {sizes[name]:,} events, {partitions} partitions, "
            f"medians of {repeat} pass(es); each pass runs every layout on its own private topics and chDB folder. "
            "Every worker runs its scoring in a child process (`worker.score_process`), so k score+window workers "
            "are 2k processes besides the sink worker, the broker and this bench, all on the same 2 cores: the "
            "cores, not the partitions, cap the scaling. *Pipeline* = backlog ÷ the drain (first event taken by a "
            "score agent → every row visible and every score windowed); the backlog is produced once every worker "
            "has joined its consumer groups. The one-process row stores scores from its own score agent "
            "(`sink_scores_locally`); in the other layouts the sink worker reads them back from llm.eval.scores. "
            f"Load average (1 min) before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f} on 2 cores."
        )
        write_section("pipeline-workers", note + "\n\n" + table)
