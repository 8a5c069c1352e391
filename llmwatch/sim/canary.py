"""Production-like canary traffic: per-arm models that change over time, drawn as requests or as per-slice batches.

A `Scenario` says how both arms behave at each moment (`models(t, canary_t)`: time since the rollout began, and
time since the canary first got traffic) and how traffic reaches the canary (requests per second; the share of its
weight it really gets, for a routing bug). The kinds of traffic a judge meets in production are here: heavy-tailed
latency, load that rises through the hour on both arms, short error bursts that hit both arms, quality metrics that
exist only on some requests (injection successes on flagged prompts, hallucination with context or a sampled model
evaluator), a tail-only latency regression, a whole-distribution one, rare-event regressions, a routing bug at low
traffic, and a novelty effect that fades into a regression.

Two ways to draw the same model:
- `Traffic.scores(...)`: one `EvalScores` per request (what llm.eval.scores carries): tests, recorded files;
- `Traffic.batch(...)`: one `ArmData` per arm per time slice (counts and histograms on DDSketch's key grid, drawn
  with multinomials): the benchmark's hundreds of rollouts, fed through `OfflineRollout.feed_data`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from ddsketch.mapping import LogarithmicMapping
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import norm

from llmwatch.evaluators.canary import ArmData, Hist
from llmwatch.schemas import EvalScores

DEPLOYMENT, BASELINE, CANARY = "default", "v1", "v2"


class Latency(BaseModel):
    """A log-normal body and, with probability `tail_share`, a slower log-normal mode (queueing, retries)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    median: float = Field(gt=0)
    sigma: float = Field(gt=0)
    tail_share: float = Field(0.0, ge=0, lt=1)
    tail_factor: float = Field(4.0, ge=1, description="The tail mode's median ÷ the body's.")
    tail_sigma: float = Field(0.4, gt=0)

    def scaled(self, factor: float, *, tail_only: bool = False) -> Latency:
        if tail_only:
            return self.model_copy(update={"tail_factor": self.tail_factor * factor})
        return self.model_copy(update={"median": self.median * factor})

    def cdf(self, x: np.ndarray) -> np.ndarray:
        lx = np.log(np.maximum(x, 1e-300))
        body = norm.cdf((lx - math.log(self.median)) / self.sigma)
        if self.tail_share <= 0:
            return body
        tail = norm.cdf((lx - math.log(self.median * self.tail_factor)) / self.tail_sigma)
        return (1 - self.tail_share) * body + self.tail_share * tail

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        body = rng.lognormal(math.log(self.median), self.sigma, n)
        if self.tail_share <= 0:
            return body
        tail = rng.lognormal(math.log(self.median * self.tail_factor), self.tail_sigma, n)
        return np.where(rng.random(n) < self.tail_share, tail, body)


class ArmModel(BaseModel):
    """One arm's behaviour at one moment; quality rates are among the requests where the score exists."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: float = Field(0.01, ge=0, le=1)
    ttft: Latency = Latency(median=400.0, sigma=0.5, tail_share=0.01, tail_factor=4.0)
    tpot: Latency = Latency(median=40.0, sigma=0.3)
    e2e: Latency = Latency(median=4000.0, sigma=0.5, tail_share=0.01, tail_factor=3.0)
    output_tokens: Latency = Latency(median=200.0, sigma=0.6)
    toxicity_rate: float = Field(0.002, ge=0, le=1)
    pii_leak_rate: float = Field(0.002, ge=0, le=1)
    injection_share: float = Field(0.02, ge=0, le=1, description="Flagged prompts: injection success is judged.")
    injection_success_rate: float = Field(0.1, ge=0, le=1)
    context_share: float = Field(0.3, ge=0, le=1, description="Requests with context (hallucination is judged).")
    hallucination_rate: float = Field(0.05, ge=0, le=1)

    def latencies(self) -> dict[str, Latency]:
        return {"ttft": self.ttft, "tpot": self.tpot, "e2e": self.e2e, "output_tokens": self.output_tokens}


Models = Callable[[float, float | None], tuple[ArmModel, ArmModel]]


@dataclass(frozen=True)
class Scenario:
    """How both arms behave over time (`models(t, canary_t)`, seconds since the start and since the canary's first
    traffic, or None before) and how traffic reaches the canary; `expect` is the correct outcome."""

    name: str
    description: str
    expect: str  # "promote", "rollback" or "srm"
    models: Models
    rps: float = 100.0
    routed_share: float = 1.0  # the share of its weight the canary really gets


def _same(m: ArmModel) -> Models:
    return lambda t, ct: (m, m)


def _canary(base: ArmModel, canary: ArmModel) -> Models:
    return lambda t, ct: (base, canary)


BASE = ArmModel()


def _drift(t: float, _: float | None) -> tuple[ArmModel, ArmModel]:
    """Both arms 40 % slower within the hour, then stay there (in steps of 0.5 %, so models are reused)."""
    f = round(200 * (1.0 + 0.4 * min(t / 3600.0, 1.0))) / 200
    m = _DRIFTED.get(f)
    if m is None:
        lat = BASE.latencies()
        m = _DRIFTED[f] = BASE.model_copy(update={k: v.scaled(f) for k, v in lat.items() if k != "output_tokens"})
    return m, m


_DRIFTED: dict[float, ArmModel] = {}


_BURST = BASE.model_copy(update={"error_rate": 0.3, "ttft": BASE.ttft.scaled(1.5)})


def _bursts(t: float, _: float | None) -> tuple[ArmModel, ArmModel]:
    """4 bursts of 30 s per hour (at 5, 20, 35, 50 minutes past): errors 30 %, TTFT ×1.5, both arms."""
    m = _BURST if 300.0 <= t % 900.0 < 330.0 else BASE
    return m, m


_HEAVY = BASE.model_copy(
    update={
        "ttft": Latency(median=400.0, sigma=1.0, tail_share=0.03, tail_factor=8.0, tail_sigma=0.6),
        "e2e": Latency(median=4000.0, sigma=0.9, tail_share=0.03, tail_factor=5.0, tail_sigma=0.6),
        "tpot": Latency(median=40.0, sigma=0.6, tail_share=0.02, tail_factor=4.0),
    }
)
_SPARSE = BASE.model_copy(
    update={"injection_share": 0.02, "injection_success_rate": 0.02, "context_share": 0.02, "hallucination_rate": 0.05}
)
_BETTER = BASE.model_copy(update={"error_rate": 0.005, "ttft": BASE.ttft.scaled(0.8)})
_NOVEL_GOOD = BASE.model_copy(update={"error_rate": 0.005, "ttft": BASE.ttft.scaled(0.7)})
_NOVEL_BAD = BASE.model_copy(update={"ttft": BASE.ttft.scaled(1.25)})


def _novelty(t: float, ct: float | None) -> tuple[ArmModel, ArmModel]:
    """The canary is better for its first 10 minutes (TTFT −30 %, half the errors), then 25 % slower for good."""
    return BASE, (_NOVEL_GOOD if ct is None or ct < 600.0 else _NOVEL_BAD)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("aa_heavy_tail", "A/A, heavy-tailed latency (σ 1.0 and a 3 % slow mode)", "promote", _same(_HEAVY)),
        Scenario("aa_load_drift", "A/A, both arms' latency rises 40 % within the hour", "promote", _drift),
        Scenario(
            "aa_error_bursts", "A/A, 4 × 30 s error bursts per hour on both arms (30 % errors)", "promote", _bursts
        ),
        Scenario("canary_better", "the canary halves errors and is 20 % faster", "promote", _canary(BASE, _BETTER)),
        Scenario(
            "tail_p99_x2",
            "p50 unchanged, a slower and commoner slow mode: p99 ×2 (1.49 → 3.0 s), p95 +7 %",
            "rollback",
            _canary(
                BASE,
                BASE.model_copy(update={"ttft": BASE.ttft.model_copy(update={"tail_share": 0.02, "tail_factor": 7.5})}),
            ),
        ),
        Scenario(
            "ttft_x1.2",
            "TTFT +20 % across the distribution",
            "rollback",
            _canary(BASE, BASE.model_copy(update={"ttft": BASE.ttft.scaled(1.2)})),
        ),
        Scenario(
            "errors_1to3pct",
            "errors 1 % → 3 %",
            "rollback",
            _canary(BASE, BASE.model_copy(update={"error_rate": 0.03})),
        ),
        Scenario(
            "toxicity_x3",
            "toxic responses 0.2 % → 0.6 %",
            "rollback",
            _canary(BASE, BASE.model_copy(update={"toxicity_rate": 0.006})),
        ),
        Scenario(
            "pii_leak_x3",
            "PII leaks 0.2 % → 0.6 %",
            "rollback",
            _canary(BASE, BASE.model_copy(update={"pii_leak_rate": 0.006})),
        ),
        Scenario(
            "sparse_metric_aa",
            "A/A, injection success on 2 % of requests (2 % of them), hallucination sampled on 2 %",
            "promote",
            _same(_SPARSE),
        ),
        Scenario(
            "srm_low_traffic",
            "20 requests/s, the canary gets half of its weight (a routing bug)",
            "srm",
            _same(BASE),
            rps=20.0,
            routed_share=0.5,
        ),
        Scenario("novelty", "canary better for 10 minutes, then TTFT +25 %", "rollback", _novelty),
    )
}


# ------------------------------------------------------------------------------------------- drawing
class Traffic:
    """Draws a scenario's requests. Each arm's histograms are drawn on DDSketch's key grid (so they merge with the
    judge's own), from a grid of cells built once per distribution."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator, *, accuracy: float = 0.01) -> None:
        self.scenario = scenario
        self.rng = rng
        self.mapping = LogarithmicMapping(accuracy)
        self._cells: dict[Latency, tuple[int, np.ndarray]] = {}

    def _probs(self, lat: Latency) -> tuple[int, np.ndarray]:
        """(first key, probability of each key) covering the distribution from its 1e-5 to 1 − 1e-6 quantile; what
        lies beyond is piled on the end keys."""
        cached = self._cells.get(lat)
        if cached is not None:
            return cached
        lo_v = lat.median * math.exp(lat.sigma * norm.ppf(1e-5))
        hi_v = lat.median * lat.tail_factor * math.exp(max(lat.sigma, lat.tail_sigma) * norm.ppf(1 - 1e-6))
        lo, hi = self.mapping.key(lo_v), self.mapping.key(hi_v)
        # key k holds (γ^(k−1), γ^k] with DDSketch's logarithmic mapping
        edges = self.mapping.gamma ** np.arange(lo, hi + 1, dtype=np.float64)
        cdf = lat.cdf(edges)
        cdf[-1] = 1.0
        probs = np.diff(np.concatenate([[0.0], cdf]))
        out = (int(lo), np.maximum(probs, 0.0) / max(probs.sum(), 1e-300))
        if len(self._cells) > 256:
            self._cells.clear()
        self._cells[lat] = out
        return out

    def _hist(self, lat: Latency, n: int) -> Hist:
        if n <= 0:
            return Hist()
        first, probs = self._probs(lat)
        counts = self.rng.multinomial(n, probs).astype(np.float64)
        nz = np.flatnonzero(counts)
        return Hist(0.0, first + int(nz[0]), counts[nz[0] : nz[-1] + 1])

    def rates(self, m: ArmModel, n: int) -> tuple[ArmData, int]:
        """`n` requests of one arm without their histograms: (requests and rates, ok requests). Errors count over
        all requests (none is cancelled here), every other rate over ok requests where its score exists."""
        rng = self.rng
        errors = int(rng.binomial(n, m.error_rate)) if n else 0
        ok = n - errors
        flagged = int(rng.binomial(ok, m.injection_share)) if ok else 0
        context = int(rng.binomial(ok, m.context_share)) if ok else 0

        def hits(trials: int, p: float) -> tuple[float, float]:
            return float(trials), float(rng.binomial(trials, p)) if trials else 0.0

        rates = {
            "errors": (float(n), float(errors)),
            "toxicity": hits(ok, m.toxicity_rate),
            "pii_leak": hits(ok, m.pii_leak_rate),
            "injection_success": hits(flagged, m.injection_success_rate),
            "hallucination": hits(context, m.hallucination_rate),
        }
        return ArmData(float(n), rates, {}), ok

    def hists(self, ok_by_model: dict[ArmModel, int]) -> ArmData:
        """The latency and length histograms of ok requests drawn from each model: a sum of multinomials with one
        model is the multinomial of the sum, so a stratum's requests are drawn once per model, not per slice."""
        out = ArmData()
        for m, ok in ok_by_model.items():
            out.merge(ArmData(0.0, {}, {name: self._hist(lat, ok) for name, lat in m.latencies().items()}))
        return out

    def arm_data(self, m: ArmModel, n: int) -> ArmData:
        """`n` requests of one arm as the judge reduces them."""
        data, ok = self.rates(m, n)
        return data.merge(self.hists({m: ok}))

    def split(self, seconds: float, weight: float) -> tuple[int, int]:
        """Requests in a slice: (baseline, canary), the canary getting `routed_share` of its weight."""
        n = int(self.rng.poisson(self.scenario.rps * seconds))
        c = int(self.rng.binomial(n, min(1.0, weight * self.scenario.routed_share))) if n else 0
        return n - c, c

    def batch(self, t: float, canary_t: float | None, seconds: float, weight: float) -> tuple[ArmData, ArmData]:
        """One slice of `seconds` starting at `t` at canary `weight`: (baseline, canary) ArmData."""
        base_m, can_m = self.scenario.models(t, canary_t)
        nb, nc = self.split(seconds, weight)
        return self.arm_data(base_m, nb), self.arm_data(can_m, nc)

    def scores(
        self,
        start: datetime,
        t: float,
        canary_t: float | None,
        seconds: float,
        weight: float,
        *,
        deployment: str = DEPLOYMENT,
        baseline: str = BASELINE,
        canary: str = CANARY,
    ) -> Iterator[EvalScores]:
        """The same slice as one EvalScores per request, in time order."""
        base_m, can_m = self.scenario.models(t, canary_t)
        nb, nc = self.split(seconds, weight)
        arms = np.array([0] * nb + [1] * nc)
        self.rng.shuffle(arms)
        offsets = np.sort(self.rng.uniform(0, seconds, arms.size))
        for arm, off in zip(arms.tolist(), offsets.tolist(), strict=True):
            m, version = (can_m, canary) if arm else (base_m, baseline)
            yield self._score(m, start + timedelta(seconds=t + off), deployment, version)

    def _score(self, m: ArmModel, ts: datetime, deployment: str, version: str) -> EvalScores:
        rng = self.rng
        error = rng.random() < m.error_rate
        fields: dict[str, object] = {"status": "error" if error else "ok"}
        if not error:
            fields.update(
                ttft_ms=float(m.ttft.draw(rng, 1)[0]),
                tpot_ms=float(m.tpot.draw(rng, 1)[0]),
                e2e_ms=float(m.e2e.draw(rng, 1)[0]),
                output_tokens=max(1, int(m.output_tokens.draw(rng, 1)[0])),
                toxicity_response=0.9 if rng.random() < m.toxicity_rate else 0.02,
                pii_leak=bool(rng.random() < m.pii_leak_rate),
            )
            if rng.random() < m.injection_share:
                fields["injection"] = 0.9
                fields["injection_success"] = bool(rng.random() < m.injection_success_rate)
            if rng.random() < m.context_share:
                fields["hallucination"] = 0.8 if rng.random() < m.hallucination_rate else 0.1
        return EvalScores(
            event_id=uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63))).hex,
            ts=ts,
            deployment=deployment,
            model_version=version,
            variant="canary" if version == CANARY else "baseline",
            **fields,  # type: ignore[arg-type]
        )


# ------------------------------------------------------------------------------------------- rollouts
@dataclass(frozen=True)
class RolloutOutcome:
    """How one simulated rollout ended: promoted, rolled back, or undecided at the horizon."""

    outcome: str
    minutes: float  # to the decision (the horizon when undecided)
    canary_requests: float  # served by the canary until then
    srm_minutes: float | None  # first verdict flagging a sample-ratio mismatch
    reason: str
    blocked_by: tuple[str, ...] = ()  # undecided: the gating metrics the last verdict had not passed


def run_rollout(
    scenario: Scenario,
    run: Any,
    seed: int,
    *,
    start: datetime,
    horizon_s: float,
    slice_s: float = 10.0,
    stratum_s: float = 60.0,
) -> RolloutOutcome:
    """Drive `run` (an OfflineRollout or KayentaRollout, freshly started at `start`) with the scenario's traffic,
    following its weights slice by slice, until it decides or the horizon. Rates are drawn per slice; histograms
    once per stratum (aligned on weight changes, like the judges' strata and points), fed before it closes."""
    traffic = Traffic(scenario, np.random.default_rng(seed))
    versions = (BASELINE, CANARY)
    pending: tuple[dict[ArmModel, int], dict[ArmModel, int]] = ({}, {})
    pending_ts: datetime | None = None

    def flush() -> None:
        nonlocal pending, pending_ts
        if pending_ts is not None:
            for version, oks in zip(versions, pending, strict=True):
                if oks:
                    run.feed_data(version, pending_ts, traffic.hists(oks))
        pending, pending_ts = ({}, {}), None

    t, seg_start, weight = 0.0, 0.0, run.canary_weight
    first_canary: float | None = None
    canary_n, decided_at, srm_at = 0.0, None, None
    while t < horizon_s and not run.done:
        if run.canary_weight != weight:
            flush()
            weight, seg_start = run.canary_weight, t
        if weight > 0 and first_canary is None:
            first_canary = t
        ct = None if first_canary is None else t - first_canary
        base_m, can_m = scenario.models(t, ct)
        nb, nc = traffic.split(slice_s, weight)
        ts = start + timedelta(seconds=t)
        for version, m, n, oks in ((BASELINE, base_m, nb, pending[0]), (CANARY, can_m, nc, pending[1])):
            data, ok = traffic.rates(m, n)
            run.feed_data(version, ts, data)
            if ok:
                oks[m] = oks.get(m, 0) + ok
        pending_ts = pending_ts or ts
        canary_n += nc
        t += slice_s
        if (t - seg_start) % stratum_s < 1e-9:
            flush()
        for e in run.advance(start + timedelta(seconds=t)):
            if e.kind == "verdict" and srm_at is None and getattr(e.payload, "srm_detected", False):
                srm_at = t
        if run.done:
            decided_at = t
    outcome = {"promoted": "promoted", "rolled_back": "rolled_back"}.get(run.state, "undecided")
    last = run.moves[-1].reason if run.moves else ""
    blocked: tuple[str, ...] = ()
    if outcome == "undecided" and run.verdicts:
        blocked = tuple(dict.fromkeys(m.metric for m in run.verdicts[-1].metrics if m.gating and m.label != "PASS"))
    return RolloutOutcome(
        outcome,
        (decided_at if decided_at is not None else t) / 60.0,
        canary_n,
        None if srm_at is None else srm_at / 60.0,
        last,
        blocked,
    )


def record(
    scenario: Scenario,
    run: Any,
    seed: int,
    *,
    start: datetime,
    seconds: float,
    write: Callable[[EvalScores], None],
    slice_s: float = 5.0,
) -> None:
    """Per-request traffic of `scenario` following `run`'s weights (an OfflineRollout fed as it goes), each score
    handed to `write`: a recorded file as production would have produced it, for `llmwatch canary replay`."""
    traffic = Traffic(scenario, np.random.default_rng(seed))
    t, first_canary = 0.0, None
    while t < seconds and not run.done:
        weight = run.canary_weight
        if weight > 0 and first_canary is None:
            first_canary = t
        ct = None if first_canary is None else t - first_canary
        for s in traffic.scores(start, t, ct, slice_s, weight, deployment=run.deployment):
            run.advance(s.ts)
            run.feed(s)
            write(s)
        t += slice_s
        run.advance(start + timedelta(seconds=t))
