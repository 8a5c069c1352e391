"""The traffic controller's state machine for one deployment: pure, with an explicit `now`.

It consumes CanaryVerdicts and ControlCommands and answers with a `Decision`: the TrafficWeights to
publish (if anything moved), an alert intent, and a reason. The Faust agent around it only parses,
calls and sends; the same code runs in tests with no broker.

Fail-safe rules (DESIGN.md): a fail verdict about the current canary sets it to 0 % at once, even when
the rollout is paused or the verdict is late; promotion needs a fresh pass verdict (newer than the last
one accepted, with evidence from the current step, judged at the current weight) on enough canary requests
after a minimum time at the step, and whose pass evidence meets the risk budget of the next step
(`step_alpha`: a step to weight w needs it at min(1, budget / w)); silence holds, longer silence rolls back; a
sample-ratio mismatch holds while the judge reports it; a step still undecided after `max_step_duration_s` holds
and raises `rollout_stuck` until the step decides after all (a pass that meets every rule above moves on, a fail
rolls back) or an operator resumes, promotes or aborts; anything
about another canary is ignored with a reason. Every message carries the verdict or command that caused it,
and a restart rebuilds the machine from the last TrafficWeights on the compacted topic (`RolloutMachine.restore`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmwatch.evaluators.canary.config import step_alpha
from llmwatch.schemas import Alert, CanaryVerdict, ControlCommand, TrafficWeights
from llmwatch.schemas.canary import RolloutState
from llmwatch.settings import Settings

ACTIVE: frozenset[RolloutState] = frozenset({"progressing", "paused", "holding"})

HoldCause = Literal["silence", "srm", "stuck"]
#: How a hold's reason starts, per cause (restore reads the cause back from the last TrafficWeights' reason).
HOLD_PREFIX: dict[HoldCause, str] = {
    "silence": "holding: no verdict",
    "srm": "holding (sample-ratio mismatch)",
    "stuck": "holding (rollout_stuck)",
}


class RolloutConfig(BaseModel):
    """Progressive-delivery policy; durations in seconds."""

    model_config = ConfigDict(extra="forbid")

    steps: list[float] = Field(default_factory=lambda: [0.01, 0.05, 0.25, 0.5, 1.0])
    min_step_duration_s: float = Field(300.0, ge=0, description="Time at a step before a pass may promote.")
    min_step_canary_n: int = Field(500, ge=0, description="Canary requests judged at a step before it may promote.")
    max_step_duration_s: float = Field(
        3600.0, gt=0, description="A step still undecided after this long → holding and `rollout_stuck`."
    )
    hold_after_s: float = Field(600.0, gt=0, description="No verdict for this long → holding (no promotion).")
    rollback_after_s: float = Field(1800.0, gt=0, description="No verdict for this long → rolled back.")
    act_on_late_fail: bool = Field(True, description="Roll back on a fail verdict even when it is late or stale.")
    risk_budget: float = Field(
        0.05, gt=0, lt=1, description="A step to weight w needs pass evidence ≥ 1 / min(1, risk_budget / w)."
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> RolloutConfig:
        """The policy the controller runs: `LLMWATCH_ROLLOUT__*`, and the judge's risk budget (`judge.alpha_pass`)."""
        r = settings.rollout
        return cls(
            steps=r.steps,
            min_step_duration_s=r.min_step_duration_s,
            min_step_canary_n=r.min_sample,
            max_step_duration_s=r.max_step_duration_s,
            hold_after_s=r.hold_timeout_s,
            rollback_after_s=r.rollback_timeout_s,
            risk_budget=settings.judge.alpha_pass,
        )

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < w <= 1 for w in v) or any(b <= a for a, b in pairwise(v)):
            raise ValueError("steps must be increasing canary shares in (0, 1]")
        if v[-1] != 1.0:
            raise ValueError("the last step must be 1.0 (full promotion)")
        return v

    @model_validator(mode="after")
    def _timeouts(self) -> RolloutConfig:
        if self.rollback_after_s <= self.hold_after_s:
            raise ValueError("rollback_after_s must exceed hold_after_s")
        return self


class AlertIntent(BaseModel):
    """What the alerter should raise; the controller decides, the alerter delivers."""

    deployment: str
    rule: Literal["canary_failed", "canary_verdicts_stale", "canary_verdicts_missing", "rollout_stuck"]
    severity: Literal["info", "warning", "critical"]
    summary: str
    verdict_id: str | None = None

    def to_alert(self, now: datetime) -> Alert:
        fingerprint = hashlib.sha256(f"{self.deployment}/{self.rule}".encode()).hexdigest()[:16]
        return Alert(
            ts=now,
            deployment=self.deployment,
            rule=self.rule,
            severity=self.severity,
            fingerprint=fingerprint,
            summary=self.summary,
            verdict_id=self.verdict_id,
            starts_at=now,
        )


class Decision(BaseModel):
    """The answer to one input. `moved`: publish `weights`; `unchanged`: accepted, nothing to publish;
    `ignored`: not applied (the reason says why, for the log and the audit)."""

    kind: Literal["moved", "unchanged", "ignored"]
    reason: str
    weights: TrafficWeights | None = None
    alert: AlertIntent | None = None
    verdict_id: str | None = None
    command_id: str | None = None


class RolloutMachine:
    """One deployment's rollout. Not thread-safe; one agent (partition keyed by deployment) owns it."""

    def __init__(self, deployment: str, config: RolloutConfig | None = None, baseline_version: str | None = None):
        self.deployment = deployment
        self.config = config or RolloutConfig()
        self.baseline = baseline_version
        self.canary: str | None = None
        self.state: RolloutState = "idle"
        self.step_index = 0
        self.seq = 0
        self.weight = 0.0
        self.step_started_at: datetime | None = None
        self.step_start_canary_n: int | None = None
        self.last_heard_at: datetime | None = None
        self.last_verdict_ts: datetime | None = None
        self.last_verdict_reason = ""
        self.hold_cause: HoldCause | None = None
        self.last: TrafficWeights | None = None

    # ------------------------------------------------------------------------------ restart
    @classmethod
    def restore(cls, last: TrafficWeights, now: datetime, config: RolloutConfig | None = None) -> RolloutMachine:
        """Rebuild from the last published TrafficWeights. The sample counted at the current step is not
        in the message, so it restarts from the next verdict (slower, never faster); the silence timers
        restart at `now`, so a controller restart alone never rolls a canary back."""
        m = cls(last.deployment, config, last.baseline_version)
        m.canary = last.canary_version
        m.state = last.state
        m.step_index = last.step_index
        m.seq = last.seq
        m.weight = last.weights.get(last.canary_version, 0.0) if last.canary_version else 0.0
        m.step_started_at = last.updated_at
        m.last_heard_at = now
        m.last = last
        if last.state == "holding":
            m.hold_cause = next((c for c, p in HOLD_PREFIX.items() if last.reason.startswith(p)), "silence")
        return m

    # ------------------------------------------------------------------------------ helpers
    @property
    def serving(self) -> str | None:
        """The version that takes all traffic when no rollout runs."""
        return self.canary if self.state == "promoted" else self.baseline

    def _emit(
        self,
        now: datetime,
        reason: str,
        *,
        verdict_id: str | None = None,
        command_id: str | None = None,
        alert: AlertIntent | None = None,
    ) -> Decision:
        assert self.baseline is not None
        weights = {self.baseline: 1.0 - self.weight}
        if self.canary is not None:
            weights[self.canary] = self.weight
        self.seq += 1
        self.last = TrafficWeights(
            deployment=self.deployment,
            weights=weights,
            baseline_version=self.baseline,
            canary_version=self.canary,
            state=self.state,
            step_index=self.step_index,
            seq=self.seq,
            reason=reason,
            verdict_id=verdict_id,
            command_id=command_id,
            updated_at=now,
        )
        return Decision(
            kind="moved", reason=reason, weights=self.last, alert=alert, verdict_id=verdict_id, command_id=command_id
        )

    def _enter_step(self, index: int, now: datetime, canary_n: int | None) -> None:
        self.step_index = index
        self.weight = self.config.steps[index]
        self.state = "promoted" if self.weight >= 1.0 else "progressing"
        self.hold_cause = None
        self.step_started_at = now
        self.step_start_canary_n = canary_n
        self.last_heard_at = now

    def _roll_back(
        self,
        now: datetime,
        reason: str,
        *,
        verdict_id: str | None = None,
        command_id: str | None = None,
        alert: AlertIntent | None = None,
    ) -> Decision:
        self.state = "rolled_back"
        self.weight = 0.0
        return self._emit(now, reason, verdict_id=verdict_id, command_id=command_id, alert=alert)

    # ------------------------------------------------------------------------------ commands
    def on_command(self, cmd: ControlCommand, now: datetime) -> Decision:
        def ignored(why: str) -> Decision:
            return Decision(kind="ignored", reason=why, command_id=cmd.command_id)

        if cmd.deployment != self.deployment:
            return ignored(f"command for {cmd.deployment!r}, this machine runs {self.deployment!r}")
        who = f"{cmd.action} by {cmd.requested_by}" + (f": {cmd.reason}" if cmd.reason else "")
        if cmd.action == "start":
            return self._start(cmd, now, who, ignored)
        if self.state not in ACTIVE:
            return ignored(f"{cmd.action}: no rollout in progress (state {self.state})")
        if cmd.action == "pause":
            if self.state == "paused":
                return ignored("pause: already paused")
            self.state = "paused"
            return self._emit(now, who, command_id=cmd.command_id)
        if cmd.action == "resume":
            held = self.state == "holding" and self.hold_cause in ("srm", "stuck")
            if self.state != "paused" and not held:
                return ignored(f"resume: not paused (state {self.state})")
            if held:
                self.step_started_at = now  # another max_step_duration_s at this step
            self.state, self.hold_cause = "progressing", None
            self.last_heard_at = now
            return self._emit(now, who, command_id=cmd.command_id)
        if cmd.action == "promote":
            self._enter_step(len(self.config.steps) - 1, now, None)
            return self._emit(now, f"manual {who}", command_id=cmd.command_id)
        return self._roll_back(now, f"manual {who}", command_id=cmd.command_id)  # abort

    def _start(self, cmd: ControlCommand, now: datetime, who: str, ignored: Callable[[str], Decision]) -> Decision:
        if self.state in ACTIVE:
            return ignored(f"start: rollout of {self.canary!r} in progress; abort or promote it first")
        baseline = cmd.baseline_version or self.serving
        if baseline is None:
            return ignored("start: baseline_version unknown (first rollout of this deployment needs it)")
        if cmd.canary_version == baseline:
            return ignored(f"start: canary {cmd.canary_version!r} is the baseline")
        self.baseline, self.canary = baseline, cmd.canary_version
        self.last_verdict_ts = None
        self._enter_step(0, now, 0)
        return self._emit(now, who, command_id=cmd.command_id)

    # ------------------------------------------------------------------------------ verdicts
    def on_verdict(self, v: CanaryVerdict, now: datetime) -> Decision:
        def ignored(why: str) -> Decision:
            return Decision(kind="ignored", reason=why, verdict_id=v.verdict_id)

        if v.deployment != self.deployment:
            return ignored(f"verdict for {v.deployment!r}, this machine runs {self.deployment!r}")
        if self.state not in ACTIVE or self.canary is None:
            return ignored(f"no rollout in progress (state {self.state})")
        if v.canary_version != self.canary or v.baseline_version != self.baseline:
            return ignored(
                f"verdict about {v.baseline_version!r}→{v.canary_version!r}, "
                f"current rollout is {self.baseline!r}→{self.canary!r} (unknown or superseded canary)"
            )
        late = self.last_verdict_ts is not None and v.ts <= self.last_verdict_ts
        stale = self.step_started_at is not None and v.window_end < self.step_started_at
        if v.result == "fail":
            if (late or stale) and not self.config.act_on_late_fail:
                return ignored("late fail verdict (act_on_late_fail is off)")
            alert = AlertIntent(
                deployment=self.deployment,
                rule="canary_failed",
                severity="critical",
                summary=f"canary {self.canary} rolled back: {v.reason}",
                verdict_id=v.verdict_id,
            )
            return self._roll_back(now, f"{v.judge} fail: {v.reason}", verdict_id=v.verdict_id, alert=alert)
        if late:
            return ignored(f"out of order: verdict of {v.ts.isoformat()} is not newer than {self.last_verdict_ts}")
        if stale:
            return ignored(f"stale: evidence ends {v.window_end.isoformat()}, before the current step began")
        self.last_verdict_ts = v.ts
        self.last_heard_at = now
        self.last_verdict_reason = v.reason
        if self.step_start_canary_n is None:
            self.step_start_canary_n = v.canary_n  # after a restart: count this step's sample from here
        if self.state == "paused":
            return Decision(kind="unchanged", reason=f"paused: {v.result} verdict noted", verdict_id=v.verdict_id)
        if v.srm_detected:
            if self.hold_cause == "srm":
                return Decision(
                    kind="unchanged", reason="holding: the sample-ratio mismatch persists", verdict_id=v.verdict_id
                )
            self.state, self.hold_cause = "holding", "srm"
            return self._emit(now, f"{HOLD_PREFIX['srm']}: {v.reason}", verdict_id=v.verdict_id)
        if self.hold_cause == "stuck":
            blocker = self._step_blocker(v, now) if v.result == "pass" else f"{v.result} verdict"
            if blocker is not None:  # still undecided: the hold (and its alert) stand until it decides
                return Decision(
                    kind="unchanged",
                    reason=f"held (rollout_stuck): {blocker}; it moves on a passing verdict, or resume/promote/abort",
                    verdict_id=v.verdict_id,
                )
        resumed = self.state == "holding"
        self.state, self.hold_cause = "progressing", None
        if v.result == "pass":
            blocker = self._step_blocker(v, now)
            if blocker is None:
                canary_n = v.canary_n
                self._enter_step(self.step_index + 1, now, canary_n)
                what = "promoted to 100%" if self.state == "promoted" else f"step {self.step_index}: {self.weight:.0%}"
                return self._emit(now, f"{v.judge} pass → {what}", verdict_id=v.verdict_id)
            reason = f"pass, but {blocker}"
        else:
            reason = f"inconclusive: {v.reason}"
        if resumed:
            return self._emit(now, f"verdicts again, holding ends; {reason}", verdict_id=v.verdict_id)
        return Decision(kind="unchanged", reason=reason, verdict_id=v.verdict_id)

    def _step_blocker(self, v: CanaryVerdict, now: datetime) -> str | None:
        cfg = self.config
        assert self.step_started_at is not None and self.step_start_canary_n is not None
        waited = (now - self.step_started_at).total_seconds()
        if waited < cfg.min_step_duration_s:
            return f"step needs {cfg.min_step_duration_s - waited:.0f} s more"
        judged = v.canary_n - self.step_start_canary_n
        if judged < cfg.min_step_canary_n:
            return f"step needs {cfg.min_step_canary_n - judged} more canary requests"
        if v.canary_weight is not None and abs(v.canary_weight - self.weight) > 1e-9:
            return f"the verdict judged the canary at {v.canary_weight:.0%}, the step is at {self.weight:.0%}"
        if v.pass_evidence is not None:  # judges that report it (stratified@2): the risk budget of the next step
            nxt = cfg.steps[min(self.step_index + 1, len(cfg.steps) - 1)]
            need = 1.0 / step_alpha(cfg.risk_budget, nxt)
            if need > 1.0 and v.pass_evidence < need * (1 - 1e-9):
                return f"pass evidence {v.pass_evidence:.3g} < {need:.3g}, the risk budget of the step to {nxt:.0%}"
        return None

    # ------------------------------------------------------------------------------ timers
    def tick(self, now: datetime) -> Decision:
        """Apply the silence timeouts; call it periodically (paused rollouts are the operator's)."""
        if self.state not in ("progressing", "holding") or self.last_heard_at is None:
            return Decision(kind="unchanged", reason=f"no timer runs in state {self.state}")
        silent = now - self.last_heard_at
        if silent > timedelta(seconds=self.config.rollback_after_s):
            alert = AlertIntent(
                deployment=self.deployment,
                rule="canary_verdicts_missing",
                severity="critical",
                summary=f"canary {self.canary} rolled back: no verdict for {silent.total_seconds():.0f} s",
            )
            return self._roll_back(now, f"no verdict for {silent.total_seconds():.0f} s", alert=alert)
        if self.state == "progressing" and silent > timedelta(seconds=self.config.hold_after_s):
            self.state, self.hold_cause = "holding", "silence"
            alert = AlertIntent(
                deployment=self.deployment,
                rule="canary_verdicts_stale",
                severity="warning",
                summary=f"canary {self.canary} holding: no verdict for {silent.total_seconds():.0f} s",
            )
            return self._emit(now, f"{HOLD_PREFIX['silence']} for {silent.total_seconds():.0f} s", alert=alert)
        at_step = (now - self.step_started_at).total_seconds() if self.step_started_at else 0.0
        if self.state == "progressing" and at_step > self.config.max_step_duration_s:
            self.state, self.hold_cause = "holding", "stuck"
            why = self.last_verdict_reason or "no verdict yet"
            alert = AlertIntent(
                deployment=self.deployment,
                rule="rollout_stuck",
                severity="warning",
                summary=f"canary {self.canary} stuck at {self.weight:.0%} for {at_step:.0f} s: {why}",
            )
            reason = f"{HOLD_PREFIX['stuck']}: {self.weight:.0%} undecided after {at_step:.0f} s; last verdict: {why}"
            return self._emit(now, reason, alert=alert)
        return Decision(kind="unchanged", reason="within the verdict timeouts")
