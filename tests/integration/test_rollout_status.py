"""`llmwatch rollout status` on the real broker: the weights, the judge's latest verdict read from the tail of the
verdicts topic, and what the judge is sure to stop at the current step and the traffic the verdict saw."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from llmwatch.harness import produce, settings_env
from llmwatch.schemas import Payload
from llmwatch.settings import Settings
from llmwatch.sim.canary import BASELINE, CANARY, SCENARIOS, run_rollout
from llmwatch.streams.offline import OfflineRollout
from llmwatch.streams.verdict_tail import latest_verdicts

pytestmark = [pytest.mark.integration]


def _deployment(payload: Payload) -> str:
    return str(payload.deployment)  # type: ignore[attr-defined]


def test_status_shows_the_latest_verdict_and_the_guarantees_of_the_step(isolated_topics: Settings) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    run = OfflineRollout(baseline=BASELINE, canary=CANARY, start=start, deployment="chat", settings=Settings())
    outcome = run_rollout(SCENARIOS["srm_low_traffic"], run, 3, start=start, horizon_s=900)
    assert outcome.srm_minutes is not None and run.state == "holding"
    # an older verdict of another deployment, and this rollout's verdicts and moves, as the topics would hold them
    other = run.verdicts[0].model_copy(update={"deployment": "other", "verdict_id": "x" * 32})
    topics = isolated_topics.topics
    asyncio.run(produce(isolated_topics, topics.verdicts, [other, *run.verdicts], key_of=_deployment))
    asyncio.run(produce(isolated_topics, topics.weights, run.moves, key_of=_deployment))

    latest = asyncio.run(latest_verdicts(isolated_topics))
    assert latest["chat"].verdict_id == run.verdicts[-1].verdict_id and set(latest) == {"chat", "other"}

    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMWATCH_")} | settings_env(isolated_topics)
    done = subprocess.run(
        [sys.executable, "-m", "llmwatch", "rollout", "status", "chat"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "chat: holding, step 0" in out and "holding (sample-ratio mismatch)" in out
    assert "last verdict" in out and "SAMPLE-RATIO MISMATCH" in out and "canary share 0." in out
    assert "what the judge is sure to stop at this step (1% → 5%, no evidence demanded by the risk budget)" in out
    rps = float(out.split(" requests/s:")[0].rsplit("at ", 1)[1].replace(",", ""))
    assert 15 <= rps <= 25  # the scenario's 20 requests/s, from the verdict's window
    for metric in ("error_rate", "ttft p99", "toxicity_rate"):
        assert f"    {metric} " in out
    assert np.isfinite(rps)
