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
    assert json.loads(as_json.stdout) == {
        "meta": [{"name": "name", "type": "String"}, {"name": "engine", "type": "String"}],
        "data": [
            {"name": "events_hourly", "engine": "AggregatingMergeTree"},
            {"name": "events_hourly_mv", "engine": "MaterializedView"},
            {"name": "events_hourly_v", "engine": "View"},
        ],
        "rows": 3,
    }
    as_jsonl = run.invoke(cli, ["db", "query", sql, "--format", "jsonl"], catch_exceptions=False)
    assert [json.loads(line)["name"] for line in as_jsonl.stdout.splitlines()] == [
        "events_hourly",
        "events_hourly_mv",
        "events_hourly_v",
    ]
    as_csv = run.invoke(cli, ["db", "query", sql, "--format", "csv"], catch_exceptions=False)
    assert as_csv.stdout.splitlines()[0] == "name,engine" and len(as_csv.stdout.splitlines()) == 4
    as_tsv = run.invoke(cli, ["db", "query", sql, "--format", "tsv"], catch_exceptions=False)
    assert as_tsv.stdout.splitlines()[:2] == ["name\tengine", "events_hourly\tAggregatingMergeTree"]
    as_table = run.invoke(cli, ["db", "query", sql], catch_exceptions=False)
    assert "AggregatingMergeTree" in as_table.stdout and "3 rows" in as_table.stdout and "Row 1:" not in as_table.stdout


def test_empty_results_still_name_their_columns(run: CliRunner) -> None:
    """chDB returns no column names with no row; every format that has a header still writes it."""
    run.invoke(cli, ["db", "migrate"], catch_exceptions=False)
    sql = (
        "SELECT deployment, count() AS n FROM inference_events FINAL WHERE deployment = {d:String} GROUP BY deployment"
    )
    out = {
        fmt: run.invoke(cli, ["db", "query", sql.replace("{d:String}", "'nobody'"), "--format", fmt]).stdout
        for fmt in ("csv", "tsv", "json", "jsonl", "vertical")
    }
    assert out["csv"] == "deployment,n\n" and out["tsv"] == "deployment\tn\n"
    assert json.loads(out["json"]) == {
        "meta": [{"name": "deployment", "type": "LowCardinality(String)"}, {"name": "n", "type": "UInt64"}],
        "data": [],
        "rows": 0,
    }
    assert out["jsonl"] == "" and "columns: deployment, n" in out["vertical"] and "0 rows" in out["vertical"]
    ready = run.invoke(cli, ["db", "ready", "canary_metric_results", "--format", "csv"], catch_exceptions=False)
    assert ready.stdout.splitlines() == [ready.stdout.splitlines()[0]]  # no verdicts: the header alone
    assert ready.stdout.startswith("ts,deployment,baseline_version,canary_version,judge,verdict,metric,")


def test_wide_results_print_as_vertical_records(run: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row wider than the terminal prints one column per line, every value whole (clickhouse-client's Vertical)."""
    monkeypatch.setenv("COLUMNS", "80")
    run.invoke(cli, ["db", "migrate"], catch_exceptions=False)
    sql = "SELECT " + ", ".join(f"'value of column {i} in full' AS column_{i}" for i in range(8))
    out = run.invoke(cli, ["db", "query", sql], catch_exceptions=False).stdout
    assert out.startswith("Row 1:") and "column_7: value of column 7 in full" in out and "1 row" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    table = run.invoke(cli, ["db", "query", sql, "--format", "table"], catch_exceptions=False).stdout
    assert "Row 1:" not in table  # asked for: a table, squeezed into the width


def test_query_error_is_a_clickhouse_error(run: CliRunner) -> None:
    result = run.invoke(cli, ["db", "query", "SELECT nope FROM missing_table"])
    assert isinstance(result.exception, ClickHouseError)
    assert "missing_table" in str(result.exception)


def test_ready_lists_and_runs(run: CliRunner) -> None:
    run.invoke(cli, ["db", "migrate"], catch_exceptions=False)
    listing = run.invoke(cli, ["db", "ready"], catch_exceptions=False)
    names = [line for line in listing.stdout.splitlines() if line and not line.startswith(" ")]
    assert names == list(ready_queries())
    flat = " ".join(listing.stdout.split())
    for q in ready_queries().values():
        assert q.title in flat and q.description in flat  # whole, never cut
        for p in q.params:
            assert f"--param {p}=…" in listing.stdout
    out = run.invoke(cli, ["db", "ready", "dlq_reasons", "--format", "json"], catch_exceptions=False)
    assert json.loads(out.stdout)["data"] == [] and json.loads(out.stdout)["meta"][0]["name"] == "source_topic"
    hours = run.invoke(cli, ["db", "ready", "p95_ttft_hourly", "--param", "hours=6", "--param", "deployment=x"])
    assert hours.exit_code == 0, hours.output
    wrong = run.invoke(cli, ["db", "ready", "p95_ttft_hourly", "--param", "days=6"])
    assert wrong.exit_code != 0 and "no parameter days" in str(wrong.exception or wrong.output)
    unknown = run.invoke(cli, ["db", "ready", "nope"])
    assert unknown.exit_code == 2 and "dlq_reasons" in unknown.output
