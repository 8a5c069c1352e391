"""`llmwatch demo`: the whole system end to end on the embedded defaults, driven through a storyline.

It runs the same commands a user runs, as child processes: `llmwatch worker` (score, window, sink, judge,
controller, alerter; it migrates and holds the embedded ClickHouse) and `llmwatch serve` (the gateway with
versions v1, v2, v3, by default on the simulated engine). This process only starts and stops them, sends traffic
over HTTP, sends the rollout commands `llmwatch rollout start` would send, follows the weights topic, and reads
ClickHouse through the worker's query endpoint. The storyline itself is pure code in story.py; the clients are
in traffic.py, the live view in view.py, the report in report.py.

Isolation: each run has its own topics (`demo.<run>.<role>`) and consumer group, deleted at the end, so a run
never sees another run's weights or offsets; rows land in the configured ClickHouse and the report reads this
run's time span. Whatever the demo started (processes, a local broker, topics) it stops, on errors and Ctrl-C too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from llmwatch.db import queries
from llmwatch.db.owner import open_query_client
from llmwatch.errors import ConfigError, LlmwatchError
from llmwatch.harness import GatewayProcess, HarnessError, WorkerProcess, delete_run_topics, run_settings, wait_for
from llmwatch.kafka_topics import ensure_topics_sync
from llmwatch.settings import AlertSettings, JudgeSettings, RolloutSettings, Settings

from .story import (
    BAD,
    BASELINE,
    DEPLOYMENT,
    GOOD,
    VERSIONS,
    Finish,
    Move,
    Outcome,
    StartRollout,
    Story,
    StoryPlan,
    VerdictRow,
    check_outcome,
)
from .traffic import TrafficDriver
from .view import LiveView

log = logging.getLogger(__name__)

AGENTS = ["score", "window", "sink", "judge", "controller", "alerter"]
ENGINES = ("simulated", "transformers", "openai")
#: The light evaluator backends: every evaluator runs, on the paths that keep up with demo traffic on 2 cores.
LIGHT_BACKENDS = {"toxicity_backend": "profanity", "injection_backend": "rules"}


class DemoFailed(LlmwatchError):
    """The story's outcomes did not happen (or a part did not start)."""


@dataclass
class DemoOptions:
    duration_s: float = 180.0
    scenario: str = "demo-regression"
    rate: float = 40.0
    live: bool | None = None  # None: when stdout is a terminal
    full_evaluators: bool = False
    keep_topics: bool = False
    seed: int = 0
    engine: str = "simulated"  # or transformers (with model) / openai (with upstream): serves v1 and v2
    model: Path | None = None
    upstream: str | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.engine == "transformers" and self.model is None:
            raise ConfigError("--engine transformers needs --model PATH (a local model directory)")
        if self.engine == "openai" and not self.upstream:
            raise ConfigError("--engine openai needs --upstream URL (serving model ids v1 and v2)")


@dataclass
class DemoResult:
    ok: bool
    message: str
    report: Path | None
    outcome: Outcome | None
    run_dir: Path
    wall_s: float
    story_log: list[tuple[float, str]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- settings
def demo_settings(base: Settings, plan: StoryPlan, run_id: str, *, full_evaluators: bool = False) -> Settings:
    """The settings every process of this run shares: own topics and group (`demo.<run>.*`), demo-sized windows and
    rollout. Rows land in the configured ClickHouse; the report reads this run's time span."""
    base = run_settings(base, f"demo.{run_id}")
    worker = base.worker.model_copy(
        update={
            "agents": list(AGENTS),
            "window_size_s": plan.window_s,
            "window_lateness_s": 2.0,
            "window_idle_close_s": 2.0,
            "sink_within_s": 0.3,
        }
    )
    evaluators = base.eval.model_copy(
        update={"enabled": ["toxicity", "pii", "injection", "hallucination"]}
        | ({} if full_evaluators else LIGHT_BACKENDS)
    )
    alerts = AlertSettings(**{**base.alerts.model_dump(), "ttft_p95_ms": 350.0, "pii_leak_rate": 0.03})
    return base.model_copy(
        update={
            "worker": worker,
            "eval": evaluators,
            "rollout": RolloutSettings(**plan.rollout_settings()),
            "judge": JudgeSettings(**plan.judge_settings()),
            "alerts": alerts,
        }
    )


def gateway_config(plan: StoryPlan, options: DemoOptions) -> dict[str, Any]:
    """The gateway's engines and deployment `demo` (baseline v1).

    Simulated (default): one engine serves v1, v2, v3, v3 with the regression's profile. With a real engine
    (`transformers` with a local model, or an OpenAI-compatible upstream serving model ids v1 and v2), v1 and v2
    run on it and the bad v3 stays simulated: a real model cannot be made to regress on cue, and the judge only
    compares what the versions did.
    """
    profiles: dict[str, Any] = {"profiles": {BAD: dict(plan.regression.profile)}} if plan.regression.profile else {}
    if options.engine == "simulated":
        engines: list[dict[str, Any]] = [
            {"kind": "simulated", "versions": list(VERSIONS), "seed": options.seed, "options": profiles}
        ]
    elif options.engine == "transformers":
        model = str(Path(str(options.model)).resolve())
        engines = [
            {"kind": "transformers", "model": model, "versions": [v], "options": {"max_concurrency": 2}}
            for v in (BASELINE, GOOD)
        ]
    else:
        engines = [{"kind": "openai", "upstream": options.upstream, "versions": [BASELINE, GOOD]}]
    if options.engine != "simulated":
        engines.append({"kind": "simulated", "versions": [BAD], "seed": options.seed, "options": profiles})
    return {
        "engines": engines,
        "deployments": [{"name": DEPLOYMENT, "baseline": BASELINE, "versions": list(VERSIONS)}],
    }


# ------------------------------------------------------------------------------------------ processes
class Stack:
    """What this run started, stopped in reverse order whatever happens (each stop is tried even if one fails)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._stops: list[tuple[str, Callable[[], Any]]] = []
        self._say = say

    def push(self, what: str, stop: Callable[[], Any]) -> None:
        self._stops.append((what, stop))

    def close(self) -> None:
        """Stop everything; a second Ctrl-C meanwhile only says so (leaving a worker behind would keep ClickHouse
        locked)."""

        def patience(signum: int, frame: Any) -> None:
            self._say("still stopping what the demo started, a few seconds more …")

        previous = signal.signal(signal.SIGINT, patience)
        try:
            while self._stops:
                what, stop = self._stops.pop()
                try:
                    stop()
                    self._say(f"stopped {what}")
                except Exception as e:  # keep stopping the rest
                    self._say(f"could not stop {what}: {type(e).__name__}: {e}")
        finally:
            signal.signal(signal.SIGINT, previous)


def _check_clickhouse_free(settings: Settings) -> None:
    """chDB allows one process per folder and the demo's worker must be it: fail early with the way out."""
    if not settings.clickhouse_embedded:
        return
    from llmwatch.db.lock import UNKNOWN_HOLDER, embedded_path, lock_holder

    folder = embedded_path(settings.clickhouse_url).resolve()
    holder = lock_holder(folder)
    if holder is not None:
        who = "another process" if holder == UNKNOWN_HOLDER else f"process {holder}"
        raise DemoFailed(
            f"the embedded ClickHouse at {folder} is held by {who} (a running `llmwatch worker`?). The demo's "
            "worker must hold it: stop that process, or run the demo with another LLMWATCH_DATA_DIR."
        )


def _ensure_kafka(settings: Settings, stack: Stack, say: Callable[[str], None]) -> None:
    """Reuse a broker that answers; else start the local one (and stop it at the end)."""
    from llmwatch.local.kafka import LocalKafka
    from llmwatch.local.kafka_config import parse_local_address
    from llmwatch.local.kafka_probe import describe_cluster_sync

    if describe_cluster_sync(settings, timeout_s=5.0) is not None:
        say(f"using the Kafka broker at {settings.kafka}")
        return
    try:
        parse_local_address(settings.kafka)
    except ConfigError as e:
        raise DemoFailed(f"Kafka at {settings.kafka} does not answer and is not a local address to start: {e}") from e
    say(f"no broker at {settings.kafka}: starting the local one (`llmwatch kafka up`)")
    kafka = LocalKafka(settings, echo=say)
    kafka.up()
    stack.push("the local Kafka broker", kafka.down)


# ------------------------------------------------------------------------------------------- the run
def _console() -> Console:
    """The terminal's width on a terminal; wide enough for the ready queries' tables in a log file."""
    console = Console()
    return console if console.is_terminal else Console(width=160, soft_wrap=False)


def _utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def read_outcome(client: Any, since: dt.datetime, plan: StoryPlan) -> Outcome:
    """The story's outcomes from ClickHouse: this run's traffic_weights and the verdicts they name."""
    moves = [
        Move(int(r[0]), str(r[3]), {k: float(v) for k, v in json.loads(r[2]).items()}, r[4], str(r[6]), r[7], r[8])
        for r in queries.rollout_moves(client, DEPLOYMENT, since)
    ]
    ids = sorted({m.verdict_id for m in moves if m.verdict_id})
    verdicts = {
        str(r[0]): VerdictRow(str(r[0]), str(r[1]), str(r[2]), tuple(r[3]), str(r[4]))
        for r in queries.verdicts_by_id(client, ids)
    }
    return check_outcome(moves, verdicts, plan.regression)


class Demo:
    """One run: start the parts, play the story, check the outcomes in ClickHouse, write the report, stop all."""

    def __init__(self, base: Settings, plan: StoryPlan, options: DemoOptions, console: Console | None = None) -> None:
        self.options = options
        self.plan = plan
        self.console = console or _console()
        self.live = options.live if options.live is not None else self.console.is_terminal
        self.started_at = _utc()
        self.run_id = f"{self.started_at:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
        self.settings = demo_settings(base, plan, self.run_id, full_evaluators=options.full_evaluators)
        self.run_dir = base.data_dir / "reports" / f"demo-{self.started_at:%Y%m%d-%H%M%S}"
        self.story = Story(plan)
        self.story_started = self.started_at
        self.story_clock: Callable[[], float] = lambda: 0.0

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{_utc():%H:%M:%S}[/dim] {text}", highlight=False, soft_wrap=True)

    def run(self) -> DemoResult:
        self.alertmanager: Any = None
        self.alert_receiver: Any = None
        self.alertmanager_note = ""
        wall = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        logs = self.run_dir / "logs"
        logs.mkdir(exist_ok=True)
        stack = Stack(self.say)
        try:
            worker = self._start(stack, logs)
            since, finish, driver = self._play(worker)
            result = self._finish(worker, since, finish, driver, wall)
        finally:
            stack.close()
        return result

    # -- start-up ---------------------------------------------------------------------------------------
    def _start(self, stack: Stack, logs: Path) -> WorkerProcess:
        s = self.settings
        _check_clickhouse_free(s)
        _ensure_kafka(s, stack, self.say)
        ensure_topics_sync(s)
        if not self.options.keep_topics:
            stack.push("(deleted this run's topics)", lambda: delete_run_topics(s, s.worker.app_id))
        self.say(f"run {self.run_id}: topics {s.worker.app_id}.*, ClickHouse {s.clickhouse_url}")
        s = self._start_alertmanager(stack, logs)
        worker = WorkerProcess(s, AGENTS, logs / "worker.log").start()  # every setting travels as LLMWATCH_*
        stack.push(f"the worker (pid {worker.pid})", lambda: worker.stop(60))
        self.say("worker starting: migrating ClickHouse, loading evaluators …")
        if s.clickhouse_embedded:
            from llmwatch.db.lock import embedded_path, live_owner

            folder = embedded_path(s.clickhouse_url).resolve()
            wait_for(
                lambda: live_owner(folder), 180, "the worker to open ClickHouse", interval_s=0.5, processes=[worker]
            )
        wait_for(lambda: "llmwatch" in worker.metrics(), 180, "the worker's agents", interval_s=0.5, processes=[worker])
        config_path = logs / "gateway.json"
        config_path.write_text(json.dumps(gateway_config(self.plan, self.options), indent=2))
        gateway = GatewayProcess(s, logs / "gateway.log", args=["--config", str(config_path)]).start()
        stack.push(f"the gateway (pid {gateway.pid})", lambda: gateway.stop(20))
        gateway.wait_ready(90 if self.options.engine == "simulated" else 300)
        self.gateway = gateway
        engines = (
            "v1, v2, v3 simulated"
            if self.options.engine == "simulated"
            else (f"v1, v2 on {self.options.engine}, v3 simulated")
        )
        self.say(f"gateway ready at {gateway.url} ({engines}); worker pid {worker.pid}")
        return worker

    def _start_alertmanager(self, stack: Stack, logs: Path) -> Settings:
        """A real Alertmanager (the one the tests build from its Go module, when it is in the cache) with
        deploy/alertmanager/alertmanager.yml, its receivers pointed at a receiver in this process; the alerter
        posts to it. Without the binary the demo runs on and the report says so."""
        from llmwatch.harness import gotools

        binary = gotools.tool_path("alertmanager", self.settings.cache_dir)
        try:
            from llmwatch.harness.alertmanager import AlertmanagerProcess, Receiver, local_config
        except ImportError as e:  # PyYAML (the dev extra) reads the config
            self.alertmanager_note = f"No Alertmanager ran: {e}"
            self.say(self.alertmanager_note)
            return self.settings
        if not binary.is_file():
            self.alertmanager_note = (
                f"No Alertmanager ran: none is built here ({binary}). `python3 -m llmwatch.harness.gotools "
                "alertmanager` builds one from its Go module (about 2 minutes, once; `make test` does it too)."
            )
            self.say(self.alertmanager_note)
            return self.settings
        receiver = Receiver()
        stack.push("the alert receiver", receiver.close)
        config = local_config(receiver_url=receiver.url, group_wait="2s", group_interval="10s", repeat_interval="1h")
        am = AlertmanagerProcess(binary, config, logs / "alertmanager").start()
        stack.push(f"Alertmanager (pid {am.proc.pid if am.proc else '?'})", am.stop)
        self.alertmanager, self.alert_receiver = am, receiver
        alerts = self.settings.alerts.model_copy(update={"alertmanager_url": am.url, "alertmanager_resend_s": 15.0})
        self.settings = self.settings.model_copy(update={"alerts": alerts})
        self.say(f"Alertmanager at {am.url} (deploy/alertmanager/alertmanager.yml; receivers: this process)")
        return self.settings

    def _alertmanager_seen(self) -> Any:
        from .report import AlertmanagerSeen

        if self.alertmanager is None:
            return AlertmanagerSeen(note=self.alertmanager_note)
        try:
            alerts = self.alertmanager.alerts()
        except Exception as e:  # the report says what it could not read
            return AlertmanagerSeen(url=self.alertmanager.url, note=f"Alertmanager did not answer: {e}")
        notes = [(path.lstrip("/"), body) for path, body in list(self.alert_receiver.bodies)]
        return AlertmanagerSeen(url=self.alertmanager.url, alerts=alerts, notifications=notes)

    # -- the story ----------------------------------------------------------------------------------------
    def _play(self, worker: Any) -> tuple[dt.datetime, Finish, TrafficDriver]:
        since = _utc() - dt.timedelta(seconds=2)
        interrupted: list[int] = []

        async def story() -> tuple[Finish, TrafficDriver]:
            # Ctrl-C is recorded here, not only as asyncio.run's cancellation of this task: once in CI the
            # cancellation was absorbed somewhere on its way (where is not known; Python 3.11's wait_for, which
            # returns a result that completed as it was cancelled, is one candidate) and the story played on to
            # the end. The flag makes the interrupt stick whatever absorbs the cancellation.
            loop, task = asyncio.get_running_loop(), asyncio.current_task()

            def on_sigint() -> None:
                interrupted.append(signal.SIGINT)
                if task is not None:
                    task.cancel()

            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                loop.add_signal_handler(signal.SIGINT, on_sigint)
            try:
                return await self._story_loop(worker, since)
            finally:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(signal.SIGINT)

        try:
            finish, driver = asyncio.run(story())
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None
        if interrupted:
            raise KeyboardInterrupt
        return since, finish, driver

    async def _story_loop(self, worker: Any, since: dt.datetime) -> tuple[Finish, TrafficDriver]:
        from llmwatch.schemas import ControlCommand
        from llmwatch.streams.control import send_command
        from llmwatch.weights_topic import WeightsReader

        t0 = time.monotonic()
        self.story_started = _utc()

        def clock() -> float:
            return time.monotonic() - t0

        self.story_clock = clock

        story = self.story
        follower = WeightsReader(self.settings, lambda c: c.weights and story.observe(c.weights, clock()))
        follower.start()
        stop = asyncio.Event()
        max_tokens = 256 if self.options.engine == "simulated" else 48  # a CPU model answers in time
        driver = TrafficDriver(self.gateway.url, story, self.plan.rate, clock, self.options.seed, max_tokens)
        traffic = asyncio.create_task(driver.run(stop))
        view = LiveView(self, driver, since) if self.live else None
        printed = 0
        next_status = 15.0
        finish: Finish | None = None
        try:
            if view is not None:
                view.start()
            while finish is None:
                t = clock()
                for action in story.tick(t):
                    if isinstance(action, Finish):
                        finish = action
                    elif isinstance(action, StartRollout):
                        cmd = ControlCommand(
                            deployment=DEPLOYMENT,
                            action="start",
                            canary_version=action.canary,
                            baseline_version=action.baseline,
                            requested_by="llmwatch demo",
                            reason=action.reason,
                        )
                        answer = await send_command(self.settings, cmd, wait_s=60)
                        if answer is None:
                            finish = story.start_failed(action.canary, clock(), "the controller did not answer in 60 s")
                        else:
                            story.observe(answer, clock())
                if not worker.alive():
                    finish = Finish(False, f"the worker died:\n{worker.log_tail()}")
                if not self.gateway.alive():
                    finish = Finish(False, f"the gateway died:\n{self.gateway.log_tail()}")
                if view is not None:
                    await view.refresh(clock())
                else:
                    for when, line in story.log[printed:]:
                        self.say(f"[{when:5.0f} s] {line}")
                    printed = len(story.log)
                    if t >= next_status:
                        next_status += 15.0
                        self.say(
                            f"[{t:5.0f} s] {story.phase.value}; traffic: {story.traffic(t).label}; "
                            f"{driver.ok} ok / {driver.failed} failed; by version {dict(driver.versions)}"
                        )
                await asyncio.sleep(0.25 if view is None else 1.0)
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(traffic, 40)
            await follower.stop()
            if view is not None:
                view.stop()
        if view is not None:
            for when, line in story.log:
                self.say(f"[{when:5.0f} s] {line}")
        return finish, driver

    # -- the end --------------------------------------------------------------------------------------------
    def _finish(
        self, worker: Any, since: dt.datetime, finish: Finish, driver: TrafficDriver, wall: float
    ) -> DemoResult:
        from llmwatch.db.render import print_auto

        from .report import Period, build_report, run_ready_queries

        self.say(f"traffic stopped: {driver.ok} ok, {driver.failed} failed; waiting for the pipeline to land it")
        client = open_query_client(self.settings)
        try:
            with contextlib.suppress(HarnessError):  # the report says what landed
                wait_for(
                    lambda: queries.event_count(client, DEPLOYMENT, since) >= driver.ok,
                    30,
                    "every event to land",
                    interval_s=0.5,
                    processes=[worker],
                )
            until = _utc()
            outcome = read_outcome(client, since, self.plan)
            ok = finish.ok and outcome.ok
            from llmwatch.db.ready import ready_queries

            ready = run_ready_queries(client, {q.name: q.parameters(self.settings) for q in ready_queries().values()})
            colors = {"prompt drift": "#81d4fa", "injection burst": "#ffb74d"}
            offset = (self.story_started - since).total_seconds()
            periods = [
                Period(label, a + offset, b + offset, colors.get(label, "#fdd835"))
                for label, a, b in self.story.periods(self.story_clock())
            ]
            summary = [finish.message, *outcome.describe(), *(f"{t:.0f} s: {line}" for t, line in self.story.log)]
            seen = self._alertmanager_seen()
            report = build_report(
                client,
                self.run_dir,
                DEPLOYMENT,
                since,
                until,
                periods=periods,
                ready=ready,
                title=f"llmwatch demo {self.run_id}",
                ok=ok,
                summary=summary,
                settings=self._described(driver),
                alertmanager=seen,
            )
        finally:
            client.close()
        self.console.rule("summary")
        for line in outcome.describe():
            self.console.print(line, highlight=False)
        self.console.rule("Alertmanager")
        if seen.alerts is None:
            self.console.print(seen.note, highlight=False)
        else:
            for a in seen.alerts:
                lab = a["labels"]
                self.console.print(
                    f"{lab.get('alertname')} {lab.get('severity')} {lab.get('model_version', '')}: "
                    f"{a['status']['state']} → {', '.join(r['name'] for r in a.get('receivers', []))}",
                    highlight=False,
                )
            self.console.print(f"{len(seen.notifications or [])} notifications sent to the receivers", highlight=False)
        self.console.rule("analysts' ready queries (sql/queries)")
        for r in ready:
            self.console.print(f"[bold]{r.name}[/bold]: {r.title}", highlight=False)
            if r.error:
                self.console.print(f"[red]{r.error}[/red]", highlight=False)
            else:
                print_auto(r.columns, r.rows[:10], self.console)
        message = finish.message if not finish.ok else ("; ".join(outcome.problems) or "story outcomes met")
        return DemoResult(ok, message, report, outcome, self.run_dir, time.monotonic() - wall, list(self.story.log))

    def _described(self, driver: TrafficDriver) -> dict[str, Any]:
        p = self.plan
        return {
            "story duration (s)": p.duration_s,
            "request rate (/s)": p.rate,
            "second canary": f"{p.regression.name}: {p.regression.description}",
            "rollout steps": ", ".join(f"{w:.0%}" for w in p.steps),
            "canary requests per step (min)": p.min_sample,
            "time per step (min, s)": p.min_step_duration_s,
            "judge pass margins": f"×{p.pass_margin_scale:g} (fail margins as in production)",
            "window size (s)": p.window_s,
            "evaluators": json.dumps(
                self.settings.eval.model_dump(include={"enabled", "toxicity_backend", "injection_backend"})
            ),
            "requests sent / ok / failed": f"{driver.sent} / {driver.ok} / {driver.failed}",
            "responses by version": json.dumps(dict(sorted(driver.versions.items()))),
            "topics": f"demo.{self.run_id}.* (deleted at the end unless --keep-topics)",
        }


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM stops the demo like Ctrl-C does: through the same clean-up."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(base: Settings, options: DemoOptions, console: Console | None = None) -> DemoResult:
    """Play the demo; raises DemoFailed when a part cannot start, returns the result otherwise."""
    from .story import make_plan

    try:
        plan = make_plan(options.duration_s, options.rate, options.scenario)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    with sigterm_as_interrupt():
        return Demo(base, plan, options, console).run()
