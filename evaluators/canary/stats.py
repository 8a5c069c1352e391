"""Anytime-valid, time-matched two-sample tests for canaries: pure Python/numpy, one rollout at a time.

**The comparison is conditional on each stratum.** Requests are routed at random (each one goes to the canary with
the weight's probability), so within a time stratum at one weight, whatever both arms share (load, time of day, an
upstream incident, a burst of errors) hits both arms alike. Given a stratum's bad events (K of them, e.g. errors, or
requests above a latency threshold) and each arm's requests (n_c, n_b), the number of bad events that fell on the
canary, k_c, follows a law with no nuisance parameter at all:

    k_c | K ~ Binomial(K, π(ρ)),  π(ρ) = ρ·s / (ρ·s + 1 − s),  s = n_c / (n_c + n_b),

where ρ is the canary's rate divided by the baseline's (exactly so for Poisson-like rare events; with ρ = 1 the true
law is hypergeometric, less spread than this binomial, so the likelihood ratios below stay supermartingales by
Hoeffding's 1963 convex-order inequality). A shared change moves K, never ρ: it cannot move a verdict.

**Evidence is a product over strata** of likelihood ratios LR_j(ρ₁ vs ρ₀) with a *predictable plug-in*
alternative ρ₁ (an estimate from the strata already closed, clipped into the alternative; Robbins & Siegmund 1974,
Waudby-Smith & Ramdas 2023). Each factor has expectation ≤ 1 under the null whatever the past, so the product is a
test supermartingale and Ville's inequality bounds the chance it ever reaches 1/α by α, at any look, with any
stopping rule: the stratified e-process of Mantel–Haenszel's design, made sequential (Ramdas, Grünwald, Vovk &
Shafer, "Game-theoretic statistics and safe anytime-valid inference", Stat. Sci. 2023).

- `EProcess`: one side of one metric: fail (H₀: ρ ≤ ρ₀, the tolerated ratio) or pass (H₀: ρ ≥ R, the forbidden
  one). The fail side averages copies started at each step (`restart`), so evidence that a canary was better
  earlier cannot mask a regression that starts later: an average of test supermartingales is one.
- `SrmProcess`: the canary's share of requests against its weight (sample-ratio mismatch), two-sided.
- `floor_log_e`: evidence that the canary's own rate is below an absolute floor (a pass route for events so rare
  that no ratio can be measured), universal inference over a Jeffreys mixture (Wasserman, Ramdas & Balakrishnan 2020).
- `exceedance_table`: a latency quantile as a stratum's 2×2 table: requests above the pooled sample's q-quantile
  bucket, the canary's values divided by the margin first. Under "no quantile of the canary rises more than the
  margin" the canary's count is stochastically below the permutation law, so the same test applies, exactly.

Hand-written because scipy has no sequential tests; the references are cited where each rule is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, xlog1py, xlogy

FloatArray = npt.NDArray[np.float64]

#: Jeffreys prior Beta(1/2, 1/2) for the floor route: puts mass near 0 for rare events.
PRIOR_A: Final = 0.5
PRIOR_B: Final = 0.5
#: A plug-in alternative never comes closer to the null than this factor (a factor of 1 carries no evidence).
MIN_SEPARATION: Final = 1.02
#: ... nor further than this (a wild early estimate would waste evidence).
MAX_RATIO: Final = 50.0


def log_pi(log_rho: float, share: float) -> tuple[float, float]:
    """(log π, log(1 − π)) of π(ρ) = ρ·s / (ρ·s + 1 − s), for 0 < s < 1."""
    a = log_rho + math.log(share)
    b = math.log1p(-share)
    m = max(a, b)
    norm = m + math.log(math.exp(a - m) + math.exp(b - m))
    return a - norm, b - norm


def conditional_log_lr(k: float, big_k: float, share: float, log_rho1: float, log_rho0: float) -> float:
    """log LR of k canary events among K at canary share s: Binomial(K, π(ρ₁)) against Binomial(K, π(ρ₀)).

    A stratum where one arm has no trials (s ∈ {0, 1}) or with no events carries no evidence (0).
    """
    if big_k <= 0 or not 0.0 < share < 1.0:
        return 0.0
    p1, q1 = log_pi(log_rho1, share)
    p0, q0 = log_pi(log_rho0, share)
    return k * (p1 - p0) + (big_k - k) * (q1 - q0)


def kl_events(share: float, log_rho_true: float, log_rho_null: float) -> float:
    """Expected log LR per event when the truth is ρ_true and the test's alternative is ρ_true (KL divergence)."""
    if not 0.0 < share < 1.0:
        return 0.0
    p1, q1 = log_pi(log_rho_true, share)
    p0, q0 = log_pi(log_rho_null, share)
    return math.exp(p1) * (p1 - p0) + math.exp(q1) * (q1 - q0)


@dataclass
class RatioEstimate:
    """Mantel–Haenszel estimate of ρ over strata: Σ k_c·n_b/N ÷ Σ k_b·n_c/N, shrunk towards a default by
    `pseudo` events on each side, so early strata give a tame plug-in."""

    num: float = 0.0
    den: float = 0.0

    def add(self, k_c: float, n_c: float, k_b: float, n_b: float) -> None:
        n = n_c + n_b
        if n > 0:
            self.num += k_c * n_b / n
            self.den += k_b * n_c / n

    def value(self, default: float, pseudo: float) -> float:
        return (self.num + pseudo * default) / (self.den + pseudo)

    @property
    def raw(self) -> float | None:
        return self.num / self.den if self.den > 0 else (math.inf if self.num > 0 else None)


@dataclass
class EProcess:
    """One side of one metric as an e-process over strata (see the module doc).

    side "fail": H₀ ρ ≤ null (evidence grows when the canary is worse than tolerated);
    side "pass": H₀ ρ ≥ null (evidence grows when the forbidden regression is ruled out).
    `restart(w)` starts another copy (weight w of the mixture) from now on; copies share nothing but the data
    after their start, and each uses its own plug-in estimate, so a change of behaviour is picked up fast.
    """

    side: str
    null: float
    default: float
    pseudo: float = 2.0
    weights: list[float] = field(default_factory=lambda: [1.0])
    log_e: list[float] = field(default_factory=lambda: [0.0])
    estimates: list[RatioEstimate] = field(default_factory=lambda: [RatioEstimate()])
    total: RatioEstimate = field(default_factory=RatioEstimate)
    events: float = 0.0
    trials_c: float = 0.0
    trials_b: float = 0.0

    def __post_init__(self) -> None:
        if self.side not in ("fail", "pass"):
            raise ValueError(f"side must be 'fail' or 'pass', got {self.side!r}")
        if self.null <= 0:
            raise ValueError("the null ratio must be positive")

    def restart(self, weight: float) -> None:
        """Add a copy started now with mixture weight `weight` (the weights are fixed in advance by the caller)."""
        self.weights.append(weight)
        self.log_e.append(0.0)
        self.estimates.append(RatioEstimate())

    def alternative(self, estimate: RatioEstimate) -> float:
        rho = estimate.value(self.default, self.pseudo)
        if self.side == "fail":
            return min(max(rho, self.null * MIN_SEPARATION), self.null * MAX_RATIO)
        return max(min(rho, self.null / MIN_SEPARATION), self.null / MAX_RATIO)

    def update(self, k_c: float, n_c: float, k_b: float, n_b: float) -> None:
        """Fold in one closed stratum: k events out of n trials in each arm (the canary's already scaled)."""
        big_k = k_c + k_b
        n = n_c + n_b
        if n > 0 and big_k > 0:
            share = n_c / n
            log_null = math.log(self.null)
            for i, est in enumerate(self.estimates):
                self.log_e[i] += conditional_log_lr(k_c, big_k, share, math.log(self.alternative(est)), log_null)
        for est in self.estimates:
            est.add(k_c, n_c, k_b, n_b)
        self.total.add(k_c, n_c, k_b, n_b)
        self.events += big_k
        self.trials_c += n_c
        self.trials_b += n_b

    @property
    def value_log(self) -> float:
        """log of the mixture Σ wᵢ·Eᵢ (weights of copies not started yet count as Eᵢ = 1: they are added by the
        caller with `pending`)."""
        terms = [math.log(w) + le for w, le in zip(self.weights, self.log_e, strict=True) if w > 0]
        m = max(terms)
        return m + math.log(sum(math.exp(t - m) for t in terms))

    def mixture_log(self, pending: float = 0.0) -> float:
        """log(Σ wᵢ·Eᵢ + pending): `pending` is the weight of the copies that will start later (each still 1)."""
        value = self.value_log
        if pending <= 0:
            return value
        m = max(value, math.log(pending))
        return m + math.log(math.exp(value - m) + math.exp(math.log(pending) - m))


@dataclass
class SrmProcess:
    """Sample-ratio mismatch: each closed stratum's canary requests n_c out of N against the weight w it was routed
    at, Binomial(N, π(ρ)) with π(1) = w; a predictable plug-in ρ̂ (either side of 1) makes it two-sided."""

    pseudo: float = 2.0
    log_e: float = 0.0
    max_log_e: float = 0.0
    observed: float = 0.0
    expected: float = 0.0
    requests: float = 0.0
    _num: float = 0.0
    _den: float = 0.0

    def update(self, n_c: float, n: float, weight: float) -> None:
        if n <= 0 or not 0.0 < weight < 1.0:
            return
        rho = (self._num + self.pseudo) / (self._den + self.pseudo)
        rho = min(max(rho, 1.0 / MAX_RATIO), MAX_RATIO)
        if abs(math.log(rho)) > 1e-9:
            self.log_e += conditional_log_lr(n_c, n, weight, math.log(rho), 0.0)
            self.max_log_e = max(self.max_log_e, self.log_e)
        self._num += n_c * (1.0 - weight)
        self._den += (n - n_c) * weight
        self.observed += n_c
        self.expected += n * weight
        self.requests += n


# ------------------------------------------------------------------------------------------- floor route
def log_mixture(k: float, n: float, a: float = PRIOR_A, b: float = PRIOR_B) -> float:
    """log of the Beta(a, b) mixture probability of k events in n trials (in their observed order)."""
    return float(betaln(k + a, n - k + b) - betaln(a, b))


def log_lik(k: float, n: float, p: float) -> float:
    """Bernoulli log-likelihood of k events in n trials at rate p (0·log 0 = 0)."""
    return float(xlogy(k, p) + xlog1py(n - k, -p))


def floor_log_e(k: float, n: float, floor: float) -> float:
    """log e-value against H₀: the canary's rate is at least `floor` (evidence that it is below): the Jeffreys
    mixture over the likelihood maximised on the null, sequential universal inference; valid at any look."""
    if n <= 0 or floor <= 0:
        return 0.0
    p_null = max(floor, k / n)
    return log_mixture(k, n) - log_lik(k, n, min(p_null, 1.0))


# -------------------------------------------------------------------------------------------- latency
def exceedance_table(
    baseline: FloatArray, canary: FloatArray, quantile: float, shift: int, *, lower: bool = False
) -> tuple[float, float, float, float]:
    """(k_c, n_c, k_b, n_b): each arm's requests beyond the pooled q-quantile bucket, the canary's values first
    moved `shift` buckets towards the good side (divided by the margin: down for an upper tail, up for a lower one).

    Histograms share buckets (index 0: values ≤ 0, then DDSketch keys in order). The threshold bucket is a function
    of the pooled sample only and values in it count as not beyond, so under "the scaled canary is no worse" the
    canary's count is stochastically below its permutation law: the conditional test of this module applies.
    """
    base = np.asarray(baseline, dtype=np.float64)
    can = np.asarray(canary, dtype=np.float64)
    if lower:  # a lower tail is the upper tail of the reversed order (index 0, values ≤ 0, then comes last)
        base, can = base[::-1], can[::-1]
        quantile = 1.0 - quantile
    moved = _shift_down(can, shift, keep_first=not lower)
    pooled = base + moved
    n = float(pooled.sum())
    if n <= 0:
        return 0.0, float(can.sum()), 0.0, float(base.sum())
    rank = quantile * (n - 1.0)
    idx = int(np.searchsorted(np.cumsum(pooled), rank, side="right"))
    k_b = float(base[idx + 1 :].sum())
    k_c = float(moved[idx + 1 :].sum())
    return k_c, float(can.sum()), k_b, float(base.sum())


def _shift_down(h: FloatArray, shift: int, *, keep_first: bool) -> FloatArray:
    """Move every bucket `shift` places towards index 0, piling what falls off onto the lowest moved bucket.
    With `keep_first`, index 0 (values ≤ 0) stays put and the positive buckets pile onto index 1."""
    if shift <= 0:
        return h
    out = np.zeros_like(h)
    start = 1 if keep_first else 0
    body = h[start:]
    if keep_first:
        out[0] = h[0]
    if body.size == 0:
        return out
    if shift >= body.size:
        out[start] = body.sum()
        return out
    out[start : start + body.size - shift] = body[shift:]
    out[start] += body[:shift].sum()
    return out
