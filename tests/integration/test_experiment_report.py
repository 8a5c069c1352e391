"""`llmwatch experiment report NAME` on the real ClickHouse engine: feedback joined to events by event_id, per-arm
rates and a significance test whose numbers can be checked by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llmwatch.db.client import connect
from llmwatch.db.migrations import migrate
from llmwatch.db.tables import spec_for
from llmwatch.schemas import EvalScores, Feedback, InferenceEvent
from llmwatch.settings import Settings
from llmwatch.sim.events import scenario_events

pytestmark = pytest.mark.integration


def test_report_from_clickhouse(ch_settings: Settings) -> None:
    events = [
        e.model_copy(update={"experiment": "exp1"})
        for e in scenario_events("steady", 600, seed=4, rate=10, canary_weight=0.5)
    ]
    others = list(scenario_events("steady", 50, seed=5, rate=10, canary_weight=0.5))  # not in the experiment
    by_arm: dict[str, list[InferenceEvent]] = {"baseline": [], "canary": []}
    for e in events:
        by_arm[e.model_version].append(e)
    feedback: list[Feedback] = []
    for arm, ups in (("baseline", 50), ("canary", 65)):  # 100 thumbs per arm: 50 % vs 65 % up
        for i, e in enumerate(by_arm[arm][:100]):
            feedback.append(
                Feedback(event_id=e.event_id, deployment=e.deployment, thumbs=1 if i < ups else -1, score=0.5)
            )
    feedback += [Feedback(event_id=e.event_id, deployment=e.deployment, thumbs=1) for e in others[:20]]
    scores = [
        EvalScores(
            event_id=e.event_id,
            ts=e.ts,
            deployment=e.deployment,
            model_version=e.model_version,
            experiment=e.experiment,
            status=e.status,
            pii_leak=False,
        )
        for e in events
    ]
    client = connect(ch_settings)
    try:
        migrate(client)
        spec_for(InferenceEvent).insert(client, events + others)
        spec_for(EvalScores).insert(client, scores)
        spec_for(Feedback).insert(client, feedback)
    finally:
        client.close()  # chDB: one process per folder; the command below opens it

    env = {
        **os.environ,
        "LLMWATCH_DATA_DIR": str(ch_settings.data_dir),
        "LLMWATCH_CLICKHOUSE": ch_settings.clickhouse_url,
    }
    cmd = [sys.executable, "-m", "llmwatch", "experiment", "report", "exp1", "--control", "baseline", "--mde", "0.1"]
    done = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    arms = data["arms"]
    assert arms["baseline"]["requests"] + arms["canary"]["requests"] == 600  # the 50 others are not counted
    assert (arms["baseline"]["thumbs"], arms["baseline"]["thumbs_up"]) == (100, 50)
    assert (arms["canary"]["thumbs"], arms["canary"]["thumbs_up"]) == (100, 65)
    assert arms["canary"]["pii_n"] == arms["canary"]["requests"]
    thumbs = data["comparisons"]["canary"][0]
    # pooled p = 0.575, se0 = √(0.575·0.425·0.02) = 0.069911, z = 0.15 / 0.069911 = 2.1456, p = 0.0319
    assert thumbs["statistic"] == pytest.approx(2.1456, abs=1e-3) and thumbs["p_value"] == pytest.approx(
        0.0319, abs=1e-3
    )
    assert thumbs["significant"]
    assert data["sample_size"]["thumbs_per_arm_needed"] == 388  # 0.5 → 0.6 at α 0.05, power 0.8

    text = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    assert "canary vs baseline" in text.stdout and "SIGNIFICANT" in text.stdout

    missing = subprocess.run([*cmd[:5], "nope"], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "no events" in missing.stderr
