"""`llmwatch kafka up | status | down` for real, on a private port and data dir (never the shared broker).

Reuses the shared jar cache (settings.cache_dir), so nothing is downloaded when `kafka up` ran before.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from llmwatch.errors import KafkaError
from llmwatch.local.kafka import LocalKafka
from llmwatch.local.kafka_config import free_port
from llmwatch.local.kafka_probe import describe_cluster_sync
from llmwatch.settings import Settings

pytestmark = pytest.mark.integration


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def private_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a broker of our own; whatever a failed test leaves running is stopped."""
    env = {
        **os.environ,
        "LLMWATCH_KAFKA": f"127.0.0.1:{free_port('127.0.0.1')}",
        "LLMWATCH_DATA_DIR": str(tmp_path / "data"),
    }
    yield env
    settings = Settings(kafka=env["LLMWATCH_KAFKA"], data_dir=tmp_path / "data")
    LocalKafka(settings).down(timeout_s=10)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmwatch", "kafka", *args], env=env, capture_output=True, text=True, timeout=180
    )


def test_up_status_up_down_lifecycle(private_env: dict[str, str]) -> None:
    settings = Settings(kafka=private_env["LLMWATCH_KAFKA"], data_dir=Path(private_env["LLMWATCH_DATA_DIR"]))
    kafka = LocalKafka(settings)
    cached = kafka.dist.is_cached()

    first = _cli(private_env, "up")
    assert first.returncode == 0, first.stderr
    for line in ("formatting KRaft log dir", "starting broker", "creating topics", f"up at {settings.kafka}"):
        assert line in first.stdout
    if cached:
        assert "downloading" not in first.stdout  # the jar cache is used, no Maven run
    pid = int(kafka.paths.pid_file.read_text())
    assert "kafka.Kafka" in psutil.Process(pid).cmdline()
    assert psutil.Process(pid).pid != os.getpid()
    info = describe_cluster_sync(settings)
    assert info is not None
    assert [b["port"] for b in info["brokers"]] == [int(settings.kafka.rsplit(":", 1)[1])]

    status = _cli(private_env, "status")
    assert status.returncode == 0
    assert f"running at {settings.kafka} (pid {pid}" in status.stdout

    again = _cli(private_env, "up")
    assert again.returncode == 0, again.stderr
    assert f"already running at {settings.kafka} (pid {pid})" in again.stdout

    down = _cli(private_env, "down")
    assert down.returncode == 0, down.stderr
    assert f"stopped (pid {pid}" in down.stdout
    assert _gone(pid)
    assert not kafka.paths.pid_file.exists()
    assert describe_cluster_sync(settings, timeout_s=1.0) is None

    after = _cli(private_env, "status")
    assert after.returncode == 3
    assert "not running" in after.stdout
    twice = _cli(private_env, "down")
    assert twice.returncode == 0
    assert "not running" in twice.stdout

    # A restart keeps the formatted log dir (and the topics in it); --purge then deletes it.
    restart = kafka.up()
    assert not restart.already_running
    assert restart.topics_created == []
    assert kafka.paths.is_formatted()
    result = kafka.down(purge=True)
    assert result.pid == restart.pid
    assert result.purged
    assert not kafka.paths.log_dir.exists()
    assert _gone(restart.pid)


def test_a_broker_that_dies_at_start_is_reported_with_its_log(private_env: dict[str, str]) -> None:
    """A log dir formatted for another node id makes Kafka exit; `up` says so and shows broker.log."""
    settings = Settings(kafka=private_env["LLMWATCH_KAFKA"], data_dir=Path(private_env["LLMWATCH_DATA_DIR"]))
    kafka = LocalKafka(settings)
    kafka.paths.log_dir.mkdir(parents=True)
    (kafka.paths.log_dir / "meta.properties").write_text(
        "version=1\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAQ\nnode.id=7\ncluster.id=MkU3OEVBNTcwNTJENDM2Qg\n"
    )
    with pytest.raises(KafkaError, match="exited with code 1: Stored node id 7 doesn't match") as err:
        kafka.up(timeout_s=60)
    assert f"last lines of {kafka.paths.broker_log}" in str(err.value)
    assert not kafka.paths.pid_file.exists()
