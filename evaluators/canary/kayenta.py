"""A Kayenta-style canary judge: the comparison to beat, as automated canary analysis runs it in production.

Following Kayenta's NetflixACAJudge (spinnaker/kayenta, kayenta-judge): each metric is reported as one value per
1-minute point per arm (a rate, or a latency quantile of that minute); at the end of each fixed interval (10 points
by default, one interval per rollout step) every metric's canary points are compared with the baseline's by the
Mann–Whitney classifier: the confidence interval (98 %) of the location shift, from the normal approximation of the
Wilcoxon rank-sum statistic with tie and continuity corrections (as R's `wilcox.test(conf.int=TRUE)` computes it),
classifies the metric High when its lower end exceeds `tolerance` (0.25) × |Hodges–Lehmann estimate| (Low
symmetrically for metrics judged both ways); identical samples pass; a metric with no points in an arm is NO_DATA.
As Argo Rollouts and Flagger users configure it, every metric is critical (one check each): any High fails the
interval, and the rollout is rolled back after `failure_limit` failed intervals; an interval that passes advances
one step. Written from the published algorithm; nothing of Kayenta's code is reused.

`KayentaCore` has the judge agent's interface (weights in, scores in, verdicts out), so the offline driver
(streams/offline.py) runs it with the same controller as the production judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from ddsketch.mapping import LogarithmicMapping
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import norm, rankdata

from llmwatch.schemas import CanaryVerdict, EvalScores, MetricVerdict, TrafficWeights

from ..metrics import Thresholds
from .arms import ArmData, ArmStats

NAME = "kayenta-style@1"
ACTIVE = ("progressing", "paused", "holding")

#: (metric, source, kind, quantile, direction): what each point reports.
POINT_METRICS: tuple[tuple[str, str, str, float | None, str], ...] = (
    ("error_rate", "errors", "rate", None, "increase"),
    ("toxicity_rate", "toxicity", "rate", None, "increase"),
    ("pii_leak_rate", "pii_leak", "rate", None, "increase"),
    ("injection_success_rate", "injection_success", "rate", None, "increase"),
    ("hallucination_rate", "hallucination", "rate", None, "increase"),
    *((name, name, "quantile", q, "increase") for name in ("ttft", "tpot", "e2e") for q in (0.5, 0.95, 0.99)),
    ("drift", "output_tokens", "quantile", 0.5, "either"),
)


class KayentaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    point_s: float = Field(60.0, gt=0, description="One data point per arm per this many seconds.")
    interval_points: int = Field(10, ge=3, description="Points per analysis interval (one interval per step).")
    confidence: float = Field(0.98, gt=0, lt=1, description="NetflixACAJudge's Mann–Whitney confidence level.")
    tolerance: float = Field(0.25, ge=0, description="High when the CI's lower end > tolerance × |estimate|.")
    failure_limit: int = Field(1, ge=1, description="Failed intervals before the rollback.")
    lateness_s: float = Field(10.0, ge=0, description="An interval is judged this long after it ends.")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    sketch_accuracy: float = Field(0.01, gt=0, lt=1)

    @property
    def interval_s(self) -> float:
        return self.point_s * self.interval_points


# ------------------------------------------------------------------------------------------ classifier
def _wilcoxon_z(shifts: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Standardised rank-sum statistic of x − mu against y for every mu in `shifts`, with R's continuity and tie
    corrections (`wilcox.test`'s normal approximation), all at once."""
    nx, ny = x.size, y.size
    n = nx + ny
    pooled = np.concatenate([x[None, :] - shifts[:, None], np.broadcast_to(y, (shifts.size, ny))], axis=1)
    ranks = rankdata(pooled, axis=1)
    dz = ranks[:, :nx].sum(axis=1) - nx * (nx + 1) / 2 - nx * ny / 2
    same = (pooled[:, :, None] == pooled[:, None, :]).sum(axis=2)  # each value's tie group size
    ties = (same.astype(np.float64) ** 2 - 1).sum(axis=1)  # Σ over groups of t³ − t
    sigma = np.sqrt(nx * ny / 12 * ((n + 1) - ties / (n * (n - 1))))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sigma > 0, (dz - 0.5 * np.sign(dz)) / np.where(sigma > 0, sigma, 1.0), 0.0)


def mann_whitney(x: np.ndarray, y: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """(lower, upper, estimate) of the location shift x − y: where the standardised statistic crosses ∓z and 0.
    The statistic is a decreasing step function of the shift, so each crossing is at a pairwise difference."""
    z = float(norm.ppf(0.5 + confidence / 2))
    diffs = np.unique((x[:, None] - y[None, :]).ravel())
    values = _wilcoxon_z(diffs, x, y)

    def root(level: float) -> float:
        below = np.flatnonzero(values - level <= 0)
        return float(diffs[below[0]]) if below.size else float(diffs[-1])

    return root(z), root(-z), root(0.0)


def classify_points(canary: np.ndarray, baseline: np.ndarray, direction: str, cfg: KayentaConfig) -> str:
    """PASS / HIGH / LOW / NO_DATA for one metric's points (NaNs removed, as Kayenta's `remove` strategy)."""
    c, b = canary[~np.isnan(canary)], baseline[~np.isnan(baseline)]
    if c.size == 0 or b.size == 0:
        return "NO_DATA"
    if np.array_equal(np.sort(c), np.sort(b)) or np.unique(np.concatenate([c, b])).size == 1:
        return "PASS"
    if np.unique(c).size == 1 and np.unique(b).size == 1:  # Kayenta adds tiny noise to break a total tie
        rng = np.random.default_rng(c.size * 7919 + b.size)
        c = c + rng.normal(0, abs(c[0]) * 1e-5 + 1e-12, c.size)
        b = b + rng.normal(0, abs(b[0]) * 1e-5 + 1e-12, b.size)
    lower, upper, estimate = mann_whitney(c, b, cfg.confidence)
    bound = cfg.tolerance * abs(estimate)
    mean_ratio = float(c.mean() / b.mean()) if b.mean() != 0 else math.nan
    if direction in ("increase", "either") and lower > bound and (math.isnan(mean_ratio) or mean_ratio >= 1.0):
        return "HIGH"
    if direction in ("decrease", "either") and upper < -bound and (math.isnan(mean_ratio) or mean_ratio <= 1.0):
        return "LOW"
    return "PASS"


def point_values(data: ArmData, mapping: LogarithmicMapping) -> dict[str, float]:
    """One point's value per metric (NaN where the minute has no data for it)."""
    out: dict[str, float] = {}
    for name, source, kind, q, _ in POINT_METRICS:
        key = name if q is None else f"{name}_p{100 * q:g}"
        if kind == "rate":
            n, k = data.rate(source)
            out[key] = k / n if n > 0 else math.nan
        else:
            v = data.hist(source).quantile(q or 0.5, mapping)
            out[key] = math.nan if v is None else v
    return out


# ------------------------------------------------------------------------------------------------ core
@dataclass
class _Rollout:
    baseline: str
    canary: str
    started_at: datetime
    weight: float
    step_start: datetime
    minutes: dict[int, dict[str, ArmData]] = field(default_factory=dict)
    arms: dict[int, dict[str, ArmStats]] = field(default_factory=dict)
    judged: int = 0  # intervals of the current step already judged
    failures: int = 0
    new: int = 0


class KayentaCore:
    """Weights in, scores in, one verdict per completed interval out (the JudgeCore interface)."""

    name = NAME

    def __init__(self, config: KayentaConfig | None = None) -> None:
        self.config = config or KayentaConfig()
        self.mapping = LogarithmicMapping(self.config.sketch_accuracy)
        self.rollouts: dict[str, _Rollout] = {}
        self.seq: dict[str, int] = {}

    def on_weights(self, w: TrafficWeights) -> str | None:
        if w.seq <= self.seq.get(w.deployment, -1):
            return None
        self.seq[w.deployment] = w.seq
        current = self.rollouts.get(w.deployment)
        if w.state not in ACTIVE or w.canary_version is None:
            self.rollouts.pop(w.deployment, None)
            return None
        weight = w.weights.get(w.canary_version, 0.0)
        if current is not None and (current.baseline, current.canary) == (w.baseline_version, w.canary_version):
            if abs(weight - current.weight) > 1e-12:  # a new step: a new interval from here
                current.weight, current.step_start = weight, w.updated_at
                current.minutes, current.arms, current.judged = {}, {}, 0
            return None
        self.rollouts[w.deployment] = _Rollout(w.baseline_version, w.canary_version, w.updated_at, weight, w.updated_at)
        return None

    def _minute(self, r: _Rollout, ts: datetime) -> int | None:
        offset = (ts - r.step_start).total_seconds()
        return None if offset < 0 else int(offset // self.config.point_s)

    def on_score(self, s: EvalScores) -> str:
        r = self.rollouts.get(s.deployment)
        if r is None or s.model_version not in (r.baseline, r.canary):
            return "ignored"
        minute = self._minute(r, s.ts)
        if minute is None:
            return "ignored"
        arms = r.arms.setdefault(minute, {})
        arm = arms.get(s.model_version)
        if arm is None:
            arm = arms[s.model_version] = ArmStats(
                model_version=s.model_version,
                thresholds=self.config.thresholds,
                sketch_accuracy=self.config.sketch_accuracy,
            )
        arm.add(s)
        r.new += 1
        return "added"

    def on_data(self, deployment: str, version: str, ts: datetime, data: ArmData) -> str:
        r = self.rollouts.get(deployment)
        if r is None or version not in (r.baseline, r.canary):
            return "ignored"
        minute = self._minute(r, ts)
        if minute is None:
            return "ignored"
        slot = r.minutes.setdefault(minute, {})
        if version in slot:
            slot[version].merge(data)
        else:
            slot[version] = data.copy()
        r.new += 1
        return "added"

    def pending(self) -> list[str]:
        return [d for d, r in self.rollouts.items() if r.new > 0]

    def verdict(self, deployment: str, now: datetime) -> CanaryVerdict | None:
        """A verdict once the step's next interval has ended (and `lateness_s` passed); None before."""
        r = self.rollouts.get(deployment)
        if r is None:
            return None
        cfg = self.config
        end = r.step_start + timedelta(seconds=(r.judged + 1) * cfg.interval_s)
        if now < end + timedelta(seconds=cfg.lateness_s):
            return None
        first = r.judged * cfg.interval_points
        r.judged += 1
        points: dict[str, list[dict[str, float]]] = {r.baseline: [], r.canary: []}
        requests = {r.baseline: 0.0, r.canary: 0.0}
        for minute in range(first, first + cfg.interval_points):
            for version in (r.baseline, r.canary):
                data = ArmData()
                if version in r.minutes.get(minute, {}):
                    data.merge(r.minutes[minute][version])
                arm = r.arms.get(minute, {}).get(version)
                if arm is not None:
                    data.merge(ArmData.from_aggregate(arm.agg))
                requests[version] += data.requests
                points[version].append(point_values(data, self.mapping))
        labels: list[tuple[str, str, float | None]] = []
        for name, _, _, q, direction in POINT_METRICS:
            key = name if q is None else f"{name}_p{100 * q:g}"
            can = np.array([p[key] for p in points[r.canary]])
            base = np.array([p[key] for p in points[r.baseline]])
            labels.append((name, classify_points(can, base, direction, cfg), q))
        high = [f"{n}" + (f" p{100 * q:g}" if q is not None else "") for n, lab, q in labels if lab in ("HIGH", "LOW")]
        nodata = sum(lab == "NO_DATA" for _, lab, _ in labels)
        failed = bool(high) or nodata * 2 >= len(labels)
        if failed:
            r.failures += 1
        result = "fail" if failed and r.failures >= cfg.failure_limit else ("inconclusive" if failed else "pass")
        reason = (
            f"interval {r.judged} at {r.weight:.0%}: High: {', '.join(high)}"
            if high
            else (f"interval {r.judged}: {nodata} of {len(labels)} metrics NO_DATA" if failed else "all metrics Pass")
        )
        return CanaryVerdict(
            ts=now,
            deployment=deployment,
            baseline_version=r.baseline,
            canary_version=r.canary,
            judge=self.name,
            result=result,  # type: ignore[arg-type]
            reason=reason,
            metrics=[
                MetricVerdict(
                    metric=n,
                    quantile=q,
                    label=lab,  # type: ignore[arg-type]
                    result={"HIGH": "fail", "LOW": "fail", "PASS": "pass"}.get(lab, "inconclusive"),  # type: ignore[arg-type]
                    critical=True,
                )
                for n, lab, q in labels
            ],
            window_start=end - timedelta(seconds=cfg.interval_s),
            window_end=end,
            baseline_n=int(requests[r.baseline]),
            canary_n=int(requests[r.canary]),
            canary_weight=r.weight,
        )
