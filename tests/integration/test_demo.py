"""`llmwatch demo` end to end, as a user runs it, on the real broker (the shared one; the demo makes and deletes its
own topics) with a private data dir. The outcomes are read back from ClickHouse, not from what the demo printed:
v2 reached 100 % on a pass verdict; v3 ends at 0 %, rolled back by a fail verdict on latency or PII leak, with an
alert naming that verdict. Ctrl-C stops every process the demo started and leaves no topic behind."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from llmwatch.db.client import connect
from llmwatch.db.lock import lock_holder
from llmwatch.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DURATION_S = 90


def demo_env(kafka: Settings, data_dir: Path) -> dict[str, str]:
    """The user's environment minus any LLMWATCH_* of theirs, plus the test broker and a private data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMWATCH_")}
    return env | {
        "LLMWATCH_KAFKA": kafka.kafka,
        "LLMWATCH_DATA_DIR": str(data_dir),
        "LLMWATCH_CACHE_DIR": str(kafka.cache_dir),
        "PYTHONUNBUFFERED": "1",
    }


def demo_topics(settings: Settings) -> set[str]:
    async def names() -> set[str]:
        admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs())
        await admin.start()
        try:
            return {t for t in await admin.list_topics() if t.startswith("demo.")}
        finally:
            await admin.close()

    return asyncio.run(names())


def children_of_run(data_dir: Path) -> list[psutil.Process]:
    """Processes of this data dir: in their environment, or in their command line (Faust retitles the worker's
    process, which overwrites the memory psutil reads the environment from; its title names its data folder)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("LLMWATCH_DATA_DIR") == str(data_dir) or str(data_dir) in " ".join(proc.cmdline()):
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[Any]:
    """A direct client on the demo's folder, opened after the demo (and its worker) ended."""
    clients: list[Any] = []

    def open_client() -> Any:
        clients.append(connect(Settings(data_dir=tmp_path, clickhouse=f"chdb://{tmp_path / 'clickhouse'}")))
        return clients[-1]

    yield open_client
    for c in clients:
        c.close()


def rows(client: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in client.query(sql).result_rows]


def test_demo_promotes_the_healthy_canary_and_rolls_back_the_regression(
    kafka_settings: Settings, tmp_path: Path, clickhouse: Any, go_tool: Callable[[str], Path]
) -> None:
    go_tool("alertmanager")  # built once and cached: the demo pages through it when it is there
    before = demo_topics(kafka_settings)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "llmwatch", "demo", "--duration", str(DURATION_S), "--no-live"],
        env=demo_env(kafka_settings, tmp_path),
        capture_output=True,
        text=True,
        timeout=420,
    )
    wall = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert not children_of_run(tmp_path), "the demo left processes running"
    assert demo_topics(kafka_settings) <= before, "the demo left its topics on the broker"

    ch = clickhouse()
    moves = rows(
        ch,
        "SELECT seq, state, canary_version, weights, verdict_id, command_id FROM traffic_weights FINAL "
        "WHERE deployment = 'demo' ORDER BY seq",
    )
    assert moves, "no traffic moves stored"
    for seq, _, _, weights, _, _ in moves:
        assert all(0.0 <= w <= 1.0 for w in weights.values()) and math.isclose(math.fsum(weights.values()), 1.0), seq
    verdicts = {
        r[0]: r[1:]
        for r in rows(
            ch,
            "SELECT verdict_id, result, canary_version, arrayFilter((m, x) -> x = 'fail', metrics.metric, "
            "metrics.result) FROM canary_verdicts FINAL WHERE deployment = 'demo'",
        )
    }

    # 1. v2 walked every step to a weight of 1.0, each promotion caused by a pass verdict about v2
    v2 = [m for m in moves if m[2] == "v2"]
    assert [round(m[3]["v2"], 2) for m in v2] == [0.1, 0.25, 0.5, 1.0], v2
    assert v2[-1][1] == "promoted" and v2[0][5] is not None  # started by a command
    for m in v2[1:]:
        assert verdicts[m[4]][:2] == ("pass", "v2"), m

    # 2. v3's last move is to 0.0, rolled back by a fail verdict about v3 on latency or PII leak
    v3 = [m for m in moves if m[2] == "v3"]
    seq, state, _, weights, verdict_id, _ = v3[-1]
    assert state == "rolled_back" and weights["v3"] == 0.0 and weights["v2"] == 1.0, v3
    result, canary, failed = verdicts[verdict_id]
    assert (result, canary) == ("fail", "v3")
    assert {"ttft", "pii_leak_rate"} & set(failed), failed

    # 3. the rollback raised an alert that names the verdict
    alerts = rows(ch, "SELECT rule, severity, verdict_id FROM alerts FINAL WHERE deployment = 'demo'")
    assert ("canary_failed", "critical", verdict_id) in alerts, alerts

    # 4. the report: one page with every plot, next to the PNG files
    [report] = list((tmp_path / "reports").glob("demo-*/index.html"))
    assert f"report: {report}" in done.stdout
    pngs = sorted(p.name for p in report.parent.glob("*.png"))
    assert pngs == ["alerts.png", "drift.png", "rates.png", "ttft.png", "verdicts.png", "weights.png"]
    assert all((report.parent / p).stat().st_size > 5_000 for p in pngs)
    html = report.read_text()
    assert "story outcomes met" in html and verdict_id in html and html.count("data:image/png;base64,") == 6

    # 5. the alerter paged through a real Alertmanager, and the report lists what it received and sent
    section = html[html.index("<h2 id='alertmanager'>") :]
    assert "running <code>deploy/alertmanager/alertmanager.yml</code>" in section
    assert "<td>canary_failed</td><td>critical</td><td>v3</td>" in section
    assert "Notifications it sent (0)" not in section and "ml-platform-pager" in section
    print(f"demo --duration {DURATION_S}: {wall:.0f} s wall; v3 rolled back on {failed}")


def test_ctrl_c_stops_everything_the_demo_started(kafka_settings: Settings, tmp_path: Path) -> None:
    before = demo_topics(kafka_settings)
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmwatch", "demo", "--duration", str(DURATION_S), "--no-live"],
        env=demo_env(kafka_settings, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    out = proc.stdout
    reader = threading.Thread(target=lambda: lines.extend(iter(out.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while not any("starting canary v2" in ln for ln in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "the story did not start:\n" + "".join(lines)
            time.sleep(0.5)
        running = [p for p in children_of_run(tmp_path) if p.pid != proc.pid]
        assert len(running) >= 2, running  # the worker and the gateway
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 130, "".join(lines)
    finally:
        if proc.poll() is None:  # a failed check above: still let the demo clean up before giving up on it
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
    reader.join(10)
    output = "".join(lines)
    assert "stopped the gateway" in output and "stopped the worker" in output, output
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in running), output
    assert not children_of_run(tmp_path)
    assert lock_holder((tmp_path / "clickhouse").resolve()) is None  # the worker let go of ClickHouse
    assert demo_topics(kafka_settings) <= before, "Ctrl-C left the run's topics on the broker"
