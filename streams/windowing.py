"""Event-time tumbling windows over EvalScores: a mergeable aggregator and the window bookkeeping.

Pure code (no Faust, no Kafka): the window agent drives it, tests drive it directly, and the same
aggregator rolls windows up anywhere else (it merges, like quix-streams' window aggregators).

Semantics
- A window is `[start, start + size_s)` per (deployment, model_version, variant, prompt_version).
- The watermark of a partition is `max event ts seen − lateness_s`; a window closes once the watermark
  passes its end. A partition idle for `idle_close_s` of wall-clock time advances its watermark to
  `now − lateness_s`, so the last window of a burst closes too.
- An event for a window that already closed is *late*: it is merged into that window's stored state
  (kept for `retention_s` of event time) and the window is emitted again with `late_count` raised, so
  counts stay exact. Re-emits are coalesced: a closed window is emitted again at most once per
  `reemit_interval_s` of wall-clock time, with every late event merged since (a backlog behind the watermark
  once re-emitted a window per event). Later than retention, an event is counted in `too_late` and left to
  ClickHouse's raw rows.
- Partitions move between workers (a rebalance): `drop_partitions` forgets the open windows of the scores
  partitions this windower lost (the new owner replays their uncommitted events), and `restore_closed`
  reads in what other workers emitted.
- Replays: every window remembers, per partition of llm.inference.events, the highest source offset it
  includes. The score agent scores each source partition in order and a window key lives on one scores
  partition, so a score whose source offset is at or below that mark was already counted: it is a replayed
  duplicate (from the score agent's or this agent's at-least-once replay) and is ignored. Scores without a
  source position (written by other producers) fall back to their own position on the scores topic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from llmwatch.evaluators.metrics import WINDOW_SKETCHES, MetricAggregate, Thresholds
from llmwatch.schemas import EvalScores, WindowMetrics

SKETCH_ACCURACY = 0.005  # relative error of quantiles: 0.5 %


class WindowConfig(BaseModel):
    """Window parameters; units in the names, validated when built."""

    size_s: float = Field(60.0, gt=0, description="Tumbling window length.")
    lateness_s: float = Field(10.0, ge=0, description="How long after its end a window waits for stragglers.")
    idle_close_s: float = Field(
        5.0,
        gt=0,
        description="Idle wall-clock time after which the watermark follows the clock.",
    )
    retention_s: float = Field(3600.0, gt=0, description="How long closed windows accept late events (event time).")
    thresholds: Thresholds = Field(default_factory=Thresholds, description="What counts (evaluators/metrics.py).")
    drift_sample: int = Field(128, ge=0, description="Prompts kept per window (reservoir) for the drift check.")

    @model_validator(mode="after")
    def _retention_covers_lateness(self) -> WindowConfig:
        if self.retention_s < self.size_s + self.lateness_s:
            raise ValueError("retention_s must be at least size_s + lateness_s")
        return self


@dataclass
class WindowStats:
    """Mergeable state of one window: the metrics' aggregate (one definition per metric, evaluators/metrics.py)
    plus what only windows need: late events, the source positions already counted, a prompt sample for drift.
    `merge` is associative, so partial windows roll up exactly."""

    agg: MetricAggregate = field(
        default_factory=lambda: MetricAggregate(sketch_accuracy=SKETCH_ACCURACY, sketched=WINDOW_SKETCHES)
    )
    late_count: int = 0
    max_source: dict[int, int] = field(default_factory=dict)  # source partition → highest source offset
    prompts: list[str] = field(default_factory=list)  # reservoir sample for drift (not persisted)
    drift: tuple[float | None, float | None] | None = None  # (score, p-value) once computed
    _seen_for_sample: int = 0

    @classmethod
    def new(cls, cfg: WindowConfig) -> WindowStats:
        return cls(
            MetricAggregate(thresholds=cfg.thresholds, sketch_accuracy=SKETCH_ACCURACY, sketched=WINDOW_SKETCHES)
        )

    @property
    def count(self) -> int:
        return self.agg.count

    def seen(self, pos: tuple[int, int] | None) -> bool:
        return pos is not None and pos[1] <= self.max_source.get(pos[0], -1)

    def add(
        self, s: EvalScores, cfg: WindowConfig, pos: tuple[int, int] | None = None, rng: random.Random | None = None
    ) -> None:
        self.agg.add(s)
        if pos is not None:
            self.max_source[pos[0]] = max(self.max_source.get(pos[0], -1), pos[1])
        prompt = s.event.prompt if s.event is not None else s.redacted_prompt
        if cfg.drift_sample and prompt:
            self._sample(prompt, cfg.drift_sample, rng or random.Random(0))

    def _sample(self, prompt: str, k: int, rng: random.Random) -> None:
        self._seen_for_sample += 1
        if len(self.prompts) < k:
            self.prompts.append(prompt)
        else:
            j = rng.randrange(self._seen_for_sample)
            if j < k:
                self.prompts[j] = prompt

    def merge(self, other: WindowStats) -> None:
        self.agg.merge(other.agg)
        self.late_count += other.late_count
        for p, o in other.max_source.items():
            self.max_source[p] = max(self.max_source.get(p, -1), o)

    def quantile(self, name: str, q: float) -> float | None:
        return self.agg.quantile(name, q)

    # persistence: the closed-window state travels inside WindowMetrics (sketches + the aggregate's counters)
    def to_sketch_fields(self) -> dict[str, str]:
        state = self.agg.to_state()
        out = state.pop("sketches")
        out["state"] = _json_dumps({"max_source": self.max_source, "aggregate": state})
        return out

    @classmethod
    def from_metrics(cls, m: WindowMetrics, cfg: WindowConfig | None = None) -> WindowStats:
        thresholds = (cfg or WindowConfig()).thresholds
        sketches = {k: v for k, v in m.sketches.items() if k != "state"}
        state = _json_loads(m.sketches["state"]) if "state" in m.sketches else {}
        if "aggregate" in state:
            agg = MetricAggregate.from_state({**state["aggregate"], "sketches": sketches})
        else:  # emitted before the aggregate existed: counters as they were then
            agg = MetricAggregate.from_state(
                {
                    "thresholds": thresholds.model_dump(),
                    "sketch_accuracy": SKETCH_ACCURACY,
                    "sketched": WINDOW_SKETCHES,
                    "count": m.count,
                    "errors": m.error_count,
                    "tokens": [m.input_tokens, m.output_tokens],
                    "cost_usd": m.cost_usd,
                    "rates": {a: [n, hits, total] for a, (n, total, hits) in state.get("rates", {}).items()},
                    "sketches": sketches,
                }
            )
        st = cls(agg, late_count=m.late_count)
        st.max_source = {int(p): int(o) for p, o in state.get("max_source", {}).items()}
        if m.drift_score is not None or m.drift_p_value is not None:
            st.drift = (m.drift_score, m.drift_p_value)  # a late re-emit keeps the window's drift
        return st


def _json_dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, separators=(",", ":"))


def _json_loads(text: str) -> Any:
    import json

    return json.loads(text)


@dataclass(frozen=True)
class WindowKey:
    deployment: str
    model_version: str
    variant: str
    prompt_version: str

    @classmethod
    def of(cls, s: EvalScores) -> WindowKey:
        return cls(s.deployment, s.model_version, s.variant, s.prompt_version)


def dedup_position(s: EvalScores, partition: int, offset: int) -> tuple[int, int] | None:
    """Where a score came from: (source partition, source offset), else (−1 − scores partition, offset)."""
    if s.source_partition is not None and s.source_offset is not None:
        return (s.source_partition, s.source_offset)
    return (-1 - partition, offset) if offset >= 0 else None


def window_start(ts: datetime, size_s: float) -> datetime:
    epoch = ts.timestamp()
    return datetime.fromtimestamp(epoch - (epoch % size_s), tz=UTC)


def window_id(key: WindowKey, start: datetime, size_s: float) -> str:
    start_ms = round(start.timestamp() * 1000)
    return f"{key.deployment}/{key.model_version}/{key.variant}/{key.prompt_version}/{start_ms}/{size_s:g}"


def to_metrics(
    key: WindowKey,
    start: datetime,
    cfg: WindowConfig,
    st: WindowStats,
    *,
    final: bool,
    drift: tuple[float | None, float | None] = (None, None),
) -> WindowMetrics:
    q, agg = st.quantile, st.agg
    return WindowMetrics(
        window_id=window_id(key, start, cfg.size_s),
        window_start=start,
        window_end=start + timedelta(seconds=cfg.size_s),
        size_s=cfg.size_s,
        final=final,
        deployment=key.deployment,
        model_version=key.model_version,
        variant=key.variant,
        prompt_version=key.prompt_version,
        count=agg.count,
        error_count=agg.errors,
        cancelled_count=agg.cancelled,
        late_count=st.late_count,
        error_rate=agg.error_rate or 0.0,
        ttft_p50_ms=q("ttft", 0.5),
        ttft_p95_ms=q("ttft", 0.95),
        ttft_p99_ms=q("ttft", 0.99),
        tpot_p50_ms=q("tpot", 0.5),
        tpot_p95_ms=q("tpot", 0.95),
        tpot_p99_ms=q("tpot", 0.99),
        e2e_p50_ms=q("e2e", 0.5),
        e2e_p95_ms=q("e2e", 0.95),
        e2e_p99_ms=q("e2e", 0.99),
        input_tokens=agg.input_tokens,
        output_tokens=agg.output_tokens,
        cost_usd=agg.cost_usd,
        toxicity_rate=agg.rate("toxicity").rate,
        toxicity_mean=agg.rate("toxicity").mean,
        pii_leak_rate=agg.rate("pii_leak").rate,
        injection_rate=agg.rate("injection").rate,
        injection_mean=agg.rate("injection").mean,
        injection_success_rate=agg.rate("injection_success").rate,
        hallucination_rate=agg.rate("hallucination").rate,
        hallucination_mean=agg.rate("hallucination").mean,
        hallucination_count=agg.rate("hallucination").n,
        drift_score=drift[0],
        drift_p_value=drift[1],
        sketches=st.to_sketch_fields(),
    )


Outcome = Literal["added", "duplicate", "late", "too_late"]


@dataclass
class _Open:
    key: WindowKey
    start: datetime
    partition: int
    stats: WindowStats
    tokens: list[Any] = field(default_factory=list)  # ack handles of the events inside (opaque here)


@dataclass
class _Closed:
    key: WindowKey
    start: datetime
    stats: WindowStats
    partition: int | None = None  # its scores partition (None: restored from the topic)
    pending: list[Any] = field(default_factory=list)  # ack handles of late events merged since its last emit
    dirty: bool = False  # late events merged since its last emit
    emitted_at: float = -math.inf  # wall clock of its last emit by this windower


@dataclass
class Closing:
    """A window to emit: its metrics-to-be, and the ack handles to release once the emit is durable."""

    key: WindowKey
    start: datetime
    stats: WindowStats
    tokens: list[Any]
    final: bool = True


class TumblingWindower:
    """Assigns scores to windows, tracks watermarks per partition, and says which windows are due."""

    def __init__(self, cfg: WindowConfig, *, reemit_interval_s: float = 0.0) -> None:
        self.cfg = cfg
        self.reemit_interval_s = reemit_interval_s
        self._open: dict[tuple[WindowKey, datetime], _Open] = {}
        self._closed: dict[str, _Closed] = {}
        self._max_ts: dict[int, float] = {}
        self._last_seen_wall: dict[int, float] = {}
        self.too_late = 0
        self._rng = random.Random(0)

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def held(self) -> int:
        """Events whose acks are held in open windows or pending re-emits (what a crash would replay)."""
        return sum(len(o.tokens) for o in self._open.values()) + sum(len(c.pending) for c in self._closed.values())

    def restore_closed(self, metrics: Iterable[WindowMetrics]) -> int:
        """Read in emitted WindowMetrics (after a restart or a rebalance): the highest count of each window wins,
        except over a window holding late events not re-emitted yet (those would be lost with its state)."""
        n = 0
        for m in metrics:
            key = WindowKey(m.deployment, m.model_version, m.variant, m.prompt_version)
            prev = self._closed.get(m.window_id)
            if prev is None or (m.count > prev.stats.count and not prev.dirty):
                restored = _Closed(key, m.window_start, WindowStats.from_metrics(m, self.cfg))
                if prev is not None:
                    restored.partition, restored.emitted_at = prev.partition, prev.emitted_at
                self._closed[m.window_id] = restored
                n += 1
        return n

    def drop_partitions(self, partitions: Iterable[int]) -> list[Any]:
        """Forget the windows of scores partitions this windower no longer owns: their open windows (the new
        owner replays those events from the last commit) and their closed ones (it restores what was emitted).
        Returns the ack handles it held for them: not to be acked (their offsets are the new owner's)."""
        lost = set(partitions)
        dropped: list[Any] = []
        for k, win in list(self._open.items()):
            if win.partition in lost:
                dropped.extend(win.tokens)
                del self._open[k]
        for wid, c in list(self._closed.items()):
            if c.partition in lost:
                dropped.extend(c.pending)
                del self._closed[wid]
        for p in lost:
            self._max_ts.pop(p, None)
            self._last_seen_wall.pop(p, None)
        return dropped

    def add(self, s: EvalScores, *, partition: int, offset: int, wall_now: float, token: Any = None) -> Outcome:
        """Add one score. A late event is merged into its closed window, which `due` re-emits.

        `partition`/`offset` are the score's position on the scores topic; its dedup position is its source
        position in llm.inference.events when the score carries one."""
        ts = s.ts.timestamp()
        self._max_ts[partition] = max(self._max_ts.get(partition, ts), ts)
        self._last_seen_wall[partition] = wall_now
        pos = dedup_position(s, partition, offset)
        key = WindowKey.of(s)
        start = window_start(s.ts, self.cfg.size_s)
        closed = self._closed.get(window_id(key, start, self.cfg.size_s))
        if closed is not None:
            if closed.stats.seen(pos):
                return "duplicate"
            closed.stats.add(s, self.cfg, pos, self._rng)
            closed.stats.late_count += 1
            closed.dirty = True
            if closed.partition is None:
                closed.partition = partition
            if token is not None:
                closed.pending.append(token)
            return "late"
        if start.timestamp() + self.cfg.size_s + self.cfg.retention_s < self._watermark(partition, wall_now):
            self.too_late += 1
            return "too_late"
        win = self._open.get((key, start))
        if win is None:
            win = self._open[(key, start)] = _Open(key, start, partition, WindowStats.new(self.cfg))
        elif win.stats.seen(pos):
            return "duplicate"
        win.stats.add(s, self.cfg, pos, self._rng)
        if token is not None:
            win.tokens.append(token)
        return "added"

    def _watermark(self, partition: int, wall_now: float) -> float:
        wm = self._max_ts.get(partition, -math.inf) - self.cfg.lateness_s
        last = self._last_seen_wall.get(partition)
        if last is not None and wall_now - last >= self.cfg.idle_close_s:
            wm = max(wm, wall_now - self.cfg.lateness_s)
        return wm

    def due(self, wall_now: float, *, flush_all: bool = False, flush_late: bool = False) -> list[Closing]:
        """Windows to emit: those whose end is behind their partition's watermark (all open ones with `flush_all`,
        on shutdown), and closed ones with late events whose last emit is `reemit_interval_s` old (all of them
        with `flush_late` or `flush_all`)."""
        out: list[Closing] = []
        for k, win in list(self._open.items()):
            end = win.start.timestamp() + self.cfg.size_s
            if flush_all or end <= self._watermark(win.partition, wall_now):
                del self._open[k]
                wid = window_id(win.key, win.start, self.cfg.size_s)
                self._closed[wid] = _Closed(win.key, win.start, win.stats, win.partition, emitted_at=wall_now)
                out.append(Closing(win.key, win.start, win.stats, win.tokens, final=True))
        for c in self._closed.values():
            if c.dirty and (flush_all or flush_late or wall_now - c.emitted_at >= self.reemit_interval_s):
                out.append(Closing(c.key, c.start, c.stats, c.pending, final=True))
                c.pending, c.dirty, c.emitted_at = [], False, wall_now
        self._expire(wall_now)
        out.sort(key=lambda c: (c.start, c.key.deployment, c.key.model_version, c.key.variant))
        return out

    def _expire(self, wall_now: float) -> None:
        horizon = max((self._watermark(p, wall_now) for p in self._max_ts), default=-math.inf)
        for wid, c in list(self._closed.items()):
            if not c.dirty and c.start.timestamp() + self.cfg.size_s + self.cfg.retention_s < horizon:
                del self._closed[wid]
