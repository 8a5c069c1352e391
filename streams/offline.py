"""Run the production canary judge and rollout controller offline, on an explicit clock.

    from llmwatch.streams.offline import OfflineRollout

    run = OfflineRollout(deployment="chat", baseline="v1", canary="v2", start=t0)  # policy from settings
    for score in scores:                                                # llm.eval.scores payloads, in time order
        run.advance(score.ts)                                           # verdicts and ticks due before it
        run.feed(score)
    run.advance(t_end)
    run.state, run.canary_weight, run.verdicts, run.moves               # read the outcome

`advance(to)` plays the judge agent's timer (a verdict every `judge.interval_s` when new scores came) and the
controller's (`rollout.tick_interval_s`) up to `to`, in time order; each verdict goes to the controller at once and
each move goes back to the judge, as the topics would carry them. The classes doing the work are the ones the
worker runs (`JudgeCore`, `RolloutMachine`): only the clock and the transport are replaced.

`KayentaRollout` is the same driver around a Kayenta-style judge (evaluators/canary/kayenta.py) at production
timing, so both can be compared on the same traffic; `llmwatch canary replay` and `llmwatch bench canary` use both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from llmwatch.evaluators.canary import ArmData, JudgeConfig
from llmwatch.evaluators.canary.kayenta import KayentaConfig, KayentaCore
from llmwatch.schemas import Alert, CanaryVerdict, ControlCommand, EvalScores, TrafficWeights
from llmwatch.settings import Settings

from .judging import JudgeCore, core_from_settings
from .rollout import Decision, RolloutConfig, RolloutMachine

EventKind = Literal["verdict", "weights", "alert"]


class Core(Protocol):
    """What the driver needs of a judge: the JudgeCore interface."""

    def on_weights(self, w: TrafficWeights) -> str | None: ...
    def on_score(self, s: EvalScores) -> str: ...
    def on_data(self, deployment: str, version: str, ts: datetime, data: ArmData) -> str: ...
    def pending(self) -> list[str]: ...
    def verdict(self, deployment: str, now: datetime) -> CanaryVerdict | None: ...


@dataclass(frozen=True)
class Event:
    """A verdict the judge emitted, weights the controller published, or an alert it raised, at `at`."""

    kind: EventKind
    at: datetime
    payload: CanaryVerdict | TrafficWeights | Alert

    def to_json(self) -> str:
        return json.dumps({"type": self.kind, "at": self.at.isoformat(), **self.payload.model_dump(mode="json")})


class _Driver:
    """The clock and the transport between a judge core and a RolloutMachine."""

    def __init__(
        self,
        core: Core,
        machine: RolloutMachine,
        *,
        deployment: str,
        baseline: str,
        canary: str,
        start: datetime,
        interval_s: float,
        tick_s: float,
    ) -> None:
        self.core, self.machine = core, machine
        self.deployment = deployment
        self.now = start
        self.interval = timedelta(seconds=interval_s)
        self.tick = timedelta(seconds=tick_s)
        self.events: list[Event] = []
        self.invalid = 0
        self._next_verdict = start + self.interval
        self._next_tick = start + self.tick
        cmd = ControlCommand(
            deployment=deployment, action="start", baseline_version=baseline, canary_version=canary, ts=start,
            requested_by="offline",
        )  # fmt: skip
        self._apply(machine.on_command(cmd, start), start)

    # ------------------------------------------------------------------------------ reading
    @property
    def state(self) -> str:
        return self.machine.state

    @property
    def canary_weight(self) -> float:
        return self.machine.weight

    @property
    def weights(self) -> TrafficWeights | None:
        return self.machine.last

    @property
    def verdicts(self) -> list[CanaryVerdict]:
        return [e.payload for e in self.events if isinstance(e.payload, CanaryVerdict)]

    @property
    def moves(self) -> list[TrafficWeights]:
        return [e.payload for e in self.events if isinstance(e.payload, TrafficWeights)]

    @property
    def alerts(self) -> list[Alert]:
        return [e.payload for e in self.events if isinstance(e.payload, Alert)]

    @property
    def done(self) -> bool:
        """Promoted or rolled back: nothing more will move."""
        return self.machine.state in ("promoted", "rolled_back")

    # ------------------------------------------------------------------------------ feeding
    def feed(self, score: EvalScores | Mapping[str, Any] | str | bytes) -> str:
        """One llm.eval.scores payload (model, dict, or JSON); its event time should not be ahead of the clock by
        more than a verdict interval (call `advance(score.ts)` first to keep time in order)."""
        s = score if isinstance(score, EvalScores) else _parse(score)
        return self.core.on_score(s)

    def feed_many(self, scores: Iterable[EvalScores | Mapping[str, Any]]) -> None:
        """Scores in time order: the clock follows them."""
        for s in scores:
            parsed = s if isinstance(s, EvalScores) else _parse(s)
            self.advance(parsed.ts)
            self.core.on_score(parsed)

    def feed_data(self, version: str, ts: datetime, data: ArmData) -> str:
        """Pre-aggregated requests of one arm at event time `ts` (e.g. a simulator's batch)."""
        return self.core.on_data(self.deployment, version, ts, data)

    # ------------------------------------------------------------------------------ the clock
    def advance(self, to: datetime) -> list[Event]:
        """Run every verdict and controller tick due up to `to`, in time order; returns the new events."""
        first = len(self.events)
        while True:
            t = min(self._next_verdict, self._next_tick)
            if t > to:
                break
            if t == self._next_verdict:
                self._next_verdict += self.interval
                self._verdicts(t)
            if t == self._next_tick:
                self._next_tick += self.tick
                self._apply(self.machine.tick(t), t)
        self.now = max(self.now, to)
        return self.events[first:]

    def _verdicts(self, t: datetime) -> None:
        for deployment in self.core.pending():
            v = self.core.verdict(deployment, t)
            if v is None:
                continue
            self.events.append(Event("verdict", t, v))
            self._apply(self.machine.on_verdict(v, t), t)

    def _apply(self, d: Decision, t: datetime) -> None:
        if d.weights is not None:
            self.events.append(Event("weights", t, d.weights))
            self.core.on_weights(d.weights)
        if d.alert is not None:
            self.events.append(Event("alert", t, d.alert.to_alert(t)))


class OfflineRollout(_Driver):
    """The production judge (`JudgeCore` with `judge_config`) and controller (`RolloutMachine` with the rollout
    settings), started on `canary` against `baseline` of `deployment` at `start` (scores of other deployments or
    versions are ignored: `feed` says so). `settings` defaults to the environment's; `judge` and `rollout` override
    the policies built from it."""

    def __init__(
        self,
        *,
        deployment: str,
        baseline: str,
        canary: str,
        start: datetime,
        settings: Settings | None = None,
        judge: JudgeConfig | None = None,
        rollout: RolloutConfig | None = None,
    ) -> None:
        settings = settings or Settings()
        self.judge_core: JudgeCore = core_from_settings(settings, judge)
        machine = RolloutMachine(
            deployment, rollout or RolloutConfig.from_settings(settings), baseline_version=baseline
        )
        super().__init__(
            self.judge_core,
            machine,
            deployment=deployment,
            baseline=baseline,
            canary=canary,
            start=start,
            interval_s=settings.judge.interval_s,
            tick_s=settings.rollout.tick_interval_s,
        )


class KayentaRollout(_Driver):
    """A Kayenta-style judge at production timing (1-minute points, one `interval_min` interval per step, every
    metric critical, rolled back after `failure_limit` failed intervals) driving the same controller, whose steps
    then advance on each passing interval."""

    def __init__(
        self,
        *,
        deployment: str,
        baseline: str,
        canary: str,
        start: datetime,
        settings: Settings | None = None,
        config: KayentaConfig | None = None,
    ) -> None:
        settings = settings or Settings()
        cfg = config or KayentaConfig()
        self.kayenta = KayentaCore(cfg)
        base = RolloutConfig.from_settings(settings)
        rollout = base.model_copy(
            update={
                "min_step_duration_s": 0.0,
                "min_step_canary_n": 0,
                "hold_after_s": max(base.hold_after_s, 2 * cfg.interval_s),
                "rollback_after_s": max(base.rollback_after_s, 4 * cfg.interval_s),
                "max_step_duration_s": max(base.max_step_duration_s, 2 * cfg.interval_s),
            }
        )
        super().__init__(
            self.kayenta,
            RolloutMachine(deployment, rollout, baseline_version=baseline),
            deployment=deployment,
            baseline=baseline,
            canary=canary,
            start=start,
            interval_s=settings.judge.interval_s,
            tick_s=settings.rollout.tick_interval_s,
        )


def _parse(raw: EvalScores | Mapping[str, Any] | str | bytes) -> EvalScores:
    if isinstance(raw, EvalScores):
        return raw
    if isinstance(raw, (str, bytes)):
        return EvalScores.model_validate_json(raw)
    return EvalScores.model_validate(raw)


# ------------------------------------------------------------------------------------------------ replay
@dataclass(frozen=True)
class Invalid:
    """A line of a recorded file that is not an llm.eval.scores payload."""

    line: int
    reason: str


def _versions(head: list[EvalScores]) -> tuple[str | None, str | None, str | None]:
    """(deployment, baseline, canary) from the records' `variant` field, when it tells."""
    deployment = head[0].deployment if head else None
    baseline = next((s.model_version for s in head if s.variant == "baseline"), None)
    canary = next((s.model_version for s in head if s.variant == "canary"), None)
    return deployment, baseline, canary


def replay(
    lines: Iterable[str | bytes],
    *,
    deployment: str | None = None,
    baseline: str | None = None,
    canary: str | None = None,
    settings: Settings | None = None,
    kayenta: bool = False,
    on_invalid: Callable[[Invalid], None] | None = None,
    lookahead: int = 10_000,
) -> Iterator[Event]:
    """Replay recorded llm.eval.scores payloads (one JSON object per line, in time order) through the production
    judge and controller (or the Kayenta-style judge), yielding each verdict, weight move and alert as it happens.

    The rollout starts at the first record's time; the deployment and the versions come from the arguments or,
    when left out, from the first records (`variant` "baseline" / "canary"). Scores of other deployments or
    versions are ignored; lines that are not payloads go to `on_invalid` and the replay goes on."""
    settings = settings or Settings()
    it = iter(enumerate(lines, start=1))
    head: list[EvalScores] = []
    for number, raw in it:
        parsed = _try_parse(raw, number, on_invalid)
        if parsed is None:
            continue
        head.append(parsed)
        d, b, c = _versions(head)
        if ((deployment or d) and (baseline or b) and (canary or c)) or len(head) >= lookahead:
            break
    d, b, c = _versions(head)
    deployment, baseline, canary = deployment or d, baseline or b, canary or c
    if not head:
        return
    if deployment is None or baseline is None or canary is None:
        raise ValueError(
            "cannot tell the baseline and the canary from the records' `variant`: pass the versions explicitly"
        )
    start = head[0].ts
    cls: Any = KayentaRollout if kayenta else OfflineRollout
    run: _Driver = cls(baseline=baseline, canary=canary, start=start, deployment=deployment, settings=settings)
    shown = 0

    def fresh() -> list[Event]:
        nonlocal shown
        out = run.events[shown:]
        shown = len(run.events)
        return out

    yield from fresh()
    last = start
    for s in head:
        run.advance(s.ts)
        run.feed(s)
        last = max(last, s.ts)
        yield from fresh()
    for number, raw in it:
        s = _try_parse(raw, number, on_invalid)
        if s is None:
            continue
        run.advance(s.ts)
        run.feed(s)
        last = max(last, s.ts)
        yield from fresh()
    j = settings.judge
    run.advance(last + timedelta(seconds=j.stratum_s + j.lateness_s + 2 * j.interval_s))
    yield from fresh()


def _try_parse(raw: str | bytes, number: int, on_invalid: Callable[[Invalid], None] | None) -> EvalScores | None:
    text = raw.strip()
    if not text:
        return None
    try:
        return _parse(text)
    except ValidationError as e:
        if on_invalid is not None:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ())) or "record"
            on_invalid(Invalid(number, f"{where}: {err.get('msg', 'invalid')} ({e.error_count()} error(s))"[:300]))
        return None
    except (ValueError, TypeError) as e:
        if on_invalid is not None:
            on_invalid(Invalid(number, (str(e).splitlines() or [type(e).__name__])[0][:300]))
        return None
