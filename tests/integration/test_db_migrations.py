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


def test_rollback_then_migrate_restores(ch_client: Any) -> None:
    last_two = discover()[-2:]  # the newest migrations, whatever they are
    undone = rollback(ch_client, steps=2)
    assert [m.label for m in undone] == [m.label for m in reversed(last_two)]
    assert max(applied_versions(ch_client)) == discover()[-3].version
    again = migrate(ch_client)
    assert [m.version for m in again.applied] == [m.version for m in last_two]
    # a view's migration and its rollback, whatever came after it: down drops the view, up makes it again
    view = next(m for m in discover() if m.name == "events_hourly_v")
    steps = len([m for m in discover() if m.version >= view.version])
    rollback(ch_client, steps=steps)
    assert "events_hourly_v" not in _tables(ch_client)
    migrate(ch_client)
    assert "events_hourly_v" in _tables(ch_client)


def test_edited_migration_is_reported(ch_client: Any) -> None:
    migs = discover()
    edited = [migs[0].__class__(m.version, m.name, m.up_sql + "\n-- edited", m.down_sql) for m in migs[:1]] + migs[1:]
    report = migrate(ch_client, edited)
    assert report.applied == [] and report.changed == [migs[0].label]
