"""The judge agent's logic with no Faust in it: weights in, scores in, verdicts out.

Which canary is current comes from the weights (the controller's output): a new (baseline, canary) pair, or the same
pair started again after a rollback, starts the evidence afresh; a weight change starts a new segment of it (a new
step's strata, evaluators/canary/evidence.py); a promoted or rolled-back rollout stops being judged. Scores older
than the rollout's start (minus `skew_s`) are left out. Replays are dropped by source position (or event id).

The judge agent (streams/judge_agent.py) and the offline API (streams/offline.py) both run this class, so a verdict
computed offline is the one production would have emitted on the same scores at the same times.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from llmwatch.errors import ConfigError
from llmwatch.evaluators.canary import ArmData, Evidence, Judge, JudgeConfig, default_metrics
from llmwatch.evaluators.metrics import Thresholds
from llmwatch.schemas import CanaryVerdict, EvalScores, TrafficWeights
from llmwatch.settings import Settings

from .rollout import ACTIVE

Outcome = Literal["added", "duplicate", "ignored", "settling", "late"]

#: Metrics that need an evaluator (settings.eval.enabled); the others come with every request.
METRIC_EVALUATOR = {
    "toxicity_rate": "toxicity",
    "pii_leak_rate": "pii",
    "injection_success_rate": "injection",
    "hallucination_rate": "hallucination",
}


def judge_config(settings: Settings) -> JudgeConfig:
    """The judge's policy from settings: the default metrics of the evaluators that run, forbidden regressions widened
    by `judge.pass_margin_scale`, `judge.critical` marking the metrics whose missing data blocks promotion."""
    j, e = settings.judge, settings.eval
    known = {m.name for m in default_metrics()}
    unknown = sorted(set(j.critical) - known)
    if unknown:
        raise ConfigError(f"LLMWATCH_JUDGE__CRITICAL names unknown metrics {unknown}; known: {sorted(known)}")
    metrics = [
        m.widened(j.pass_margin_scale).model_copy(update={"critical": m.name in j.critical})
        for m in default_metrics()
        if METRIC_EVALUATOR.get(m.name, "") in ("", *e.enabled)
    ]
    return JudgeConfig(
        alpha_fail=j.alpha_fail,
        alpha_pass=j.alpha_pass,
        alpha_srm=j.alpha_srm,
        min_canary_n=settings.rollout.min_sample,
        metrics=metrics,
        thresholds=Thresholds.from_settings(e),
        steps=settings.rollout.steps,
        stratum_s=j.stratum_s,
        lateness_s=j.lateness_s,
        settle_s=j.settle_s,
        noncritical_grace_s=j.noncritical_grace_s,
    )


@dataclass
class Rollout:
    """The evidence about one deployment's current canary."""

    baseline: str
    canary: str
    started_at: datetime
    evidence: Evidence
    marks: dict[str, dict[int, int]] = field(default_factory=dict)  # version → source partition → offset
    ids: OrderedDict[str, None] = field(default_factory=OrderedDict)  # scores with no source position
    new: int = 0  # scores added since the last verdict

    @property
    def weight(self) -> float:
        return self.evidence.weight


class JudgeCore:
    """Weights in, scores in, verdicts out (see the module doc)."""

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
        """Follow the controller; returns what changed (for the log), None when nothing did. Records are ordered by
        (epoch, seq): a controller that took over restates each rollout under its epoch (llmwatch/weights_topic.py)."""
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
            if abs(weight - current.weight) < 1e-12:
                return None
            current.evidence.set_weight(weight, w.updated_at)
            return f"{w.deployment}: {w.canary_version} now at {weight:.0%}: a new segment of evidence"
        self.rollouts[w.deployment] = Rollout(
            baseline=w.baseline_version,
            canary=w.canary_version,
            started_at=w.updated_at,
            evidence=self.judge.new_evidence(
                deployment=w.deployment,
                baseline=w.baseline_version,
                canary=w.canary_version,
                started_at=w.updated_at,
                weight=weight,
            ),
        )
        return f"{w.deployment}: judging {w.canary_version} against {w.baseline_version} from {w.updated_at}"

    def on_score(self, s: EvalScores) -> Outcome:
        r = self.rollouts.get(s.deployment)
        if r is None or s.model_version not in (r.baseline, r.canary) or s.ts < r.started_at - self.skew:
            return "ignored"
        if self._seen(r, s):
            return "duplicate"
        outcome = r.evidence.add(s)
        if outcome == "added":
            r.new += 1
        return outcome

    def on_data(self, deployment: str, version: str, ts: datetime, data: ArmData) -> Outcome:
        """Pre-aggregated requests of one arm (offline runs): no replay dedup, the feeder owns it."""
        r = self.rollouts.get(deployment)
        if r is None or version not in (r.baseline, r.canary) or ts < r.started_at - self.skew:
            return "ignored"
        outcome = r.evidence.add_data(version, ts, data)
        if outcome == "added":
            r.new += max(int(data.requests), 1)
        return outcome

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
        """Start every rollout's evidence of its current step afresh (this judge lost or took over the scores: what it
        holds is not the whole of what the other judge saw). The scores of the step are read again from the last
        committed offset; earlier steps' are left out. Valid at any sample size: the next pass only comes later."""
        for deployment, r in self.rollouts.items():
            step_start = r.evidence.segments[-1].start
            r.evidence = self.judge.new_evidence(
                deployment=deployment, baseline=r.baseline, canary=r.canary, started_at=step_start, weight=r.weight
            )
            r.marks.clear()
            r.ids.clear()
            r.new = 0
        return len(self.rollouts)

    def due_by_count(self) -> list[str]:
        if self.every_n <= 0:
            return []
        return [d for d, r in self.rollouts.items() if r.new >= self.every_n]

    def pending(self) -> list[str]:
        """Deployments with scores the last verdict did not see, or not yet judged (in strata still open)."""
        return [d for d, r in self.rollouts.items() if r.new > 0 or r.evidence.open]

    def verdict(self, deployment: str, now: datetime) -> CanaryVerdict | None:
        """Close the strata that ended by `now` and judge; None when no score arrived and no stratum closed since the
        last verdict (with no traffic there is no verdict, and the controller's silence timers hold, then roll back).
        A burst of traffic followed by silence is judged once its strata close, not only while scores keep coming."""
        r = self.rollouts.get(deployment)
        if r is None or (r.new == 0 and not r.evidence.open):
            return None
        closed = r.evidence.close(now)
        if r.new == 0 and closed == 0:
            return None
        r.new = 0
        return self.judge.evaluate(r.evidence, now)


def core_from_settings(settings: Settings, config: JudgeConfig | None = None) -> JudgeCore:
    return JudgeCore(
        Judge(config or judge_config(settings)), skew_s=settings.judge.skew_s, every_n=settings.judge.every_n
    )
