"""What the judge reads of each arm: the metrics' aggregate (one definition per metric) and its reduced form.

- `ArmStats` is one arm of one model version: a `MetricAggregate` (evaluators/metrics.py: errors over finished
  requests, latencies and output length over ok requests, each quality rate over the events where its score exists,
  thresholds inclusive) plus its time span, updated one EvalScores at a time and mergeable.
- `ArmData` is what the statistics need of an arm in one time stratum: its requests, (trials, events) per rate and
  a histogram per sketched distribution on DDSketch's key grid (`Hist`). The judge reduces each closed stratum's
  `ArmStats` to it (`ArmData.from_aggregate`); offline runs may feed it directly (a window read back from ClickHouse,
  a simulator's batch), and it merges exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.pb.proto import DDSketchProto

from llmwatch.schemas import EvalScores

from ..metrics import MetricAggregate, Thresholds

FloatArray = npt.NDArray[np.float64]

#: Rate counters the arms expose: errors (over finished requests), then the quality rates of evaluators/metrics.py.
RATES = ("errors", "toxicity", "pii_leak", "injection_success", "hallucination")
#: Sketched distributions (MetricAggregate's names) → the EvalScores field each samples.
SKETCHES = ("ttft", "tpot", "e2e", "output_tokens")
_FIELDS = {"ttft": "ttft_ms", "tpot": "tpot_ms", "e2e": "e2e_ms", "output_tokens": "output_tokens"}


@dataclass
class Count:
    n: int = 0
    k: int = 0


@dataclass
class ArmStats:
    """Mergeable statistics of one arm (one model version): the metrics' aggregate and the arm's time span.
    Deduplicating replays is the feeder's job."""

    deployment: str = ""
    model_version: str = ""
    thresholds: Thresholds = field(default_factory=Thresholds)
    sketch_accuracy: float = 0.01
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    agg: MetricAggregate = field(init=False)

    def __post_init__(self) -> None:
        self.agg = MetricAggregate(thresholds=self.thresholds, sketch_accuracy=self.sketch_accuracy)

    @property
    def requests(self) -> int:
        return self.agg.count

    @property
    def counts(self) -> dict[str, Count]:
        """What each rate metric reads: counter → (trials, events)."""
        out = {"errors": Count(self.agg.finished, self.agg.errors)}
        out.update({name: Count(self.agg.rates[name].n, self.agg.rates[name].hits) for name in RATES[1:]})
        return out

    @property
    def sketches(self) -> dict[str, DDSketch]:
        """Sketches by the EvalScores field they sample (ttft_ms, tpot_ms, e2e_ms, output_tokens)."""
        return {_FIELDS[name]: self.agg.sketches[name] for name in SKETCHES}

    def add(self, score: EvalScores) -> None:
        if self.model_version and score.model_version != self.model_version:
            raise ValueError(f"score for {score.model_version!r} fed to the {self.model_version!r} arm")
        self.deployment = self.deployment or score.deployment
        self.model_version = self.model_version or score.model_version
        self.first_ts = score.ts if self.first_ts is None else min(self.first_ts, score.ts)
        self.last_ts = score.ts if self.last_ts is None else max(self.last_ts, score.ts)
        self.agg.add(score)

    def merge(self, other: ArmStats) -> ArmStats:
        """Fold `other` (same version, same thresholds) into this arm; returns self."""
        if other.model_version and self.model_version and other.model_version != self.model_version:
            raise ValueError(f"cannot merge arm {other.model_version!r} into {self.model_version!r}")
        self.agg.merge(other.agg)
        self.deployment = self.deployment or other.deployment
        self.model_version = self.model_version or other.model_version
        for ts in (other.first_ts, other.last_ts):
            if ts is not None:
                self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
                self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (for a restart)."""
        return {
            "deployment": self.deployment,
            "model_version": self.model_version,
            "first_ts": self.first_ts.isoformat() if self.first_ts else None,
            "last_ts": self.last_ts.isoformat() if self.last_ts else None,
            "aggregate": self.agg.to_state(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArmStats:
        agg = MetricAggregate.from_state(data["aggregate"])
        arm = cls(
            deployment=data.get("deployment", ""),
            model_version=data.get("model_version", ""),
            thresholds=agg.thresholds,
            sketch_accuracy=agg.sketch_accuracy,
            first_ts=datetime.fromisoformat(data["first_ts"]) if data.get("first_ts") else None,
            last_ts=datetime.fromisoformat(data["last_ts"]) if data.get("last_ts") else None,
        )
        arm.agg = agg
        return arm

    def quantile(self, source: str, q: float) -> float | None:
        """q-quantile of a sketch named by its EvalScores field (ttft_ms, …) or its aggregate name (ttft, …)."""
        name = next((k for k, f in _FIELDS.items() if source in (k, f)), source)
        return self.agg.quantile(name, q)


# ------------------------------------------------------------------------------------------ reduced form
@dataclass
class Hist:
    """A sketch's counts on DDSketch's key grid: `zero` holds values ≤ 0, `bins[i]` the key `offset + i`."""

    zero: float = 0.0
    offset: int = 0
    bins: FloatArray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def from_sketch(cls, s: DDSketch) -> Hist:
        """Through the sketch's public protobuf form (negative values, which latencies never are, count as ≤ 0)."""
        if not s.count:
            return cls()
        proto = DDSketchProto.to_proto(s)
        zero = float(proto.zeroCount) + float(sum(proto.negativeValues.contiguousBinCounts))
        store = proto.positiveValues
        return cls(zero, int(store.contiguousBinIndexOffset), np.asarray(store.contiguousBinCounts, dtype=np.float64))

    @property
    def total(self) -> float:
        return self.zero + float(self.bins.sum())

    def copy(self) -> Hist:
        return Hist(self.zero, self.offset, self.bins.copy())

    def merge(self, other: Hist) -> Hist:
        """Add `other` into this histogram; returns self."""
        self.zero += other.zero
        if other.bins.size == 0:
            return self
        if self.bins.size == 0:
            self.offset, self.bins = other.offset, other.bins.astype(np.float64, copy=True)
            return self
        lo = min(self.offset, other.offset)
        hi = max(self.offset + self.bins.size, other.offset + other.bins.size)
        if (lo, hi) != (self.offset, self.offset + self.bins.size):
            grown = np.zeros(hi - lo)
            grown[self.offset - lo : self.offset - lo + self.bins.size] = self.bins
            self.offset, self.bins = lo, grown
        self.bins[other.offset - lo : other.offset - lo + other.bins.size] += other.bins
        return self

    @staticmethod
    def aligned(a: Hist, b: Hist) -> tuple[FloatArray, FloatArray]:
        """Both as arrays over the same buckets: index 0 holds values ≤ 0, then keys in increasing order."""
        if a.bins.size == 0 and b.bins.size == 0:
            return np.array([a.zero]), np.array([b.zero])
        spans = [(h.offset, h.offset + h.bins.size) for h in (a, b) if h.bins.size]
        lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
        out = []
        for h in (a, b):
            arr = np.zeros(hi - lo + 1)
            arr[0] = h.zero
            if h.bins.size:
                arr[1 + h.offset - lo : 1 + h.offset - lo + h.bins.size] = h.bins
            out.append(arr)
        return out[0], out[1]

    def quantile(self, q: float, mapping: LogarithmicMapping) -> float | None:
        """The q-quantile's value, chosen as DDSketch does (the bucket holding rank q·(n − 1))."""
        n = self.total
        if n <= 0:
            return None
        rank = q * (n - 1.0)
        if rank < self.zero:
            return 0.0
        idx = int(np.searchsorted(np.cumsum(self.bins), rank - self.zero, side="right"))
        return float(mapping.value(self.offset + min(idx, self.bins.size - 1)))


@dataclass
class ArmData:
    """One arm over one stratum, as the statistics read it: requests, (trials, events) per rate, histograms."""

    requests: float = 0.0
    rates: dict[str, tuple[float, float]] = field(default_factory=dict)
    hists: dict[str, Hist] = field(default_factory=dict)

    @classmethod
    def from_aggregate(cls, agg: MetricAggregate) -> ArmData:
        rates = {"errors": (float(agg.finished), float(agg.errors))}
        rates.update({name: (float(agg.rates[name].n), float(agg.rates[name].hits)) for name in RATES[1:]})
        return cls(float(agg.count), rates, {name: Hist.from_sketch(agg.sketches[name]) for name in SKETCHES})

    def rate(self, name: str) -> tuple[float, float]:
        return self.rates.get(name, (0.0, 0.0))

    def hist(self, name: str) -> Hist:
        return self.hists.get(name) or Hist()

    def copy(self) -> ArmData:
        return ArmData(self.requests, dict(self.rates), {k: h.copy() for k, h in self.hists.items()})

    def merge(self, other: ArmData) -> ArmData:
        """Add `other` into this one; returns self."""
        self.requests += other.requests
        for name, (n, k) in other.rates.items():
            n0, k0 = self.rates.get(name, (0.0, 0.0))
            self.rates[name] = (n0 + n, k0 + k)
        for name, h in other.hists.items():
            if name in self.hists:
                self.hists[name].merge(h)
            else:
                self.hists[name] = h.copy()
        return self
