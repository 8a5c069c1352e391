"""Rollout state machine: steps, fail-safe rollback, timeouts, stale and foreign verdicts, restarts."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmwatch.schemas import CanaryVerdict, ControlCommand, TrafficWeights
from llmwatch.streams.rollout import RolloutConfig, RolloutMachine

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CFG = RolloutConfig(min_step_duration_s=60, min_step_canary_n=100, hold_after_s=300, rollback_after_s=900)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def cmd(action: str, seconds: float = 0, **kw: Any) -> ControlCommand:
    return ControlCommand(deployment="chat", action=action, ts=at(seconds), **kw)  # type: ignore[arg-type]


def verdict(result: str, seconds: float, canary_n: int, *, canary: str = "v2", start: float = 0, **kw: Any):
    return CanaryVerdict(
        deployment=kw.pop("deployment", "chat"),
        baseline_version=kw.pop("baseline", "v1"),
        canary_version=canary,
        judge="msprt@1",
        result=result,  # type: ignore[arg-type]
        reason=f"test {result}",
        ts=at(seconds),
        window_start=at(start),
        window_end=at(seconds),
        canary_n=canary_n,
        **kw,
    )


def started(config: RolloutConfig = CFG) -> RolloutMachine:
    m = RolloutMachine("chat", config, baseline_version="v1")
    d = m.on_command(cmd("start", canary_version="v2"), at(0))
    assert d.kind == "moved" and d.weights is not None
    return m


def share(m: RolloutMachine) -> float:
    assert m.last is not None
    return m.last.weights.get("v2", 0.0)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="increasing"):
        RolloutConfig(steps=[0.05, 0.01, 1.0])
    with pytest.raises(ValueError, match="last step"):
        RolloutConfig(steps=[0.01, 0.5])
    with pytest.raises(ValueError, match="rollback_after_s"):
        RolloutConfig(hold_after_s=600, rollback_after_s=600)


def test_start_puts_the_first_step_live_with_an_audit_trail() -> None:
    m = RolloutMachine("chat", CFG, baseline_version="v1")
    c = cmd("start", canary_version="v2", requested_by="alice")
    d = m.on_command(c, at(0))
    assert d.weights is not None
    assert d.weights.weights == {"v1": 0.99, "v2": 0.01} and d.weights.state == "progressing"
    assert d.weights.command_id == c.command_id and d.weights.seq == 1 and "alice" in d.weights.reason


def test_walks_every_step_to_promotion_on_pass_verdicts() -> None:
    m = started()
    shares, t, n = [], 0.0, 0
    while m.state != "promoted":
        t, n = t + 61, n + 101
        d = m.on_verdict(verdict("pass", t, n), at(t))
        assert d.kind == "moved" and d.verdict_id is not None and d.weights is not None
        assert d.weights.verdict_id == d.verdict_id
        shares.append(share(m))
    assert shares == [0.05, 0.25, 0.5, 1.0] and m.last is not None and m.last.weights == {"v1": 0.0, "v2": 1.0}


def test_pass_needs_minimum_duration_and_sample_at_the_step() -> None:
    m = started()
    too_soon = m.on_verdict(verdict("pass", 30, 500), at(30))
    assert too_soon.kind == "unchanged" and "30 s more" in too_soon.reason and share(m) == 0.01
    too_few = m.on_verdict(verdict("pass", 70, 50), at(70))
    assert too_few.kind == "unchanged" and "50 more canary requests" in too_few.reason
    ok = m.on_verdict(verdict("pass", 80, 100), at(80))
    assert ok.kind == "moved" and share(m) == 0.05
    # The next step counts its own sample: 100 more than the 100 already judged.
    blocked = m.on_verdict(verdict("pass", 150, 150), at(150))
    assert blocked.kind == "unchanged" and "50 more canary requests" in blocked.reason


def test_fail_rolls_back_at_once_and_alerts() -> None:
    m = started()
    m.on_verdict(verdict("pass", 61, 200), at(61))
    v = verdict("fail", 70, 220)
    d = m.on_verdict(v, at(70))
    assert d.kind == "moved" and d.weights is not None and d.alert is not None
    assert d.weights.weights == {"v1": 1.0, "v2": 0.0} and d.weights.state == "rolled_back"
    assert d.weights.verdict_id == v.verdict_id and d.alert.rule == "canary_failed" and d.alert.severity == "critical"
    alert = d.alert.to_alert(at(70))
    assert alert.verdict_id == v.verdict_id and alert.deployment == "chat" and len(alert.fingerprint) == 16
    after = m.on_verdict(verdict("pass", 200, 900), at(200))
    assert after.kind == "ignored" and "no rollout in progress" in after.reason


def test_stale_verdicts_are_ignored() -> None:
    m = started()
    m.on_verdict(verdict("pass", 61, 200), at(61))  # step 1 begins at t=61
    stale = m.on_verdict(verdict("pass", 50, 300, start=0), at(130))  # evidence ends before step 1 began
    assert stale.kind == "ignored" and ("stale" in stale.reason or "out of order" in stale.reason)
    assert share(m) == 0.05


def test_out_of_order_verdicts_are_ignored() -> None:
    m = started()
    newer = verdict("inconclusive", 100, 150)
    older = verdict("pass", 90, 500)
    assert m.on_verdict(newer, at(100)).kind == "unchanged"
    d = m.on_verdict(older, at(101))
    assert d.kind == "ignored" and "out of order" in d.reason and share(m) == 0.01
    duplicate = m.on_verdict(newer, at(102))
    assert duplicate.kind == "ignored"


def test_late_fail_still_rolls_back_unless_configured_not_to() -> None:
    m = started()
    m.on_verdict(verdict("inconclusive", 100, 150), at(100))
    assert m.on_verdict(verdict("fail", 90, 140), at(101)).kind == "moved" and m.state == "rolled_back"
    lenient = started(CFG.model_copy(update={"act_on_late_fail": False}))
    lenient.on_verdict(verdict("inconclusive", 100, 150), at(100))
    assert lenient.on_verdict(verdict("fail", 90, 140), at(101)).kind == "ignored" and lenient.state == "progressing"


def test_verdicts_for_an_old_or_unknown_canary_are_ignored() -> None:
    m = started()
    for v in (
        verdict("fail", 10, 100, canary="v0"),
        verdict("pass", 70, 500, canary="v3"),
        verdict("fail", 10, 100, baseline="v0"),
        verdict("fail", 10, 100, deployment="other"),
    ):
        d = m.on_verdict(v, at(70))
        assert d.kind == "ignored" and d.weights is None and d.verdict_id == v.verdict_id
    assert m.state == "progressing" and share(m) == 0.01


def test_superseded_canary_after_a_new_rollout() -> None:
    m = started()
    m.on_command(cmd("abort", 10), at(10))
    assert m.on_command(cmd("start", 20, canary_version="v3"), at(20)).kind == "moved"
    d = m.on_verdict(verdict("fail", 30, 100, canary="v2"), at(30))
    assert d.kind == "ignored" and "superseded" in d.reason and m.state == "progressing"


def test_pause_during_a_step_blocks_promotion_but_not_rollback() -> None:
    m = started()
    p = m.on_command(cmd("pause", 10), at(10))
    assert p.kind == "moved" and p.weights is not None and p.weights.state == "paused" and share(m) == 0.01
    noted = m.on_verdict(verdict("pass", 100, 500), at(100))
    assert noted.kind == "unchanged" and "paused" in noted.reason and share(m) == 0.01
    assert m.tick(at(5000)).kind == "unchanged" and m.state == "paused"  # no timers while paused
    assert m.on_command(cmd("resume", 5000), at(5000)).kind == "moved" and m.state == "progressing"
    assert m.on_verdict(verdict("pass", 5001, 600), at(5001)).kind == "moved" and share(m) == 0.05
    m.on_command(cmd("pause", 5002), at(5002))
    assert m.on_verdict(verdict("fail", 5003, 700), at(5003)).kind == "moved" and m.state == "rolled_back"


def test_silence_holds_then_rolls_back() -> None:
    m = started()
    assert m.tick(at(299)).kind == "unchanged"
    hold = m.tick(at(301))
    assert hold.kind == "moved" and m.state == "holding" and share(m) == 0.01
    assert hold.alert is not None and hold.alert.rule == "canary_verdicts_stale"
    assert m.tick(at(400)).kind == "unchanged"  # still holding
    back = m.tick(at(901))
    assert back.kind == "moved" and m.state == "rolled_back" and share(m) == 0.0
    assert back.alert is not None and back.alert.rule == "canary_verdicts_missing"


def test_a_fresh_verdict_ends_holding() -> None:
    m = started()
    m.tick(at(301))
    d = m.on_verdict(verdict("pass", 302, 300), at(302))
    assert d.kind == "moved" and m.state == "progressing" and share(m) == 0.05


def test_manual_promote_and_abort() -> None:
    m = started()
    c = cmd("promote", 5, reason="hotfix")
    d = m.on_command(c, at(5))
    assert d.weights is not None and d.weights.weights == {"v1": 0.0, "v2": 1.0} and d.weights.state == "promoted"
    assert d.weights.command_id == c.command_id and "hotfix" in d.weights.reason
    assert m.on_command(cmd("abort", 6), at(6)).kind == "ignored"  # nothing in progress any more
    nxt = m.on_command(cmd("start", 7, canary_version="v3"), at(7))  # the promoted version is the new baseline
    assert nxt.weights is not None and nxt.weights.weights == {"v2": 0.99, "v3": 0.01}
    a = m.on_command(cmd("abort", 8), at(8))
    assert a.weights is not None and a.weights.weights == {"v2": 1.0, "v3": 0.0} and a.weights.state == "rolled_back"


def test_commands_that_make_no_sense_are_ignored() -> None:
    m = RolloutMachine("chat", CFG)
    assert "baseline_version unknown" in m.on_command(cmd("start", canary_version="v2"), at(0)).reason
    assert m.on_command(cmd("pause"), at(0)).kind == "ignored"
    m = started()
    assert m.on_command(cmd("start", 1, canary_version="v3"), at(1)).kind == "ignored"
    assert m.on_command(cmd("resume", 1), at(1)).kind == "ignored"
    same = RolloutMachine("chat", CFG, baseline_version="v1")
    assert same.on_command(cmd("start", canary_version="v1"), at(0)).kind == "ignored"


def test_restart_mid_rollout_resumes_from_the_last_weights() -> None:
    m = started()
    m.on_verdict(verdict("pass", 61, 200), at(61))
    m.on_verdict(verdict("pass", 130, 400), at(130))  # step 2: 25 %
    wire = TrafficWeights.decode(m.last.encode()) if m.last else None
    assert wire is not None
    r = RolloutMachine.restore(wire, at(200), CFG)
    assert (r.state, r.step_index, r.seq, share(r)) == ("progressing", 2, 3, 0.25)
    assert r.tick(at(450)).kind == "unchanged"  # silence timers restart at the restore
    # The sample counted at this step restarts from the first verdict after the restart (fail-safe).
    first = r.on_verdict(verdict("pass", 300, 1000), at(300))
    assert first.kind == "unchanged" and "100 more canary requests" in first.reason
    d = r.on_verdict(verdict("pass", 310, 1100), at(310))
    assert d.kind == "moved" and share(r) == 0.5 and d.weights is not None and d.weights.seq == 4


def test_restart_keeps_a_rolled_back_canary_down() -> None:
    m = started()
    m.on_verdict(verdict("fail", 10, 50), at(10))
    assert m.last is not None
    r = RolloutMachine.restore(m.last, at(20), CFG)
    assert r.state == "rolled_back" and r.on_verdict(verdict("pass", 30, 999), at(30)).kind == "ignored"


# ------------------------------------------------------------------ risk budget, SRM and stuck holds
def test_the_risk_budget_of_the_next_step_decides_a_pass() -> None:
    m = started()
    assert m.on_verdict(verdict("pass", 61, 200, pass_evidence=0.3, canary_weight=0.01), at(61)).kind == "moved"
    # 5 % → 25 % at budget 0.05: α = 0.2, so the pass evidence must reach 5
    weak = m.on_verdict(verdict("pass", 130, 400, pass_evidence=3.0, canary_weight=0.05), at(130))
    assert weak.kind == "unchanged" and "pass evidence 3 < 5" in weak.reason and share(m) == 0.05
    ok = m.on_verdict(verdict("pass", 140, 410, pass_evidence=5.5, canary_weight=0.05), at(140))
    assert ok.kind == "moved" and share(m) == 0.25
    m.on_verdict(verdict("pass", 210, 700, pass_evidence=10.0, canary_weight=0.25), at(210))
    last = m.on_verdict(verdict("pass", 280, 1000, pass_evidence=19.0, canary_weight=0.5), at(280))
    assert last.kind == "unchanged" and "< 20" in last.reason and "100%" in last.reason


def test_a_pass_judged_at_another_weight_does_not_promote() -> None:
    m = started()
    d = m.on_verdict(verdict("pass", 61, 200, canary_weight=0.05), at(61))
    assert d.kind == "unchanged" and "judged the canary at 5%" in d.reason and share(m) == 0.01


def test_a_sample_ratio_mismatch_holds_until_the_judge_no_longer_flags_it() -> None:
    m = started()
    srm = verdict("inconclusive", 61, 200, srm_detected=True, observed_share=0.005, canary_weight=0.01)
    held = m.on_verdict(srm, at(61))
    assert held.kind == "moved" and m.state == "holding" and held.weights is not None
    assert held.weights.reason.startswith("holding (sample-ratio mismatch)") and share(m) == 0.01
    again = m.on_verdict(verdict("pass", 70, 220, srm_detected=True), at(70))
    assert again.kind == "unchanged" and m.state == "holding"  # a pass with a mismatch never promotes
    assert m.tick(at(100)).kind == "unchanged"  # verdicts keep coming: no silence timer runs out
    clear = m.on_verdict(verdict("pass", 130, 300), at(130))
    assert clear.kind == "moved" and m.state == "progressing" and share(m) == 0.05


def test_a_stuck_step_holds_raises_rollout_stuck_until_it_decides_or_an_operator_acts() -> None:
    m = started(CFG.model_copy(update={"max_step_duration_s": 600}))
    for t in range(60, 601, 60):
        m.on_verdict(verdict("inconclusive", t, t).model_copy(update={"reason": "needs ~9,000 more"}), at(t))
    assert m.tick(at(590)).kind == "unchanged"
    stuck = m.tick(at(610))
    assert stuck.kind == "moved" and m.state == "holding" and stuck.alert is not None
    assert stuck.alert.rule == "rollout_stuck" and "needs ~9,000 more" in stuck.alert.summary
    assert stuck.weights is not None and stuck.weights.reason.startswith("holding (rollout_stuck)")
    assert m.tick(at(700)).kind == "unchanged"  # no alert storm: the hold stands
    noted = m.on_verdict(verdict("inconclusive", 620, 700), at(620))
    assert noted.kind == "unchanged" and "held (rollout_stuck)" in noted.reason and share(m) == 0.01
    restored = RolloutMachine.restore(m.last, at(630), m.config) if m.last else None  # the hold survives a restart
    assert restored is not None and restored.hold_cause == "stuck"
    assert restored.on_verdict(verdict("inconclusive", 640, 800), at(640)).kind == "unchanged"
    moved = restored.on_verdict(verdict("pass", 700, 900), at(700))  # the step decided after all
    assert moved.kind == "moved" and restored.state == "progressing" and share(restored) == 0.05
    resumed = m.on_command(cmd("resume", 650), at(650))  # or an operator resumes: another max_step_duration_s
    assert resumed.kind == "moved" and m.state == "progressing"
    m.on_verdict(verdict("inconclusive", 1150, 1000), at(1150))
    assert m.tick(at(1200)).kind == "unchanged"
    again = m.tick(at(1260))  # stuck again 600 s after the resume
    assert again.kind == "moved" and again.alert is not None and again.alert.rule == "rollout_stuck"
    failing = started(CFG.model_copy(update={"max_step_duration_s": 600}))
    failing.on_verdict(verdict("inconclusive", 60, 60), at(60))
    failing.tick(at(610))
    assert failing.on_verdict(verdict("fail", 620, 80), at(620)).kind == "moved" and failing.state == "rolled_back"


# ------------------------------------------------------------------------------- property: weights
_events = st.lists(
    st.tuples(
        st.sampled_from(["pass", "fail", "inconclusive", "cmd", "tick", "old"]),
        st.sampled_from(["start", "pause", "resume", "promote", "abort"]),
        st.integers(min_value=1, max_value=400),
        st.integers(min_value=0, max_value=300),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_events)
def test_weights_are_always_valid_and_moves_are_earned(events: list[tuple[str, str, int, int]]) -> None:
    m = started()
    t, n, seq = 0.0, 0, 1
    canaries = iter(f"v{i}" for i in range(3, 100))
    current = "v2"
    for kind, action, dt, dn in events:
        t, n = t + dt, n + dn
        before = m.last.weights.get(m.canary, 0.0) if m.last and m.canary else 0.0
        if kind == "cmd":
            if action == "start":
                current = next(canaries)
            d = m.on_command(cmd(action, t, canary_version=current), at(t))
        elif kind == "tick":
            d = m.tick(at(t))
        else:
            canary = "v0" if kind == "old" else (m.canary or current)
            d = m.on_verdict(verdict("pass" if kind == "old" else kind, t, n, canary=canary), at(t))
        if d.weights is None:
            assert d.kind != "moved"
            continue
        w = d.weights
        assert all(0.0 <= x <= 1.0 for x in w.weights.values()) and math.isclose(sum(w.weights.values()), 1.0)
        assert w.seq == seq + 1
        seq = w.seq
        after = w.weights.get(w.canary_version, 0.0) if w.canary_version else 0.0
        if w.state == "rolled_back":
            assert after == 0.0
        if w.state == "promoted":
            assert after == 1.0
        if after > before:  # traffic only grows on a pass verdict or an operator's start/promote
            assert w.command_id is not None or (w.verdict_id is not None and " pass" in w.reason)
        if kind == "old":
            pytest.fail("a verdict about an unknown canary moved the weights")
