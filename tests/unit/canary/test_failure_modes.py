"""The five ways issue 17 found the msprt@1 judge failing on production-like traffic, each as a test of the production
judge and controller run through the public offline API (`OfflineRollout`) at production settings: verdicts every
10 s, steps 1 → 5 → 25 → 50 → 100 %, 100 requests/s. The issue measured msprt@1 at 54 % false rollbacks under
shared load drift, 36 % under shared error bursts, 0 % of tail-only p99 ×2 rolled back, 13 % of toxicity ×3 rolled
back, a sparse A/A stuck at 1 % for hours and a routing bug nobody flagged: with a handful of seeded rollouts each,
these tests fail on that judge with high probability and pass on this one."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from llmwatch.settings import JudgeSettings, RolloutSettings, Settings
from llmwatch.sim.canary import BASELINE, CANARY, DEPLOYMENT, SCENARIOS, Scenario, run_rollout
from llmwatch.streams.alerting import verdict_conditions
from llmwatch.streams.offline import OfflineRollout

T0 = datetime(2026, 11, 22, tzinfo=UTC)
PRODUCTION = Settings(rollout=RolloutSettings(), judge=JudgeSettings())


def rollouts(
    name: str, seeds: range, settings: Settings = PRODUCTION, horizon_min: float = 120
) -> list[OfflineRollout]:
    runs = []
    for seed in seeds:
        run = OfflineRollout(deployment=DEPLOYMENT, baseline=BASELINE, canary=CANARY, start=T0, settings=settings)
        run_rollout(SCENARIOS[name], run, seed, start=T0, horizon_s=horizon_min * 60)
        runs.append(run)
    return runs


@pytest.mark.parametrize("name", ["aa_load_drift", "aa_error_bursts"])
def test_a_change_both_arms_share_never_rolls_a_healthy_canary_back(name: str) -> None:
    runs = rollouts(name, range(4))
    assert [r.state for r in runs] == ["promoted"] * 4, [r.moves[-1].reason for r in runs]


def test_a_tail_only_regression_is_rolled_back_on_its_quantile() -> None:
    for run in rollouts("tail_p99_x2", range(3)):
        assert run.state == "rolled_back"
        failing = {(m.metric, m.quantile) for m in run.verdicts[-1].metrics if m.result == "fail"}
        assert ("ttft", 0.99) in failing, failing
        assert max(w.weights[CANARY] for w in run.moves) < 1.0


def test_a_rare_event_regression_never_reaches_100_percent() -> None:
    for run in rollouts("toxicity_x3", range(3)):
        assert run.state == "rolled_back" and max(w.weights[CANARY] for w in run.moves) < 1.0
        assert "toxicity_rate" in run.verdicts[-1].reason
        assert run.alerts and run.alerts[-1].rule == "canary_failed"


def test_a_sparse_metric_does_not_keep_a_healthy_canary_from_promotion() -> None:
    for run in rollouts("sparse_metric_aa", range(3)):
        assert run.state == "promoted", run.moves[-1].reason
        last_pass = [v for v in run.verdicts if v.result == "pass"][-1]  # the one that promoted to 100 %
        sparse = [m for m in last_pass.metrics if m.metric == "injection_success_rate"]
        assert sparse and sparse[0].label == "NO_DATA" and not sparse[0].gating
        assert "not critical: does not block" in sparse[0].reason and "NO_DATA, not gating" in last_pass.reason


def test_a_routing_bug_at_low_traffic_is_flagged_within_10_minutes_holds_and_alerts() -> None:
    for run in rollouts("srm_low_traffic", range(3), horizon_min=30):
        flagged = next(v for v in run.verdicts if v.srm_detected)
        assert (flagged.ts - T0).total_seconds() <= 600
        assert "sample-ratio mismatch" in flagged.reason and flagged.result == "inconclusive"
        assert flagged.observed_share is not None and flagged.observed_share < 0.0075
        assert run.state == "holding" and run.moves[-1].reason.startswith("holding (sample-ratio mismatch)")
        assert max(w.weights[CANARY] for w in run.moves) == 0.01  # never advanced
        _, srm = verdict_conditions(flagged)
        assert srm.active and srm.rule == "canary_sample_ratio_mismatch"


def test_a_step_that_cannot_decide_holds_and_raises_rollout_stuck_saying_what_it_needs() -> None:
    quiet = Scenario("quiet", "A/A at 2 requests/s", "promote", SCENARIOS["aa_heavy_tail"].models, rps=2.0)
    settings = Settings(rollout=RolloutSettings(max_step_duration_s=1800), judge=JudgeSettings())
    run = OfflineRollout(deployment=DEPLOYMENT, baseline=BASELINE, canary=CANARY, start=T0, settings=settings)
    run_rollout(quiet, run, 0, start=T0, horizon_s=3600)
    assert run.state == "holding" and run.moves[-1].reason.startswith("holding (rollout_stuck)")
    stuck = [a for a in run.alerts if a.rule == "rollout_stuck"]
    assert stuck and stuck[0].summary.startswith("canary v2 stuck at") and stuck[0].severity == "warning"
    low = run.verdicts[-1]
    assert low.result == "inconclusive" and low.requests_needed and low.requests_needed > 0
    assert "more requests to decide" in low.reason or "canary sample" in low.reason


def test_a_healthy_canary_is_promoted_through_every_step_in_under_an_hour() -> None:
    run = rollouts("aa_heavy_tail", range(1))[0]
    shares = [w.weights[CANARY] for w in run.moves]
    assert shares == [0.01, 0.05, 0.25, 0.5, 1.0] and run.state == "promoted"
    minutes = (run.moves[-1].updated_at - T0).total_seconds() / 60
    assert minutes < 60
    for v in run.verdicts:
        assert v.pass_threshold is not None and v.pass_threshold >= 1
    passes = [v for v in run.verdicts if v.result == "pass" and v.next_weight == 1.0]
    assert passes and math.isclose(passes[-1].pass_threshold or 0, 20.0)  # the last step at α = 0.05
