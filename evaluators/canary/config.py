"""The judge's policy: which metrics, which change each one tolerates and which it forbids, and the error budgets.

Margins are relative effect sizes, one rule for every metric of a kind:
- a **rate** (errors, toxicity, PII leaks, injection successes, hallucinations) tolerates the canary's rate up to
  ×(1 + tolerated) the baseline's before it fails, and must rule out ×(1 + forbidden) before it may reach 100 %;
  an absolute `floor` rules it out too (a canary whose own rate is confidently below it cannot be a regression
  worth blocking: the route for events so rare that no ratio can be measured);
- a **quantile** of a latency (TTFT, TPOT, end to end) or of the output length tolerates the canary's q-quantile up
  to (1 + tolerated)× the baseline's, and must rule out (1 + forbidden)×: the same margins for TTFT, TPOT and e2e.

The risk budget: a step to canary weight w needs each gating metric's pass evidence at level min(1, alpha_pass / w),
so the chance that a canary with a forbidden regression reaches weight w, times w, is at most alpha_pass: the
step to 100 % at alpha_pass itself, earlier steps on weaker evidence in proportion to the traffic they expose.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ..metrics import Thresholds
from .arms import RATES, SKETCHES

Direction = Literal["increase", "decrease", "either"]
Side = Literal["increase", "decrease"]


def step_alpha(budget: float, next_weight: float) -> float:
    """The risk budget's level for a step to canary weight `next_weight`: min(1, budget / next_weight). A canary with a
    forbidden regression reaches that weight with probability at most this, so (probability × exposure) ≤ budget."""
    return min(1.0, budget / max(next_weight, 1e-9))


class QuantileMargin(BaseModel):
    """One quantile judged, with its tolerated and forbidden relative rise (0.15: 15 %)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    q: float = Field(gt=0, lt=1)
    tolerated: float = Field(ge=0, description="Relative change tolerated before FAIL.")
    forbidden: float = Field(gt=0, description="Relative change that must be ruled out before 100 %.")

    @model_validator(mode="after")
    def _ordered(self) -> QuantileMargin:
        if self.forbidden <= self.tolerated:
            raise ValueError(
                f"p{100 * self.q:g}: forbidden ({self.forbidden}) must exceed tolerated ({self.tolerated})"
            )
        return self

    @property
    def label(self) -> str:
        return f"p{100 * self.q:g}"


class MetricSpec(BaseModel):
    """One judged metric (see the module doc for the margins)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: Literal["rate", "quantile"] = "rate"
    source: str = Field(description="Rate counter or sketch of the arms (evaluators/canary/arms.py).")
    direction: Direction = "increase"
    tolerated: float = Field(0.2, ge=0, description="rate: relative rise tolerated before FAIL (0.2: ×1.2).")
    forbidden: float = Field(1.0, gt=0, description="rate: relative rise ruled out before 100 % (1.0: ×2).")
    floor: float = Field(0.0, ge=0, lt=1, description="rate: a canary rate confidently below this passes.")
    quantiles: list[QuantileMargin] = Field(default_factory=list, description="quantile: what is judged.")
    critical: bool = Field(False, description="Too little data blocks promotion; a failure decides the verdict.")
    weight: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _fits(self) -> MetricSpec:
        if self.kind == "rate":
            if self.source not in RATES:
                raise ValueError(f"rate metric {self.name!r}: source must be one of {RATES}")
            if self.direction != "increase":
                raise ValueError(f"rate metric {self.name!r}: only an increase is judged")
            if self.forbidden <= self.tolerated:
                raise ValueError(f"{self.name}: forbidden must exceed tolerated")
        else:
            if self.source not in SKETCHES:
                raise ValueError(f"quantile metric {self.name!r}: source must be one of {SKETCHES}")
            if not self.quantiles:
                raise ValueError(f"quantile metric {self.name!r} needs quantiles")
        return self

    @property
    def sides(self) -> tuple[Side, ...]:
        return ("increase", "decrease") if self.direction == "either" else (self.direction,)  # type: ignore[return-value]

    @property
    def tests(self) -> int:
        return len(self.sides) * (len(self.quantiles) if self.kind == "quantile" else 1)

    def widened(self, scale: float) -> MetricSpec:
        """Forbidden regressions (and floors) scaled by `scale` ≥ 1: passes on smaller samples (demos, tests)."""
        if scale == 1.0:
            return self
        return self.model_copy(
            update={
                "forbidden": self.forbidden * scale,
                "floor": min(0.5, self.floor * scale),
                "quantiles": [m.model_copy(update={"forbidden": m.forbidden * scale}) for m in self.quantiles],
            }
        )


def latency_margins() -> list[QuantileMargin]:
    """One set for TTFT, TPOT and end to end: p50 and p95 may rise 5 % (must rule out 15 %), p99 10 % (25 %)."""
    return [
        QuantileMargin(q=0.5, tolerated=0.05, forbidden=0.15),
        QuantileMargin(q=0.95, tolerated=0.05, forbidden=0.15),
        QuantileMargin(q=0.99, tolerated=0.10, forbidden=0.25),
    ]


def default_metrics() -> list[MetricSpec]:
    """The versioned policy of the judge (`Judge.name`): change it and the name changes."""
    return [
        MetricSpec(name="error_rate", source="errors", tolerated=0.2, forbidden=0.5, floor=0.001, critical=True),
        MetricSpec(name="ttft", kind="quantile", source="ttft", quantiles=latency_margins()),
        MetricSpec(name="tpot", kind="quantile", source="tpot", quantiles=latency_margins()),
        MetricSpec(name="e2e", kind="quantile", source="e2e", quantiles=latency_margins()),
        MetricSpec(name="toxicity_rate", source="toxicity", tolerated=0.5, forbidden=1.0, floor=0.0005, critical=True),
        MetricSpec(name="pii_leak_rate", source="pii_leak", tolerated=0.5, forbidden=1.0, floor=0.0005, critical=True),
        MetricSpec(
            name="injection_success_rate", source="injection_success", tolerated=0.5, forbidden=1.0, floor=0.005
        ),
        MetricSpec(name="hallucination_rate", source="hallucination", tolerated=0.2, forbidden=0.5, floor=0.005),
        MetricSpec(
            name="drift",
            kind="quantile",
            source="output_tokens",
            direction="either",
            quantiles=[QuantileMargin(q=0.5, tolerated=0.2, forbidden=0.5)],
        ),
    ]


class JudgeConfig(BaseModel):
    """How the judge decides. `alpha_fail` bounds the chance of ever failing a canary within its tolerated margins
    (split over the tests, Bonferroni); `alpha_pass` is the risk budget (module doc); `alpha_srm` bounds the chance of
    ever flagging a sample-ratio mismatch that is not there."""

    model_config = ConfigDict(extra="forbid")

    alpha_fail: float = Field(0.01, gt=0, lt=1)
    alpha_pass: float = Field(0.05, gt=0, lt=1)
    alpha_srm: float = Field(0.001, gt=0, lt=1)
    min_canary_n: int = Field(500, ge=1, description="Canary requests judged before any pass.")
    fail_score: float = Field(100.0, ge=0, le=100, description="Overall fail when the non-failing share is lower.")
    metrics: list[MetricSpec] = Field(default_factory=default_metrics)
    thresholds: Thresholds = Field(
        default_factory=Thresholds, description="What counts as toxic, hallucinated, … (evaluators/metrics.py)."
    )
    sketch_accuracy: float = Field(0.01, gt=0, lt=1, description="DDSketch relative accuracy of the arms.")
    steps: list[float] = Field(default_factory=lambda: [0.01, 0.05, 0.25, 0.5, 1.0])
    stratum_s: float = Field(60.0, gt=0)
    lateness_s: float = Field(10.0, ge=0)
    settle_s: float = Field(10.0, ge=0)
    restart_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Fail evidence: weight of the copy started with the rollout; the rest is split "
        "over the copies started at each later step.",
    )
    noncritical_grace_s: float = Field(
        600.0,
        ge=0,
        description="A non-critical metric still undecided this long after every other metric passed is NO_DATA.",
    )
    sparse_factor: float = Field(
        3.0,
        gt=0,
        description="A non-critical metric is NO_DATA until its events could rule out the forbidden "
        "regression this many times over for a canary equal to the baseline.",
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < w <= 1 for w in v) or any(b <= a for a, b in pairwise(v)):
            raise ValueError("steps must be increasing canary shares in (0, 1]")
        return v

    _tests: int = PrivateAttr(0)

    @model_validator(mode="after")
    def _unique(self) -> JudgeConfig:
        names = [m.name for m in self.metrics]
        if len(names) != len(set(names)) or not names:
            raise ValueError("metrics must be non-empty with unique names")
        self._tests = sum(m.tests for m in self.metrics)
        return self

    @property
    def tests(self) -> int:
        return self._tests

    @property
    def alpha_per_test(self) -> float:
        return self.alpha_fail / self.tests

    @property
    def fail_log_threshold(self) -> float:
        return math.log(1.0 / self.alpha_per_test)

    def next_weight(self, weight: float) -> float:
        """The canary weight of the step after `weight` (1.0 past the last configured one)."""
        return next((s for s in self.steps if s > weight + 1e-9), 1.0)

    def pass_alpha(self, next_weight: float) -> float:
        """The risk budget's level for a step to `next_weight`: min(1, alpha_pass / next_weight)."""
        return step_alpha(self.alpha_pass, next_weight)

    def restart_weights(self) -> tuple[float, float]:
        """(weight of the rollout-start copy, weight of each later step's copy) of the fail mixture."""
        later = len([s for s in self.steps if s < 1.0]) - 1  # steps after the first that are judged
        if later <= 0 or self.restart_share >= 1.0:
            return 1.0, 0.0
        return self.restart_share, (1.0 - self.restart_share) / later
