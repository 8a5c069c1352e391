"""What the judge says (CanaryVerdict), what the controller writes (TrafficWeights) and what
operators send it (ControlCommand)."""

from __future__ import annotations

import math
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .base import Payload, UTCDateTime, utcnow

Result = Literal["pass", "fail", "inconclusive"]


class MetricVerdict(BaseModel):
    """One metric's comparison of canary against baseline."""

    model_config = ConfigDict(extra="ignore")

    metric: str
    result: Result
    direction: Literal["increase", "decrease", "either"] = Field("increase", description="Which change is bad.")
    critical: bool = False
    margin: float = Field(0.0, description="Tolerated change (in the metric's own units or relative, see reason).")
    effect_size: float | None = None
    statistic: float | None = None
    p_value: float | None = Field(None, ge=0, le=1)
    baseline_n: int = Field(0, ge=0)
    canary_n: int = Field(0, ge=0)
    baseline_value: float | None = None
    canary_value: float | None = None
    reason: str = ""
    # added with judge stratified@2 (None from older judges)
    label: Literal["PASS", "HIGH", "LOW", "NO_DATA", "INCONCLUSIVE"] | None = Field(
        None, description="The classifier's label (Kayenta's words): HIGH/LOW fail, NO_DATA has too little data."
    )
    quantile: float | None = Field(None, gt=0, lt=1, description="The quantile judged (latency, output length).")
    tolerated: float | None = Field(None, ge=0, description="Relative change tolerated before FAIL (0.05: 5 %).")
    forbidden: float | None = Field(None, ge=0, description="Relative change ruled out before 100 % (0.15: 15 %).")
    ratio: float | None = Field(None, ge=0, description="Stratified ratio canary ÷ baseline of the bad events.")
    pass_e_value: float | None = Field(None, ge=0, description="Evidence that the forbidden change is ruled out.")
    gating: bool | None = Field(None, description="Whether it must pass for the canary to pass.")
    requests_needed: int | None = Field(None, ge=0, description="More requests (both arms) a decision likely needs.")


class CanaryVerdict(Payload):
    schema_name = "CanaryVerdict"

    verdict_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    ts: UTCDateTime = Field(default_factory=utcnow)
    deployment: str
    baseline_version: str
    canary_version: str
    judge: str = Field(description="Versioned judge name, e.g. 'stratified@2'.")
    result: Result
    reason: str = ""
    metrics: list[MetricVerdict] = Field(default_factory=list)
    window_start: UTCDateTime
    window_end: UTCDateTime
    baseline_n: int = Field(0, ge=0)
    canary_n: int = Field(0, ge=0)
    canary_weight: float | None = Field(None, ge=0, le=1, description="Canary traffic share while judged.")
    judge_instance: str | None = Field(
        None, description="The judge instance that made it (`worker.instance_id`: host and pid by default)."
    )
    # added with judge stratified@2 (None / False from older judges)
    next_weight: float | None = Field(None, ge=0, le=1, description="The step a pass verdict is for.")
    pass_evidence: float | None = Field(None, ge=0, description="Smallest pass e-value among the gating metrics.")
    pass_threshold: float | None = Field(
        None, ge=1, description="What `pass_evidence` must reach for next_weight: 1 / min(1, risk budget / weight)."
    )
    srm_detected: bool = Field(False, description="Sample-ratio mismatch: the canary's share is not its weight.")
    observed_share: float | None = Field(None, ge=0, le=1, description="The canary's share of requests at this step.")
    srm_p_value: float | None = Field(None, ge=0, le=1, description="Always-valid p-value of the share test.")
    requests_needed: int | None = Field(None, ge=0, description="More requests (both arms) a decision likely needs.")


class ExperimentSpec(BaseModel):
    """An A/B experiment: users are assigned to arms by a stable hash of (salt, user_id)."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    salt: str = Field(min_length=1)
    arms: dict[str, float] = Field(description="arm (model_version) → share; shares sum to 1.")

    @field_validator("arms")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        _check_distribution(v, "arms")
        return v


def _check_distribution(weights: dict[str, float], what: str) -> None:
    if not weights:
        raise ValueError(f"{what} must name at least one model version")
    for k, w in weights.items():
        if not (0.0 <= w <= 1.0) or math.isnan(w):
            raise ValueError(f"{what}[{k!r}]={w} is outside [0, 1]")
    total = math.fsum(weights.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{what} sum to {total}, not 1")


RolloutState = Literal["idle", "progressing", "paused", "promoted", "rolled_back", "holding"]


class TrafficWeights(Payload):
    """The traffic split of one deployment; on a compacted topic the last one is the truth."""

    schema_name = "TrafficWeights"

    deployment: str = Field(min_length=1)
    weights: dict[str, float] = Field(description="model_version → share of traffic; each in [0,1], sum 1.")
    baseline_version: str
    canary_version: str | None = None
    state: RolloutState = "idle"
    step_index: int = Field(0, ge=0)
    seq: int = Field(0, ge=0, description="Monotonic per deployment; readers ignore older ones.")
    reason: str = ""
    verdict_id: str | None = Field(None, description="The verdict that caused this move, if any.")
    command_id: str | None = Field(None, description="The operator command that caused this move, if any.")
    experiment: ExperimentSpec | None = None
    updated_at: UTCDateTime = Field(default_factory=utcnow)
    epoch: int = Field(
        0,
        ge=0,
        description="Epoch of the controller that wrote it, raised by each controller that takes over. Readers "
        "reject a record whose epoch is below the highest one already on the topic: a stale controller's move.",
    )
    controller: str | None = Field(None, description="The controller instance that wrote it.")
    applied_commands: list[str] = Field(
        default_factory=list,
        description="command_ids applied to this deployment, newest last (the last 64): the compacted topic "
        "remembers them, so a controller that takes over never applies one again.",
    )

    @field_validator("weights")
    @classmethod
    def _valid(cls, v: dict[str, float]) -> dict[str, float]:
        _check_distribution(v, "weights")
        return v

    @model_validator(mode="after")
    def _versions_present(self) -> TrafficWeights:
        if self.baseline_version not in self.weights:
            raise ValueError(f"baseline_version {self.baseline_version!r} has no weight")
        if self.canary_version is not None and self.canary_version not in self.weights:
            raise ValueError(f"canary_version {self.canary_version!r} has no weight")
        return self


class ControlCommand(Payload):
    """An operator's instruction to the controller (`llmwatch rollout …`)."""

    schema_name = "ControlCommand"

    command_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    ts: UTCDateTime = Field(default_factory=utcnow)
    deployment: str = Field(min_length=1)
    action: Literal["start", "pause", "resume", "promote", "abort"]
    baseline_version: str | None = Field(None, description="For start: the version serving now.")
    canary_version: str | None = Field(None, description="For start: the version to roll out.")
    requested_by: str = "cli"
    reason: str = ""

    @model_validator(mode="after")
    def _start_names_canary(self) -> ControlCommand:
        if self.action == "start" and not self.canary_version:
            raise ValueError("action 'start' needs canary_version")
        return self
