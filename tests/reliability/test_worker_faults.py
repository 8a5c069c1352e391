"""Worker faults on the real broker and the real ClickHouse engine: a kill -9 mid-run, and ClickHouse down
then slow. Either way every event lands exactly once (FINAL), every window counts it once, nothing is
dead-lettered, and the worker never needs more than the one restart the crash test gives it.

Sizes scale with LLMWATCH_RELIABILITY_EVENTS (default: the issue's 20,000 for the crash).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from llmwatch.harness import (
    WorkerProcess,
    landed_counts,
    landing_report,
    parse_metrics,
    produce_sync,
    query_scalar,
    wait_for,
)
from llmwatch.schemas import InferenceEvent, utcnow
from llmwatch.settings import EvaluatorSettings, Settings, WorkerSettings
from llmwatch.sim.events import scenario_events
from llmwatch.streams.sink import FAULT_FILE_ENV

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

N_CRASH = int(os.environ.get("LLMWATCH_RELIABILITY_EVENTS", "20000"))
AGENTS = ["score", "window", "sink"]
#: the light evaluators (model-free), so the run is about the pipeline, not scoring speed
LIGHT = EvaluatorSettings(
    enabled=["toxicity", "pii", "injection"], toxicity_backend="profanity", injection_backend="rules", redact=True
)


@pytest.fixture
def fault_settings(isolated_topics: Settings, tmp_path: Path) -> Settings:
    return isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "eval": LIGHT,
            "worker": WorkerSettings(
                app_id=f"test-faults-{uuid.uuid4().hex[:8]}",
                window_size_s=5,  # many windows close during the run, so the crash lands between emits
                window_lateness_s=2,
                window_idle_close_s=2,
                sink_within_s=0.3,
                sink_retry_max_s=1.0,  # the outage test should not wait out a 30 s back-off
            ),
        }
    )


def _events(n: int, seed: int) -> list[InferenceEvent]:
    """Event time spread at 500/s, ending now: windows close as the backlog is read."""
    start = utcnow() - timedelta(seconds=n / 500 + 5)
    return list(scenario_events("steady", n, seed=seed, start_ts=start, rate=500.0))


def _wait_all_landed(s: Settings, n: int, worker: WorkerProcess, timeout_s: float = 300) -> None:
    wait_for(
        lambda: landed_counts(s)[:3] == (n, n, n),
        timeout_s,
        f"{n} events, scores and window counts",
        processes=[worker],
        describe=lambda: landing_report(s, worker),
    )


def test_kill_9_mid_run_loses_nothing(fault_settings: Settings, tmp_path: Path) -> None:
    s = fault_settings
    produce_sync(s, s.topics.events, _events(N_CRASH, seed=1))
    log = tmp_path / "worker.log"
    first = WorkerProcess(s, AGENTS, log).start()
    try:
        wait_for(
            lambda: landed_counts(s)[0] >= N_CRASH * 0.3, 300, "30 % of the events", interval_s=0.2, processes=[first]
        )
        landed_at_kill = landed_counts(s)
        first.kill()  # SIGKILL: no flush, no commit
    finally:
        first.kill()
    assert landed_at_kill[0] < N_CRASH, "the run ended before the kill: nothing was tested"

    second = WorkerProcess(s, AGENTS, log).start()
    try:
        _wait_all_landed(s, N_CRASH, second)
        time.sleep(3)  # anything still replaying would change a count now
        events, scores, windowed, dlq = landed_counts(s)
        metrics = parse_metrics(second.metrics())
        duplicates = metrics.get(("llmwatch_late_events_total", "outcome", "duplicate"), 0.0)
        windows = query_scalar(s, "SELECT count() FROM window_metrics FINAL")
        print(
            f"\nkill -9 after {landed_at_kill[0]} of {N_CRASH} events had landed; after the restart: events={events} "
            f"scores={scores} window sum={windowed} over {windows} windows, dlq={dlq}, replayed scores the "
            f"restored windows recognised as duplicates={duplicates:.0f}"
        )
        assert (events, scores, windowed, dlq) == (N_CRASH, N_CRASH, N_CRASH, 0)
        assert "restored" in log.read_text(errors="replace"), "the window agent did not read back emitted windows"
        assert second.alive()
    finally:
        second.stop()


def test_clickhouse_down_then_slow_pauses_and_resumes(fault_settings: Settings, tmp_path: Path) -> None:
    s = fault_settings
    switch = tmp_path / "clickhouse.fault"
    events = _events(6000, seed=2)
    worker = WorkerProcess(s, AGENTS, tmp_path / "worker.log", extra_env={FAULT_FILE_ENV: str(switch)}).start()
    try:
        produce_sync(s, s.topics.events, events[:2000])
        _wait_all_landed(s, 2000, worker)

        switch.write_text("fail")  # ClickHouse down: every insert fails and is retried
        produce_sync(s, s.topics.events, events[2000:4000])
        wait_for(
            lambda: parse_metrics(worker.metrics()).get(("llmwatch_sink_retries_total", None, None), 0) >= 5,
            60,
            "the sink to retry",
            processes=[worker],
        )
        time.sleep(3)
        during_outage = landed_counts(s)
        assert during_outage[0] == 2000, "rows landed while every insert was failing"

        switch.write_text("delay 0.3")  # back, but slow: every insert waits first
        produce_sync(s, s.topics.events, events[4000:])
        wait_for(lambda: landed_counts(s)[0] > 2000, 120, "rows while ClickHouse is slow", processes=[worker])
        switch.unlink()
        _wait_all_landed(s, len(events), worker)
        time.sleep(2)
        final = landed_counts(s)
        retries = parse_metrics(worker.metrics()).get(("llmwatch_sink_retries_total", None, None), 0)
        print(f"\nClickHouse down, then slow: outage {during_outage}, at the end {final}, retries={retries:.0f}")
        assert final == (len(events), len(events), len(events), 0)
        assert worker.alive()
    finally:
        worker.stop()
