"""Sequential tests: hand-checkable values, and validity under continuous monitoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from llmwatch.evaluators.canary_stats import (
    difference_bounds,
    log_e_worse,
    log_lik,
    log_mixture,
    rate_bound,
    tail_counts,
)


def test_jeffreys_mixture_is_the_product_of_predictive_probabilities() -> None:
    # Sequence 1, 0 under Beta(½, ½): P(1) = ½, then P(0 | one 1) = (0 + ½) / (1 + 1) = ¼ → ⅛.
    assert math.exp(float(log_mixture(1, 2))) == pytest.approx(1 / 8)
    assert math.exp(float(log_mixture(0, 1))) == pytest.approx(1 / 2)
    assert float(log_mixture(0, 0)) == 0.0


def test_log_lik_handles_zero_rates() -> None:
    assert float(log_lik(0, 5, 0.0)) == 0.0
    assert float(log_lik(2, 2, 0.5)) == pytest.approx(math.log(0.25))


def test_e_value_by_hand_with_a_margin() -> None:
    # Baseline 0 in 1, canary 2 in 2, null p_c ≤ p_b + 0.25. Mixture: ½ · (½ · ¾) = 3/16.
    # Null likelihood (1 − p)·(p + ¼)² is largest at p = 7/12: (5/12)·(5/6)² = 125/432 → E = 81/125.
    assert math.exp(float(log_e_worse(0, 1, 2, 2, abs_=0.25))) == pytest.approx(81 / 125, rel=1e-6)
    # Margin 0: (1 − p)·p² peaks at p = ⅔: 4/27 → E = (3/16)/(4/27) = 81/64.
    assert math.exp(float(log_e_worse(0, 1, 2, 2))) == pytest.approx(81 / 64, rel=1e-6)


def test_e_value_by_hand_two_arms() -> None:
    # Baseline 0 in 1, canary 1 in 1; null p_c ≤ p_b. Mixture: ½ · ½ = ¼; null max of (1 − p)·p is ¼ → E = 1.
    assert float(log_e_worse(0, 1, 1, 1)) == pytest.approx(0.0, abs=1e-9)


def test_e_value_is_below_one_inside_the_null_and_grows_with_evidence() -> None:
    assert float(log_e_worse(50, 1000, 2, 100)) < 0  # canary 2 % vs baseline 5 %: no evidence of worse
    small = float(log_e_worse(10, 1000, 5, 50))
    large = float(log_e_worse(100, 10000, 50, 500))
    assert 0 < small < large


def test_relative_margin_moves_the_null() -> None:
    # Canary 12 % vs baseline 10 %: evidence against "no worse" but not against "at most 50 % worse".
    assert float(log_e_worse(4000, 40000, 4800, 40000)) > math.log(100)
    assert float(log_e_worse(4000, 40000, 4800, 40000, rel=0.5)) < 0


def test_margins_are_validated() -> None:
    with pytest.raises(ValueError):
        log_e_worse(1, 10, 1, 10, rel=-0.1)
    with pytest.raises(ValueError):
        log_e_worse(1, 10, 1, 10, abs_=1.0)


def test_rate_bound_zero_events_by_hand() -> None:
    # k = 0, n = 10: mixture = Γ(10.5) / (Γ(11)·√π) = Π (2i−1)/(2i) for i=1..10 ≈ 0.176197.
    # Upper edge solves (1 − U)^10 = 0.176197·α.
    mix = math.prod((2 * i - 1) / (2 * i) for i in range(1, 11))
    expected = 1 - (mix * 0.05) ** 0.1
    assert float(rate_bound(0, 10, 0.05, upper=True)) == pytest.approx(expected, abs=1e-9)
    assert float(rate_bound(0, 10, 0.05, upper=False)) == 0.0


def test_rate_bound_brackets_the_estimate_and_narrows() -> None:
    lo, hi = float(rate_bound(30, 300, 0.05, upper=False)), float(rate_bound(30, 300, 0.05, upper=True))
    lo2, hi2 = float(rate_bound(300, 3000, 0.05, upper=False)), float(rate_bound(300, 3000, 0.05, upper=True))
    assert lo < 0.1 < hi and lo < lo2 < 0.1 < hi2 < hi
    assert float(rate_bound(0, 0, 0.05, upper=True)) == 1.0


def test_difference_bounds_without_baseline_data_are_the_canary_bounds_shifted() -> None:
    lower, upper = difference_bounds(0, 0, 5, 50, 0.1, baseline_share=0.5)
    assert float(upper) == pytest.approx(float(rate_bound(5, 50, 0.05, upper=True)))
    assert float(lower) == pytest.approx(float(rate_bound(5, 50, 0.05, upper=False)) - 1.0)


def test_tail_counts_by_hand() -> None:
    base = np.array([10.0, 5, 3, 2])  # n = 20; rank 0.8·19 = 15.2 → cumulative [10, 15, 18, 20] → bucket 2
    can = np.array([1.0, 1, 1, 7])
    assert tail_counts(base, can, 0.8) == (2.0, 20.0, 7.0, 10.0)
    # Low edge 0.25: rank 4.75 falls in bucket 0, nothing lies below it.
    assert tail_counts(base, can, 0.25, lower_tail=True) == (0.0, 20.0, 0.0, 10.0)
    # Low edge 0.6: rank 11.4 → bucket 1; below it: bucket 0.
    assert tail_counts(base, can, 0.6, lower_tail=True) == (10.0, 20.0, 1.0, 10.0)


def test_tail_counts_vectorised_over_rollouts() -> None:
    base = np.array([[10.0, 5, 3, 2], [0, 0, 10, 10]])
    can = np.array([[1.0, 1, 1, 7], [1, 1, 1, 1]])
    kb, nb, kc, nc = tail_counts(base, can, 0.8)
    assert kb.tolist() == [2, 0] and nb.tolist() == [20, 20] and kc.tolist() == [7, 0] and nc.tolist() == [10, 4]


def _monitor(rng: np.random.Generator, p_b: float, p_c: float, looks: int, batch: int, rollouts: int, ratio: int = 1):
    """Cumulative counts at each look, arrays (looks, rollouts); the baseline gets `ratio` times the traffic."""
    kb = rng.binomial(batch * ratio, p_b, (looks, rollouts)).cumsum(axis=0)
    kc = rng.binomial(batch, p_c, (looks, rollouts)).cumsum(axis=0)
    n = batch * np.arange(1, looks + 1)[:, None] * np.ones((1, rollouts))
    return kb, n * ratio, kc, n


def test_false_alarms_stay_below_alpha_at_the_null_boundary_under_continuous_monitoring() -> None:
    alpha, margin = 0.05, 0.02
    kb, nb, kc, nc = _monitor(np.random.default_rng(7), 0.10, 0.12, looks=30, batch=100, rollouts=2000)
    ever = (log_e_worse(kb, nb, kc, nc, abs_=margin) >= math.log(1 / alpha)).any(axis=0)
    assert ever.mean() <= alpha  # exact test: no slack needed (observed ≈ 0.01)


def test_a_naive_z_test_peeked_at_every_look_does_not_hold_its_level() -> None:
    # The reason for the sequential test: the same data judged by a fixed-sample z-test at every look.
    kb, nb, kc, nc = _monitor(np.random.default_rng(7), 0.10, 0.10, looks=30, batch=100, rollouts=2000)
    pooled = (kb + kc) / (nb + nc)
    z = (kc / nc - kb / nb) / np.sqrt(pooled * (1 - pooled) * (1 / nb + 1 / nc))
    ever = (z > norm.ppf(0.95)).any(axis=0)
    sequential = (log_e_worse(kb, nb, kc, nc) >= math.log(1 / 0.05)).any(axis=0)
    assert ever.mean() > 0.15 > 0.05 >= sequential.mean()


def test_detects_a_large_regression_quickly() -> None:
    # Error rate 1 % → 6 % at a 5 % canary share (baseline 19× the traffic), judged every 50 canary requests.
    kb, nb, kc, nc = _monitor(np.random.default_rng(3), 0.01, 0.06, looks=40, batch=50, rollouts=500, ratio=19)
    fired = log_e_worse(kb, nb, kc, nc, abs_=0.001) >= math.log(800)
    first = (np.argmax(fired, axis=0) + 1) * 50
    assert fired.any(axis=0).mean() >= 0.99 and np.median(first) <= 500


def test_pass_bounds_cover_the_truth() -> None:
    kb, nb, kc, nc = _monitor(np.random.default_rng(11), 0.05, 0.05, looks=20, batch=200, rollouts=1000)
    lower, upper = difference_bounds(kb, nb, kc, nc, 0.05)
    missed = ((lower > 0) | (upper < 0)).any(axis=0)
    assert missed.mean() <= 0.05
