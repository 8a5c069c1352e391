"""`llmwatch controller` as its own process on the real broker: operator commands through `llmwatch rollout`,
a restart mid-rollout that rebuilds the state from the weights topic, a fail verdict that rolls back, and a
command the controller ignores (the CLI says so and exits non-zero)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from llmwatch.harness import free_port, produce_sync, settings_env
from llmwatch.schemas import CanaryVerdict, utcnow
from llmwatch.settings import RolloutSettings, Settings, WorkerSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def env_of(s: Settings) -> dict[str, str]:
    env = {**os.environ, **settings_env(s), "PYTHONUNBUFFERED": "1"}
    for k, v in s.rollout.model_dump(mode="json").items():
        env[f"LLMWATCH_ROLLOUT__{k.upper()}"] = json.dumps(v) if isinstance(v, list) else str(v)
    return env


def start_controller(s: Settings, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "llmwatch", "controller", "--web-port", str(free_port())]
    return subprocess.Popen(cmd, env=env_of(s), stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def rollout(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "llmwatch", "rollout", *args]
    return subprocess.run(cmd, env=env_of(s), capture_output=True, text=True, timeout=150)


def test_controller_process_survives_a_restart_mid_rollout(isolated_topics: Settings, tmp_path: Path) -> None:
    s = isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "worker": WorkerSettings(app_id=f"test-ctl-{uuid.uuid4().hex[:8]}"),
            "rollout": RolloutSettings(steps=[0.1, 1.0], hold_timeout_s=300, rollback_timeout_s=600),
        }
    )
    log = tmp_path / "controller.log"
    proc = start_controller(s, log)
    try:
        started = rollout(s, "start", "chat", "--canary", "v2", "--baseline", "v1", "--timeout", "120")
        assert started.returncode == 0, started.stderr + log.read_text()
        assert "progressing, step 0, seq 1: v1 90.0%, v2 10.0%" in started.stdout

        stop(proc)  # a restart in the middle of the rollout
        proc = start_controller(s, log)
        paused = rollout(s, "pause", "chat", "--reason", "investigating", "--timeout", "120")
        assert paused.returncode == 0, paused.stderr + log.read_text()
        # seq 2 is the restarted controller's restatement of the rollout under its new epoch (issue 22)
        assert "paused, step 0, seq 3" in paused.stdout and "investigating" in paused.stdout
        assert "restored chat: progressing" in log.read_text() and "active at epoch 2" in log.read_text()

        # a fail verdict about the current canary rolls it back, even while paused
        now = utcnow()
        fail = CanaryVerdict(
            deployment="chat",
            baseline_version="v1",
            canary_version="v2",
            judge="msprt@1",
            result="fail",
            reason="error_rate HIGH",
            ts=now,
            window_start=now - timedelta(seconds=60),
            window_end=now,
            canary_n=400,
        )
        produce_sync(s, s.topics.verdicts, [fail])

        def status() -> str:
            out = rollout(s, "status", "chat", "--json")
            assert out.returncode == 0, out.stderr
            return out.stdout

        deadline = time.monotonic() + 60
        while '"rolled_back"' not in (last := status()) and time.monotonic() < deadline:
            time.sleep(0.5)
        w = json.loads(last)
        assert w["state"] == "rolled_back" and w["weights"] == {"v1": 1.0, "v2": 0.0}
        assert w["seq"] == 4 and w["epoch"] == 2 and w["verdict_id"] == fail.verdict_id

        ignored = rollout(s, "resume", "chat", "--timeout", "5")
        assert ignored.returncode != 0 and "ignored" in ignored.stderr
        assert "resume: no rollout in progress" in log.read_text()
    finally:
        stop(proc)
