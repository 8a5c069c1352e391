"""`db query` while another process holds the embedded folder: routed through the holder's endpoint.

Two real processes: a child runs `llmwatch db serve` (holds chDB, serves queries); this test process fills the
folder first, closes it, and never opens it again while the child lives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from llmwatch.cli import cli
from llmwatch.db.client import DatabaseLocked, connect
from llmwatch.db.lock import embedded_path, live_owner, owner_file
from llmwatch.db.migrations import migrate
from llmwatch.db.owner import RemoteQueryClient, open_query_client, serve_queries
from llmwatch.db.tables import spec_for
from llmwatch.errors import ClickHouseError
from llmwatch.schemas import InferenceEvent
from llmwatch.settings import Settings, get_settings

pytestmark = pytest.mark.integration


def _seed(settings: Settings) -> None:
    """Fill the folder from this process, then close it so the holder child can take it."""
    client = connect(settings)
    try:
        migrate(client)
        ts = datetime(2026, 5, 1, 12, tzinfo=UTC)
        events = [
            InferenceEvent(event_id=f"e{i}", ts=ts, deployment="chat", model="m", ttft_ms=10.0 * i) for i in range(3)
        ]
        spec_for(InferenceEvent).insert(client, events + events[:1])
    finally:
        client.close()


@dataclass
class Held:
    settings: Settings
    folder: Path
    holder: subprocess.Popen[str]
    env: dict[str, str]


@contextmanager
def _holding(tmp_path: Path) -> Iterator[Held]:
    """Seed a folder, then keep a `db serve` child holding it; env points the CLI at it."""
    folder = tmp_path / "clickhouse"
    env = os.environ | {"LLMWATCH_CLICKHOUSE": f"chdb://{folder}", "LLMWATCH_DATA_DIR": str(tmp_path)}
    _seed(Settings(clickhouse=env["LLMWATCH_CLICKHOUSE"]))
    holder = subprocess.Popen(
        [sys.executable, "-m", "llmwatch", "db", "serve", "--no-migrate"], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while live_owner(folder) is None:
        if holder.poll() is not None or time.monotonic() > deadline:
            holder.kill()
            pytest.fail(f"`db serve` did not come up: {holder.communicate()[1]}")
        time.sleep(0.05)
    with pytest.MonkeyPatch.context() as mp:
        for key in ("LLMWATCH_CLICKHOUSE", "LLMWATCH_DATA_DIR"):
            mp.setenv(key, env[key])
        get_settings.cache_clear()
        try:
            yield Held(Settings(), folder, holder, env)
        finally:
            get_settings.cache_clear()
            if holder.poll() is None:
                holder.send_signal(signal.SIGTERM)
                holder.communicate(timeout=30)


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Held]:
    """One holder for the read-only tests of this module (starting one costs ~2 s)."""
    with _holding(tmp_path_factory.mktemp("held")) as h:
        yield h


@pytest.fixture
def fresh_held(tmp_path: Path) -> Iterator[Held]:
    """A holder of its own, for the test that stops it."""
    with _holding(tmp_path) as h:
        yield h


def test_query_is_routed_to_the_holder(held: Held) -> None:
    owner = live_owner(held.folder)
    assert owner is not None and owner.pid == held.holder.pid
    assert owner_file(held.folder).stat().st_mode & 0o777 == 0o600
    client = open_query_client(held.settings)
    try:
        assert isinstance(client, RemoteQueryClient)
        result = client.query("SELECT count() AS n, uniqExact(event_id) AS u FROM inference_events FINAL")
    finally:
        client.close()
    assert list(result.column_names) == ["n", "u"] and result.result_rows == [[3, 3]]


def test_cli_json_through_the_endpoint_is_valid_json(held: Held) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "db",
            "query",
            "SELECT event_id, ts, ttft_ms FROM inference_events FINAL ORDER BY event_id",
            "--format",
            "json",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    rows = out["data"]
    assert [r["event_id"] for r in rows] == ["e0", "e1", "e2"] and out["rows"] == 3
    assert rows[1] == {"event_id": "e1", "ts": "2026-05-01T12:00:00+00:00", "ttft_ms": 10.0}
    # the column types come through the holder's endpoint too (DESCRIBE of the query)
    assert [m["name"] for m in out["meta"]] == ["event_id", "ts", "ttft_ms"] and out["meta"][2][
        "type"
    ] == "Nullable(Float64)"


def test_cli_in_a_third_process_prints_csv(held: Held) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llmwatch", "db", "query", "SELECT events FROM events_hourly_v", "--format", "csv"],
        env=held.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["events", "3"]  # the duplicate insert of e0 counted once


def test_endpoint_refuses_writes(held: Held) -> None:
    client = open_query_client(held.settings)
    try:
        for sql in (
            "INSERT INTO inference_events (event_id) VALUES ('x')",
            "DROP TABLE inference_events",
            "SELECT 1 SETTINGS readonly = 0",
        ):
            with pytest.raises(ClickHouseError, match=r"(?i)readonly"):
                client.query(sql)
        assert client.query("SELECT count() FROM inference_events FINAL").result_rows == [[3]]
    finally:
        client.close()


def test_endpoint_wants_the_token(held: Held) -> None:
    owner = live_owner(held.folder)
    assert owner is not None
    response = httpx.post(f"{owner.url}/query", json={"sql": "SELECT 1"}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    with pytest.raises(ClickHouseError, match="bearer token"):
        RemoteQueryClient(owner.url, "wrong").query("SELECT 1")


def test_direct_open_names_the_holder_then_works_once_it_stops(fresh_held: Held) -> None:
    held = fresh_held
    with pytest.raises(DatabaseLocked, match=f"process {held.holder.pid}"):
        connect(held.settings)
    held.holder.send_signal(signal.SIGTERM)
    _, err = held.holder.communicate(timeout=30)
    assert held.holder.returncode == 0, err
    assert not owner_file(held.folder).exists()
    client = open_query_client(held.settings)  # nobody holds it now: this process opens the folder itself
    try:
        assert not isinstance(client, RemoteQueryClient)
        assert client.query("SELECT count() FROM inference_events FINAL").result_rows == [(3,)]
    finally:
        client.close()


def test_endpoint_session_is_readonly_without_touching_the_callers(ch_client: Any, ch_settings: Settings) -> None:
    """In one process: the endpoint's readonly session must not leak into the worker's own client."""
    with serve_queries(ch_client, ch_settings) as endpoint:
        assert endpoint.url is not None
        remote = RemoteQueryClient(endpoint.url, _token(ch_settings))
        try:
            with pytest.raises(ClickHouseError, match=r"(?i)readonly"):
                remote.query("INSERT INTO feedback (feedback_id) VALUES ('x')")
            ch_client.command("INSERT INTO feedback (feedback_id) VALUES ('y')")  # the holder still writes
            assert remote.query("SELECT feedback_id FROM feedback").result_rows == [["y"]]
        finally:
            remote.close()
    assert not owner_file(embedded_path(ch_settings.clickhouse_url)).exists()


def test_endpoint_can_allow_writes(ch_client: Any, ch_settings: Settings) -> None:
    with serve_queries(ch_client, ch_settings, allow_writes=True) as endpoint:
        assert endpoint.url is not None
        remote = RemoteQueryClient(endpoint.url, _token(ch_settings))
        try:
            remote.query("INSERT INTO feedback (feedback_id) VALUES ('z')")
        finally:
            remote.close()
    assert ch_client.query("SELECT feedback_id FROM feedback").result_rows == [("z",)]


def _token(settings: Settings) -> str:
    data = json.loads(owner_file(embedded_path(settings.clickhouse_url)).read_text())
    return str(data["token"])
