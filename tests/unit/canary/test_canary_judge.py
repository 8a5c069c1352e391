"""Judge: arm statistics, per-metric classification, the scorer, and the verdict it returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from llmwatch.evaluators.canary_judge import (
    JUDGE_NAME,
    ArmStats,
    Counts,
    Decision,
    Judge,
    JudgeConfig,
    MetricSpec,
    aligned_histograms,
    decide,
    default_metrics,
    metric_counts,
    score,
)
from llmwatch.evaluators.metrics import Thresholds
from llmwatch.schemas import EvalScores

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def ev(i: int, version: str = "v1", **kw: object) -> EvalScores:
    fields: dict[str, object] = {"status": "ok", "ttft_ms": 400.0, "tpot_ms": 40.0, "output_tokens": 200}
    fields.update(kw)
    return EvalScores(
        event_id=f"{version}-{i}", ts=T0 + timedelta(seconds=i), deployment="chat", model_version=version, **fields
    )


def arm(version: str, n: int, rng: np.random.Generator, *, ttft_factor: float = 1.0, leak: float = 0.0) -> ArmStats:
    stats = ArmStats(deployment="chat", model_version=version)
    for i in range(n):
        stats.add(
            ev(
                i,
                version,
                status="error" if rng.random() < 0.01 else "ok",
                ttft_ms=float(400 * ttft_factor * np.exp(0.5 * rng.standard_normal())),
                tpot_ms=float(40 * np.exp(0.3 * rng.standard_normal())),
                output_tokens=int(200 * np.exp(0.6 * rng.standard_normal())),
                toxicity_response=float(rng.random() < 0.02) * 0.9,
                pii_leak=bool(rng.random() < leak),
                injection_success=False,
            )
        )
    return stats


# ------------------------------------------------------------------------------------------ ArmStats
def test_arm_counting_rules_by_hand() -> None:
    a = ArmStats()
    a.add(ev(0, toxicity_response=0.7, pii_leak=False, hallucination=0.2))
    a.add(ev(1, status="error", ttft_ms=None, tpot_ms=None))
    a.add(ev(2, status="cancelled"))
    a.add(ev(3, toxicity_response=0.4, pii_leak=True, injection_success=True, hallucination=0.9))
    assert a.requests == 4 and a.model_version == "v1"
    assert (a.counts["errors"].n, a.counts["errors"].k) == (3, 1)  # cancelled is not the model's error
    assert (a.counts["toxicity"].n, a.counts["toxicity"].k) == (2, 1)  # 0.7 >= 0.5, 0.4 is not
    assert (a.counts["pii_leak"].n, a.counts["pii_leak"].k) == (2, 1)
    assert (a.counts["injection_success"].n, a.counts["injection_success"].k) == (1, 1)
    assert (a.counts["hallucination"].n, a.counts["hallucination"].k) == (2, 1)
    assert a.sketches["ttft_ms"].count == 2  # ok requests only
    assert a.first_ts == T0 and a.last_ts == T0 + timedelta(seconds=3)


def test_arm_refuses_another_version() -> None:
    a = ArmStats(model_version="v1")
    with pytest.raises(ValueError, match="v2"):
        a.add(ev(0, "v2"))
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(ArmStats(model_version="v2"))
    with pytest.raises(ValueError, match="thresholds"):
        a.merge(ArmStats(model_version="v1", thresholds=Thresholds(toxicity=0.9)))


def test_merge_equals_adding_everything_and_survives_serialisation() -> None:
    events = [ev(i, ttft_ms=float(100 + i), toxicity_response=0.9 * (i % 7 == 0)) for i in range(200)]
    first, second, everything = ArmStats(), ArmStats(), ArmStats()
    for e in events[:120]:
        first.add(e)
    for e in events[120:]:
        second.add(e)
    for e in events:
        everything.add(e)
    merged = ArmStats.from_dict(first.to_dict()).merge(ArmStats.from_dict(second.to_dict()))
    assert merged.requests == everything.requests == 200
    assert merged.counts == everything.counts
    assert merged.counts["toxicity"].k == 29  # i % 7 == 0 for i in 0..199
    assert merged.first_ts == everything.first_ts and merged.last_ts == everything.last_ts
    for q in (0.5, 0.95, 0.99):  # the decoded mapping may differ in the last float digits only
        assert merged.quantile("ttft_ms", q) == pytest.approx(everything.quantile("ttft_ms", q), rel=1e-9)
    assert everything.quantile("ttft_ms", 0.5) == pytest.approx(199.5, rel=0.01)  # within the sketch's 1 %


def test_aligned_histograms_share_buckets() -> None:
    a, b = ArmStats(), ArmStats()
    for v in (1.0, 1.0, 2.0):
        a.add(ev(0, ttft_ms=v))
    for v in (2.0, 400.0, 0.0):
        b.add(ev(0, ttft_ms=v))
    ha, hb = aligned_histograms(a.sketches["ttft_ms"], b.sketches["ttft_ms"])
    assert ha.shape == hb.shape and ha.sum() == 3 and hb.sum() == 3
    assert hb[0] == 1  # the zero bucket comes first
    assert np.flatnonzero(ha)[-1] == np.flatnonzero(hb)[1]  # 2.0 lands in the same bucket in both


# ------------------------------------------------------------------------------------- classifier
def test_metric_spec_is_validated() -> None:
    with pytest.raises(ValueError, match="source"):
        MetricSpec(name="x", source="ttft_ms")  # a rate needs a counter
    with pytest.raises(ValueError, match="pass margins"):
        MetricSpec(name="x", source="errors", margin_abs=0.05, pass_margin_abs=0.01)
    with pytest.raises(ValueError, match="unique"):
        JudgeConfig(metrics=[MetricSpec(name="x", source="errors")] * 2)


def test_bonferroni_split_counts_both_sides_of_either() -> None:
    cfg = JudgeConfig(
        alpha_fail=0.03,
        metrics=[
            MetricSpec(name="a", source="errors"),
            MetricSpec(name="b", source="toxicity", direction="either"),
        ],
    )
    assert cfg.tests == 3 and cfg.alpha_per_test == pytest.approx(0.01)


def _counts(kb: float, nb: float, kc: float, nc: float) -> dict[str, Counts]:
    return {"increase": Counts(*(np.asarray(float(x)) for x in (kb, nb, kc, nc)))}


def test_decide_fail_pass_and_no_data() -> None:
    spec = MetricSpec(name="e", source="errors", margin_abs=0.001, pass_margin_abs=0.02)
    bad = decide(spec, _counts(100, 10000, 60, 1000), 0.001, 0.05)  # 1 % vs 6 %
    assert bool(bad.fail) and not bool(bad.passed) and float(bad.p_value) < 0.001
    fine = decide(spec, _counts(300, 30000, 30, 3000), 0.001, 0.05)  # 1 % vs 1 %
    assert not bool(fine.fail) and bool(fine.passed)
    empty = decide(spec, _counts(100, 10000, 0, 0), 0.001, 0.05)
    assert bool(empty.no_data) and not bool(empty.fail) and not bool(empty.passed)


def test_decrease_direction_flips_the_bad_side() -> None:
    spec = MetricSpec(name="ok_share", source="errors", direction="decrease", pass_margin_abs=0.05)
    # The counter's rate dropping from 50 % to 20 % is bad in this direction, rising is not.
    drop = metric_counts(spec, {"errors": (10000, 5000)}, {"errors": (1000, 200)}, {})
    rise = metric_counts(spec, {"errors": (10000, 5000)}, {"errors": (1000, 800)}, {})
    assert bool(decide(spec, drop, 0.001, 0.05).fail) and not bool(decide(spec, rise, 0.001, 0.05).fail)


def _decision(fail: bool, passed: bool = False, no_data: bool = False) -> Decision:
    f = np.asarray(fail)
    return Decision(f, np.asarray(passed), np.asarray(no_data), {}, np.asarray(1.0))


def test_scorer_weighted_share_by_hand() -> None:
    metrics = [
        MetricSpec(name="a", source="errors", weight=1),
        MetricSpec(name="b", source="toxicity", weight=1),
        MetricSpec(name="c", source="pii_leak", weight=2),
    ]
    decisions = [_decision(False), _decision(True), _decision(False)]
    # Non-failing weight 1 + 2 = 3 of 4 → score 75.
    assert float(score(decisions, JudgeConfig(metrics=metrics, fail_score=75), 10**6).score) == 75
    assert not bool(score(decisions, JudgeConfig(metrics=metrics, fail_score=75), 10**6).fail)
    assert bool(score(decisions, JudgeConfig(metrics=metrics, fail_score=80), 10**6).fail)
    # A metric without data leaves the score: 1 of 2 remaining weight → 50.
    no_c = [_decision(False), _decision(True), _decision(False, no_data=True)]
    assert float(score(no_c, JudgeConfig(metrics=metrics, fail_score=0), 10**6).score) == 50


def test_scorer_critical_failure_decides_whatever_the_score() -> None:
    metrics = [MetricSpec(name="a", source="errors", weight=99), MetricSpec(name="c", source="pii_leak", critical=True)]
    o = score([_decision(False), _decision(True)], JudgeConfig(metrics=metrics, fail_score=0), 10**6)
    assert bool(o.critical_fail) and bool(o.fail)


def test_scorer_pass_needs_every_metric_sample_and_required_data() -> None:
    metrics = [MetricSpec(name="a", source="errors", required=True), MetricSpec(name="b", source="toxicity")]
    cfg = JudgeConfig(metrics=metrics, min_canary_n=100)
    both = [_decision(False, True), _decision(False, True)]
    assert bool(score(both, cfg, 100).passed) and not bool(score(both, cfg, 99).passed)
    assert not bool(score([_decision(False, True), _decision(False, False)], cfg, 100).passed)
    assert bool(score([_decision(False, True), _decision(False, no_data=True)], cfg, 100).passed)
    assert not bool(score([_decision(False, no_data=True), _decision(False, True)], cfg, 100).passed)


# -------------------------------------------------------------------------------------------- judge
def test_judge_fails_a_slow_canary_on_ttft_with_the_evidence() -> None:
    rng = np.random.default_rng(5)
    base, can = arm("v1", 4000, rng), arm("v2", 200, rng, ttft_factor=2.0)
    v = Judge().evaluate(base, can, T0 + timedelta(hours=1), canary_weight=0.05)
    assert v.result == "fail" and v.judge == JUDGE_NAME == "msprt@1"
    ttft = next(m for m in v.metrics if m.metric == "ttft")
    assert ttft.result == "fail" and ttft.reason.startswith("HIGH: share above baseline p95")
    assert ttft.p_value is not None and ttft.p_value < 1e-6 and ttft.effect_size is not None and ttft.effect_size > 0.2
    assert (v.baseline_n, v.canary_n, v.canary_weight) == (4000, 200, 0.05)
    assert (v.baseline_version, v.canary_version, v.deployment) == ("v1", "v2", "chat")
    assert v.window_start == T0 and v.window_end == T0 + timedelta(seconds=3999)
    assert "ttft" in v.reason


def test_judge_a_a_is_not_a_failure() -> None:
    rng = np.random.default_rng(6)
    v = Judge().evaluate(arm("v1", 4000, rng), arm("v2", 400, rng), T0)
    assert v.result == "inconclusive" and all(m.result != "fail" for m in v.metrics)
    assert "canary sample 400 < 500" in v.reason


def test_judge_passes_an_identical_canary_with_loose_margins() -> None:
    rng = np.random.default_rng(8)
    loose = [m.model_copy(update={"pass_margin_abs": 0.2}) for m in default_metrics()]
    judge = Judge(JudgeConfig(metrics=loose, min_canary_n=300))
    v = judge.evaluate(arm("v1", 3000, rng), arm("v2", 600, rng), T0)
    assert v.result == "pass", v.reason
    hallucination = next(m for m in v.metrics if m.metric == "hallucination_rate")
    assert hallucination.result == "inconclusive" and hallucination.reason.startswith("NO_DATA")


def test_pii_leak_is_critical_even_with_a_tolerant_score() -> None:
    rng = np.random.default_rng(9)
    judge = Judge(JudgeConfig(fail_score=0))
    v = judge.evaluate(arm("v1", 6000, rng), arm("v2", 600, rng, leak=0.05), T0)
    assert v.result == "fail" and v.reason.startswith("critical metric failed: pii_leak_rate")


def test_required_metric_without_data_blocks_a_pass() -> None:
    rng = np.random.default_rng(10)
    loose = [m.model_copy(update={"pass_margin_abs": 0.5}) for m in default_metrics()]
    base, can = arm("v1", 2000, rng), arm("v2", 600, rng)
    can.agg.sketches["ttft"] = ArmStats().agg.sketches["ttft"]  # the canary never reported TTFT
    v = Judge(JudgeConfig(metrics=loose, min_canary_n=300)).evaluate(base, can, T0)
    assert v.result == "inconclusive" and "required" in v.reason and "ttft" in v.reason
