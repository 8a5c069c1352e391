"""The demo's storyline without processes: plans scale with the duration, the state machine starts each rollout at
the right moment and stops on the outcome it sees, the outcome check reads the audit like the test reads ClickHouse,
and the live view draws what it is given."""

from __future__ import annotations

import pytest
from rich.console import Console

from llmwatch.demo.story import (
    BASE_MIX,
    BURST_MIX,
    DRIFT_MIX,
    Finish,
    Move,
    Phase,
    StartRollout,
    Story,
    VerdictRow,
    check_outcome,
    make_plan,
    regression,
)
from llmwatch.demo.view import LiveData, Progress, VersionLive, render
from llmwatch.schemas import TrafficWeights

SEQ = iter(range(1, 10_000))


def weights(canary: str, baseline: str, share: float, state: str, **kw: object) -> TrafficWeights:
    return TrafficWeights(
        deployment="demo",
        weights={baseline: 1.0 - share, canary: share},
        baseline_version=baseline,
        canary_version=canary,
        state=state,  # type: ignore[arg-type]
        seq=next(SEQ),
        reason=f"{state} {share}",
        **kw,  # type: ignore[arg-type]
    )


# ------------------------------------------------------------------------------------------------- plan
def test_plan_scales_with_duration_and_keeps_its_times_in_order() -> None:
    short, default = make_plan(90), make_plan(180)
    for p in (short, default):
        assert p.warmup_s < p.drift[0] < p.drift[1] < p.second_earliest_s < p.promote_deadline_s <= p.duration_s
        assert p.steps[-1] == 1.0 and p.steps == sorted(p.steps)
        assert p.rollback_timeout_s > p.hold_timeout_s  # the controller refuses the opposite
    # the first step (10 %) gathers its sample in an eighth of the run: 0.1 * 40/s * 90 s / 8 = 45
    assert short.min_sample == 45 and default.min_sample == 90
    assert default.window_s == 10 and short.window_s == 5
    settings = short.rollout_settings()
    assert settings["min_sample"] == 45 and settings["steps"] == [0.1, 0.25, 0.5, 1.0]
    judge = short.judge_settings()
    assert judge["pass_margin_scale"] == 20 and judge["stratum_s"] == 2.0 and judge["critical"] == []
    with pytest.raises(ValueError, match="at least 60"):
        make_plan(30)
    with pytest.raises(ValueError, match="unknown scenario 'nope'; known: demo-regression, steady"):
        make_plan(90, scenario="nope")


def test_regressions_name_the_metrics_their_rollback_must_come_from() -> None:
    demo = regression("demo-regression")
    assert demo.expected_metrics == {"ttft", "pii_leak_rate"} and demo.expect_rollback
    assert demo.profile["pii_rate"] > 0.003 and demo.profile["ttft_ms"]["median"] == 240.0
    assert regression("latency-regression").expected_metrics == {"ttft"}
    assert regression("latency-regression").scenario == "latency-regression"
    steady = regression("steady")
    assert not steady.expect_rollback and steady.profile == {}


# ---------------------------------------------------------------------------------------------- machine
def test_the_story_walks_through_both_rollouts_to_a_clean_finish() -> None:
    plan = make_plan(90)
    story = Story(plan)
    assert story.tick(1.0) == [] and story.traffic(1.0).mix == BASE_MIX
    assert story.tick(plan.warmup_s) == [StartRollout("v2", "v1", "demo: a healthy new version")]
    assert story.phase is Phase.CANARY1
    story.observe(weights("v2", "v1", 0.1, "progressing"), 6.0)
    assert story.traffic(plan.drift[0] + 1).mix == DRIFT_MIX
    story.observe(weights("v2", "v1", 0.25, "progressing"), 20.0)
    assert story.tick(20.0) == []
    story.observe(weights("v2", "v1", 1.0, "promoted"), 30.0)
    assert story.tick(30.0) == [] and story.phase is Phase.BETWEEN
    assert story.burst == (31.0, 31.0 + plan.burst_s)
    assert story.traffic(32.0).mix == BURST_MIX
    assert story.traffic(plan.drift[0] + 1).mix == BASE_MIX  # drift ended with the promotion
    # the second canary waits for the burst to end and for its earliest start
    start2 = max(plan.second_earliest_s, story.burst[1] + 2.0)
    assert story.tick(start2 - 0.1) == []
    [action] = story.tick(start2)
    assert action == StartRollout("v3", "v2", "demo: demo-regression")
    traffic = story.traffic(start2 + 5)
    assert traffic.hints() == {"scenario": "steady", "t": 5.0, "onset_s": 0.0, "target": "v3"}
    story.observe(weights("v3", "v2", 0.1, "progressing"), start2)
    story.observe(weights("v3", "v2", 0.0, "rolled_back", verdict_id="f1"), start2 + 6)
    assert story.tick(start2 + 6) == [] and story.phase is Phase.COOLDOWN
    end = start2 + 6 + plan.cooldown_s
    assert story.tick(end - 0.1) == []
    assert story.tick(end) == [Finish(True, "story complete")] and story.phase is Phase.DONE
    assert story.tick(end + 1) == []
    labels = [label for label, _, _ in story.periods(end)]
    assert labels == ["prompt drift", "injection burst"]
    assert any("v3 rolled back" in line for _, line in story.log)


def test_a_scenario_with_hints_targets_the_second_canary() -> None:
    story = Story(make_plan(90, scenario="prompt-injection-attack"))
    story.tick(10)
    story.observe(weights("v2", "v1", 1.0, "promoted"), 20.0)
    story.tick(20.0)
    [start] = story.tick(200.0)
    assert isinstance(start, StartRollout) and start.canary == "v3"
    early, late = story.traffic(200.0), story.traffic(260.0)
    assert early.scenario == "prompt-injection-attack" and early.target == "v3"
    assert late.mix.injection == 0.3  # the scenario's own traffic after its onset


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([("v2", "v1", 0.0, "rolled_back")], "the healthy canary v2 was rolled back"),
        ([], "canary v2 was not promoted within 76 s (no move seen)"),
    ],
)
def test_the_first_canary_fails_the_story_when_it_is_not_promoted(events: list[tuple], message: str) -> None:
    plan = make_plan(90)
    story = Story(plan)
    story.tick(plan.warmup_s)
    for e in events:
        story.observe(weights(*e), 10.0)
    [finish] = story.tick(plan.promote_deadline_s)
    assert isinstance(finish, Finish) and not finish.ok and message in finish.message


def test_the_second_canary_must_end_the_way_its_regression_says() -> None:
    plan = make_plan(90)
    story = Story(plan)
    story.tick(plan.warmup_s)
    story.observe(weights("v2", "v1", 1.0, "promoted"), 20.0)
    story.tick(20.0)
    [start] = story.tick(plan.duration_s)
    assert isinstance(start, StartRollout)
    story.observe(weights("v3", "v2", 1.0, "promoted"), plan.duration_s + 1)
    [finish] = story.tick(plan.duration_s + 1)
    assert isinstance(finish, Finish) and not finish.ok
    assert "canary v3 was promoted, expected rolled back" in finish.message

    stuck = Story(plan)
    stuck.tick(plan.warmup_s)
    stuck.observe(weights("v2", "v1", 1.0, "promoted"), 20.0)
    stuck.tick(20.0)
    stuck.tick(50.0)
    [timeout] = stuck.tick(50.0 + plan.rollback_within_s)
    assert isinstance(timeout, Finish) and "not rolled back within 40 s" in timeout.message


def test_other_deployments_and_replayed_weights_are_ignored() -> None:
    story = Story(make_plan(90))
    story.tick(10)
    current = weights("v2", "v1", 0.25, "progressing")
    story.observe(current, 12.0)
    older = current.model_copy(update={"seq": current.seq - 1, "state": "rolled_back"})
    story.observe(older, 13.0)
    other = current.model_copy(update={"deployment": "other", "seq": current.seq + 5, "state": "rolled_back"})
    story.observe(other, 14.0)
    assert story.last == current and story.tick(15.0) == []


# ------------------------------------------------------------------------------------------------ outcome
def moves(v3_last: Move) -> list[Move]:
    return [
        Move(1, "progressing", {"v1": 0.9, "v2": 0.1}, "v2", "start", command_id="c1"),
        Move(2, "progressing", {"v1": 0.75, "v2": 0.25}, "v2", "pass", verdict_id="p1"),
        Move(3, "promoted", {"v1": 0.0, "v2": 1.0}, "v2", "pass", verdict_id="p2"),
        Move(4, "progressing", {"v2": 0.9, "v3": 0.1}, "v3", "start", command_id="c2"),
        v3_last,
    ]


VERDICTS = {
    "p1": VerdictRow("p1", "pass", "v2"),
    "p2": VerdictRow("p2", "pass", "v2"),
    "f1": VerdictRow("f1", "fail", "v3", ("ttft",), "failing: ttft"),
    "f2": VerdictRow("f2", "fail", "v3", ("toxicity_rate",)),
}


def test_outcome_met_names_the_verdict_behind_each_move() -> None:
    rolled = Move(5, "rolled_back", {"v2": 1.0, "v3": 0.0}, "v3", "fail", verdict_id="f1")
    outcome = check_outcome(moves(rolled), VERDICTS, regression("demo-regression"))
    assert outcome.ok and outcome.problems == []
    assert outcome.promoted is not None and outcome.promoted.seq == 3
    assert outcome.rolled_back == rolled and outcome.cause == VERDICTS["f1"]
    assert "caused by verdict f1 (fail; failed metrics: ttft)" in outcome.describe()


@pytest.mark.parametrize(
    ("last", "verdicts", "problem"),
    [
        (
            Move(5, "rolled_back", {"v2": 1.0, "v3": 0.0}, "v3", "fail", verdict_id="f2"),
            VERDICTS,
            "v3 was rolled back on toxicity_rate, expected one of pii_leak_rate, ttft",
        ),
        (
            Move(5, "rolled_back", {"v2": 1.0, "v3": 0.0}, "v3", "manual abort", command_id="c3"),
            VERDICTS,
            "v3's rollback (seq 5) names no stored verdict (None)",
        ),
        (
            Move(5, "progressing", {"v2": 0.75, "v3": 0.25}, "v3", "pass", verdict_id="p1"),
            VERDICTS,
            "v3 ends in state progressing at 25%, not rolled back",
        ),
        (
            Move(5, "rolled_back", {"v2": 1.0, "v3": 0.0}, "v3", "fail", verdict_id="f1"),
            {**VERDICTS, "p2": VerdictRow("p2", "inconclusive", "v2")},
            "v2's promotion (seq 3) was not caused by a pass verdict",
        ),
    ],
)
def test_outcome_not_met_says_why(last: Move, verdicts: dict[str, VerdictRow], problem: str) -> None:
    outcome = check_outcome(moves(last), verdicts, regression("demo-regression"))
    assert not outcome.ok and outcome.problems == [problem]


def test_a_scenario_without_regression_expects_the_second_canary_promoted() -> None:
    promoted = Move(5, "promoted", {"v2": 0.0, "v3": 1.0}, "v3", "pass", verdict_id="p2")
    assert check_outcome(moves(promoted), VERDICTS, regression("steady")).ok
    rolled = Move(5, "rolled_back", {"v2": 1.0, "v3": 0.0}, "v3", "fail", verdict_id="f1")
    assert not check_outcome(moves(rolled), VERDICTS, regression("steady")).ok
    assert check_outcome([], {}, regression("steady")).problems == [
        "v2 never reached a weight of 1.0",
        "v3 was never started",
    ]


# --------------------------------------------------------------------------------------------------- view
def test_the_live_view_draws_weights_metrics_verdicts_and_alerts() -> None:
    live = LiveData(
        weights={"v2": 0.9, "v3": 0.1},
        state="progressing",
        versions={"v3": VersionLive(n=42, ttft_p95_ms=431.0, error_rate=0.0, pii_leak_rate=0.0714)},
        verdicts=[("06:02:37", "v3", "fail", "score 86 < 100; failing: ttft")],
        alerts=[("06:02:38", "canary_failed", "critical", "canary v3 rolled back")],
        events=2352,
    )
    progress = Progress(
        t=54,
        duration_s=90,
        phase="canary v3 rolling out",
        traffic="regression",
        sent=2400,
        ok=2352,
        failed=11,
        log=[(54.0, "v3 rolled back (0%)")],
    )
    console = Console(record=True, width=160)
    console.print(render(progress, live))
    text = console.export_text()
    assert "deployment demo: progressing" in text and "2352 events stored" in text
    assert "431 ms" in text and "7.1%" in text and "90%" in text and "10%" in text
    assert "score 86 < 100; failing: ttft" in text and "canary_failed" in text and "v3 rolled back (0%)" in text
