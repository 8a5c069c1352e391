"""Scenarios inject exactly the regression they name, in the canary only (or in the traffic), after the onset."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from llmwatch.cli.loadgen import SCENARIO_NAMES
from llmwatch.schemas import InferenceEvent
from llmwatch.sim.events import scenario_events
from llmwatch.sim.scenarios import SCENARIOS, get_scenario

START = datetime(2026, 1, 1, tzinfo=UTC)
N = 4_000


@cache  # several tests read the same runs; nothing mutates them
def _events(name: str, n: int = N, **kw: object) -> list[InferenceEvent]:
    return list(scenario_events(name, n, seed=11, start_ts=START, rate=100.0, **kw))  # type: ignore[arg-type]


def _share(events: list[InferenceEvent], pred: Callable[[InferenceEvent], bool]) -> float:
    return sum(map(pred, events)) / max(len(events), 1)


def _split(events: list[InferenceEvent]) -> tuple[list[InferenceEvent], list[InferenceEvent]]:
    return [e for e in events if e.variant == "baseline"], [e for e in events if e.variant == "canary"]


def _behaviour(kind: str) -> Callable[[InferenceEvent], bool]:
    return lambda e: e.attributes["sim.behaviour"] == kind


def test_the_named_scenarios_exist_and_the_cli_offers_them() -> None:
    expected = {
        "steady",
        "latency-regression",
        "toxicity-regression",
        "pii-leak",
        "hallucination",
        "prompt-injection-attack",
        "drift",
    }
    assert set(SCENARIOS) == expected == set(SCENARIO_NAMES)
    with pytest.raises(ValueError, match="unknown scenario"):
        get_scenario("nope")


def test_events_are_complete_simulated_reproducible_and_spaced_by_rate() -> None:
    events = _events("steady", 200)
    assert events == _events("steady", 200)
    assert len({e.event_id for e in events}) == 200
    assert events[0].event_id != next(scenario_events("steady", 1, seed=12, start_ts=START)).event_id
    assert all(e.simulated and e.engine == "simulated" and e.deployment == "demo" for e in events)
    assert [e.ts for e in events[:3]] == [START, START + timedelta(seconds=0.01), START + timedelta(seconds=0.02)]
    ok = [e for e in events if e.status == "ok"]
    assert ok and all(e.response and e.ttft_ms < e.e2e_ms and e.output_tokens > 1 and e.tpot_ms > 0 for e in ok)
    assert all(e.prompt.startswith("system: ") and e.user_id and e.session_id for e in events)
    rag = [e for e in events if e.attributes["sim.prompt_kind"] == "rag"]
    assert rag and all(e.context for e in rag)


def test_canary_weight_sets_the_canary_share() -> None:
    assert _share(_events("steady", canary_weight=0.2), lambda e: e.variant == "canary") == pytest.approx(0.2, abs=0.02)
    assert {e.variant for e in _events("steady", 300, canary_weight=0.0)} == {"baseline"}


def test_steady_is_a_to_a() -> None:
    base, canary = _split(_events("steady"))
    ttft = (
        statistics.median(e.ttft_ms for e in base if e.ttft_ms),
        statistics.median(e.ttft_ms for e in canary if e.ttft_ms),
    )
    assert ttft[0] == pytest.approx(ttft[1], rel=0.06)
    for kind in ("toxic", "pii", "hallucinated", "injection_compliant"):
        assert _share(base, _behaviour(kind)) == pytest.approx(_share(canary, _behaviour(kind)), abs=0.02)


def test_latency_regression_doubles_canary_ttft_after_the_onset_only() -> None:
    events = _events("latency-regression", onset_s=20.0)  # 4000 events at 100/s: onset at event 2000
    before, after = events[:2000], events[2000:]

    def ratio(evs: list[InferenceEvent]) -> float:
        base, canary = _split([e for e in evs if e.ttft_ms is not None])
        return statistics.median(e.ttft_ms for e in canary) / statistics.median(e.ttft_ms for e in base)

    assert ratio(before) == pytest.approx(1.0, abs=0.1)
    assert ratio(after) == pytest.approx(2.0, abs=0.2)


@pytest.mark.parametrize(
    ("name", "behaviour", "canary_min", "baseline_max"),
    [
        ("toxicity-regression", "toxic", 0.15, 0.01),
        ("pii-leak", "pii", 0.1, 0.01),
    ],
)
def test_content_regressions_hit_the_canary_only(
    name: str, behaviour: str, canary_min: float, baseline_max: float
) -> None:
    base, canary = _split(_events(name))
    assert _share(canary, _behaviour(behaviour)) >= canary_min
    assert _share(base, _behaviour(behaviour)) <= baseline_max


def test_hallucination_sends_rag_traffic_and_the_canary_ignores_context() -> None:
    events = _events("hallucination")
    assert _share(events, lambda e: e.context is not None) == pytest.approx(0.5, abs=0.04)
    base, canary = ([e for e in side if e.context] for side in _split(events))
    assert _share(canary, _behaviour("hallucinated")) >= 0.35
    assert _share(base, _behaviour("hallucinated")) <= 0.1


def test_injection_attack_changes_traffic_for_all_and_canary_obeys() -> None:
    events = _events("prompt-injection-attack", onset_s=20.0)
    is_injection = lambda e: e.attributes["sim.prompt_kind"] == "injection"  # noqa: E731
    assert _share(events[:2000], is_injection) < 0.05
    assert _share(events[2000:], is_injection) == pytest.approx(0.3, abs=0.04)
    base, canary = ([e for e in side if is_injection(e)] for side in _split(events[2000:]))
    assert _share(canary, _behaviour("injection_compliant")) >= 0.45
    assert _share(base, _behaviour("injection_compliant")) <= 0.15


def test_drift_shifts_prompt_topics_after_the_onset() -> None:
    events = [e for e in _events("drift", onset_s=20.0) if e.attributes["sim.prompt_kind"] == "topic"]
    before = [e for e in events if e.ts < START + timedelta(seconds=20)]
    after = [e for e in events if e.ts >= START + timedelta(seconds=20)]
    drifted = lambda e: e.attributes["sim.topic_set"] == "drift"  # noqa: E731
    assert _share(before, drifted) == 0.0
    assert _share(after, drifted) == pytest.approx(0.8, abs=0.04)
