"""Builds a worker process: one Faust app per agent role, their topics, the agents, the ClickHouse writer, and the
/metrics page. `llmwatch worker` calls `run_worker`; tests start that command as a real process.

**A consumer group per role.** A Faust app is one Kafka consumer group, and Kafka splits a group's topics between
its members whatever agents each member runs: with every worker in one group, a worker running the sink took
partitions of llm.eval.scores away from the window agents of the others (issue 22). So each role consumes in its
own group, `<app_id>.<role>`, and any layout of agents over workers is safe: every role sees every partition of
its input topics, spread over the workers that run it.

**Roles that run once.** The judge, the controller and the alerter keep per-deployment state in memory (the
evidence, the rollout machine, the alert book): their groups give every partition to one member (`SINGLE_OWNER`,
streams/patches.py's SingleOwnerAssignor). Other workers that run them stand by with nothing assigned and take
over when the owner's session times out (`worker.session_timeout_s`).

With embedded ClickHouse (chDB: one process per data folder) the sink must run in exactly one worker; that
worker also serves other processes' `llmwatch db query` through llmwatch.db.owner. Against a ClickHouse
server, any number of workers may sink.
"""

from __future__ import annotations

import logging
import os
import socket
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from llmwatch.settings import Settings

from .app import create_app, declare_topics
from .context import WorkerContext
from .heap import freeze_startup_heap
from .metrics import WorkerMetrics
from .patches import committed_offsets, warn_on_version_mismatch
from .sink import BatchWriter, FaultInjector

if TYPE_CHECKING:
    from .score_agent import Scoring

log = logging.getLogger(__name__)

KNOWN_AGENTS = ("score", "window", "sink", "judge", "controller", "alerter")
#: roles whose consumer group gives every partition to one worker (the others stand by)
SINGLE_OWNER = frozenset({"judge", "controller", "alerter"})


def group_id(settings: Settings, role: str) -> str:
    """The consumer group (and Faust app id) of an agent role."""
    return f"{settings.worker.app_id}.{role}"


def instance_id(settings: Settings) -> str:
    """This worker's name in verdicts, weights and logs."""
    return settings.worker.instance_id or f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class BuiltWorker:
    """The apps of one worker process, and the context each role's agents were installed with."""

    contexts: dict[str, WorkerContext]  # role → its context (its own app, its own topics)
    apps: list[faust.App]  # one per role; the first serves the HTTP page


def build_worker(settings: Settings, agents: list[str] | None = None) -> BuiltWorker:
    agents = list(dict.fromkeys(agents or settings.worker.agents))
    unknown = sorted(set(agents) - set(KNOWN_AGENTS))
    if unknown:
        raise ValueError(f"unknown agents {unknown}; known: {', '.join(KNOWN_AGENTS)}")
    if not agents:
        raise ValueError("no agents to run")
    warn_on_version_mismatch()
    metrics = WorkerMetrics()
    exit_stack = ExitStack()  # one for the whole process, closed when its last app stops
    me = instance_id(settings)
    contexts: dict[str, WorkerContext] = {}
    for i, role in enumerate(agents):
        app = create_app(settings, app_id=group_id(settings, role), web=i == 0, single_owner=role in SINGLE_OWNER)
        topics = declare_topics(app, settings)
        contexts[role] = WorkerContext(
            settings=settings, app=app, topics=topics, metrics=metrics, exit_stack=exit_stack, instance_id=me
        )
        _track_assignment(contexts[role], group_id(settings, role))
    log.info("worker %s: agents %s, consumer groups %s", me, agents, [group_id(settings, a) for a in agents])
    # the score agent stores what it scores when this worker also sinks (streams/score_sink.py)
    local_rows = settings.worker.sink_scores_locally and "score" in agents and "sink" in agents
    scoring = _build_scoring(contexts["score"], rows=local_rows) if "score" in agents else None  # first: warm-up
    rows = None
    writer: BatchWriter | None = None
    if "sink" in agents:
        sink_ctx = contexts["sink"]
        writer = sink_ctx.writer = _open_writer(sink_ctx)
        from . import sink_agent

        # the sink reads llm.eval.scores whatever this worker scores (other workers may score without a sink), and
        # skips the scores a score agent stored itself (streams/score_sink.py)
        sink_agent.install(sink_ctx, writer)
        if local_rows:
            from .score_sink import ScoreRows

            w = settings.worker
            contexts["score"].writer = writer
            rows = ScoreRows(
                contexts["score"],
                writer,
                batch_rows=w.sink_batch,
                max_wait_s=w.sink_within_s,
                max_pending=4 * w.sink_batch,
            )
    if scoring is not None:
        from . import score_agent

        score_agent.install(contexts["score"], scoring, rows, stored_by=me if local_rows else None)
    if "window" in agents:
        from . import window_agent

        window_agent.install(contexts["window"], _drift_fn(settings) if settings.worker.window_drift else None)
    for name in ("judge", "controller", "alerter"):
        if name in agents:
            _install_optional(contexts[name], name)
    apps = [c.app for c in contexts.values()]
    _install_metrics_page(contexts[agents[0]], {group_id(settings, r): c.app for r, c in contexts.items()})
    if scoring is not None:
        scoring.wait_ready()

    stopping = {"apps": len(apps)}

    def _shutdown(sender: Any, **_: Any) -> None:
        if writer is not None:
            writer.stopping = True  # a batch still retrying stays uncommitted, to be replayed
        stopping["apps"] -= 1
        if stopping["apps"] == 0:
            exit_stack.close()

    for app in apps:
        app.on_before_shutdown.connect(_shutdown)
    return BuiltWorker(contexts=contexts, apps=apps)


def _track_assignment(ctx: WorkerContext, group: str) -> None:
    metrics = ctx.metrics

    @ctx.app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **_: Any) -> None:
        metrics.rebalances.labels(group=group).inc()
        metrics.assigned_partitions.labels(group=group).set(len(assigned))
        log.info("group %s: %d partitions assigned to this worker", group, len(assigned))


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
        ctx.exit_stack.enter_context(serve_queries(client, settings))
    fault = FaultInjector.from_environment()
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
        ctx.exit_stack.callback(proc.close)
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


def _install_metrics_page(ctx: WorkerContext, apps: dict[str, faust.App]) -> None:
    metrics = ctx.metrics

    @ctx.app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        _update_lag(apps, metrics)
        return web.bytes(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def _update_lag(apps: dict[str, faust.App], metrics: Any) -> None:
    metrics.consumer_lag.clear()  # partitions that moved to another worker are no longer this one's lag
    for group, app in apps.items():
        consumer = app.consumer
        committed = committed_offsets(consumer)
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            done = committed.get(tp) or 0
            metrics.consumer_lag.labels(group=group, topic=tp.topic, partition=str(tp.partition)).set(
                max(0, high - done)
            )


def run_worker(settings: Settings, agents: list[str] | None = None, loglevel: str = "info") -> None:
    """Run until SIGINT/SIGTERM; a graceful stop commits what was written."""
    built = build_worker(settings, agents)
    if settings.worker.gc_freeze:
        freeze_startup_heap("worker")
    main, *others = built.apps
    worker = faust.Worker(main, *others, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
