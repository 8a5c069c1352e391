"""The judge agent's core (streams/judging.py): which canary it judges (from the weights), replay dedup, segments per
step, evidence resets, verdicts, and the policy from settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmwatch.errors import ConfigError
from llmwatch.evaluators.canary import Judge, JudgeConfig, default_metrics
from llmwatch.schemas import EvalScores, TrafficWeights
from llmwatch.settings import EvaluatorSettings, JudgeSettings, RolloutSettings, Settings
from llmwatch.sim.events import scenario_events
from llmwatch.streams.judge_agent import JudgeCore, judge_config

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def weights(
    seq: int, canary_share: float, *, state: str = "progressing", canary: str = "v2", s: float = 0, baseline: str = "v1"
) -> TrafficWeights:
    return TrafficWeights(
        deployment="chat",
        weights={baseline: 1 - canary_share, canary: canary_share},
        baseline_version=baseline,
        canary_version=canary,
        state=state,  # type: ignore[arg-type]
        seq=seq,
        updated_at=at(s),
    )


def score(i: int, version: str = "v1", *, s: float = 10, part: int | None = 0, ttft: float = 100.0, **kw: Any):
    return EvalScores(
        event_id=f"e{i}",
        ts=at(s),
        deployment=kw.pop("deployment", "chat"),
        model_version=version,
        ttft_ms=ttft,
        tpot_ms=5.0,
        output_tokens=20,
        source_partition=part,
        source_offset=i if part is not None else None,
        **kw,
    )


def core(**kw: Any) -> JudgeCore:
    cfg = JudgeConfig(min_canary_n=50, stratum_s=5, lateness_s=1, settle_s=0)
    return JudgeCore(Judge(cfg), skew_s=5, **kw)


def requests(c: JudgeCore, version: str) -> int:
    """Scores of `version` in the current rollout's strata, open or closed."""
    ev = c.rollouts["chat"].evidence
    closed = ev.total[0].requests if version == ev.baseline else ev.total[1].requests
    return int(closed) + sum(n for v, n in ev.open_requests() if v == version)


def test_scores_count_only_for_the_current_canary_and_time_span() -> None:
    c = core()
    assert c.on_score(score(1)) == "ignored"  # no rollout yet
    assert c.on_weights(weights(1, 0.05, s=100)) is not None
    assert c.on_score(score(2, s=90)) == "ignored"  # before the rollout began (beyond the skew)
    assert c.on_score(score(3, s=96)) == "settling"  # within the skew: seen, but before the routers switched
    assert c.on_score(score(4, "v3", s=120)) == "ignored"  # neither arm
    assert c.on_score(score(5, deployment="other", s=120)) == "ignored"
    assert c.on_score(score(6, "v2", s=120)) == "added" and c.on_score(score(7, s=121)) == "added"
    assert requests(c, "v1") == 1 and requests(c, "v2") == 1


def test_replayed_scores_are_counted_once() -> None:
    c = core()
    c.on_weights(weights(1, 0.5))
    assert [c.on_score(score(i)) for i in (1, 2, 3)] == ["added"] * 3
    assert [c.on_score(score(i)) for i in (2, 3)] == ["duplicate"] * 2  # a replay from offset 2
    assert c.on_score(score(3, part=1)) == "added"  # another source partition has its own offsets
    assert c.on_score(score(9, part=None)) == "added"
    assert c.on_score(score(9, part=None)) == "duplicate"  # no position: by event id
    assert requests(c, "v1") == 5


def test_event_id_memory_is_bounded() -> None:
    c = core(id_memory=2)
    c.on_weights(weights(1, 0.5))
    for i in (1, 2, 3):
        c.on_score(score(i, part=None))
    assert list(c.rollouts["chat"].ids) == ["e2", "e3"]


def test_steps_keep_the_evidence_in_a_new_segment_and_a_new_canary_resets_it() -> None:
    c = core()
    c.on_weights(weights(1, 0.05))
    c.on_score(score(1, "v2"))
    changed = c.on_weights(weights(2, 0.25, s=12))  # the next step: same canary, same evidence, a new segment
    assert changed is not None and "new segment" in changed
    r = c.rollouts["chat"]
    assert r.weight == 0.25 and requests(c, "v2") == 1 and r.evidence.segment == 1
    assert c.on_weights(weights(2, 0.5)) is None and r.weight == 0.25  # a replayed seq changes nothing
    assert c.on_weights(weights(3, 0.25, state="holding", s=14)) is None  # same weight: the same segment
    assert "stopped" in (c.on_weights(weights(4, 0.0, state="rolled_back")) or "")
    assert "chat" not in c.rollouts and c.on_score(score(2, "v2", s=20)) == "ignored"
    c.on_weights(weights(5, 0.05, s=30))  # the same canary started again: fresh evidence
    assert requests(c, "v2") == 0
    c.on_weights(weights(6, 0.05, canary="v3", s=40))
    assert (c.rollouts["chat"].baseline, c.rollouts["chat"].canary) == ("v1", "v3")
    c.on_weights(weights(7, 1.0, canary="v3", state="promoted", s=50))
    assert c.rollouts == {}


def test_verdicts_only_on_new_evidence_over_closed_strata() -> None:
    c = core()
    c.on_weights(weights(1, 0.5))
    assert c.pending() == [] and c.verdict("chat", at(20)) is None
    c.on_score(score(1, "v1", s=2))
    c.on_score(score(2, "v2", s=3))
    assert c.pending() == ["chat"]
    early = c.verdict("chat", at(5.5))  # [0, 5) is judged at 6: not yet
    assert early is not None and early.canary_n == 0 and c.pending() == ["chat"]  # still to judge once it closes
    c.on_score(score(3, "v2", s=7))
    v = c.verdict("chat", at(6.5))
    assert v is not None and (v.baseline_n, v.canary_n) == (1, 1) and v.canary_weight == 0.5
    assert c.on_score(score(4, "v2", s=4)) == "late"  # its stratum was judged


def test_due_by_count() -> None:
    c = core(every_n=3)
    c.on_weights(weights(1, 0.5))
    for i in range(2):
        c.on_score(score(i))
    assert c.due_by_count() == []
    c.on_score(score(2))
    assert c.due_by_count() == ["chat"]
    assert core().due_by_count() == []  # off by default


def feed(c: JudgeCore, name: str, n: int) -> None:
    """Scenario traffic (the simulated engine serves versions "baseline" and "canary")."""
    c.on_weights(weights(1, 0.5, baseline="baseline", canary="canary"))
    for e in scenario_events(
        name, n, seed=5, start_ts=at(1), rate=100, canary_weight=0.5, deployment="chat", onset_s=0
    ):
        s = EvalScores(
            event_id=e.event_id,
            ts=e.ts,
            deployment=e.deployment,
            model_version=e.model_version,
            status=e.status,
            ttft_ms=e.ttft_ms,
            tpot_ms=e.tpot_ms,
            output_tokens=e.output_tokens,
        )
        assert c.on_score(s) == "added"


def test_latency_regression_fails_and_steady_does_not() -> None:
    bad = core()
    feed(bad, "latency-regression", 400)
    v = bad.verdict("chat", at(60))
    assert v is not None and v.result == "fail" and v.canary_version == "canary" and v.baseline_version == "baseline"
    assert "ttft" in v.reason and v.canary_weight == 0.5 and v.canary_n + v.baseline_n == 400
    good = core()
    feed(good, "steady", 400)
    v = good.verdict("chat", at(60))
    assert v is not None and v.result != "fail"


def test_judge_config_from_settings() -> None:
    s = Settings(
        rollout=RolloutSettings(min_sample=200, steps=[0.1, 0.5, 1.0]),
        judge=JudgeSettings(pass_margin_scale=4, alpha_fail=0.02, critical=["error_rate"], stratum_s=30),
        eval=EvaluatorSettings(enabled=["pii", "toxicity"]),
    )
    cfg = judge_config(s)
    defaults = {m.name: m for m in default_metrics()}
    assert cfg.min_canary_n == 200 and cfg.alpha_fail == 0.02 and cfg.steps == [0.1, 0.5, 1.0] and cfg.stratum_s == 30
    names = [m.name for m in cfg.metrics]
    assert "injection_success_rate" not in names and "hallucination_rate" not in names  # their evaluators are off
    assert {"toxicity_rate", "pii_leak_rate", "error_rate", "ttft"} <= set(names)
    for m in cfg.metrics:
        assert m.critical == (m.name == "error_rate")
        if m.kind == "rate":
            assert m.forbidden == 4 * defaults[m.name].forbidden  # forbidden regressions widened
            assert m.tolerated == defaults[m.name].tolerated  # fail margins untouched: detection stays as strict
        else:
            assert [q.tolerated for q in m.quantiles] == [q.tolerated for q in defaults[m.name].quantiles]


def test_critical_metrics_must_be_known() -> None:
    with pytest.raises(ConfigError, match="unknown metrics"):
        judge_config(Settings(judge=JudgeSettings(critical=["toxicity"])))


def test_a_takeover_restarts_the_evidence_and_a_restatement_changes_nothing() -> None:
    """Issue 22: the judge that becomes active (or stops being it) starts its evidence afresh; the controller that
    takes over restates the rollout under a higher epoch with the same canary, which is no new rollout."""
    c = core()
    c.on_weights(weights(3, 0.5))
    for i in range(10):
        assert c.on_score(score(i, "v2", s=20)) == "added"
    r = c.rollouts["chat"]
    assert r.new == 10
    evidence = r.evidence
    restated = weights(4, 0.5).model_copy(update={"epoch": 1, "controller": "next"})
    assert c.on_weights(restated) is None and c.rollouts["chat"] is r  # same canary, same evidence
    assert c.on_weights(weights(9, 0.9)) is None and r.weight == 0.5  # epoch 0 is older than epoch 1, whatever its seq
    c.on_weights(weights(5, 0.75, s=40).model_copy(update={"epoch": 1}))  # the next step
    assert c.reset_evidence() == 1
    assert r.new == 0 and r.evidence is not evidence and r.marks == {} and c.verdict("chat", at(60)) is None
    assert r.evidence.segments[0].start == at(40) and r.weight == 0.75  # the current step's evidence, afresh
    assert c.on_score(score(3, "v2", s=20)) == "settling"  # an earlier step's score: left out
    assert c.on_score(score(5, "v2", s=50)) == "added"  # a source position seen before the reset counts again
    assert "deleted" in (c.on_deleted("chat") or "") and c.rollouts == {}


def test_a_burst_then_silence_is_judged_once_its_strata_close() -> None:
    """Scores that all came before the first verdict sit in strata that close later: the next look judges them even
    though no score came since (else the rollout would wait for traffic that already arrived, then roll back)."""
    c = core()
    c.on_weights(weights(1, 0.5))
    for i in range(40):
        assert c.on_score(score(i, "v1" if i % 2 else "v2", s=2)) == "added"
    first = c.verdict("chat", at(3))  # the burst's stratum [0, 5) closes at 6
    assert first is not None and first.canary_n == 0
    assert c.pending() == ["chat"]  # nothing new, but a stratum still open
    second = c.verdict("chat", at(7))
    assert second is not None and (second.canary_n, second.baseline_n) == (20, 20)
    assert c.pending() == [] and c.verdict("chat", at(20)) is None  # nothing new, nothing left to close
