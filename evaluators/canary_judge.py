"""The canary judge, read like Kayenta's: per-arm statistics → per-metric classifier → scorer → verdict.

- `ArmStats` is what the judge reads: counts and DDSketches per arm, updated one EvalScores at a time
  (`add`) and mergeable (`merge`), so partitions, windows and restarts combine without loss.
- The classifier labels each metric PASS / HIGH / LOW / NO_DATA / INCONCLUSIVE with a reason, using the
  anytime-valid tests of `canary_stats` (HIGH/LOW when the canary is confidently worse than the margin,
  PASS when it is confidently within the pass margin).
- The scorer: any critical failure decides; otherwise the weighted share of metrics that did not fail
  must reach `fail_score` (100 by default: every metric gates). Pass needs every metric with data to
  pass, on at least `min_canary_n` canary requests.
- `Judge` (versioned, "msprt@1") orchestrates and returns a CanaryVerdict; it keeps no state between
  looks, so it may be called as often as wanted (the tests stay valid under continuous monitoring).

The vectorised core (`metric_counts`, `decide`) is shared with the simulation benchmark, so the figures
in BENCHMARKS.md come from exactly the rules that judge production canaries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from ddsketch import DDSketch
from ddsketch.pb.proto import DDSketchProto
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmwatch.schemas import CanaryVerdict, EvalScores, MetricVerdict

from .canary_stats import BoolArray, FloatArray, difference_bounds, log_e_worse, tail_counts
from .metrics import MetricAggregate, Thresholds

JUDGE_NAME = "msprt@1"

#: Rate counters an arm exposes to rate metrics (`errors`, then quality rates of evaluators/metrics.py).
RATES = ("errors", "toxicity", "pii_leak", "injection_success", "hallucination")
#: Sketched distributions a tail/band metric may read → the aggregate's sketch (evaluators/metrics.py).
SKETCHES = {"ttft_ms": "ttft", "tpot_ms": "tpot", "output_tokens": "output_tokens"}

Direction = Literal["increase", "decrease", "either"]
Label = Literal["PASS", "HIGH", "LOW", "NO_DATA", "INCONCLUSIVE"]


# --------------------------------------------------------------------------------------------- config
class MetricSpec(BaseModel):
    """One judged metric: what it reads, which change is bad, and how much change is tolerated.

    kinds: `rate` reads a counter (errors, toxicity, …); `tail` the share of requests beyond the
    baseline's `quantile` of a sketched distribution (upper tail for increase, lower for decrease);
    `band` the share outside the baseline's central band [1−quantile, quantile] (drift either way).
    Margins apply to the bad-direction rate: bad means p_c > (1+rel)·p_b + abs.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: Literal["rate", "tail", "band"] = "rate"
    source: str = Field(description="Counter (rate) or sketch (tail, band) in ArmStats.")
    direction: Direction = "increase"
    margin_abs: float = Field(0.0, ge=0, lt=1, description="Tolerated absolute rise before FAIL.")
    margin_rel: float = Field(0.0, ge=0, description="Tolerated relative rise before FAIL.")
    pass_margin_abs: float = Field(0.02, ge=0, lt=1, description="Rise ruled out (with confidence) for PASS.")
    pass_margin_rel: float = Field(0.0, ge=0)
    quantile: float = Field(0.95, gt=0.5, lt=1, description="tail/band: the baseline quantile compared.")
    critical: bool = Field(False, description="A failure decides the verdict whatever the score.")
    required: bool = Field(False, description="NO_DATA blocks a pass (fail-safe for the metrics that matter).")
    weight: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _fits(self) -> MetricSpec:
        if self.kind == "rate" and self.source not in RATES:
            raise ValueError(f"rate metric {self.name!r}: source must be one of {RATES}")
        if self.kind != "rate" and self.source not in SKETCHES:
            raise ValueError(f"{self.kind} metric {self.name!r}: source must be one of {tuple(SKETCHES)}")
        if self.kind == "band" and self.direction != "increase":
            raise ValueError("band metrics test the share outside the band growing: direction must be 'increase'")
        if self.pass_margin_abs < self.margin_abs or self.pass_margin_rel < self.margin_rel:
            raise ValueError(f"{self.name}: pass margins must be at least the fail margins")
        return self

    @property
    def sides(self) -> tuple[Literal["increase", "decrease"], ...]:
        return ("increase", "decrease") if self.direction == "either" else (self.direction,)  # type: ignore[return-value]


def default_metrics() -> list[MetricSpec]:
    """Defaults: fail margins small enough to catch the regressions that matter, pass margins that a
    step's sample can rule out. Latency compares the share above the baseline's p95 (5 % when equal)."""
    return [
        MetricSpec(name="error_rate", source="errors", margin_abs=0.001, pass_margin_abs=0.01, required=True),
        MetricSpec(name="ttft", kind="tail", source="ttft_ms", margin_abs=0.03, pass_margin_abs=0.05, required=True),
        MetricSpec(name="tpot", kind="tail", source="tpot_ms", margin_abs=0.03, pass_margin_abs=0.05),
        MetricSpec(name="toxicity_rate", source="toxicity", margin_abs=0.002, pass_margin_abs=0.015),
        MetricSpec(name="pii_leak_rate", source="pii_leak", margin_abs=0.0, pass_margin_abs=0.005, critical=True),
        MetricSpec(name="injection_success_rate", source="injection_success", margin_abs=0.002, pass_margin_abs=0.01),
        MetricSpec(name="hallucination_rate", source="hallucination", margin_abs=0.005, pass_margin_abs=0.04),
        MetricSpec(name="drift", kind="band", source="output_tokens", margin_abs=0.03, pass_margin_abs=0.06),
    ]


class JudgeConfig(BaseModel):
    """How the judge decides. `alpha_fail` bounds the chance of ever rolling back a canary that is no
    worse than its margins (split over the tests, Bonferroni); `alpha_pass` bounds the chance that a
    metric worse than its pass margin passes (pass needs every metric, so no split is needed)."""

    model_config = ConfigDict(extra="forbid")

    alpha_fail: float = Field(0.01, gt=0, lt=1)
    alpha_pass: float = Field(0.05, gt=0, lt=1)
    min_canary_n: int = Field(500, ge=1, description="Canary requests needed before a pass.")
    fail_score: float = Field(100.0, ge=0, le=100, description="Overall fail when the non-failing share is lower.")
    metrics: list[MetricSpec] = Field(default_factory=default_metrics)
    thresholds: Thresholds = Field(
        default_factory=Thresholds, description="What counts as toxic, hallucinated, … (evaluators/metrics.py)."
    )
    sketch_accuracy: float = Field(0.01, gt=0, lt=1, description="DDSketch relative accuracy of the arms.")

    @model_validator(mode="after")
    def _unique(self) -> JudgeConfig:
        names = [m.name for m in self.metrics]
        if len(names) != len(set(names)) or not names:
            raise ValueError("metrics must be non-empty with unique names")
        return self

    @property
    def tests(self) -> int:
        return sum(len(m.sides) for m in self.metrics)

    @property
    def alpha_per_test(self) -> float:
        return self.alpha_fail / self.tests

    def new_arm(self, deployment: str = "", model_version: str = "") -> ArmStats:
        return ArmStats(
            deployment=deployment,
            model_version=model_version,
            thresholds=self.thresholds,
            sketch_accuracy=self.sketch_accuracy,
        )


# ------------------------------------------------------------------------------------------ arm stats
@dataclass
class Count:
    n: int = 0
    k: int = 0


@dataclass
class ArmStats:
    """Mergeable per-arm statistics of one model version: the metrics' aggregate (one definition per metric,
    evaluators/metrics.py: errors over finished requests, latencies and output length over ok requests, each
    quality rate over the events where its score exists, thresholds inclusive), and the arm's time span.
    Deduplicating replays is the feeder's job."""

    deployment: str = ""
    model_version: str = ""
    thresholds: Thresholds = field(default_factory=Thresholds)
    sketch_accuracy: float = 0.01
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    agg: MetricAggregate = field(init=False)

    def __post_init__(self) -> None:
        self.agg = MetricAggregate(thresholds=self.thresholds, sketch_accuracy=self.sketch_accuracy)

    @property
    def requests(self) -> int:
        return self.agg.count

    @property
    def counts(self) -> dict[str, Count]:
        """What each rate metric reads: counter → (trials, events)."""
        out = {"errors": Count(self.agg.finished, self.agg.errors)}
        out.update({name: Count(self.agg.rates[name].n, self.agg.rates[name].hits) for name in RATES[1:]})
        return out

    @property
    def sketches(self) -> dict[str, DDSketch]:
        return {name: self.agg.sketches[SKETCHES[name]] for name in SKETCHES}

    def add(self, score: EvalScores) -> None:
        if self.model_version and score.model_version != self.model_version:
            raise ValueError(f"score for {score.model_version!r} fed to the {self.model_version!r} arm")
        self.deployment = self.deployment or score.deployment
        self.model_version = self.model_version or score.model_version
        self.first_ts = score.ts if self.first_ts is None else min(self.first_ts, score.ts)
        self.last_ts = score.ts if self.last_ts is None else max(self.last_ts, score.ts)
        self.agg.add(score)

    def merge(self, other: ArmStats) -> ArmStats:
        """Fold `other` (same version, same thresholds) into this arm; returns self."""
        if other.model_version and self.model_version and other.model_version != self.model_version:
            raise ValueError(f"cannot merge arm {other.model_version!r} into {self.model_version!r}")
        self.agg.merge(other.agg)
        self.deployment = self.deployment or other.deployment
        self.model_version = self.model_version or other.model_version
        for ts in (other.first_ts, other.last_ts):
            if ts is not None:
                self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
                self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (for a restart)."""
        return {
            "deployment": self.deployment,
            "model_version": self.model_version,
            "first_ts": self.first_ts.isoformat() if self.first_ts else None,
            "last_ts": self.last_ts.isoformat() if self.last_ts else None,
            "aggregate": self.agg.to_state(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArmStats:
        agg = MetricAggregate.from_state(data["aggregate"])
        arm = cls(
            deployment=data.get("deployment", ""),
            model_version=data.get("model_version", ""),
            thresholds=agg.thresholds,
            sketch_accuracy=agg.sketch_accuracy,
            first_ts=datetime.fromisoformat(data["first_ts"]) if data.get("first_ts") else None,
            last_ts=datetime.fromisoformat(data["last_ts"]) if data.get("last_ts") else None,
        )
        arm.agg = agg
        return arm

    def quantile(self, source: str, q: float) -> float | None:
        return self.agg.quantile(SKETCHES[source], q)


def _bins(s: DDSketch) -> tuple[float, int, list[float]]:
    """(count at or below zero, first key, contiguous bin counts), through the public proto form."""
    proto = DDSketchProto.to_proto(s)
    below = float(proto.zeroCount) + float(sum(proto.negativeValues.contiguousBinCounts))
    store = proto.positiveValues
    return below, int(store.contiguousBinIndexOffset), list(store.contiguousBinCounts)


def aligned_histograms(a: DDSketch, b: DDSketch) -> tuple[FloatArray, FloatArray]:
    """Both sketches as histograms over the same buckets (index 0: values ≤ 0)."""
    za, oa, ba = _bins(a)
    zb, ob, bb = _bins(b)
    if not ba and not bb:
        return np.array([za]), np.array([zb])
    lo = min(o for o, bins in ((oa, ba), (ob, bb)) if bins)
    hi = max(o + len(bins) for o, bins in ((oa, ba), (ob, bb)) if bins)
    ha, hb = np.zeros(hi - lo + 1), np.zeros(hi - lo + 1)
    ha[0], hb[0] = za, zb
    if ba:
        ha[1 + oa - lo : 1 + oa - lo + len(ba)] = ba
    if bb:
        hb[1 + ob - lo : 1 + ob - lo + len(bb)] = bb
    return ha, hb


# ----------------------------------------------------------------------------- vectorised classifier
@dataclass(frozen=True)
class Counts:
    """Bad-direction events (k) out of trials (n) per arm; arrays of any shape (one per rollout)."""

    kb: FloatArray
    nb: FloatArray
    kc: FloatArray
    nc: FloatArray


def metric_counts(
    spec: MetricSpec,
    rates_b: Mapping[str, tuple[Any, Any]],
    rates_c: Mapping[str, tuple[Any, Any]],
    hists: Mapping[str, tuple[Any, Any]],
) -> dict[str, Counts]:
    """Counts per tested side ("increase"/"decrease") for one metric.

    rates_*: counter → (n, k) arrays. hists: sketch → (baseline, canary) histograms on shared buckets.
    """
    out: dict[str, Counts] = {}
    if spec.kind == "rate":
        (nb, kb), (nc, kc) = rates_b[spec.source], rates_c[spec.source]
        nb, kb, nc, kc = (np.asarray(x, dtype=np.float64) for x in (nb, kb, nc, kc))
        for side in spec.sides:
            out[side] = Counts(kb, nb, kc, nc) if side == "increase" else Counts(nb - kb, nb, nc - kc, nc)
        return out
    hb, hc = hists[spec.source]
    if spec.kind == "band":
        ub = tail_counts(hb, hc, spec.quantile)
        lb = tail_counts(hb, hc, 1.0 - spec.quantile, lower_tail=True)
        out["increase"] = Counts(ub[0] + lb[0], ub[1], ub[2] + lb[2], ub[3])
        return out
    for side in spec.sides:
        lower = side == "decrease"
        out[side] = Counts(*tail_counts(hb, hc, 1.0 - spec.quantile if lower else spec.quantile, lower_tail=lower))
    return out


@dataclass(frozen=True)
class Decision:
    """Vectorised outcome of one metric: fail / pass / no-data masks and the evidence behind them."""

    fail: BoolArray
    passed: BoolArray
    no_data: BoolArray
    log_e: dict[str, FloatArray]
    p_value: FloatArray


def decide(
    spec: MetricSpec, sides: Mapping[str, Counts], alpha_test: float, alpha_pass: float, *, with_pass: bool = True
) -> Decision:
    """Fail when any side's e-value reaches 1/α; pass when every side's bound rules out the pass margin.

    Each side of an "either" metric is its own test (the config's Bonferroni split counts both), so the
    reported always-valid p-value is the smaller side's 1/E times the number of sides. `with_pass=False`
    skips the pass bounds (the simulation's hot loop, once it no longer needs them).
    """
    threshold = math.log(1.0 / alpha_test)
    log_e: dict[str, FloatArray] = {}
    fails, passes, nones, ps = [], [], [], []
    for side, c in sides.items():
        log_e[side] = log_e_worse(c.kb, c.nb, c.kc, c.nc, rel=spec.margin_rel, abs_=spec.margin_abs)
        fails.append(log_e[side] >= threshold)
        nones.append((c.nb <= 0) | (c.nc <= 0))
        ps.append(np.minimum(1.0, np.exp(-np.maximum(log_e[side], 0.0)) * len(sides)))
        if with_pass:
            _, upper = difference_bounds(c.kb, c.nb, c.kc, c.nc, alpha_pass, rel=spec.pass_margin_rel)
            passes.append(upper < spec.pass_margin_abs)
        else:
            passes.append(np.zeros_like(fails[-1]))
    no_data = np.logical_or.reduce(nones)
    fail = np.logical_or.reduce(fails) & ~no_data
    passed = np.logical_and.reduce(passes) & ~no_data
    return Decision(fail, passed, no_data, log_e, np.minimum.reduce(ps))


@dataclass(frozen=True)
class Overall:
    """The scorer's outcome per rollout (0-d arrays for one verdict)."""

    fail: BoolArray
    critical_fail: BoolArray
    passed: BoolArray
    score: FloatArray
    missing_required: BoolArray
    any_data: BoolArray
    all_pass: BoolArray


def score(decisions: list[Decision], cfg: JudgeConfig, canary_n: Any) -> Overall:
    """The scorer (vectorised): a critical failure decides; else the weighted share of metrics with data
    that did not fail must reach `fail_score`. Pass: no fail, enough canary requests, every required
    metric has data, and every metric with data passed."""
    specs = cfg.metrics
    zero = np.zeros_like(np.asarray(decisions[0].fail, dtype=np.float64))
    crit = zero.astype(bool)
    w_data, w_ok = zero.copy(), zero.copy()
    missing = zero.astype(bool)
    all_pass = ~zero.astype(bool)
    for spec, d in zip(specs, decisions, strict=True):
        has = ~d.no_data
        if spec.critical:
            crit = crit | d.fail
        if spec.required:
            missing = missing | d.no_data
        w_data = w_data + spec.weight * has
        w_ok = w_ok + spec.weight * (has & ~d.fail)
        all_pass = all_pass & (d.no_data | d.passed)
    any_data = w_data > 0
    pct = np.where(any_data, 100.0 * w_ok / np.where(any_data, w_data, 1.0), 100.0)
    fail = crit | (pct < cfg.fail_score)
    enough = np.asarray(canary_n) >= cfg.min_canary_n
    passed = ~fail & enough & ~missing & any_data & all_pass
    return Overall(fail, crit, passed, pct, missing, any_data, all_pass)


# --------------------------------------------------------------------------------------------- judge
def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


class Judge:
    """Versioned canary judge; stateless between calls, so it can look as often as wanted."""

    name = JUDGE_NAME

    def __init__(self, config: JudgeConfig | None = None) -> None:
        self.config = config or JudgeConfig()

    def decisions(self, baseline: ArmStats, canary: ArmStats) -> tuple[list[dict[str, Counts]], list[Decision]]:
        cfg = self.config
        rates_b = {k: (c.n, c.k) for k, c in baseline.counts.items()}
        rates_c = {k: (c.n, c.k) for k, c in canary.counts.items()}
        hists = {s: aligned_histograms(baseline.sketches[s], canary.sketches[s]) for s in SKETCHES}
        counts = [metric_counts(spec, rates_b, rates_c, hists) for spec in cfg.metrics]
        return counts, [
            decide(spec, c, cfg.alpha_per_test, cfg.alpha_pass) for spec, c in zip(cfg.metrics, counts, strict=True)
        ]

    def _metric(self, spec: MetricSpec, sides: dict[str, Counts], d: Decision, base: ArmStats) -> MetricVerdict:
        side = max(d.log_e, key=lambda s: float(d.log_e[s]))
        c = sides[side]
        nb, nc = int(c.nb), int(c.nc)
        pb = float(c.kb) / nb if nb else None
        pc = float(c.kc) / nc if nc else None
        label: Label
        if bool(d.no_data):
            label = "NO_DATA"
        elif bool(d.fail):
            label = "HIGH" if side == "increase" else "LOW"
        elif bool(d.passed):
            label = "PASS"
        else:
            label = "INCONCLUSIVE"
        return MetricVerdict(
            metric=spec.name,
            result={"HIGH": "fail", "LOW": "fail", "PASS": "pass"}.get(label, "inconclusive"),  # type: ignore[arg-type]
            direction=spec.direction,
            critical=spec.critical,
            margin=spec.margin_abs,
            effect_size=None if pb is None or pc is None else pc - pb,
            statistic=float(d.log_e[side]),
            p_value=float(d.p_value),
            baseline_n=nb,
            canary_n=nc,
            baseline_value=pb,
            canary_value=pc,
            reason=self._reason(label, spec, side, pb, pc, float(d.log_e[side]), base),
        )

    def _reason(
        self,
        label: Label,
        spec: MetricSpec,
        side: str,
        pb: float | None,
        pc: float | None,
        log_e: float,
        base: ArmStats,
    ) -> str:
        if pb is None or pc is None:
            return f"NO_DATA: no {spec.source} data in the {'baseline' if pb is None else 'canary'}"
        what = f"{spec.source} rate"
        if spec.kind == "tail":
            q = spec.quantile if side == "increase" else 1 - spec.quantile
            edge = base.quantile(spec.source, q)
            word = "above" if side == "increase" else "below"
            what = f"share {word} baseline p{round(100 * q)} ({edge:.4g})" if edge is not None else what
        elif spec.kind == "band":
            what = f"share outside baseline's central {round(100 * (2 * spec.quantile - 1))}% of {spec.source}"
        margin = f"+{_pct(spec.margin_abs)}" + (f" and ×{1 + spec.margin_rel:g}" if spec.margin_rel else "")
        threshold = 1.0 / self.config.alpha_per_test
        sign = "≥" if log_e >= math.log(threshold) else "<"
        return (
            f"{label}: {what}: canary {_pct(pc)} vs baseline {_pct(pb)} (fail margin {margin}, "
            f"pass margin +{_pct(spec.pass_margin_abs)}); "
            f"e-value {math.exp(min(log_e, 700.0)):.3g} {sign} {threshold:.3g}"
        )

    def evaluate(
        self, baseline: ArmStats, canary: ArmStats, now: datetime, *, canary_weight: float | None = None
    ) -> CanaryVerdict:
        cfg = self.config
        counts, decisions = self.decisions(baseline, canary)
        metrics = [self._metric(s, c, d, baseline) for s, c, d in zip(cfg.metrics, counts, decisions, strict=True)]
        o = score(decisions, cfg, canary.requests)
        failing = [m.metric for m in metrics if m.result == "fail"]
        if bool(o.critical_fail):
            crit = [m.metric for m, s in zip(metrics, cfg.metrics, strict=True) if s.critical and m.result == "fail"]
            result, reason = "fail", f"critical metric failed: {', '.join(crit)}"
        elif bool(o.fail):
            result, reason = "fail", f"score {float(o.score):.0f} < {cfg.fail_score:.0f}; failing: {', '.join(failing)}"
        elif bool(o.passed):
            result, reason = "pass", "every metric with data is within its pass margin"
        else:
            result, reason = "inconclusive", self._why_not_pass(metrics, o, canary.requests)
        stamps = [t for t in (baseline.first_ts, canary.first_ts, baseline.last_ts, canary.last_ts) if t is not None]
        return CanaryVerdict(
            ts=now,
            deployment=canary.deployment or baseline.deployment,
            baseline_version=baseline.model_version,
            canary_version=canary.model_version,
            judge=self.name,
            result=result,  # type: ignore[arg-type]
            reason=reason,
            metrics=metrics,
            window_start=min(stamps) if stamps else now,
            window_end=max(stamps) if stamps else now,
            baseline_n=baseline.requests,
            canary_n=canary.requests,
            canary_weight=canary_weight,
        )

    def _why_not_pass(self, metrics: list[MetricVerdict], o: Overall, canary_n: int) -> str:
        cfg = self.config
        if canary_n < cfg.min_canary_n:
            return f"canary sample {canary_n} < {cfg.min_canary_n}"
        if bool(o.missing_required):
            missing = [
                s.name
                for m, s in zip(metrics, cfg.metrics, strict=True)
                if s.required and m.reason.startswith("NO_DATA")
            ]
            return f"no data for required metrics: {', '.join(missing)}"
        if not bool(o.any_data):
            return "no metric has data in both arms"
        pending = [m.metric for m in metrics if m.result == "inconclusive" and not m.reason.startswith("NO_DATA")]
        return f"not yet within pass margins: {', '.join(pending)}"
