"""Judge agent: llm.eval.scores → per-arm statistics of each deployment's current canary → CanaryVerdict.

Which canary is current comes from the weights topic (the controller's output), read whole at start and then
followed: a new (baseline, canary) pair, or the same pair started again after a rollback, starts the evidence
afresh; a promoted or rolled-back rollout stops being judged. Scores older than the rollout's start (minus
`judge_skew_s`) are left out, so both arms cover the same time span. A verdict goes out every
`judge_interval_s` (and after `judge_every_n` new scores, when set), only when new scores arrived: with no
traffic there is no verdict, and the controller's silence timers hold, then roll back.

State is in memory on purpose. The judge's tests are valid at any sample size, so a restart that starts the
evidence afresh (offsets are committed as scores are read) only makes the next pass slower, never unsafe.
The judge needs both arms of a deployment, and scores are keyed by deployment/model_version, so it must see
every scores partition: its consumer group gives them all to one worker (streams/worker.py, SINGLE_OWNER); other
workers that run it stand by, and the one that takes over starts the evidence afresh. Verdicts name the judge
instance that made them (`judge_instance`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from prometheus_client import Counter

from llmwatch.evaluators.canary_judge import ArmStats, Judge, JudgeConfig, default_metrics
from llmwatch.evaluators.metrics import Thresholds
from llmwatch.schemas import CanaryVerdict, EvalScores, TrafficWeights, utcnow
from llmwatch.schemas.registry import MAX_MESSAGE_BYTES
from llmwatch.settings import Settings
from llmwatch.weights_topic import WeightsChange, WeightsReader

from .context import WorkerContext
from .decode import Decoded, decode
from .rollout import ACTIVE

log = logging.getLogger(__name__)
STAGE = "judge"

Outcome = Literal["added", "duplicate", "ignored"]


def judge_config(settings: Settings) -> JudgeConfig:
    """The judge's policy from settings: default metrics, pass margins scaled by `judge_pass_margin_scale`."""
    r, e = settings.rollout, settings.eval
    scale = r.judge_pass_margin_scale
    metrics = [
        m.model_copy(
            update={
                "pass_margin_abs": min(0.99, m.pass_margin_abs * scale),
                "pass_margin_rel": m.pass_margin_rel * scale,
            }
        )
        for m in default_metrics()
    ]
    return JudgeConfig(
        alpha_fail=r.judge_alpha_fail,
        alpha_pass=r.judge_alpha_pass,
        min_canary_n=r.min_sample,
        metrics=metrics,
        thresholds=Thresholds.from_settings(e),
    )


@dataclass
class Rollout:
    """The evidence about one deployment's current canary."""

    baseline: str
    canary: str
    started_at: datetime
    weight: float
    arms: dict[str, ArmStats]
    marks: dict[str, dict[int, int]] = field(default_factory=dict)  # version → source partition → offset
    ids: OrderedDict[str, None] = field(default_factory=OrderedDict)  # scores with no source position
    new: int = 0  # scores added since the last verdict


class JudgeCore:
    """The agent's logic with no Faust in it: weights in, scores in, verdicts out."""

    def __init__(self, judge: Judge, *, skew_s: float = 30.0, every_n: int = 0, id_memory: int = 100_000) -> None:
        self.judge = judge
        self.skew = timedelta(seconds=skew_s)
        self.every_n = every_n
        self.id_memory = id_memory
        self.rollouts: dict[str, Rollout] = {}
        self.seq: dict[str, tuple[int, int]] = {}  # deployment → (epoch, seq) last followed

    def on_deleted(self, deployment: str) -> str | None:
        """The deployment's weights were deleted (a tombstone): nothing of it is judged any more."""
        self.seq.pop(deployment, None)
        current = self.rollouts.pop(deployment, None)
        return None if current is None else f"{deployment}: stopped judging {current.canary} (weights deleted)"

    def on_weights(self, w: TrafficWeights) -> str | None:
        """Follow the controller; returns what changed (for the log), None when nothing did."""
        if (w.epoch, w.seq) <= self.seq.get(w.deployment, (-1, -1)):
            return None  # a replayed or older record
        self.seq[w.deployment] = (w.epoch, w.seq)
        current = self.rollouts.get(w.deployment)
        if w.state not in ACTIVE or w.canary_version is None:
            if current is None:
                return None
            del self.rollouts[w.deployment]
            return f"{w.deployment}: stopped judging {current.canary} ({w.state})"
        weight = w.weights.get(w.canary_version, 0.0)
        if current is not None and (current.baseline, current.canary) == (w.baseline_version, w.canary_version):
            current.weight = weight
            return None
        cfg = self.judge.config
        self.rollouts[w.deployment] = Rollout(
            baseline=w.baseline_version,
            canary=w.canary_version,
            started_at=w.updated_at,
            weight=weight,
            arms={v: cfg.new_arm(w.deployment, v) for v in (w.baseline_version, w.canary_version)},
        )
        return f"{w.deployment}: judging {w.canary_version} against {w.baseline_version} from {w.updated_at}"

    def on_score(self, s: EvalScores) -> Outcome:
        r = self.rollouts.get(s.deployment)
        if r is None or s.model_version not in r.arms or s.ts < r.started_at - self.skew:
            return "ignored"
        if self._seen(r, s):
            return "duplicate"
        r.arms[s.model_version].add(s)
        r.new += 1
        return "added"

    def _seen(self, r: Rollout, s: EvalScores) -> bool:
        """Replays re-send scores: drop those at or below the highest source offset seen per source partition
        (each arm lives on one scores partition, fed in source order), else by event id in a bounded memory."""
        if s.source_partition is not None and s.source_offset is not None:
            marks = r.marks.setdefault(s.model_version, {})
            if s.source_offset <= marks.get(s.source_partition, -1):
                return True
            marks[s.source_partition] = s.source_offset
            return False
        if s.event_id in r.ids:
            return True
        r.ids[s.event_id] = None
        if len(r.ids) > self.id_memory:
            r.ids.popitem(last=False)
        return False

    def reset_evidence(self) -> int:
        """Start every rollout's evidence afresh (this judge lost or took over the scores: what it holds is not
        the whole of what the other judge saw). Valid at any sample size: the next pass only comes later."""
        cfg = self.judge.config
        for deployment, r in self.rollouts.items():
            r.arms = {v: cfg.new_arm(deployment, v) for v in (r.baseline, r.canary)}
            r.marks.clear()
            r.ids.clear()
            r.new = 0
        return len(self.rollouts)

    def due_by_count(self) -> list[str]:
        if self.every_n <= 0:
            return []
        return [d for d, r in self.rollouts.items() if r.new >= self.every_n]

    def pending(self) -> list[str]:
        """Deployments with scores the last verdict did not see."""
        return [d for d, r in self.rollouts.items() if r.new > 0]

    def snapshot(self, deployment: str) -> tuple[ArmStats, ArmStats, float] | None:
        """Copies of (baseline, canary, canary weight) to judge off the event loop; None without new data."""
        r = self.rollouts.get(deployment)
        if r is None or r.new == 0:
            return None
        r.new = 0
        cfg = self.judge.config
        copy = {v: cfg.new_arm(deployment, v).merge(a) for v, a in r.arms.items()}
        return copy[r.baseline], copy[r.canary], r.weight

    def verdict(self, deployment: str, now: datetime) -> CanaryVerdict | None:
        snap = self.snapshot(deployment)
        if snap is None:
            return None
        baseline, canary, weight = snap
        return self.judge.evaluate(baseline, canary, now, canary_weight=weight)


def install(ctx: WorkerContext) -> JudgeCore:
    settings, app = ctx.settings, ctx.app
    core = JudgeCore(
        Judge(judge_config(settings)),
        skew_s=settings.rollout.judge_skew_s,
        every_n=settings.rollout.judge_every_n,
    )
    verdicts = Counter(
        "llmwatch_judge_verdicts_total", "Verdicts the judge emitted", ["result"], registry=ctx.metrics.registry
    )
    scores = Counter(
        "llmwatch_judge_scores_total", "Scores the judge read, by outcome", ["outcome"], registry=ctx.metrics.registry
    )

    def on_weights(change: WeightsChange) -> None:
        what = core.on_deleted(change.deployment) if change.weights is None else core.on_weights(change.weights)
        if what:
            log.info("judge: %s", what)

    follower = WeightsReader(settings, on_weights)
    ctx.exit_stack.callback(follower.cancel)
    lock = asyncio.Lock()

    async def emit(deployment: str) -> None:
        async with lock:  # one verdict at a time, so their timestamps reach the topic in order
            now = utcnow()
            snap = core.snapshot(deployment)
            if snap is None:
                return
            baseline, canary, weight = snap
            v = await asyncio.to_thread(core.judge.evaluate, baseline, canary, now, canary_weight=weight)
            v = v.model_copy(update={"judge_instance": ctx.instance_id or None})
            await ctx.topics["verdicts"].send(key=deployment.encode(), value=v.encode())
        verdicts.labels(result=v.result).inc()
        ctx.metrics.emitted.labels(agent=STAGE).inc()
        log.info(
            "verdict %s for %s %s→%s: %s (canary n=%d, baseline n=%d) %s",
            v.verdict_id,
            deployment,
            v.baseline_version,
            v.canary_version,
            v.result,
            v.canary_n,
            v.baseline_n,
            v.reason[:200],
        )

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **_: Any) -> None:
        # one judge is active (its group gives every scores partition to one worker); whenever that changes, the
        # evidence restarts: a judge that takes over has not seen what the last one saw
        owner = bool(assigned)
        if owner != state["owner"]:
            state["owner"] = owner
            n = core.reset_evidence()
            log.info(
                "judge %s %s; evidence of %d rollouts starts afresh",
                ctx.instance_id,
                "active" if owner else "stands by",
                n,
            )

    state = {"owner": False}

    @app.agent(ctx.topics["scores"], name="llmwatch.judge")
    async def judge(stream: Any) -> None:
        follower.start()
        await follower.caught_up.wait()  # know the current canaries before reading any score
        async for batch in stream.take_events(512, within=0.5):
            ctx.metrics.events.labels(agent=STAGE).inc(len(batch))
            for event in batch:
                result = decode(EvalScores, event.message.value, max_bytes=MAX_MESSAGE_BYTES)
                if not isinstance(result, Decoded):
                    scores.labels(outcome="unreadable").inc()  # the window and sink agents dead-letter it
                    continue
                scores.labels(outcome=core.on_score(result.payload)).inc()
            await emit_all(core.due_by_count())

    async def emit_all(deployments: list[str]) -> None:
        for deployment in deployments:
            try:
                await emit(deployment)
            except Exception:  # the evidence is kept: the next score brings the next look
                log.exception("judge: verdict for %s failed", deployment)

    @app.timer(interval=settings.rollout.judge_interval_s, name="llmwatch.judge.clock")
    async def clock() -> None:
        await emit_all(core.pending())

    return core
