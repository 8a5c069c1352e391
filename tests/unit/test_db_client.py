"""Connection helpers that need no engine: URL handling, the folder lock probe, the owner file."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from llmwatch.db.client import DatabaseLocked, _scrub, connect, safe_url
from llmwatch.db.lock import (
    Owner,
    embedded_path,
    is_locked,
    live_owner,
    lock_holder,
    owner_file,
    remove_owner,
    write_owner,
)
from llmwatch.db.owner import QueryEndpoint
from llmwatch.errors import ClickHouseError, ConfigError
from llmwatch.settings import Settings


def test_safe_url_masks_the_password() -> None:
    assert safe_url("https://bob:s3cr%40t@ch.example:8443/llm") == "https://bob:***@ch.example:8443/llm"
    assert safe_url("chdb:///var/lib/x") == "chdb:///var/lib/x"
    assert "s3cr" not in _scrub("auth failed for s3cr@t and s3cr%40t", "https://bob:s3cr%40t@h:1/db")


def test_embedded_path_wants_an_absolute_folder() -> None:
    assert embedded_path("chdb:///tmp/x") == Path("/tmp/x")
    with pytest.raises(ConfigError):
        embedded_path("chdb://relative/x")


def _hold_flock(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / "status", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


@contextmanager
def _held_by_another_process(folder: Path) -> Iterator[int]:
    """A child process holding the flock the way chDB does; yields its pid."""
    folder.mkdir(parents=True, exist_ok=True)
    code = (
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(folder / "status")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        yield child.pid
    finally:
        child.communicate("", timeout=10)


def test_lock_probe_sees_a_held_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ch"
    assert not is_locked(folder) and lock_holder(folder) is None
    fd = _hold_flock(folder)
    try:
        assert is_locked(folder)
        assert lock_holder(folder) == os.getpid()
    finally:
        os.close(fd)
    assert not is_locked(folder) and lock_holder(folder) is None
    with _held_by_another_process(folder) as pid:
        assert lock_holder(folder) == pid
    assert lock_holder(folder) is None


def test_connect_refuses_a_folder_another_process_holds(tmp_path: Path) -> None:
    folder = tmp_path / "ch"
    with _held_by_another_process(folder) as pid, pytest.raises(DatabaseLocked, match=f"held by process {pid}") as info:
        connect(Settings(clickhouse=f"chdb://{folder}"))
    assert isinstance(info.value, ClickHouseError)


def test_server_url_errors_are_wrapped_without_the_password() -> None:
    settings = Settings(clickhouse="http://alice:hunter2@127.0.0.1:9/db")  # port 9: nothing listens
    with pytest.raises(ClickHouseError) as info:
        connect(settings)
    assert "hunter2" not in str(info.value)
    assert "alice:***@127.0.0.1:9" in str(info.value)


def test_owner_file_is_private_and_only_valid_while_held(tmp_path: Path) -> None:
    folder = tmp_path / "ch"
    owner = Owner(pid=os.getpid(), url="http://127.0.0.1:1", token="t", path=str(folder))
    fd = _hold_flock(folder)
    try:
        path = write_owner(folder, owner)
        assert path == owner_file(folder)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert live_owner(folder) == owner
    finally:
        os.close(fd)
    assert live_owner(folder) is None  # folder no longer locked: stale


def test_owner_of_a_dead_process_is_stale(tmp_path: Path) -> None:
    folder = tmp_path / "ch"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    fd = _hold_flock(folder)
    try:
        write_owner(folder, Owner(pid=int(dead.stdout), url="http://127.0.0.1:1", token="t", path=str(folder)))
        assert live_owner(folder) is None
        # alive, but not the holder (the pid was reused by an unrelated process)
        write_owner(folder, Owner(pid=os.getppid(), url="http://127.0.0.1:1", token="t", path=str(folder)))
        assert live_owner(folder) is None
    finally:
        os.close(fd)


def test_remove_owner_leaves_a_newer_holders_file(tmp_path: Path) -> None:
    folder = tmp_path / "ch"
    write_owner(folder, Owner(pid=123, url="u", token="t", path=str(folder)))
    remove_owner(folder, pid=456)
    assert owner_file(folder).exists()
    remove_owner(folder, pid=123)
    assert not owner_file(folder).exists()


def test_query_endpoint_is_a_no_op_for_a_server_url() -> None:
    endpoint = QueryEndpoint(None, Settings(clickhouse="https://ch.example:8443/llm")).start()
    assert endpoint.url is None
    endpoint.stop()
