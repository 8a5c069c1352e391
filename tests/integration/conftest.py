"""ClickHouse fixtures: the real engine (chDB through clickhouse-connect) on a fresh temp folder per test.

chDB opens one folder per process at a time, so every client opened on a test folder must be closed by the
end of the test (the fixtures here do); a client left open makes the next test's folder fail to open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmwatch.db.client import connect
from llmwatch.db.migrations import migrate
from llmwatch.settings import Settings


@pytest.fixture
def ch_settings(tmp_path: Path) -> Settings:
    """Settings whose embedded ClickHouse lives in this test's own temp folder."""
    return Settings(data_dir=tmp_path, clickhouse=f"chdb://{tmp_path / 'clickhouse'}")


@pytest.fixture
def ch_client(ch_settings: Settings) -> Iterator[Any]:
    """A clickhouse-connect client on a fresh chDB folder with every migration applied."""
    client = connect(ch_settings)
    try:
        migrate(client)
        yield client
    finally:
        client.close()
