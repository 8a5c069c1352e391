"""The `llmwatch db` commands on a fresh embedded folder, in this process (no other holder)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from llmwatch.cli import cli
from llmwatch.db.migrations import discover
from llmwatch.db.ready import ready_queries
from llmwatch.errors import ClickHouseError
from llmwatch.settings import Settings, get_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def run(ch_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("LLMWATCH_CLICKHOUSE", ch_settings.clickhouse_url)
    monkeypatch.setenv("LLMWATCH_DATA_DIR", str(ch_settings.data_dir))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_migrate_twice_then_status(run: CliRunner) -> None:
    first = run.invoke(cli, ["db", "migrate"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert first.output.count("applied ") == len(discover())
    second = run.invoke(cli, ["db", "migrate"], catch_exceptions=False)
    assert second.exit_code == 0
    assert second.output.startswith(f"nothing to apply: {len(discover())} migrations already applied")
    status = run.invoke(cli, ["db", "status"], catch_exceptions=False)
    assert status.output.count(" applied") == len(discover()) and "pending" not in status.output


def test_query_formats(run: CliRunner) -> None:
    run.invoke(cli, ["db", "migrate"], catch_exceptions=False)
    sql = (
        "SELECT name, engine FROM system.tables "
        "WHERE database = currentDatabase() AND name LIKE 'events_hourly%' ORDER BY name"
    )
    as_json = run.invoke(cli, ["db", "query", sql, "--format", "json"], catch_exceptions=False)
    assert json.loads(as_json.stdout) == [
        {"name": "events_hourly", "engine": "AggregatingMergeTree"},
        {"name": "events_hourly_mv", "engine": "MaterializedView"},
        {"name": "events_hourly_v", "engine": "View"},
    ]
    as_csv = run.invoke(cli, ["db", "query", sql, "--format", "csv"], catch_exceptions=False)
    assert as_csv.stdout.splitlines()[0] == "name,engine" and len(as_csv.stdout.splitlines()) == 4
    as_table = run.invoke(cli, ["db", "query", sql], catch_exceptions=False)
    assert "AggregatingMergeTree" in as_table.stdout and "3 rows" in as_table.stdout


def test_query_error_is_a_clickhouse_error(run: CliRunner) -> None:
    result = run.invoke(cli, ["db", "query", "SELECT nope FROM missing_table"])
    assert isinstance(result.exception, ClickHouseError)
    assert "missing_table" in str(result.exception)


def test_ready_lists_and_runs(run: CliRunner) -> None:
    run.invoke(cli, ["db", "migrate"], catch_exceptions=False)
    listing = run.invoke(cli, ["db", "ready"], catch_exceptions=False)
    assert [line.split()[0] for line in listing.stdout.splitlines()] == list(ready_queries())
    out = run.invoke(cli, ["db", "ready", "dlq_reasons", "--format", "json"], catch_exceptions=False)
    assert json.loads(out.stdout) == []
    unknown = run.invoke(cli, ["db", "ready", "nope"])
    assert unknown.exit_code == 2 and "dlq_reasons" in unknown.output
