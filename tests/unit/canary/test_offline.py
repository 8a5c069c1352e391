"""The public offline API (streams/offline.py) and `llmwatch canary replay` on a recorded file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from llmwatch.evaluators.canary import ArmData
from llmwatch.schemas import CanaryVerdict, TrafficWeights
from llmwatch.settings import JudgeSettings, RolloutSettings, Settings
from llmwatch.sim.canary import BASE, BASELINE, CANARY, DEPLOYMENT, Scenario, Traffic, _canary
from llmwatch.streams.offline import Invalid, KayentaRollout, OfflineRollout, replay

ROOT = Path(__file__).resolve().parents[3]
RECORDED = ROOT / "tests" / "data" / "canary" / "ttft_x2.jsonl"
#: The settings tests/data/canary/ttft_x2.jsonl was recorded with (its README says how).
REPLAY_ENV = {
    "LLMWATCH_JUDGE__STRATUM_S": "10",
    "LLMWATCH_JUDGE__LATENESS_S": "2",
    "LLMWATCH_JUDGE__SETTLE_S": "2",
    "LLMWATCH_JUDGE__INTERVAL_S": "5",
    "LLMWATCH_JUDGE__CRITICAL": "[]",
    "LLMWATCH_ROLLOUT__STEPS": "[0.2, 0.5, 1.0]",
    "LLMWATCH_ROLLOUT__MIN_SAMPLE": "50",
    "LLMWATCH_ROLLOUT__MIN_STEP_DURATION_S": "20",
    "LLMWATCH_ROLLOUT__TICK_INTERVAL_S": "5",
}
FAST = Settings(
    rollout=RolloutSettings(steps=[0.2, 0.5, 1.0], min_sample=50, min_step_duration_s=20, tick_interval_s=5),
    judge=JudgeSettings(stratum_s=10, lateness_s=2, settle_s=2, interval_s=5, critical=[]),
)
T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)
TTFT_X2 = Scenario(
    "ttft_x2", "TTFT ×2", "rollback", _canary(BASE, BASE.model_copy(update={"ttft": BASE.ttft.scaled(2.0)})), rps=20
)


def test_per_request_scores_drive_the_production_judge_and_controller() -> None:
    run = OfflineRollout(baseline=BASELINE, canary=CANARY, start=T0, deployment="chat", settings=FAST)
    assert run.state == "progressing" and run.canary_weight == 0.2 and run.moves[0].command_id
    traffic = Traffic(TTFT_X2, np.random.default_rng(3))
    t = 0.0
    while not run.done and t < 300:
        for s in traffic.scores(T0, t, t, 5.0, run.canary_weight, deployment="chat"):
            run.advance(s.ts)
            assert run.feed(s) in ("added", "settling")
        t += 5
        run.advance(T0 + timedelta(seconds=t))
    assert run.state == "rolled_back" and run.canary_weight == 0.0
    kinds = [e.kind for e in run.events]
    assert kinds[0] == "weights" and kinds[-2:] == ["weights", "alert"] and "verdict" in kinds
    fail = run.verdicts[-1]
    assert fail.result == "fail" and "ttft" in fail.reason and run.moves[-1].verdict_id == fail.verdict_id
    line = json.loads(run.events[-1].to_json())
    assert line["type"] == "alert" and line["rule"] == "canary_failed"
    times = [e.at for e in run.events]
    assert times == sorted(times)  # events come in clock order


def test_batches_feed_the_same_judge_and_the_kayenta_style_one_decides_per_interval() -> None:
    run = KayentaRollout(deployment=DEPLOYMENT, baseline=BASELINE, canary=CANARY, start=T0, settings=Settings())
    traffic = Traffic(TTFT_X2, np.random.default_rng(4))
    for t in range(0, 650, 10):
        b, c = traffic.batch(float(t), float(t), 10.0, run.canary_weight)
        run.feed_data(BASELINE, T0 + timedelta(seconds=t), b)
        run.feed_data(CANARY, T0 + timedelta(seconds=t), c)
        run.advance(T0 + timedelta(seconds=t + 10))
        if t < 600:
            assert run.verdicts == []  # nothing before the first 10-minute interval ends
    [v] = run.verdicts
    assert v.judge == "kayenta-style@1" and v.result == "fail" and "ttft" in v.reason
    assert run.state == "rolled_back"
    assert isinstance(run.feed_data(BASELINE, T0, ArmData()), str)


def test_replaying_the_recorded_file_reaches_the_recorded_decision_every_time() -> None:
    lines = RECORDED.read_text().splitlines()
    first = list(replay(lines, settings=FAST))
    again = list(replay(lines, settings=FAST))
    moves = [e.payload for e in first if isinstance(e.payload, TrafficWeights)]
    assert [(m.state, m.weights) for m in moves] == [
        ("progressing", {"v1": 0.8, "v2": 0.2}),
        ("rolled_back", {"v1": 1.0, "v2": 0.0}),
    ]
    assert [(e.kind, e.at) for e in first] == [(e.kind, e.at) for e in again]
    verdicts = [e.payload for e in first if isinstance(e.payload, CanaryVerdict)]
    assert verdicts[-1].result == "fail" and {m.metric for m in verdicts[-1].metrics if m.result == "fail"} == {"ttft"}


def test_replay_reports_bad_lines_and_needs_to_know_the_arms() -> None:
    bad: list[Invalid] = []
    lines = ["", "not json", '{"event_id": "x"}', *RECORDED.read_text().splitlines()[:50]]
    events = list(replay(lines, settings=FAST, on_invalid=bad.append))
    assert [b.line for b in bad] == [2, 3] and bad[1].reason.startswith("ts: Field required")
    assert events and events[0].kind == "weights"
    baseline_only = [ln for ln in RECORDED.read_text().splitlines() if '"v2"' not in ln][:20]
    with pytest.raises(ValueError, match="baseline and the canary"):
        list(replay(baseline_only, settings=FAST))


def test_replay_cli_on_the_recorded_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMWATCH_")} | REPLAY_ENV
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{oops\n" + RECORDED.read_text())
    done = subprocess.run(
        [sys.executable, "-m", "llmwatch", "canary", "replay", str(broken)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["type"] for o in out if o["type"] != "verdict"] == ["weights", "weights", "alert", "summary"]
    summary = out[-1]
    assert summary["state"] == "rolled_back" and summary["weights"] == {"v1": 1.0, "v2": 0.0}
    assert summary["invalid_lines"] == 1 and summary["verdicts"] == sum(o["type"] == "verdict" for o in out)
    rollback = [o for o in out if o["type"] == "weights"][-1]
    cause = next(o for o in out if o["type"] == "verdict" and o["verdict_id"] == rollback["verdict_id"])
    assert cause["result"] == "fail" and "ttft p" in cause["reason"] and "ms" in cause["reason"]
    assert json.loads(done.stderr.strip().splitlines()[-1])["line"] == 1
