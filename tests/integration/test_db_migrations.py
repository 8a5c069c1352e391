"""Migrations against the real engine: idempotent, complete, reversible, and the CLI says what it did."""

from __future__ import annotations

from typing import Any

import pytest

from llmwatch.db.client import connect
from llmwatch.db.migrations import applied_versions, discover, migrate, rollback
from llmwatch.db.tables import DERIVED, Table
from llmwatch.settings import Settings

pytestmark = pytest.mark.integration


def _tables(client: Any) -> dict[str, str]:
    rows = client.query("SELECT name, engine FROM system.tables WHERE database = currentDatabase()").result_rows
    return dict(rows)


def test_second_migrate_applies_nothing(ch_settings: Settings) -> None:
    client = connect(ch_settings)
    try:
        first = migrate(client)
        second = migrate(client)
    finally:
        client.close()
    assert [m.version for m in first.applied] == [m.version for m in discover()]
    assert second.applied == [] and second.already == len(first.applied)
    assert second.changed == []


def test_every_table_exists_with_its_engine(ch_client: Any) -> None:
    tables = _tables(ch_client)
    for table in Table:
        assert tables[str(table)] == "ReplacingMergeTree", table
    assert tables["schema_migrations"] == "MergeTree"
    assert tables["events_hourly"] == "AggregatingMergeTree"
    assert tables["events_hourly_mv"] == "MaterializedView"
    assert tables["events_hourly_v"] == "View"
    assert set(DERIVED) <= set(tables)


def test_key_columns_use_the_documented_types(ch_client: Any) -> None:
    types = dict(
        ch_client.query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'inference_events'"
        ).result_rows
    )
    assert types["ts"] == "DateTime64(3, 'UTC')"
    assert types["model_version"] == "LowCardinality(String)"
    assert types["context"] == "Array(String)"
    assert types["attributes"] == "Map(String, String)"
    sorting = ch_client.query(
        "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'inference_events'"
    ).result_rows[0][0]
    assert sorting.endswith("event_id")


def _event_columns(ch_client: Any) -> set[str]:
    sql = (
        "SELECT groupArray(name) FROM system.columns WHERE database = currentDatabase() AND table = 'inference_events'"
    )
    return set(ch_client.query(sql).result_rows[0][0])


def test_rollback_then_migrate_restores(ch_client: Any) -> None:
    later = [m for m in discover() if m.version >= 10]  # the materialized view, its view, and what came after
    undone = rollback(ch_client, steps=len(later))
    assert [m.label for m in undone] == [m.label for m in reversed(later)]
    assert "events_hourly_v" not in _tables(ch_client)
    assert "trace_id" not in _event_columns(ch_client)  # 0012's columns are dropped by its down migration
    assert "event_id" in _event_columns(ch_client)
    assert max(applied_versions(ch_client)) == 9
    again = migrate(ch_client)
    assert [m.version for m in again.applied] == [m.version for m in later]
    assert "events_hourly_v" in _tables(ch_client)
    assert {"trace_id", "input_messages", "tool_names", "request_temperature"} <= _event_columns(ch_client)


def test_edited_migration_is_reported(ch_client: Any) -> None:
    migs = discover()
    edited = [migs[0].__class__(m.version, m.name, m.up_sql + "\n-- edited", m.down_sql) for m in migs[:1]] + migs[1:]
    report = migrate(ch_client, edited)
    assert report.applied == [] and report.changed == [migs[0].label]
