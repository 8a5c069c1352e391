"""Event-time tumbling windows: assignment, watermark, lateness, replay dedup, exact merge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from llmwatch.schemas import EvalScores
from llmwatch.streams.windowing import TumblingWindower, WindowConfig, WindowStats, to_metrics, window_start

T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def score(
    sec: float,
    *,
    version: str = "v1",
    ttft: float = 100.0,
    status: str = "ok",
    tox: float | None = 0.1,
    leak: bool | None = False,
    halluc: float | None = None,
) -> EvalScores:
    return EvalScores(
        event_id=f"e{sec}-{version}",
        ts=T0 + timedelta(seconds=sec),
        deployment="d",
        model_version=version,
        status=status,
        ttft_ms=ttft,
        tpot_ms=5.0,
        e2e_ms=ttft + 50,
        input_tokens=10,
        output_tokens=20,
        toxicity_response=tox,
        pii_leak=leak,
        hallucination=halluc,
    )


def cfg(**kw: float) -> WindowConfig:
    return WindowConfig(size_s=60, lateness_s=10, idle_close_s=5, retention_s=600, drift_sample=0, **kw)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        WindowConfig(size_s=0)
    with pytest.raises(ValueError, match="retention_s"):
        WindowConfig(size_s=60, lateness_s=10, retention_s=30)


def test_window_start_aligns_to_epoch() -> None:
    assert window_start(T0 + timedelta(seconds=59.9), 60) == T0
    assert window_start(T0 + timedelta(seconds=60), 60) == T0 + timedelta(seconds=60)


def test_window_closes_when_watermark_passes_end() -> None:
    w = TumblingWindower(cfg())
    for i, sec in enumerate([1, 2, 30]):
        assert w.add(score(sec), partition=0, offset=i, wall_now=0.0, token=i) == "added"
    # event at 65 s: watermark 55 s < window end 60 s: still open
    w.add(score(65), partition=0, offset=3, wall_now=0.0, token=3)
    assert w.due(wall_now=0.0) == []
    # event at 71 s: watermark 61 s ≥ 60 s: the first window closes with its 3 events and their ack tokens
    w.add(score(71), partition=0, offset=4, wall_now=0.0, token=4)
    closing = w.due(wall_now=0.0)
    assert len(closing) == 1 and closing[0].stats.count == 3 and closing[0].tokens == [0, 1, 2]
    assert w.held() == 2


def test_idle_partition_follows_the_clock() -> None:
    w = TumblingWindower(cfg())
    w.add(score(1), partition=0, offset=0, wall_now=1000.0)
    assert w.due(wall_now=1002.0) == []  # not idle long enough
    # idle ≥ 5 s: watermark = wall − lateness; T0 is far in the past relative to 1e9 s
    assert len(w.due(wall_now=T0.timestamp() + 200)) == 1


def test_late_event_merges_into_closed_window_and_replay_is_ignored() -> None:
    w = TumblingWindower(cfg())
    w.add(score(10), partition=0, offset=0, wall_now=0.0)
    w.add(score(80), partition=0, offset=1, wall_now=0.0)
    [first] = w.due(wall_now=0.0)
    assert first.stats.count == 1
    assert w.add(score(20), partition=0, offset=2, wall_now=0.0, token="late") == "late"
    [re_emit] = w.due(wall_now=0.0)  # never emitted by this windower's clock before: re-emitted at once
    assert re_emit.stats.count == 2 and re_emit.stats.late_count == 1 and re_emit.tokens == ["late"]
    # replaying offsets 0 and 2 after a restart: both are already inside the closed window
    assert w.add(score(10), partition=0, offset=0, wall_now=0.0) == "duplicate"
    assert w.add(score(20), partition=0, offset=2, wall_now=0.0) == "duplicate"


def test_too_late_beyond_retention_is_counted() -> None:
    w = TumblingWindower(cfg())
    w.add(score(5000), partition=0, offset=0, wall_now=0.0)
    assert w.add(score(1), partition=0, offset=1, wall_now=0.0) == "too_late"
    assert w.too_late == 1


def test_rates_and_means_by_hand() -> None:
    c = cfg()
    st = WindowStats()
    for s in [score(1, tox=0.9, leak=True, status="error"), score(2, tox=0.2, halluc=0.8), score(3, tox=None)]:
        st.add(s, c)
    m = to_metrics(*_key_start(), c, st, final=True)
    assert m.count == 3 and m.error_count == 1 and m.error_rate == pytest.approx(1 / 3)
    assert m.toxicity_rate == pytest.approx(1 / 2) and m.toxicity_mean == pytest.approx(0.55)
    assert m.pii_leak_rate == pytest.approx(1 / 3)
    assert m.hallucination_count == 1 and m.hallucination_rate == 1.0
    assert m.input_tokens == 30 and m.output_tokens == 60


def _key_start():
    from llmwatch.streams.windowing import WindowKey

    return WindowKey("d", "v1", "baseline", "default"), T0


def test_quantiles_within_sketch_accuracy_and_merge_is_exact() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(mean=4.5, sigma=0.6, size=5000)
    c = cfg()
    whole, a, b = WindowStats(), WindowStats(), WindowStats()
    for i, v in enumerate(values):
        s = score(1, ttft=float(v))
        whole.add(s, c)
        (a if i % 2 else b).add(s, c)
    a.merge(b)
    exact = float(np.quantile(values, 0.95, method="lower"))
    assert whole.quantile("ttft", 0.95) == pytest.approx(exact, rel=0.01)
    assert a.quantile("ttft", 0.95) == pytest.approx(whole.quantile("ttft", 0.95), rel=1e-9)
    assert a.count == whole.count == 5000


def test_state_round_trips_through_window_metrics() -> None:
    c = cfg()
    st = WindowStats()
    for i in range(50):
        st.add(score(i % 60, ttft=10.0 + i, tox=i / 50), c, pos=(-1, i))
    m = to_metrics(*_key_start(), c, st, final=True)
    again = WindowStats.from_metrics(m)
    assert again.count == 50 and again.max_source == {-1: 49}
    assert again.quantile("ttft", 0.5) == pytest.approx(st.quantile("ttft", 0.5))
    assert again.agg.rate("toxicity").hits == st.agg.rate("toxicity").hits > 0
    w = TumblingWindower(c)
    assert w.restore_closed([m]) == 1
    assert w.add(score(5), partition=0, offset=10, wall_now=0.0) == "duplicate"
    assert w.add(score(5), partition=0, offset=50, wall_now=0.0) == "late"


def _sourced(sec: float, src_offset: int) -> EvalScores:
    return score(sec).model_copy(update={"source_partition": 3, "source_offset": src_offset})


def test_score_agent_replay_duplicates_are_dropped_by_source_position() -> None:
    """After a crash the score agent re-sends scores it already sent: same source position, new scores offset."""
    w = TumblingWindower(cfg())
    for i in range(5):
        assert w.add(_sourced(10 + i, 100 + i), partition=0, offset=i, wall_now=0.0) == "added"
    # replayed copies of source offsets 103 and 104 land at scores offsets 5 and 6: open window, duplicates
    assert w.add(_sourced(13, 103), partition=0, offset=5, wall_now=0.0) == "duplicate"
    assert w.add(_sourced(14, 104), partition=0, offset=6, wall_now=0.0) == "duplicate"
    w.add(_sourced(90, 105), partition=0, offset=7, wall_now=0.0)
    [closed] = w.due(wall_now=0.0)
    assert closed.stats.count == 5
    # a replay after the window closed is still recognised; a genuinely new late event is merged
    assert w.add(_sourced(12, 102), partition=0, offset=8, wall_now=0.0) == "duplicate"
    assert w.add(_sourced(15, 106), partition=0, offset=9, wall_now=0.0) == "late"
    [re_emit] = w.due(wall_now=0.0)
    assert re_emit.stats.count == 6


def test_late_events_re_emit_a_window_once_per_interval() -> None:
    """A backlog behind the watermark: 500 late events of one window become a few re-emits, not 500."""
    w = TumblingWindower(cfg(), reemit_interval_s=1.0)
    w.add(score(10), partition=0, offset=0, wall_now=100.0)
    w.add(score(80), partition=0, offset=1, wall_now=100.0)
    assert [c.stats.count for c in w.due(wall_now=100.0)] == [1]  # closes at 100.0
    emits, tokens = [], []
    for i in range(500):
        wall = 100.0 + i * 0.01  # 5 s of late events, 100 per second
        assert w.add(score(20), partition=0, offset=2 + i, wall_now=wall, token=i) == "late"
        for c in w.due(wall_now=wall):
            emits.append(c.stats.count)
            tokens += c.tokens
    emits += [c.stats.count for c in w.due(wall_now=110.0)]
    assert len(emits) <= 6 and emits[-1] == 501  # coalesced, and the last re-emit counts every event
    assert w.held() == 0  # every late event's ack handle was handed out with a re-emit
    assert w.due(wall_now=120.0) == []  # nothing new: no re-emit


def test_revoked_partitions_are_forgotten_and_restored_windows_win_by_count() -> None:
    w = TumblingWindower(cfg())
    w.add(score(10), partition=0, offset=0, wall_now=0.0, token="a")
    w.add(score(10).model_copy(update={"deployment": "other"}), partition=1, offset=0, wall_now=0.0, token="b")
    assert w.drop_partitions({1}) == ["b"] and w.open_windows == 1
    [closed] = w.due(wall_now=0.0, flush_all=True)
    m = to_metrics(closed.key, closed.start, cfg(), closed.stats, final=True)
    bigger = m.model_copy(update={"count": 5})
    assert w.restore_closed([bigger]) == 1  # another worker emitted it with more events: theirs
    assert w.restore_closed([m]) == 0  # a smaller copy never replaces a bigger one
