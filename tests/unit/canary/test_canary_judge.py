"""Judge stratified@2: arm statistics, the policy, strata and segments, the classifier, the scorer and the verdict."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from ddsketch.mapping import LogarithmicMapping

from llmwatch.evaluators.canary import (
    JUDGE_NAME,
    ArmData,
    ArmStats,
    Hist,
    Judge,
    JudgeConfig,
    MetricSpec,
    QuantileMargin,
    default_metrics,
)
from llmwatch.evaluators.canary.config import step_alpha
from llmwatch.evaluators.metrics import Thresholds
from llmwatch.schemas import EvalScores

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def ev(i: int, version: str = "v1", s: float = 0.0, **kw: object) -> EvalScores:
    fields: dict[str, object] = {
        "status": "ok",
        "ttft_ms": 400.0,
        "tpot_ms": 40.0,
        "e2e_ms": 4000.0,
        "output_tokens": 200,
    }
    fields.update(kw)
    return EvalScores(event_id=f"{version}-{i}", ts=at(s), deployment="chat", model_version=version, **fields)


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


def test_arm_refuses_another_version_and_merges_exactly() -> None:
    a = ArmStats(model_version="v1")
    with pytest.raises(ValueError, match="v2"):
        a.add(ev(0, "v2"))
    with pytest.raises(ValueError, match="thresholds"):
        a.merge(ArmStats(model_version="v1", thresholds=Thresholds(toxicity=0.9)))
    events = [ev(i, ttft_ms=float(100 + i), toxicity_response=0.9 * (i % 7 == 0)) for i in range(200)]
    first, second, everything = ArmStats(), ArmStats(), ArmStats()
    for e in events[:120]:
        first.add(e)
    for e in events[120:]:
        second.add(e)
    for e in events:
        everything.add(e)
    merged = ArmStats.from_dict(first.to_dict()).merge(ArmStats.from_dict(second.to_dict()))
    assert merged.counts == everything.counts and merged.counts["toxicity"].k == 29


def test_arm_data_is_the_aggregate_reduced() -> None:
    a = ArmStats()
    for v in (1.0, 1.0, 2.0, 400.0):
        a.add(ev(0, ttft_ms=v))
    a.add(ev(1, status="error"))
    data = ArmData.from_aggregate(a.agg)
    assert data.requests == 5 and data.rate("errors") == (5.0, 1.0) and data.rate("toxicity") == (0.0, 0.0)
    h = data.hist("ttft")
    assert h.total == 4 and h.zero == 0
    mapping = LogarithmicMapping(0.01)
    assert h.quantile(0.5, mapping) == pytest.approx(a.quantile("ttft_ms", 0.5))
    other = Hist(1.0, h.offset - 3, np.array([2.0]))
    merged = h.copy().merge(other)
    assert merged.total == 7 and merged.offset == h.offset - 3 and merged.zero == 1.0
    ha, hb = Hist.aligned(h, other)
    assert ha.shape == hb.shape and ha.sum() == 4 and hb.sum() == 3


# --------------------------------------------------------------------------------------------- policy
def test_metric_spec_and_config_are_validated() -> None:
    with pytest.raises(ValueError, match="source"):
        MetricSpec(name="x", source="ttft")  # a rate needs a counter
    with pytest.raises(ValueError, match="forbidden must exceed"):
        MetricSpec(name="x", source="errors", tolerated=0.5, forbidden=0.5)
    with pytest.raises(ValueError, match="forbidden"):
        QuantileMargin(q=0.99, tolerated=0.2, forbidden=0.1)
    with pytest.raises(ValueError, match="unique"):
        JudgeConfig(metrics=[MetricSpec(name="x", source="errors")] * 2)


def test_latency_margins_are_the_same_for_ttft_tpot_and_e2e() -> None:
    by_name = {m.name: m for m in default_metrics()}
    assert by_name["ttft"].quantiles == by_name["tpot"].quantiles == by_name["e2e"].quantiles
    assert [m.q for m in by_name["ttft"].quantiles] == [0.5, 0.95, 0.99]
    # a ×3 change of a 0.2 % rate can never reach 100 %: the forbidden ratio is below 3
    assert all(1 + by_name[n].forbidden < 3 for n in ("toxicity_rate", "pii_leak_rate", "error_rate"))


def test_bonferroni_counts_every_quantile_and_side() -> None:
    cfg = JudgeConfig(
        alpha_fail=0.04,
        metrics=[
            MetricSpec(name="e", source="errors"),
            MetricSpec(
                name="d",
                kind="quantile",
                source="output_tokens",
                direction="either",
                quantiles=[QuantileMargin(q=0.5, tolerated=0.1, forbidden=0.2)],
            ),
            MetricSpec(
                name="t", kind="quantile", source="ttft", quantiles=[QuantileMargin(q=0.9, tolerated=0, forbidden=0.1)]
            ),
        ],
    )
    assert cfg.tests == 4 and cfg.alpha_per_test == pytest.approx(0.01)


def test_risk_budget_by_hand() -> None:
    cfg = JudgeConfig(alpha_pass=0.05, steps=[0.01, 0.05, 0.25, 0.5, 1.0])
    assert [cfg.next_weight(w) for w in (0.01, 0.05, 0.25, 0.5)] == [0.05, 0.25, 0.5, 1.0]
    assert [cfg.pass_alpha(cfg.next_weight(w)) for w in (0.01, 0.05, 0.25, 0.5)] == pytest.approx([1, 0.2, 0.1, 0.05])
    assert step_alpha(0.05, 1.0) == 0.05 and step_alpha(0.05, 0.01) == 1.0
    assert cfg.restart_weights() == (0.5, pytest.approx(0.5 / 3))  # the start copy, then one per later judged step


# ----------------------------------------------------------------------------------- strata, segments
def fast(**kw: object) -> JudgeConfig:
    base: dict[str, object] = {"stratum_s": 10, "lateness_s": 2, "settle_s": 2, "min_canary_n": 1}
    return JudgeConfig(**(base | kw))


def test_scores_land_in_strata_of_their_segment_and_late_ones_are_left_out() -> None:
    judge = Judge(fast())
    e = judge.new_evidence(deployment="chat", baseline="v1", canary="v2", started_at=T0, weight=0.1)
    assert e.add(ev(0, s=1)) == "settling"  # the routers are still switching
    assert e.add(ev(1, "v3", s=5)) == "ignored"
    assert e.add(ev(2, s=5)) == "added" and e.add(ev(3, "v2", s=15)) == "added"
    assert e.close(at(11)) == 0  # [2, 12) ends at 12, judged at 14
    assert e.close(at(14)) == 1 and e.baseline_n == 1 and e.canary_n == 0
    assert e.add(ev(4, s=9)) == "late"
    e.set_weight(0.5, at(20))  # a new step: [12, 20) is cut there and a new segment begins
    assert e.add(ev(5, "v2", s=21)) == "settling" and e.add(ev(6, "v2", s=23)) == "added"
    assert e.close(at(22)) == 1  # [12, 20): judged at 22
    assert e.canary_n == 1 and e.segment == 1 and e.restarts == 1
    assert e.close(at(40)) == 1 and e.canary_n == 2 and e.window_end == at(30)  # strata align on the segment


# ---------------------------------------------------------------------------------- judge, by scenario
def feed(judge: Judge, seconds: int, per_s: int, weight: float, rng: np.random.Generator, *, ttft_c: float = 1.0,
         leak_c: float = 0.0, start_weight: float | None = None) -> object:  # fmt: skip
    e = judge.new_evidence(deployment="chat", baseline="v1", canary="v2", started_at=T0, weight=start_weight or weight)
    i = 0
    for s in range(seconds):
        for _ in range(per_s):
            canary = rng.random() < weight
            version = "v2" if canary else "v1"
            ttft = 400 * np.exp(0.5 * rng.standard_normal()) * (ttft_c if canary else 1.0)
            leak = bool(rng.random() < (leak_c if canary else 0.0))
            e.add(ev(i, version, s=s + rng.random(), ttft_ms=float(ttft), pii_leak=leak, toxicity_response=0.01))
            i += 1
    e.close(at(seconds + 60))
    return e


def test_judge_fails_a_slow_canary_on_ttft_naming_quantile_change_and_sample() -> None:
    judge = Judge(fast())
    v = judge.evaluate(feed(judge, 120, 20, 0.5, np.random.default_rng(1), ttft_c=2.0), at(200))
    assert v.result == "fail" and v.judge == JUDGE_NAME == "stratified@2"
    failed = [m for m in v.metrics if m.result == "fail"]
    assert {m.metric for m in failed} == {"ttft"} and {m.label for m in failed} == {"HIGH"}
    p50 = next(m for m in failed if m.quantile == 0.5)
    assert p50.effect_size == pytest.approx(1.0, abs=0.25) and p50.canary_n > 500 and p50.baseline_n > 500
    assert "ttft p50" in v.reason and "ms" in v.reason and "tolerated +5%" in v.reason and "canary" in v.reason
    assert p50.p_value is not None and p50.p_value < 0.01


def test_judge_passes_a_a_and_says_which_metrics_did_not_gate() -> None:
    metrics = [m.widened(4).model_copy(update={"critical": False}) for m in default_metrics()]
    judge = Judge(fast(alpha_pass=0.5, metrics=metrics))
    e = feed(judge, 120, 20, 0.5, np.random.default_rng(2))
    v = judge.evaluate(e, at(200))
    assert v.result == "pass", v.reason
    assert v.pass_evidence is not None and v.pass_threshold is not None and v.pass_evidence >= v.pass_threshold
    waived = {m.metric for m in v.metrics if m.label == "NO_DATA"}
    assert {"injection_success_rate", "hallucination_rate", "pii_leak_rate"} <= waived  # no events here: not gating
    assert {"tpot", "e2e"} <= waived  # constant in this traffic: no quantile to compare
    assert all(not m.gating for m in v.metrics if m.label == "NO_DATA" and not m.critical)
    assert "NO_DATA, not gating" in v.reason


def test_critical_metric_with_too_little_data_blocks_and_says_how_many_more_requests() -> None:
    cfg = fast(
        metrics=[MetricSpec(name="pii_leak_rate", source="pii_leak", tolerated=0.5, forbidden=1.0, critical=True)]
    )
    judge = Judge(cfg)
    e = feed(judge, 30, 10, 0.1, np.random.default_rng(3), start_weight=0.1)
    v = judge.evaluate(e, at(100))
    assert v.result == "inconclusive" and v.metrics[0].label == "NO_DATA" and v.metrics[0].gating
    assert "critical: blocks promotion" in v.metrics[0].reason


def test_pii_leak_regression_fails_and_a_critical_failure_decides() -> None:
    cfg = fast(fail_score=0.0)  # even a scorer that tolerates everything: the critical failure decides
    judge = Judge(cfg)
    v = judge.evaluate(feed(judge, 120, 20, 0.5, np.random.default_rng(4), leak_c=0.08), at(200))
    assert v.result == "fail" and v.reason.startswith("critical metric failed")
    assert [m.metric for m in v.metrics if m.result == "fail"] == ["pii_leak_rate"]


def test_evaluate_reuses_the_classification_until_a_stratum_closes() -> None:
    judge = Judge(fast())
    e = feed(judge, 30, 10, 0.5, np.random.default_rng(5))
    a, b = judge.evaluate(e, at(100)), judge.evaluate(e, at(110))
    assert a.verdict_id != b.verdict_id and a.ts != b.ts and a.metrics == b.metrics and a.reason == b.reason
    assert math.isclose(a.canary_weight or 0, 0.5)


def test_a_non_critical_metric_undecided_after_the_others_passed_stops_gating_a_critical_one_never() -> None:
    """In between its tolerated and forbidden change a metric decides nothing for a long time; when it is not critical
    and everything else has passed, it is NO_DATA after the grace period and does not block."""

    def data(n: float, k: float, ttft: float) -> ArmData:
        return ArmData(n, {"hallucination": (n, k)}, {"ttft": Hist(0.0, 300, np.full(40, n / 40))})

    for critical, expected in ((False, "pass"), (True, "inconclusive")):
        spec = MetricSpec(
            name="hallucination_rate", source="hallucination", tolerated=0.5, forbidden=1.0, critical=critical
        )
        ttft = MetricSpec(
            name="ttft",
            kind="quantile",
            source="ttft",
            quantiles=[QuantileMargin(q=0.5, tolerated=0.05, forbidden=0.5)],
        )
        judge = Judge(fast(metrics=[spec, ttft], noncritical_grace_s=60))
        e = judge.new_evidence(deployment="chat", baseline="v1", canary="v2", started_at=T0, weight=0.5)
        for s in range(0, 600, 10):  # a verdict every 10 s, as the agent gives them
            e.add_data("v1", at(s + 5), data(500, 1, 1.0))
            e.add_data("v2", at(s + 5), data(500, 1.7, 1.0))  # ×1.7: between tolerated ×1.5 and forbidden ×2
            e.close(at(s + 10))
            v = judge.evaluate(e, at(s + 10))
        assert v.result == expected, v.reason
        halluc = next(m for m in v.metrics if m.metric == "hallucination_rate")
        if critical:
            assert halluc.label == "INCONCLUSIVE" and halluc.gating
        else:
            assert halluc.label == "NO_DATA" and not halluc.gating and "undecided" in halluc.reason
