"""One rollout's evidence: scores sorted into time strata per arm, each stratum folded into the tests once closed.

Time is cut into **segments** (one per canary weight: a new one starts whenever the weight changes) and each segment
into **strata** of `stratum_s`, aligned on the segment's start. A score lands in the stratum of its event time; the
first `settle_s` of a segment are left out (the routers are still switching to the new weight). A stratum is
*closed* once the clock passes its end by `lateness_s`: then both arms' aggregates are reduced (`ArmData`) and every
test, the sample-ratio test and the step's reporting totals take it in, once, in time order. A score for a stratum
that is already closed is counted as late and left out. So the arms are compared only within the same minutes at the
same weight, whatever happens across them (load, incidents, steps).

Nothing here reads a clock: `close(now)` is called by the owner (the judge agent, or the offline API).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from llmwatch.schemas import EvalScores

from .arms import ArmData, ArmStats
from .classify import Test, build_tests
from .config import JudgeConfig
from .stats import SrmProcess

Outcome = Literal["added", "settling", "late", "ignored"]


@dataclass
class Segment:
    """A span at one canary weight."""

    start: datetime
    weight: float
    end: datetime | None = None  # set when the next segment starts


@dataclass
class Stratum:
    segment: int
    index: int
    start: datetime
    arms: dict[str, ArmStats] = field(default_factory=dict)
    data: dict[str, ArmData] = field(default_factory=dict)  # fed pre-aggregated (offline)


class Evidence:
    """The judge's state for one (baseline, canary) rollout. Not thread-safe: one owner feeds and reads it."""

    def __init__(
        self,
        config: JudgeConfig,
        *,
        deployment: str,
        baseline: str,
        canary: str,
        started_at: datetime,
        weight: float,
    ) -> None:
        self.config = config
        self.deployment, self.baseline, self.canary = deployment, baseline, canary
        self.started_at = started_at
        self.segments: list[Segment] = [Segment(started_at, weight)]
        self.open: dict[tuple[int, int], Stratum] = {}
        self.horizon: datetime | None = None  # the `now` of the last close(): strata ending before it are closed
        self.tests: list[Test] = build_tests(config)
        self.srm = SrmProcess()
        self.restarts = 0
        self.step: dict[int, tuple[ArmData, ArmData]] = {}  # segment → (baseline, canary) over its closed strata
        self.total = (ArmData(), ArmData())
        self.window_start: datetime | None = None
        self.window_end: datetime | None = None
        self.strata_closed = 0
        self.counts: dict[str, int] = {"added": 0, "settling": 0, "late": 0, "ignored": 0}
        self.verdict_cache: tuple[tuple[int, int, float], dict[str, Any]] | None = None  # the judge's, per state
        self.others_passed_at: tuple[tuple[int, float], datetime] | None = None  # the judge's non-critical grace

    # ------------------------------------------------------------------------------ time layout
    @property
    def weight(self) -> float:
        return self.segments[-1].weight

    @property
    def segment(self) -> int:
        return len(self.segments) - 1

    def set_weight(self, weight: float, at: datetime) -> None:
        """The canary's weight changed at `at`: later scores form a new segment (a new step's strata)."""
        if math.isclose(weight, self.weight):
            return
        last = self.segments[-1]
        floor = self.horizon - timedelta(seconds=self.config.lateness_s) if self.horizon else last.start
        at = max(at, last.start, floor)  # never reopen time that is already judged
        last.end = at
        self.segments.append(Segment(at, weight))
        _, later = self.config.restart_weights()
        if later > 0 and self.restarts < self._planned_restarts():
            self.restarts += 1
            for t in self.tests:
                t.restart(later)

    def _planned_restarts(self) -> int:
        return max(len([s for s in self.config.steps if s < 1.0]) - 1, 0)

    def pending_weight(self) -> float:
        """Mixture weight of the fail copies not started yet (each counts as an e-value of 1 until it starts)."""
        _, later = self.config.restart_weights()
        return max(self._planned_restarts() - self.restarts, 0) * later

    def _locate(self, ts: datetime) -> tuple[int, int, datetime, datetime] | None:
        """(segment, stratum index, stratum start, stratum end) of an event time; None while settling."""
        seg = len(self.segments) - 1
        while seg > 0 and ts < self.segments[seg].start:
            seg -= 1
        s = self.segments[seg]
        offset = (ts - s.start).total_seconds()
        if offset < self.config.settle_s:
            return None
        index = int(offset // self.config.stratum_s)
        start = s.start + timedelta(seconds=index * self.config.stratum_s)
        end = start + timedelta(seconds=self.config.stratum_s)
        if s.end is not None:
            end = min(end, s.end)
        return seg, index, start, end

    def _stratum(self, ts: datetime) -> Stratum | Outcome:
        where = self._locate(ts)
        if where is None:
            return "settling"
        seg, index, start, end = where
        if self.horizon is not None and end + timedelta(seconds=self.config.lateness_s) <= self.horizon:
            return "late"
        key = (seg, index)
        stratum = self.open.get(key)
        if stratum is None:
            stratum = self.open[key] = Stratum(seg, index, start)
        return stratum

    # ------------------------------------------------------------------------------ feeding
    def add(self, score: EvalScores) -> Outcome:
        """One request's scores (the caller has deduplicated replays)."""
        if score.model_version not in (self.baseline, self.canary):
            self.counts["ignored"] += 1
            return "ignored"
        where = self._stratum(score.ts)
        if isinstance(where, str):
            self.counts[where] += 1
            return where
        arm = where.arms.get(score.model_version)
        if arm is None:
            arm = where.arms[score.model_version] = ArmStats(
                deployment=self.deployment,
                model_version=score.model_version,
                thresholds=self.config.thresholds,
                sketch_accuracy=self.config.sketch_accuracy,
            )
        arm.add(score)
        self.counts["added"] += 1
        return "added"

    def add_data(self, version: str, ts: datetime, data: ArmData) -> Outcome:
        """Pre-aggregated requests of one arm at event time `ts` (all in one stratum)."""
        if version not in (self.baseline, self.canary):
            return "ignored"
        where = self._stratum(ts)
        if isinstance(where, str):
            return where
        if version in where.data:
            where.data[version].merge(data)
        else:
            where.data[version] = data.copy()
        self.counts["added"] += int(data.requests)
        return "added"

    # ------------------------------------------------------------------------------ closing
    def close(self, now: datetime) -> int:
        """Fold every stratum that ended `lateness_s` before `now` into the tests, in time order; returns how many."""
        self.horizon = now if self.horizon is None else max(self.horizon, now)
        due: list[Stratum] = []
        for key, stratum in sorted(self.open.items()):
            _, _, _, end = self._bounds(stratum)
            if end + timedelta(seconds=self.config.lateness_s) <= self.horizon:
                due.append(stratum)
                del self.open[key]
        for stratum in due:
            self._fold(stratum)
        return len(due)

    def _bounds(self, stratum: Stratum) -> tuple[int, int, datetime, datetime]:
        s = self.segments[stratum.segment]
        end = stratum.start + timedelta(seconds=self.config.stratum_s)
        if s.end is not None:
            end = min(end, s.end)
        return stratum.segment, stratum.index, stratum.start, end

    def _arm(self, stratum: Stratum, version: str) -> ArmData:
        data = ArmData()
        arm = stratum.arms.get(version)
        if arm is not None:
            data.merge(ArmData.from_aggregate(arm.agg))
        if version in stratum.data:
            data.merge(stratum.data[version])
        return data

    def _fold(self, stratum: Stratum) -> None:
        base, can = self._arm(stratum, self.baseline), self._arm(stratum, self.canary)
        for t in self.tests:
            t.update(base, can)
        weight = self.segments[stratum.segment].weight
        self.srm.update(can.requests, can.requests + base.requests, weight)
        step = self.step.get(stratum.segment)
        if step is None:
            self.step[stratum.segment] = (base.copy(), can.copy())
        else:
            step[0].merge(base)
            step[1].merge(can)
        self.total[0].merge(base)
        self.total[1].merge(can)
        _, _, start, end = self._bounds(stratum)
        self.window_start = start if self.window_start is None else min(self.window_start, start)
        self.window_end = end if self.window_end is None else max(self.window_end, end)
        self.strata_closed += 1

    # ------------------------------------------------------------------------------ reading
    def step_data(self) -> tuple[ArmData, ArmData]:
        """Both arms over the latest segment with closed strata (the same minutes, the same weight)."""
        for seg in sorted(self.step, reverse=True):
            return self.step[seg]
        return ArmData(), ArmData()

    @property
    def baseline_n(self) -> int:
        return int(self.total[0].requests)

    @property
    def canary_n(self) -> int:
        return int(self.total[1].requests)

    def open_requests(self) -> Iterable[tuple[str, int]]:
        for stratum in self.open.values():
            for version, arm in stratum.arms.items():
                yield version, arm.requests
