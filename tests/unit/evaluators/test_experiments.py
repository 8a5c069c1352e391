"""A/B statistics, each number checkable by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from llmwatch.evaluators.experiments import (
    ArmSummary,
    analyse,
    arms_from_rows,
    render_report,
    sample_size_two_proportions,
    two_proportions,
    welch,
)


def test_two_proportion_z_test() -> None:
    # 50/100 vs 60/100: pooled p = 0.55, se0 = √(0.55·0.45·(2/100)) = 0.070356, z = 0.1 / 0.070356 = 1.4213,
    # p = 2·(1 − Φ(1.4213)) = 0.1552; unpooled se = √(0.25/100 + 0.24/100) = 0.07, CI = 0.1 ± 1.96·0.07
    c = two_proportions("thumbs_up_rate", 50, 100, 60, 100, 0.05)
    assert c.diff == pytest.approx(0.1)
    assert c.statistic == pytest.approx(1.4213, abs=1e-4)
    assert c.p_value == pytest.approx(0.1552, abs=1e-4)
    assert c.ci_low == pytest.approx(0.1 - 1.959964 * 0.07, abs=1e-6)
    assert c.ci_high == pytest.approx(0.1 + 1.959964 * 0.07, abs=1e-6)
    assert not c.significant
    # ten times the sample, same rates: z = 1.4213·√10 = 4.4947, p ≈ 7e-6
    big = two_proportions("thumbs_up_rate", 500, 1000, 600, 1000, 0.05)
    assert big.statistic == pytest.approx(1.4213 * math.sqrt(10), rel=1e-3) and big.significant


def test_two_proportions_without_data() -> None:
    c = two_proportions("x", 0, 0, 3, 10, 0.05)
    assert c.diff is None and c.p_value is None and not c.significant and c.treatment == 0.3


def test_welch_t_test() -> None:
    # means 10 vs 12, variances 4 and 9, n 20 and 30: se = √(4/20 + 9/30) = √0.5 = 0.7071, t = 2/0.7071 = 2.8284;
    # df = 0.5² / (0.2²/19 + 0.3²/29) = 0.25 / 0.0052087 = 48.0; two-sided p = 0.0068
    c = welch("feedback_score", 10, 4, 20, 12, 9, 30, 0.05)
    assert c.statistic == pytest.approx(2.8284, abs=1e-4)
    assert c.p_value == pytest.approx(0.0068, abs=1e-4)
    assert c.significant and c.ci_low is not None and c.ci_low > 0
    assert welch("x", 1, 0, 1, 2, 0, 1, 0.05).diff is None  # fewer than two in an arm


def test_sample_size() -> None:
    # 0.5 → 0.6: p̄ = 0.55; (1.95996·√(2·0.55·0.45) + 0.84162·√(0.25 + 0.24))² / 0.1²
    #   = (1.95996·0.70356 + 0.84162·0.7)² / 0.01 = (1.37894 + 0.58913)² / 0.01 = 387.3 → 388
    assert sample_size_two_proportions(0.5, 0.1) == 388
    # 0.10 → 0.12: (1.95996·√(2·0.11·0.89) + 0.84162·√(0.09 + 0.1056))² / 0.02² = 3840.8 → 3841
    assert sample_size_two_proportions(0.1, 0.02) == 3841
    assert sample_size_two_proportions(0.1, 0.02, power=0.9) > 3841
    assert sample_size_two_proportions(0.95, 0.1) == sample_size_two_proportions(0.85, 0.1)  # mirrored near 1
    with pytest.raises(ValueError):
        sample_size_two_proportions(0.5, 0)


def arms() -> dict[str, ArmSummary]:
    return {
        "v1": ArmSummary("v1", requests=1000, finished=1000, errors=10, thumbs=100, thumbs_up=50, score_n=20,
                         score_mean=0.6, score_var=0.04, ttft_n=990, ttft_mean=120, ttft_var=900),
        "v2": ArmSummary("v2", requests=990, finished=990, errors=12, thumbs=100, thumbs_up=60, score_n=20,
                         score_mean=0.7, score_var=0.04, ttft_n=978, ttft_mean=125, ttft_var=900),
        "v3": ArmSummary("v3", requests=500, finished=500, errors=5, thumbs=50, thumbs_up=40),
    }  # fmt: skip


def test_analysis_picks_the_largest_arm_as_control_and_splits_alpha() -> None:
    a = analyse(arms(), alpha=0.05, mde=0.1)
    assert a["control"] == "v1" and a["alpha_per_comparison"] == pytest.approx(0.025)
    thumbs = {arm: comps[0] for arm, comps in a["comparisons"].items()}
    assert thumbs["v2"]["metric"] == "thumbs_up_rate" and thumbs["v2"]["p_value"] == pytest.approx(0.1552, abs=1e-4)
    # v3: 50/100 vs 40/50 → pooled 0.6, se0 = √(0.24·(1/100 + 1/50)) = 0.084853, z = 0.3 / 0.084853 = 3.5355
    assert thumbs["v3"]["statistic"] == pytest.approx(3.5355, abs=1e-4) and thumbs["v3"]["significant"]
    s = a["sample_size"]
    # at α = 0.025 the z is 2.2414: (2.2414·0.70356 + 0.84162·0.7)² / 0.01 = (1.57695 + 0.58913)² / 0.01 = 469.2 → 470
    assert s["thumbs_per_arm_needed"] == 470 and s["thumbs_in_smallest_arm"] == 50 and not s["complete"]
    with pytest.raises(ValueError, match="control arm"):
        analyse(arms(), control="v9")


def test_report_text() -> None:
    text, data = render_report("exp1", arms(), control="v2", mde=0.1)
    assert data["experiment"] == "exp1" and data["control"] == "v2"
    assert "experiment exp1: 3 arms, control v2" in text
    assert "v1 vs v2" in text and "v3 vs v2" in text and "SIGNIFICANT" in text
    assert "feedback_score" in text and "not enough data" in text  # v3 has no scores
    assert "keep collecting" in text


def test_arms_from_rows_take_the_error_rate_over_finished_requests() -> None:
    events = [("v1", 98, 3, 90, 120.0, 900.0, 118.0, 170.0, 100)]  # 100 requests, 2 cancelled, 3 errors
    feedback = [("v1", 10, 7, 4, 0.5, 0.01)]
    scores = [("v1", 95, 2, 95, 1, 40, 4)]
    [a] = arms_from_rows(events, feedback, scores).values()
    assert (a.requests, a.finished, a.errors, a.ttft_n, a.ttft_p95) == (100, 98, 3, 90, 170.0)
    assert (a.thumbs, a.thumbs_up, a.score_n) == (10, 7, 4)
    assert (a.scored, a.toxic, a.pii_n, a.pii_leaks, a.halluc_n, a.hallucinated) == (95, 2, 95, 1, 40, 4)
