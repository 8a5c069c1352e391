"""Builds a worker process: the app, its topics, the agents this process runs, the ClickHouse writer, and
the /metrics page. `llmwatch worker` calls `run_worker`; tests start that command as a real process.

With embedded ClickHouse (chDB: one process per data folder) the sink must run in exactly one worker; that
worker also serves other processes' `llmwatch db query` through llmwatch.db.owner. Against a ClickHouse
server, any number of workers may sink.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from llmwatch.settings import Settings

from .app import create_app, declare_topics
from .context import WorkerContext
from .heap import freeze_startup_heap
from .patches import committed_offsets
from .sink import BatchWriter, FaultInjector

if TYPE_CHECKING:
    from .score_agent import Scoring

log = logging.getLogger(__name__)

KNOWN_AGENTS = ("score", "window", "sink", "judge", "controller", "alerter")


def build_worker(settings: Settings, agents: list[str] | None = None) -> WorkerContext:
    agents = list(agents or settings.worker.agents)
    unknown = sorted(set(agents) - set(KNOWN_AGENTS))
    if unknown:
        raise ValueError(f"unknown agents {unknown}; known: {', '.join(KNOWN_AGENTS)}")
    app = create_app(settings)
    ctx = WorkerContext(settings=settings, app=app, topics=declare_topics(app, settings))
    ctx.extras["agents"] = agents
    ctx.extras["exit_stack"] = ExitStack()
    # the score agent stores what it scores when this worker also sinks (streams/score_sink.py)
    local_rows = settings.worker.sink_scores_locally and "score" in agents and "sink" in agents
    scoring = _build_scoring(ctx, rows=local_rows) if "score" in agents else None  # first: its warm-up overlaps
    rows = None
    if "sink" in agents:
        ctx.writer = _open_writer(ctx)
        from . import sink_agent

        sink_agent.install(ctx, ctx.writer, skip=frozenset({"scores"}) if local_rows else frozenset())
        if local_rows:
            from .score_sink import ScoreRows

            w = settings.worker
            rows = ScoreRows(
                ctx, ctx.writer, batch_rows=w.sink_batch, max_wait_s=w.sink_within_s, max_pending=4 * w.sink_batch
            )
    if scoring is not None:
        from . import score_agent

        score_agent.install(ctx, scoring, rows)
    if "window" in agents:
        from . import window_agent

        window_agent.install(ctx, _drift_fn(settings) if settings.worker.window_drift else None)
    for name in ("judge", "controller", "alerter"):
        if name in agents:
            _install_optional(ctx, name)
    _install_metrics_page(ctx)
    if scoring is not None:
        scoring.wait_ready()

    @app.on_before_shutdown.connect
    def _shutdown(sender: Any, **_: Any) -> None:
        if ctx.writer is not None:
            ctx.writer.stopping = True  # a batch still retrying stays uncommitted, to be replayed
        ctx.extras["exit_stack"].close()

    return ctx


def _open_writer(ctx: WorkerContext) -> BatchWriter:
    from llmwatch.db.client import connect
    from llmwatch.db.migrations import migrate
    from llmwatch.db.owner import serve_queries

    settings = ctx.settings
    client = connect(settings)
    report = migrate(client)
    if getattr(report, "applied", None):
        log.info("applied %d ClickHouse migrations", len(report.applied))
    if settings.clickhouse_embedded:
        ctx.extras["exit_stack"].enter_context(serve_queries(client, settings))
    fault = FaultInjector(switch=settings.worker.fault_file) if settings.worker.fault_file else None
    return BatchWriter(
        client,
        retry_max_s=settings.worker.sink_retry_max_s,
        fault=fault,
        on_retry=lambda _table: ctx.metrics.sink_retries.inc(),
    )


def _build_scoring(ctx: WorkerContext, *, rows: bool) -> Scoring:
    """The scoring process, started (its warm-up runs while the rest of the worker is built), or scoring in
    the worker when `worker.score_process` is off. `rows`: scored events come back with their table rows."""
    settings = ctx.settings
    if settings.worker.score_process:
        from .score_process import ScoringProcess

        proc = ScoringProcess(settings, rows=rows, on_restart=ctx.metrics.scoring_restarts.inc).start()
        ctx.extras["exit_stack"].callback(proc.close)
        return proc
    from .score_agent import InlineScoring
    from .score_process import build_scorer

    return InlineScoring(build_scorer(settings), max_bytes=settings.worker.max_event_bytes, rows=rows)


def _drift_fn(settings: Settings) -> Any:
    from .drift_check import make_drift_fn

    return make_drift_fn(settings)


def _install_optional(ctx: WorkerContext, name: str) -> None:
    import importlib

    try:
        module = importlib.import_module(f"llmwatch.streams.{name}_agent")
    except ModuleNotFoundError as e:
        log.warning("agent %r is not built yet (%s); skipping it", name, e)
        return
    module.install(ctx)


def _install_metrics_page(ctx: WorkerContext) -> None:
    app, metrics = ctx.app, ctx.metrics

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        _update_lag(app, metrics)
        return web.bytes(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def _update_lag(app: faust.App, metrics: Any) -> None:
    consumer = app.consumer
    committed = committed_offsets(consumer)
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        done = committed.get(tp) or 0
        metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(max(0, high - done))


def run_worker(settings: Settings, agents: list[str] | None = None, loglevel: str = "info") -> None:
    """Run until SIGINT/SIGTERM; a graceful stop commits what was written."""
    ctx = build_worker(settings, agents)
    if settings.worker.gc_freeze:
        freeze_startup_heap("worker")
    worker = faust.Worker(ctx.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
