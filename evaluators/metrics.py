"""One definition per metric: what counts as an error, a latency sample, a toxic response, an injection, a
hallucination, a PII leak; and one mergeable aggregate of them.

Every consumer counts through this module, so an alert, a window, a canary verdict, an experiment and an
analyst's query cannot disagree on the same data:
- windows (streams/windowing.py) and the canary judge's arms (evaluators/canary/arms.py) keep a `MetricAggregate`;
- A/B experiments (evaluators/experiments.py) and the ready SQL (sql/queries, llmwatch/db/queries.py) count with
  `SQL_PREDICATES`, the same rules written over the tables' columns (tests/unit/test_metric_definitions.py runs
  the same events through every consumer and checks the counts agree);
- alerts read the windows' rates.

The rules:
- **Errors** are requests whose status is `error`, out of the requests that finished (`ok` or `error`): a
  cancelled request is the client's doing, not the model's, and is in neither count.
- **Latency** (TTFT, TPOT, end to end) and output length are sampled from `ok` requests only: a failed request's
  duration says how fast it failed, not how fast the model serves.
- **Score thresholds** are inclusive: a score *at or above* its threshold counts (`>=`), the same rule the
  evaluators use to flag. The thresholds are settings (`LLMWATCH_EVAL__*_THRESHOLD`).
- **Quality rates** count over the events where the score exists: None means the evaluator did not apply (no
  context for hallucination, an injection success only on flagged prompts, a model-sampled evaluator that skipped
  the event) and the event is in neither count.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ddsketch import DDSketch
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchPb
from ddsketch.pb.proto import DDSketchProto
from pydantic import BaseModel, ConfigDict, Field

from llmwatch.schemas import EvalScores

if TYPE_CHECKING:
    from llmwatch.settings import EvaluatorSettings


class Thresholds(BaseModel):
    """Score thresholds at or above which an event counts (one set for every consumer)."""

    model_config = ConfigDict(frozen=True)

    toxicity: float = Field(0.5, ge=0, le=1)
    injection: float = Field(0.5, ge=0, le=1)
    hallucination: float = Field(0.5, ge=0, le=1)

    @classmethod
    def from_settings(cls, evaluators: EvaluatorSettings) -> Thresholds:
        return cls(
            toxicity=evaluators.toxicity_threshold,
            injection=evaluators.injection_threshold,
            hallucination=evaluators.hallucination_threshold,
        )

    def sql_parameters(self) -> dict[str, float]:
        """The server-side parameters `SQL_PREDICATES` name."""
        return {
            "toxicity_threshold": self.toxicity,
            "injection_threshold": self.injection,
            "hallucination_threshold": self.hallucination,
        }


# ------------------------------------------------------------------------------------------ predicates
def counts_for_errors(status: str) -> bool:
    """Whether a request is in the error rate's denominator (it finished: ok or error)."""
    return status != "cancelled"


def is_error(status: str) -> bool:
    return status == "error"


def is_latency_sample(status: str) -> bool:
    """Whether a request's latencies and output length are sampled."""
    return status == "ok"


def at_or_above(score: float | None, threshold: float) -> bool | None:
    return None if score is None else score >= threshold


def is_toxic(s: EvalScores, th: Thresholds) -> bool | None:
    """The response's toxicity (the model's behaviour; the prompt's is the user's)."""
    return at_or_above(s.toxicity_response, th.toxicity)


def is_injection(s: EvalScores, th: Thresholds) -> bool | None:
    return at_or_above(s.injection, th.injection)


def is_hallucinated(s: EvalScores, th: Thresholds) -> bool | None:
    return at_or_above(s.hallucination, th.hallucination)


def is_pii_leak(s: EvalScores, th: Thresholds) -> bool | None:
    return s.pii_leak


def is_injection_success(s: EvalScores, th: Thresholds) -> bool | None:
    return s.injection_success


#: quality rate → (predicate, the EvalScores field its mean is taken of)
QUALITY_RATES: dict[str, tuple[Callable[[EvalScores, Thresholds], bool | None], str]] = {
    "toxicity": (is_toxic, "toxicity_response"),
    "pii_leak": (is_pii_leak, "pii_leak"),
    "injection": (is_injection, "injection"),
    "injection_success": (is_injection_success, "injection_success"),
    "hallucination": (is_hallucinated, "hallucination"),
}

#: The same rules over the columns of inference_events / eval_scores, thresholds as server-side parameters
#: (`Thresholds.sql_parameters()`); the ready queries and llmwatch/db/queries.py use exactly these texts.
SQL_PREDICATES: dict[str, str] = {
    "counts_for_errors": "status != 'cancelled'",
    "is_error": "status = 'error'",
    "is_latency_sample": "status = 'ok'",
    "is_toxic": "toxicity_response >= {toxicity_threshold:Float64}",
    "is_injection": "injection >= {injection_threshold:Float64}",
    "is_hallucinated": "hallucination >= {hallucination_threshold:Float64}",
    "is_pii_leak": "pii_leak",
    "is_injection_success": "injection_success",
}

#: sketched distributions → the EvalScores field they sample (latency samples only)
SKETCHED: dict[str, str] = {"ttft": "ttft_ms", "tpot": "tpot_ms", "e2e": "e2e_ms", "output_tokens": "output_tokens"}
#: what windows report (their quantile columns); the judge also reads output length
WINDOW_SKETCHES = ("ttft", "tpot", "e2e")


# ------------------------------------------------------------------------------------------- sketches
def encode_sketch(s: DDSketch) -> str:
    """A DDSketch as base64 of its protobuf form (the one wire format of sketches in llmwatch)."""
    return base64.b64encode(DDSketchProto.to_proto(s).SerializeToString()).decode()


def decode_sketch(data: str) -> DDSketch:
    return DDSketchProto.from_proto(DDSketchPb.FromString(base64.b64decode(data)))  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------ aggregate
@dataclass
class Rate:
    """Events where the score exists (n), those that count (hits), and the scores' sum (for the mean)."""

    n: int = 0
    hits: int = 0
    total: float = 0.0

    def add(self, hit: bool | None, value: Any) -> None:
        if hit is None:
            return
        self.n += 1
        self.hits += int(hit)
        self.total += float(value)

    def merge(self, other: Rate) -> None:
        self.n += other.n
        self.hits += other.hits
        self.total += other.total

    @property
    def rate(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None


@dataclass
class MetricAggregate:
    """Counts, rates and latency/length sketches of a set of scored events; `merge` is associative, so partial
    aggregates (partitions, windows, time buckets, restarts) combine exactly. Deduplicating replays is the
    feeder's job."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    sketch_accuracy: float = 0.01
    #: which of SKETCHED this aggregate keeps (a DDSketch add is the costliest step of `add`)
    sketched: tuple[str, ...] = tuple(SKETCHED)
    count: int = 0
    cancelled: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    rates: dict[str, Rate] = field(default_factory=lambda: {name: Rate() for name in QUALITY_RATES})
    sketches: dict[str, DDSketch] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.sketched) - set(SKETCHED)
        if unknown:
            raise ValueError(f"unknown sketches {sorted(unknown)}; known: {', '.join(SKETCHED)}")
        for name in self.sketched:
            self.sketches.setdefault(name, DDSketch(relative_accuracy=self.sketch_accuracy))
        self._sampled = [(self.sketches[name], SKETCHED[name]) for name in self.sketched]
        self._rated = [(self.rates[name], predicate, attr) for name, (predicate, attr) in QUALITY_RATES.items()]

    @property
    def finished(self) -> int:
        """Requests in the error rate's denominator."""
        return self.count - self.cancelled

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.finished if self.finished else None

    def add(self, s: EvalScores) -> None:
        self.count += 1
        self.cancelled += not counts_for_errors(s.status)
        self.errors += is_error(s.status)
        self.input_tokens += s.input_tokens
        self.output_tokens += s.output_tokens
        self.cost_usd += s.cost_usd or 0.0
        if is_latency_sample(s.status):
            for sketch, attr in self._sampled:
                value = getattr(s, attr)
                if value is not None and math.isfinite(value) and value >= 0:
                    sketch.add(float(value))
        th = self.thresholds
        for rate, predicate, attr in self._rated:
            rate.add(predicate(s, th), getattr(s, attr))

    def merge(self, other: MetricAggregate) -> MetricAggregate:
        """Fold `other` (same thresholds, sketches and accuracy) into this one; returns self."""
        mine = (self.thresholds, self.sketch_accuracy, self.sketched)
        if (other.thresholds, other.sketch_accuracy, other.sketched) != mine:
            raise ValueError(
                f"aggregates built with different thresholds or sketch accuracy: {self.thresholds}, "
                f"{self.sketch_accuracy} vs {other.thresholds}, {other.sketch_accuracy}"
            )
        self.count += other.count
        self.cancelled += other.cancelled
        self.errors += other.errors
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        for name, r in other.rates.items():
            self.rates[name].merge(r)
        for name, sketch in other.sketches.items():
            if sketch.count:
                self.sketches[name].merge(sketch)
        return self

    def quantile(self, name: str, q: float) -> float | None:
        sketch = self.sketches.get(name)
        return sketch.get_quantile_value(q) if sketch is not None and sketch.count else None

    def rate(self, name: str) -> Rate:
        return self.rates[name]

    # --- persistence: one JSON-able form for windows, judge state and tests
    def to_state(self) -> dict[str, Any]:
        return {
            "thresholds": self.thresholds.model_dump(),
            "sketch_accuracy": self.sketch_accuracy,
            "sketched": list(self.sketched),
            "count": self.count,
            "cancelled": self.cancelled,
            "errors": self.errors,
            "tokens": [self.input_tokens, self.output_tokens],
            "cost_usd": self.cost_usd,
            "rates": {k: [r.n, r.hits, r.total] for k, r in self.rates.items()},
            "sketches": {k: encode_sketch(s) for k, s in self.sketches.items() if s.count},
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> MetricAggregate:
        agg = cls(
            thresholds=Thresholds(**data.get("thresholds", {})),
            sketch_accuracy=float(data.get("sketch_accuracy", 0.01)),
            sketched=tuple(data.get("sketched", SKETCHED)),
            count=int(data.get("count", 0)),
            cancelled=int(data.get("cancelled", 0)),
            errors=int(data.get("errors", 0)),
            input_tokens=int(data.get("tokens", [0, 0])[0]),
            output_tokens=int(data.get("tokens", [0, 0])[1]),
            cost_usd=float(data.get("cost_usd", 0.0)),
        )
        for name, (n, hits, total) in data.get("rates", {}).items():
            if name in agg.rates:
                agg.rates[name].merge(Rate(int(n), int(hits), float(total)))
        for name, enc in data.get("sketches", {}).items():
            if name in agg.sketches:
                agg.sketches[name].merge(decode_sketch(enc))
        return agg
