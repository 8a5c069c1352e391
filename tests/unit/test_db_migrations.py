"""Migration files: paired, ordered, idempotent, found through the installed package data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmwatch.db.migrations import discover, migrations_dir
from llmwatch.errors import ClickHouseError


def test_shipped_migrations_are_paired_and_ordered() -> None:
    migs = discover()
    assert migrations_dir().is_dir()
    versions = [m.version for m in migs]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert versions[0] == 1 and len(migs) >= 11


@pytest.mark.parametrize("mig", discover(), ids=lambda m: m.label)
def test_each_migration_is_idempotent(mig) -> None:  # type: ignore[no-untyped-def]
    # statements that may run twice: IF [NOT] EXISTS guards, or ones that set a definition whole
    whole = ("OR REPLACE", "MODIFY QUERY")
    assert "IF NOT EXISTS" in mig.up_sql or any(w in mig.up_sql for w in whole)
    assert "IF EXISTS" in mig.down_sql or any(w in mig.down_sql for w in whole)
    # one change per file: a single statement (ClickHouse refuses multi-statements anyway)
    code = re.sub(r"--[^\n]*", "", mig.up_sql)
    assert code.strip().rstrip(";").count(";") == 0
    assert len(mig.checksum) == 64


def test_dead_letters_migration_stays_as_it_ran_and_the_guide_corrects_its_comment() -> None:
    """0008's comment says the table holds raw bytes (it predates redaction): applied files are checksummed, so the
    file keeps its words and docs/analysts.md says what the table holds now."""
    [mig] = [m for m in discover() if m.version == 8]
    assert mig.checksum == "4c4f00eee7353a13a4502a8897b631ab4d2bebb590134ffd6d437bd477866b3d"
    guide = (Path(__file__).parents[2] / "docs" / "analysts.md").read_text(encoding="utf-8")
    note = guide[guide.index("0008_dead_letters.up.sql") :][:400]
    assert "predates redaction" in note and "llm.dlq" in note


def _write(folder: Path, *names: str) -> Path:
    for name in names:
        (folder / name).write_text("SELECT 1")
    return folder


def test_missing_down_file_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "0001_a.up.sql", "0001_a.down.sql", "0002_b.up.sql")
    with pytest.raises(ClickHouseError, match="0002_b needs both"):
        discover(tmp_path)


def test_version_with_two_names_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "0001_a.up.sql", "0001_a.down.sql", "0001_b.up.sql", "0001_b.down.sql")
    with pytest.raises(ClickHouseError, match="two names"):
        discover(tmp_path)


def test_other_files_are_ignored_and_order_is_numeric(tmp_path: Path) -> None:
    _write(tmp_path, "0010_z.up.sql", "0010_z.down.sql", "0002_y.up.sql", "0002_y.down.sql", "README.md")
    assert [m.label for m in discover(tmp_path)] == ["0002_y", "0010_z"]
