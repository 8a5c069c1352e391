"""The demo's storyline as pure code: a plan scaled from `--duration`, the traffic at each moment, a state machine
that turns the controller's TrafficWeights into the next rollout command, and the check of the outcomes.

Nothing here touches Kafka, HTTP or ClickHouse, so every rule is unit-tested; llmwatch/demo/run.py runs the processes
and feeds this module what it observes.

The story, on deployment `demo` (baseline v1 serving):
1. a healthy canary v2 is started and promoted step by step on pass verdicts while users' prompts drift to new
   topics;
2. a prompt-injection burst hits the deployment (v2 now serving everything);
3. a second canary v3 regresses (by default TTFT ×2 and PII leaks) and is rolled back on a fail verdict.

Injection prompts come only in the burst, between the two rollouts. The judge needs every metric with data to
pass, and a canary that saw a handful of injection attempts cannot show a small injection-success rate with
confidence, which would stall the first rollout; outside the burst the metric has no data and does not gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmwatch.schemas import TrafficWeights
from llmwatch.sim.scenarios import SCENARIOS, PromptMix

DEPLOYMENT = "demo"
BASELINE, GOOD, BAD = "v1", "v2", "v3"
VERSIONS = (BASELINE, GOOD, BAD)
DEMO_REGRESSION = "demo-regression"
MIN_DURATION_S = 60.0

#: Prompt mix outside the special periods, during the injection burst, and while prompts drift.
BASE_MIX = PromptMix(rag=0.2, injection=0.0, drift=0.0)
BURST_MIX = PromptMix(rag=0.15, injection=0.3, drift=0.0)
DRIFT_MIX = PromptMix(rag=0.2, injection=0.0, drift=0.7)

#: Judge metrics that a registered scenario regresses; scenarios not listed change nothing the judge fails on.
SCENARIO_METRICS: dict[str, frozenset[str]] = {
    "latency-regression": frozenset({"ttft"}),
    "toxicity-regression": frozenset({"toxicity_rate"}),
    "pii-leak": frozenset({"pii_leak_rate"}),
    "hallucination": frozenset({"hallucination_rate"}),
    "prompt-injection-attack": frozenset({"injection_success_rate"}),
}


class Regression(BaseModel):
    """What is wrong with the second canary, and which verdict the story expects for it.

    The default is a bad build: v3's own simulated profile is slower and leaks personal data. Any registered
    scenario may be picked instead (`--scenario`); v3 then runs the default profile and the scenario's hints.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    profile: dict[str, Any] = Field(default_factory=dict, description="VersionProfile fields of the bad version.")
    scenario: str = Field("steady", description="Registered scenario whose hints requests to v3 carry.")
    expected_metrics: frozenset[str] = frozenset()

    @property
    def expect_rollback(self) -> bool:
        return bool(self.expected_metrics)


def regression(name: str) -> Regression:
    """The demo's regression by name: `demo-regression` or any registered scenario."""
    if name == DEMO_REGRESSION:
        return Regression(
            name=name,
            description="a bad build: time to first token doubles and it leaks personal data",
            profile={"ttft_ms": {"median": 240.0, "sigma": 0.3}, "pii_rate": 0.08},
            expected_metrics=frozenset({"ttft", "pii_leak_rate"}),
        )
    if name not in SCENARIOS:
        known = ", ".join([DEMO_REGRESSION, *SCENARIOS])
        raise ValueError(f"unknown scenario {name!r}; known: {known}")
    return Regression(
        name=name,
        description=SCENARIOS[name].description,
        scenario=name,
        expected_metrics=SCENARIO_METRICS.get(name, frozenset()),
    )


class StoryPlan(BaseModel):
    """Every time and knob of one run, derived from the duration (seconds of story, after start-up)."""

    model_config = ConfigDict(frozen=True)

    duration_s: float = Field(ge=MIN_DURATION_S)
    rate: float = Field(gt=0, description="Requests per second sent to the gateway.")
    regression: Regression
    warmup_s: float
    burst_s: float = Field(description="Length of the injection burst, which starts once v2 is promoted.")
    drift: tuple[float, float]
    second_earliest_s: float = Field(description="The second canary starts no earlier than this.")
    promote_deadline_s: float
    rollback_within_s: float = Field(description="After the second start, the verdict must have acted by then.")
    cooldown_s: float = Field(description="After the last outcome: the deployment recovering, last windows landing.")
    window_s: float
    steps: list[float]
    min_sample: int
    min_step_duration_s: float
    judge_interval_s: float = 2.0
    stratum_s: float = 2.0
    tick_interval_s: float = 1.0
    hold_timeout_s: float
    rollback_timeout_s: float
    pass_margin_scale: float = 20.0
    alpha_pass: float = 0.1

    @model_validator(mode="after")
    def _ordered(self) -> StoryPlan:
        if not self.warmup_s < self.second_earliest_s < self.promote_deadline_s <= self.duration_s:
            raise ValueError("plan times out of order")
        return self

    def rollout_settings(self) -> dict[str, Any]:
        """RolloutSettings fields for the worker (LLMWATCH_ROLLOUT__*)."""
        return {
            "steps": list(self.steps),
            "min_sample": self.min_sample,
            "min_step_duration_s": self.min_step_duration_s,
            "max_step_duration_s": self.duration_s,
            "hold_timeout_s": self.hold_timeout_s,
            "rollback_timeout_s": self.rollback_timeout_s,
            "tick_interval_s": self.tick_interval_s,
        }

    def judge_settings(self) -> dict[str, Any]:
        """JudgeSettings fields for the worker (LLMWATCH_JUDGE__*): demo-sized strata (a verdict interval each, judged
        a second after they end), widened forbidden regressions, and no metric critical: the zero-event rates of a
        demo-sized sample are NO_DATA and do not block the healthy canary (their fail tests still run)."""
        return {
            "interval_s": self.judge_interval_s,
            "pass_margin_scale": self.pass_margin_scale,
            "alpha_pass": self.alpha_pass,
            "stratum_s": self.stratum_s,
            "lateness_s": 1.5,
            "settle_s": 1.0,
            "critical": [],
        }


def make_plan(duration_s: float = 180.0, rate: float = 40.0, scenario: str = DEMO_REGRESSION) -> StoryPlan:
    """Scale the story to `duration_s`, its time budget: deadlines and periods are fractions of it, and the story
    ends once both outcomes happened plus a cool-down (usually well before the budget). The first step (10 %)
    must gather `min_sample` canary requests in about an eighth of the budget; the later, larger steps take less.
    Pass margins are widened (×20, fail margins as strict as in production) so a healthy canary passes on a
    demo-sized sample."""
    if duration_s < MIN_DURATION_S:
        raise ValueError(f"--duration must be at least {MIN_DURATION_S:.0f} s, got {duration_s:g}")
    if rate <= 0:
        raise ValueError(f"--rate must be positive, got {rate:g}")
    d = float(duration_s)
    steps = [0.1, 0.25, 0.5, 1.0]
    window_s = float(min(15.0, max(5.0, round(d / 18))))
    min_sample = max(30, round(steps[0] * rate * d / 8))
    warmup_s = max(5.0, round(0.06 * d, 1))
    return StoryPlan(
        duration_s=d,
        rate=rate,
        regression=regression(scenario),
        warmup_s=warmup_s,
        burst_s=max(8.0, round(0.1 * d, 1)),
        drift=(round(0.15 * d, 1), round(0.4 * d, 1)),
        second_earliest_s=round(0.5 * d, 1),
        promote_deadline_s=round(0.85 * d, 1),
        rollback_within_s=max(40.0, round(0.35 * d, 1)),
        cooldown_s=max(window_s + 8.0, round(0.15 * d, 1)),
        window_s=window_s,
        steps=steps,
        min_sample=min_sample,
        min_step_duration_s=max(3.0, round(0.04 * d, 1)),
        hold_timeout_s=max(20.0, round(0.15 * d, 1)),
        rollback_timeout_s=max(45.0, round(0.3 * d, 1)),
    )


# ------------------------------------------------------------------------------------------------ traffic
@dataclass(frozen=True)
class Traffic:
    """What requests carry at one moment: the prompt mix and the hints for the simulated engine."""

    label: str
    mix: PromptMix
    scenario: str = "steady"
    scenario_t: float = 0.0
    target: str = BAD

    def hints(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "t": round(self.scenario_t, 3), "onset_s": 0.0, "target": self.target}


# -------------------------------------------------------------------------------------------- the machine
class Phase(StrEnum):
    WARMUP = "warm-up: baseline v1 only"
    CANARY1 = "canary v2 rolling out"
    BETWEEN = "v2 promoted"
    CANARY2 = "canary v3 rolling out"
    COOLDOWN = "winding down"
    DONE = "done"


@dataclass(frozen=True)
class StartRollout:
    canary: str
    baseline: str
    reason: str


@dataclass(frozen=True)
class Finish:
    ok: bool
    message: str


Action = StartRollout | Finish


@dataclass
class Story:
    """The storyline's state. `observe` takes every TrafficWeights of the deployment; `tick` says what to do now.

    Times are seconds since the story began (the caller's clock), so tests drive it with plain numbers.
    """

    plan: StoryPlan
    phase: Phase = Phase.WARMUP
    started: dict[str, float] = field(default_factory=dict)  # canary → when its rollout was started
    outcome_at: dict[str, float] = field(default_factory=dict)  # canary → when it was promoted / rolled back
    burst: tuple[float, float] | None = None  # when the injection burst runs (set once v2 is promoted)
    last: TrafficWeights | None = None
    log: list[tuple[float, str]] = field(default_factory=list)  # narration for the view and the summary
    finished: Finish | None = None

    def say(self, t: float, text: str) -> None:
        self.log.append((round(t, 1), text))

    def observe(self, w: TrafficWeights, t: float) -> None:
        """Follow the controller (records of other deployments and replays of older seqs are ignored)."""
        if w.deployment != DEPLOYMENT or (self.last is not None and w.seq <= self.last.seq):
            return
        self.last = w
        canary = w.canary_version
        if canary is None or canary not in self.started or canary in self.outcome_at:
            return
        share = w.weights.get(canary, 0.0)
        if w.state == "progressing":
            self.say(t, f"{canary} at {share:.0%}: {w.reason}")
        elif w.state in ("promoted", "rolled_back"):
            self.outcome_at[canary] = t
            self.say(t, f"{canary} {w.state.replace('_', ' ')} ({share:.0%}): {w.reason}")
        elif w.state == "holding":
            self.say(t, f"{canary} holding at {share:.0%}: {w.reason}")

    def start_failed(self, canary: str, t: float, why: str) -> Finish:
        return self._finish(t, False, f"could not start the rollout of {canary}: {why}")

    def _finish(self, t: float, ok: bool, message: str) -> Finish:
        self.finished = Finish(ok, message)
        self.phase = Phase.DONE
        self.say(t, message)
        return self.finished

    def _state_of(self, canary: str) -> str | None:
        w = self.last
        return w.state if w is not None and w.canary_version == canary else None

    def tick(self, t: float) -> list[Action]:
        p = self.plan
        if self.phase is Phase.DONE:
            return []
        if self.phase is Phase.WARMUP:
            if t < p.warmup_s:
                return []
            self.phase = Phase.CANARY1
            self.started[GOOD] = t
            self.say(t, f"starting canary {GOOD} (healthy) against {BASELINE}")
            return [StartRollout(GOOD, BASELINE, "demo: a healthy new version")]
        if self.phase is Phase.CANARY1:
            state = self._state_of(GOOD)
            if state == "promoted":
                self.phase = Phase.BETWEEN
                self.burst = (t + 1.0, t + 1.0 + p.burst_s)
                self.say(t, f"prompt-injection burst: {BURST_MIX.injection:.0%} of prompts for {p.burst_s:.0f} s")
                return []
            if state == "rolled_back":
                assert self.last is not None
                return [self._finish(t, False, f"the healthy canary {GOOD} was rolled back: {self.last.reason}")]
            if t >= p.promote_deadline_s:
                why = f"last state {state}: {self.last.reason}" if self.last and state else "no move seen"
                return [
                    self._finish(
                        t, False, f"canary {GOOD} was not promoted within {p.promote_deadline_s:.0f} s ({why})"
                    )
                ]
            return []
        if self.phase is Phase.BETWEEN:
            assert self.burst is not None
            if t < max(p.second_earliest_s, self.burst[1] + 2.0):
                return []
            self.phase = Phase.CANARY2
            self.started[BAD] = t
            self.say(t, f"starting canary {BAD} ({p.regression.description}) against {GOOD}")
            return [StartRollout(BAD, GOOD, f"demo: {p.regression.name}")]
        if self.phase is Phase.CANARY2:
            state = self._state_of(BAD)
            expected = "rolled_back" if p.regression.expect_rollback else "promoted"
            if state in ("promoted", "rolled_back"):
                if state != expected:
                    assert self.last is not None
                    return [
                        self._finish(
                            t,
                            False,
                            f"canary {BAD} was {state.replace('_', ' ')}, expected "
                            f"{expected.replace('_', ' ')}: {self.last.reason}",
                        )
                    ]
                self.phase = Phase.COOLDOWN
                return []
            if t >= self.started[BAD] + p.rollback_within_s:
                return [
                    self._finish(
                        t,
                        False,
                        f"canary {BAD} was not {expected.replace('_', ' ')} within "
                        f"{p.rollback_within_s:.0f} s (last state {state})",
                    )
                ]
            return []
        # COOLDOWN: the deployment back on v2 for a while, so the report shows the recovery
        if t >= self.outcome_at[BAD] + p.cooldown_s:
            return [self._finish(t, True, "story complete")]
        return []

    def traffic(self, t: float) -> Traffic:
        """The traffic at story time `t`: the second canary's scenario once it runs, else the timed periods."""
        p = self.plan
        if BAD in self.started and self.phase in (Phase.CANARY2, Phase.COOLDOWN, Phase.DONE):
            since = t - self.started[BAD]
            scenario = SCENARIOS.get(p.regression.scenario)
            mix = scenario.prompt_mix(since) if scenario is not None and scenario.mix_after is not None else BASE_MIX
            return Traffic(f"regression: {p.regression.name}", mix, p.regression.scenario, since, BAD)
        if self.burst is not None and self.burst[0] <= t < self.burst[1]:
            return Traffic("prompt-injection burst", BURST_MIX)
        if self.phase in (Phase.WARMUP, Phase.CANARY1) and p.drift[0] <= t < p.drift[1]:
            return Traffic("prompt drift (new topics)", DRIFT_MIX)
        return Traffic("steady", BASE_MIX)

    def periods(self, now: float) -> list[tuple[str, float, float]]:
        """(label, start, end) of the drift and burst periods as they ran (drift stops when v2 is promoted)."""
        out: list[tuple[str, float, float]] = []
        drift_end = min(self.plan.drift[1], self.outcome_at.get(GOOD, now), now)
        if drift_end > self.plan.drift[0]:
            out.append(("prompt drift", self.plan.drift[0], drift_end))
        if self.burst is not None and self.burst[0] < now:
            out.append(("injection burst", self.burst[0], min(self.burst[1], now)))
        return out


# ---------------------------------------------------------------------------------------- outcome check
@dataclass(frozen=True)
class Move:
    """One row of traffic_weights."""

    seq: int
    state: str
    weights: Mapping[str, float]
    canary_version: str | None
    reason: str
    verdict_id: str | None = None
    command_id: str | None = None


@dataclass(frozen=True)
class VerdictRow:
    """What the outcome check needs of one canary_verdicts row."""

    verdict_id: str
    result: str
    canary_version: str
    failed_metrics: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    problems: list[str]
    promoted: Move | None
    rolled_back: Move | None
    cause: VerdictRow | None

    def describe(self) -> list[str]:
        """Plain sentences for the summary: what happened and which verdict caused it."""
        lines: list[str] = []
        if self.promoted is not None:
            lines.append(f"{GOOD} promoted to 100% (seq {self.promoted.seq}): {self.promoted.reason}")
        if self.rolled_back is not None:
            lines.append(f"{BAD} rolled back to 0% (seq {self.rolled_back.seq}): {self.rolled_back.reason}")
        if self.cause is not None:
            failed = ", ".join(self.cause.failed_metrics) or "none"
            lines.append(f"caused by verdict {self.cause.verdict_id} ({self.cause.result}; failed metrics: {failed})")
        return lines + [f"problem: {p}" for p in self.problems]


def check_outcome(moves: Sequence[Move], verdicts: Mapping[str, VerdictRow], regression: Regression) -> Outcome:
    """The story's outcomes, from the audit (traffic_weights) and the verdicts (canary_verdicts):
    v2 reached a weight of 1.0 on a pass verdict; v3 ended at 0.0, rolled back by a fail verdict about v3 that
    failed one of the regression's metrics (or, for a scenario with no regression, v3 was promoted)."""
    problems: list[str] = []
    ordered = sorted(moves, key=lambda m: m.seq)
    promoted = next(
        (m for m in ordered if m.canary_version == GOOD and m.state == "promoted" and m.weights.get(GOOD) == 1.0),
        None,
    )
    if promoted is None:
        problems.append(f"{GOOD} never reached a weight of 1.0")
    elif promoted.verdict_id is None or verdicts.get(promoted.verdict_id, _NONE).result != "pass":
        problems.append(f"{GOOD}'s promotion (seq {promoted.seq}) was not caused by a pass verdict")
    bad_moves = [m for m in ordered if m.canary_version == BAD]
    last = bad_moves[-1] if bad_moves else None
    rolled = last if last is not None and last.state == "rolled_back" else None
    cause: VerdictRow | None = None
    if last is None:
        problems.append(f"{BAD} was never started")
    elif regression.expect_rollback:
        if rolled is None or rolled.weights.get(BAD) != 0.0:
            problems.append(f"{BAD} ends in state {last.state} at {last.weights.get(BAD, 0.0):.0%}, not rolled back")
        else:
            cause = verdicts.get(rolled.verdict_id or "")
            if cause is None:
                problems.append(f"{BAD}'s rollback (seq {rolled.seq}) names no stored verdict ({rolled.verdict_id})")
            elif cause.result != "fail" or cause.canary_version != BAD:
                problems.append(f"{BAD}'s rollback was caused by a {cause.result} verdict about {cause.canary_version}")
            elif not set(cause.failed_metrics) & regression.expected_metrics:
                want = ", ".join(sorted(regression.expected_metrics))
                problems.append(
                    f"{BAD} was rolled back on {', '.join(cause.failed_metrics) or 'no metric'}, expected one of {want}"
                )
    elif last.state != "promoted":
        problems.append(f"{BAD} ends in state {last.state}; with scenario {regression.name} it should be promoted")
    return Outcome(not problems, problems, promoted, rolled, cause)


_NONE = VerdictRow("", "none", "")
