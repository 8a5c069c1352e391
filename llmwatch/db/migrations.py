"""Apply sql/migrations in order and record them in `schema_migrations` (an insert-only log).

A migration is `NNNN_name.up.sql` + `NNNN_name.down.sql`, one statement each, idempotent (IF NOT EXISTS), never
edited once landed: the runner stores each file's sha256 and reports the ones that changed since they ran.
DDL is not transactional in ClickHouse, so a statement may succeed and its record fail; idempotence makes the
re-run safe.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from llmwatch.errors import ClickHouseError

MIGRATIONS_TABLE = "schema_migrations"

# The runner owns its bookkeeping table (as golang-migrate and Flyway do), so it exists before any migration runs.
_BOOTSTRAP = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}
(
    version    UInt32,
    name       String,
    direction  Enum8('up' = 1, 'down' = 2),
    checksum   String,
    applied_at DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY (version, applied_at)
"""

_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.(?P<direction>up|down)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up_sql: str
    down_sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.up_sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass
class MigrationReport:
    applied: list[Migration] = field(default_factory=list)
    already: int = 0
    changed: list[str] = field(default_factory=list)  # labels whose up file differs from what ran


def migrations_dir() -> Traversable:
    return files("llmwatch.sql").joinpath("migrations")


def discover(directory: Traversable | None = None) -> list[Migration]:
    """Every migration in version order; a version without both files, or used twice, is an error."""
    directory = directory or migrations_dir()
    parts: dict[int, dict[str, str]] = {}
    names: dict[int, str] = {}
    for entry in directory.iterdir():
        m = _FILE.match(entry.name)
        if not m:
            continue
        version = int(m["version"])
        if names.setdefault(version, m["name"]) != m["name"]:
            raise ClickHouseError(f"migration {version:04d} has two names: {names[version]}, {m['name']}")
        parts.setdefault(version, {})[m["direction"]] = entry.read_text(encoding="utf-8")
    out = []
    for version in sorted(parts):
        if set(parts[version]) != {"up", "down"}:
            raise ClickHouseError(f"migration {version:04d}_{names[version]} needs both .up.sql and .down.sql")
        out.append(Migration(version, names[version], parts[version]["up"], parts[version]["down"]))
    return out


def _run(client: Any, sql: str, what: str) -> None:
    try:
        client.command(sql.strip().rstrip(";"))
    except Exception as e:
        raise ClickHouseError(f"{what} failed: {e}") from e


def applied_versions(client: Any) -> dict[int, str]:
    """version → checksum of the migrations whose last recorded step is `up`."""
    _run(client, _BOOTSTRAP, f"creating {MIGRATIONS_TABLE}")
    try:
        rows = client.query(
            f"SELECT version, argMax(checksum, applied_at), argMax(direction, applied_at) AS last "
            f"FROM {MIGRATIONS_TABLE} GROUP BY version HAVING last = 'up'"
        ).result_rows
    except Exception as e:
        raise ClickHouseError(f"reading {MIGRATIONS_TABLE} failed: {e}") from e
    return {int(v): str(c) for v, c, _ in rows}


def _record(client: Any, migration: Migration, direction: str) -> None:
    try:
        client.insert(
            MIGRATIONS_TABLE,
            [[migration.version, migration.name, direction, migration.checksum, datetime.now(UTC)]],
            column_names=["version", "name", "direction", "checksum", "applied_at"],
        )
    except Exception as e:
        raise ClickHouseError(f"recording {migration.label} {direction} failed: {e}") from e


def migrate(client: Any, migrations: list[Migration] | None = None) -> MigrationReport:
    """Apply the pending migrations in order; re-running applies nothing."""
    migrations = discover() if migrations is None else migrations
    done = applied_versions(client)
    report = MigrationReport()
    for mig in migrations:
        if mig.version in done:
            report.already += 1
            if done[mig.version] != mig.checksum:
                report.changed.append(mig.label)
            continue
        _run(client, mig.up_sql, f"migration {mig.label}")
        _record(client, mig, "up")
        report.applied.append(mig)
    return report


def rollback(client: Any, steps: int = 1, migrations: list[Migration] | None = None) -> list[Migration]:
    """Run the down file of the last `steps` applied migrations, newest first."""
    migrations = discover() if migrations is None else migrations
    done = applied_versions(client)
    undone = []
    for mig in sorted((m for m in migrations if m.version in done), key=lambda m: -m.version)[:steps]:
        _run(client, mig.down_sql, f"rollback of {mig.label}")
        _record(client, mig, "down")
        undone.append(mig)
    return undone
