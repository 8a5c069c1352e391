"""The judge's statistics: conditional likelihood ratios by hand, validity under shared changes and continuous
monitoring (Ville), detection, the sample-ratio test, the floor route and the latency exceedance table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmwatch.evaluators.canary.stats import (
    EProcess,
    RatioEstimate,
    SrmProcess,
    conditional_log_lr,
    exceedance_table,
    floor_log_e,
    kl_events,
    log_mixture,
    log_pi,
)


def test_share_probability_by_hand() -> None:
    # π(ρ) = ρs / (ρs + 1 − s): at s = 1/2, ρ = 3 → 3/4; ρ = 1 → s
    lp, lq = log_pi(math.log(3.0), 0.5)
    assert math.exp(lp) == pytest.approx(0.75) and math.exp(lq) == pytest.approx(0.25)
    assert math.exp(log_pi(0.0, 0.05)[0]) == pytest.approx(0.05)


def test_conditional_likelihood_ratio_by_hand() -> None:
    # 3 of 4 events on the canary at s = 1/2: (0.75/0.5)^3 (0.25/0.5)^1 for ρ₁ = 3 against ρ₀ = 1
    assert conditional_log_lr(3, 4, 0.5, math.log(3), 0.0) == pytest.approx(3 * math.log(1.5) + math.log(0.5))
    assert conditional_log_lr(3, 0, 0.5, math.log(3), 0.0) == 0.0  # no events: no evidence
    assert conditional_log_lr(1, 4, 1.0, math.log(3), 0.0) == 0.0  # one arm has no trials: none either


def test_kl_per_event_by_hand() -> None:
    # truth ρ = 1 at s = 1/2 against ρ₀ = 2 (π₀ = 2/3): KL(1/2 ‖ 2/3)
    assert kl_events(0.5, 0.0, math.log(2)) == pytest.approx(0.5 * math.log(0.75) + 0.5 * math.log(1.5))


def test_mantel_haenszel_estimate_by_hand() -> None:
    est = RatioEstimate()
    est.add(k_c=6, n_c=100, k_b=4, n_b=100)  # (6·100/200) / (4·100/200) = 1.5
    assert est.raw == pytest.approx(1.5)
    assert est.value(default=1.0, pseudo=2.0) == pytest.approx((3 + 2) / (2 + 2))


def _aa_strata(rng: np.random.Generator, strata: int, rollouts: int, *, bursts: bool) -> np.ndarray:
    """Bad events per stratum for A/A rollouts whose shared rate drifts and bursts: (rollouts, strata, 4)."""
    t = np.arange(strata)
    rate = 0.01 * (1 + 0.5 * t / strata)  # both arms drift up 50 %
    if bursts:
        rate = np.where(t % 15 == 5, 0.3, rate)  # and burst together
    weights = np.repeat([0.01, 0.05, 0.25, 0.5], strata // 4 + 1)[:strata]
    n = 6000
    n_c = rng.binomial(n, weights, size=(rollouts, strata))
    n_b = n - n_c
    return np.stack([rng.binomial(n_c, rate), n_c, rng.binomial(n_b, rate), n_b], axis=-1)


@pytest.mark.parametrize("bursts", [False, True])
def test_fail_evidence_stays_valid_when_both_arms_drift_and_burst_together(bursts: bool) -> None:
    """Ville: under continuous monitoring the chance of ever reaching 1/α is at most α, whatever both arms share."""
    rng = np.random.default_rng(7 if bursts else 3)
    alpha, rollouts = 0.05, 600
    data = _aa_strata(rng, 40, rollouts, bursts=bursts)
    crossed = 0
    for r in range(rollouts):
        e = EProcess("fail", 1.0, default=2.0)
        best = 0.0
        for k_c, n_c, k_b, n_b in data[r]:
            e.update(k_c, n_c, k_b, n_b)
            best = max(best, e.value_log)
        crossed += best >= math.log(1 / alpha)
    assert crossed / rollouts <= alpha + 0.015  # a 3-sigma allowance on 600 rollouts


def test_pass_evidence_is_valid_at_the_forbidden_ratio() -> None:
    """When the canary's rate is exactly the forbidden ×2, the pass e-process ever reaches 1/α at most α of the time."""
    rng = np.random.default_rng(11)
    alpha, rollouts, crossed = 0.1, 500, 0
    for _ in range(rollouts):
        e = EProcess("pass", 2.0, default=1.0, pseudo=20.0)
        best = 0.0
        for w in (0.05,) * 10 + (0.25,) * 10 + (0.5,) * 10:
            n_c = rng.binomial(6000, w)
            n_b = 6000 - n_c
            e.update(rng.binomial(n_c, 0.004), n_c, rng.binomial(n_b, 0.002), n_b)
            best = max(best, e.value_log)
        crossed += best >= math.log(1 / alpha)
    assert crossed / rollouts <= alpha + 0.04


def test_fail_evidence_grows_fast_for_a_large_regression_and_restarts_catch_a_late_one() -> None:
    e = EProcess("fail", 1.2, default=2.4, weights=[0.5])
    for _ in range(10):  # 10 strata of a canary 30 % better
        e.update(7, 1000, 1000, 99000)
    for _ in range(3):  # a step later: the canary is 3× worse; a copy started at the step weighs 1/4
        e.update(30, 1000, 1000, 99000)
    before = e.mixture_log(pending=0.5)
    e.restart(0.25)
    for _ in range(10):
        e.update(30, 1000, 1000, 99000)
    assert e.mixture_log(pending=0.25) > math.log(1 / 0.001) > before
    assert e.log_e[1] > e.log_e[0]  # the fresh copy carries the evidence; the first still pays for the good start


def test_srm_flags_a_canary_getting_half_its_weight_and_not_a_healthy_one() -> None:
    rng = np.random.default_rng(5)
    bad, good = SrmProcess(), SrmProcess()
    for _ in range(10):  # 10 minutes at 20 requests/s, weight 1 %
        bad.update(rng.binomial(1200, 0.005), 1200, 0.01)
        good.update(rng.binomial(1200, 0.01), 1200, 0.01)
    assert bad.max_log_e >= math.log(1000) > good.max_log_e
    assert bad.observed / bad.requests == pytest.approx(0.005, rel=0.3)


def test_floor_route_by_hand() -> None:
    # no event in n trials against H₀: p ≥ f: log mixture(0, n) − n·log(1 − f)
    n, f = 20000, 0.0005
    assert floor_log_e(0, n, f) == pytest.approx(log_mixture(0, n) - n * math.log1p(-f))
    assert floor_log_e(0, n, f) > math.log(20)  # 20,000 clean requests rule a 0.05 % rate out at 5 %
    assert floor_log_e(30, 20000, f) < 0  # 0.15 % observed: no evidence it is below 0.05 %


def test_exceedance_table_by_hand() -> None:
    # buckets: [≤0, k0, k1, k2, k3]; pooled 20 values, p50 rank 9.5 falls in bucket 2 (cumulative 2, 10, 16, 20)
    base = np.array([0, 2, 4, 3, 1], dtype=float)
    can = np.array([0, 0, 4, 3, 3], dtype=float)
    assert exceedance_table(base, can, 0.5, 0) == (6.0, 10.0, 4.0, 10.0)
    # the canary's values divided by one bucket's factor: its counts move down one bucket before the threshold
    k_c, n_c, _, n_b = exceedance_table(base, can, 0.5, 1)
    assert (n_c, n_b) == (10.0, 10.0) and k_c < 6.0
    # the lower tail of the same data: beyond the pooled p50 from below
    assert exceedance_table(base, can, 0.5, 0, lower=True)[0] <= 4.0
