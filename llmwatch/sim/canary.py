"""Seeded simulated canary rollouts: our sequential judge against a Kayenta-style fixed-interval judge.

Each rollout streams requests with a fixed canary share. Requests are drawn in batches (numpy, all
rollouts at once): per arm, counts of each event and latency/length histograms on the judge's DDSketch
bucket grid, so `canary_judge.metric_counts/decide/score` (the production rules) run unchanged on the
simulated sufficient statistics, once every `eval_every` requests.

The baseline judge follows Kayenta's NetflixACAJudge as configured by Argo Rollouts / Flagger users: the
canary and the baseline are compared over fixed intervals of `interval_points` data points (one point per
`point_requests` requests: rates, p95 latencies, mean output length per point); per metric a
Mann–Whitney confidence interval of the shift classifies High when its lower end exceeds a quarter of the
Hodges–Lehmann estimate (MannWhitneyClassifier); every metric is critical (one Argo check per metric); the
rollout is rolled back after `failure_limit` failed intervals.

Regression scenarios change only the canary; "aa" changes nothing (both arms identical).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import norm

from llmwatch.evaluators.canary_judge import RATES, SKETCHES, JudgeConfig, decide, metric_counts, score
from llmwatch.evaluators.canary_stats import FloatArray

AA = "aa"


class TrafficModel(BaseModel):
    """One arm's traffic: rates are per request (quality rates among the requests they apply to)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: float = Field(0.01, ge=0, le=1)
    ttft_median_ms: float = Field(400.0, gt=0)
    ttft_sigma: float = Field(0.5, gt=0, description="Log-normal shape of time to first token.")
    tpot_median_ms: float = Field(40.0, gt=0)
    tpot_sigma: float = Field(0.3, gt=0)
    output_median: float = Field(200.0, gt=0, description="Median output tokens (log-normal).")
    output_sigma: float = Field(0.6, gt=0)
    toxicity_rate: float = Field(0.02, ge=0, le=1)
    pii_leak_rate: float = Field(0.0005, ge=0, le=1, description="Detector false positives happen in both arms.")
    injection_share: float = Field(1.0, ge=0, le=1, description="Requests the injection-success check applies to.")
    injection_success_rate: float = Field(0.002, ge=0, le=1)
    context_share: float = Field(0.3, ge=0, le=1, description="Requests with context (hallucination applies).")
    hallucination_rate: float = Field(0.05, ge=0, le=1)

    def sketched(self) -> dict[str, tuple[float, float]]:
        """sketch name → (median, sigma) of its log-normal."""
        return {
            "ttft_ms": (self.ttft_median_ms, self.ttft_sigma),
            "tpot_ms": (self.tpot_median_ms, self.tpot_sigma),
            "output_tokens": (self.output_median, self.output_sigma),
        }


def _update(**changes: Callable[[TrafficModel], float]) -> Callable[[TrafficModel], TrafficModel]:
    def apply(m: TrafficModel) -> TrafficModel:
        return m.model_copy(update={k: f(m) for k, f in changes.items()})

    return apply


#: scenario name → how the canary differs from the baseline (names are part of the bench's JSON contract).
SCENARIOS: dict[str, Callable[[TrafficModel], TrafficModel]] = {
    AA: lambda m: m,
    "ttft_x1.5": _update(ttft_median_ms=lambda m: m.ttft_median_ms * 1.5),
    "ttft_x2": _update(ttft_median_ms=lambda m: m.ttft_median_ms * 2.0),
    "errors_+1pt": _update(error_rate=lambda m: m.error_rate + 0.01),
    "errors_+5pt": _update(error_rate=lambda m: m.error_rate + 0.05),
    "toxicity_x2": _update(toxicity_rate=lambda m: m.toxicity_rate * 2.0),
    "pii_leak_0.5pct": _update(pii_leak_rate=lambda m: 0.005),
}


class SimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rollouts: int = Field(1000, ge=1)
    canary_share: float = Field(0.05, gt=0, lt=1)
    horizon_canary: int = Field(6000, ge=1, description="Canary requests per rollout before it is called clean.")
    eval_every: int = Field(1000, ge=1, description="Requests (both arms) between two looks of our judge.")
    point_requests: int = Field(2000, ge=1, description="Baseline judge: requests per data point (a 'minute').")
    interval_points: int = Field(10, ge=3, description="Baseline judge: data points per analysis interval.")
    failure_limit: int = Field(1, ge=1, description="Baseline judge: failed intervals before rollback.")
    kayenta_fraction: float = Field(0.25, ge=0, description="MannWhitneyClassifier's share of the estimate.")
    kayenta_confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = 0
    base: TrafficModel = Field(default_factory=TrafficModel)


@dataclass
class Outcome:
    """Per rollout: canary requests seen when it was rolled back (NaN: never) and, for ours, passed."""

    rollback_at: FloatArray
    pass_at: FloatArray | None = None

    @property
    def rollback_rate(self) -> float:
        return float(np.mean(~np.isnan(self.rollback_at)))

    def quantile(self, q: float, of: str = "rollback") -> float | None:
        values = self.rollback_at if of == "rollback" else self.pass_at
        if values is None:
            return None
        hit = values[~np.isnan(values)]
        return float(np.quantile(hit, q)) if hit.size else None


# ------------------------------------------------------------------------------------- request model
class _Grid:
    """Histogram cells on the DDSketch bucket edges γ^k near the quantiles the judge reads.

    Far from those quantiles the sketch's buckets are merged into a few cells: the judge's threshold
    bucket always falls inside the fine windows, so its counts stay exact while each draw stays cheap.
    """

    def __init__(self, median: float, sigma: float, accuracy: float, windows: list[tuple[float, float]]) -> None:
        gamma = 1.0 + 2.0 * accuracy / (1.0 - accuracy)
        keys: set[int] = set()
        for lo_q, hi_q in windows:
            lo = math.floor(math.log(median * math.exp(sigma * norm.ppf(lo_q))) / math.log(gamma))
            hi = math.ceil(math.log(median * math.exp(sigma * norm.ppf(hi_q))) / math.log(gamma))
            keys.update(range(lo, hi + 1))
        self.edges = np.array([gamma**k for k in sorted(keys)])  # cell i = (edges[i-1], edges[i]]

    def probs(self, median: float, sigma: float) -> FloatArray:
        cdf = norm.cdf((np.log(self.edges) - math.log(median)) / sigma)
        return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def _grids(base: TrafficModel, cfg: JudgeConfig) -> dict[str, _Grid]:
    grids = {}
    for name, (median, sigma) in base.sketched().items():
        windows: list[tuple[float, float]] = []
        for spec in cfg.metrics:
            if spec.source != name or spec.kind == "rate":
                continue
            q = spec.quantile
            if spec.kind == "band" or spec.direction in ("increase", "either"):
                windows.append((max(q - 0.1, 0.5), min(q + 0.045, 0.9995)))
            if spec.kind == "band" or spec.direction in ("decrease", "either"):
                windows.append((max(1 - q - 0.045, 0.0005), min(1 - q + 0.1, 0.5)))
        grids[name] = _Grid(median, sigma, cfg.sketch_accuracy, windows or [(0.5, 0.5)])
    return grids


class _Arm:
    """Cumulative statistics of one arm across all rollouts (arrays of shape (R,) and (R, cells))."""

    def __init__(self, model: TrafficModel, grids: dict[str, _Grid], rollouts: int) -> None:
        self.model = model
        self.n = np.zeros(rollouts)
        self.rates = {r: (np.zeros(rollouts), np.zeros(rollouts)) for r in RATES}  # counter → (n, k)
        self.probs = {s: grids[s].probs(*model.sketched()[s]) for s in SKETCHES}
        self.hist = {s: np.zeros((rollouts, len(p))) for s, p in self.probs.items()}

    def _rate(self, name: str, trials: FloatArray, p: float, rng: np.random.Generator) -> None:
        n, k = self.rates[name]
        n += trials
        k += rng.binomial(trials.astype(np.int64), p)

    def draw(self, requests: FloatArray, rng: np.random.Generator) -> None:
        m = self.model
        self.n += requests
        n_err_before = self.rates["errors"][1].copy()
        self._rate("errors", requests, m.error_rate, rng)
        ok = (requests - (self.rates["errors"][1] - n_err_before)).astype(np.int64)
        for s, p in self.probs.items():
            self.hist[s] += rng.multinomial(ok, p)
        self._rate("toxicity", ok.astype(np.float64), m.toxicity_rate, rng)
        self._rate("pii_leak", ok.astype(np.float64), m.pii_leak_rate, rng)
        self._rate(
            "injection_success", rng.binomial(ok, m.injection_share).astype(np.float64), m.injection_success_rate, rng
        )
        self._rate("hallucination", rng.binomial(ok, m.context_share).astype(np.float64), m.hallucination_rate, rng)


def simulate_ours(
    scenario: str, sim: SimConfig, judge: JudgeConfig, rng: np.random.Generator, *, track_pass: bool = False
) -> Outcome:
    """Our judge looks every `eval_every` requests; the first fail rolls the rollout back."""
    r = sim.rollouts
    grids = _grids(sim.base, judge)
    base, can = _Arm(sim.base, grids, r), _Arm(SCENARIOS[scenario](sim.base), grids, r)
    rollback = np.full(r, np.nan)
    passed = np.full(r, np.nan) if track_pass else None
    alpha = judge.alpha_per_test
    while True:
        live = np.isnan(rollback) & (can.n < sim.horizon_canary)
        if not live.any():
            break
        n_can = rng.binomial(sim.eval_every, sim.canary_share, r).astype(np.float64)
        n_can = np.where(live, n_can, 0.0)
        can.draw(n_can, rng)
        base.draw(np.where(live, sim.eval_every - n_can, 0.0), rng)
        idx = np.flatnonzero(live)
        rates_b = {k: (n[idx], h[idx]) for k, (n, h) in base.rates.items()}
        rates_c = {k: (n[idx], h[idx]) for k, (n, h) in can.rates.items()}
        hists = {s: (base.hist[s][idx], can.hist[s][idx]) for s in SKETCHES}
        counts = [metric_counts(spec, rates_b, rates_c, hists) for spec in judge.metrics]
        want_pass = passed is not None and bool(np.isnan(passed[idx]).any())
        decisions = [
            decide(s, c, alpha, judge.alpha_pass, with_pass=want_pass)
            for s, c in zip(judge.metrics, counts, strict=True)
        ]
        overall = score(decisions, judge, can.n[idx])
        fail_idx = idx[overall.fail]
        rollback[fail_idx] = can.n[fail_idx]
        if want_pass and passed is not None:
            new = idx[overall.passed & np.isnan(passed[idx])]
            passed[new] = can.n[new]
    return Outcome(rollback, passed)


# ------------------------------------------------------------------------------ Kayenta-style baseline
def _mw_high(canary: FloatArray, control: FloatArray, fraction: float, confidence: float) -> FloatArray:
    """MannWhitneyClassifier, vectorised over rollouts: High when the CI of the shift sits above
    `fraction`·|Hodges–Lehmann estimate|. The CI is the usual order-statistic interval of the m·n
    pairwise differences (normal approximation of the Wilcoxon critical value, as R does for ties)."""
    m, n = canary.shape[-1], control.shape[-1]
    diffs = np.sort((canary[..., :, None] - control[..., None, :]).reshape(*canary.shape[:-1], m * n), axis=-1)
    z = norm.ppf(0.5 + confidence / 2)
    k = max(math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12.0)), 1)
    lower = diffs[..., k - 1]
    estimate = np.median(diffs, axis=-1)
    same = np.all(np.sort(canary, axis=-1) == np.sort(control, axis=-1), axis=-1)
    return (lower > fraction * np.abs(estimate)) & ~same


def _points(model: TrafficModel, requests: FloatArray, rng: np.random.Generator) -> dict[str, FloatArray]:
    """Per-point metric values (shape (R, P)) as a metrics backend would report them."""
    out: dict[str, FloatArray] = {}
    req = requests.astype(np.int64)
    errors = rng.binomial(req, model.error_rate)
    ok = req - errors
    out["error_rate"] = errors / np.maximum(req, 1)

    def rate(trials: np.ndarray, p: float) -> FloatArray:
        return rng.binomial(trials, p) / np.maximum(trials, 1)

    out["toxicity_rate"] = rate(ok, model.toxicity_rate)
    out["pii_leak_rate"] = rate(ok, model.pii_leak_rate)
    out["injection_success_rate"] = rate(rng.binomial(ok, model.injection_share), model.injection_success_rate)
    out["hallucination_rate"] = rate(rng.binomial(ok, model.context_share), model.hallucination_rate)
    okf = np.maximum(ok, 1).astype(np.float64)
    for name, (median, sigma) in (
        ("ttft_p95", (model.ttft_median_ms, model.ttft_sigma)),
        ("tpot_p95", (model.tpot_median_ms, model.tpot_sigma)),
    ):
        # The sample p95 is the ⌈0.95·n⌉-th order statistic: F⁻¹ of a Beta draw, exact without drawing n values.
        j = np.ceil(0.95 * okf)
        u = rng.beta(j, okf - j + 1.0)
        out[name] = median * np.exp(sigma * norm.ppf(u))
    mu, s = model.output_median, model.output_sigma
    mean, var = mu * math.exp(s * s / 2), mu * mu * math.exp(s * s) * (math.exp(s * s) - 1)
    out["output_tokens_mean"] = mean + math.sqrt(var) * rng.standard_normal(req.shape) / np.sqrt(okf)
    return out


def simulate_kayenta(scenario: str, sim: SimConfig, rng: np.random.Generator) -> Outcome:
    """Fixed intervals, Mann–Whitney per metric, every metric critical, rollback after `failure_limit` fails."""
    r, p = sim.rollouts, sim.interval_points
    canary_model = SCENARIOS[scenario](sim.base)
    rollback = np.full(r, np.nan)
    failures = np.zeros(r, dtype=np.int64)
    seen = np.zeros(r)
    per_interval = sim.point_requests * p
    intervals = math.ceil(sim.horizon_canary / (per_interval * sim.canary_share))
    for _ in range(intervals):
        n_can = rng.binomial(sim.point_requests, sim.canary_share, (r, p)).astype(np.float64)
        can = _points(canary_model, n_can, rng)
        base = _points(sim.base, sim.point_requests - n_can, rng)
        seen += n_can.sum(axis=1)
        high = np.zeros(r, dtype=bool)
        for metric in can:
            high |= _mw_high(can[metric], base[metric], sim.kayenta_fraction, sim.kayenta_confidence)
        failures += high
        newly = np.isnan(rollback) & (failures >= sim.failure_limit)
        rollback[newly] = seen[newly]
    return Outcome(rollback)
