"""Who holds the embedded chDB folder: the engine's lock on `<folder>/status`, and our owner file next to it.

chDB (like clickhouse-server) takes an exclusive flock on `status`; a second process cannot open the folder.
The holder may publish a query endpoint in `<folder>.owner.json` (0600: it carries a bearer token).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from llmwatch.errors import ConfigError


def embedded_path(url: str) -> Path:
    """The folder of a `chdb:///abs/path` URL."""
    parts = urlsplit(url)
    if parts.scheme != "chdb" or parts.netloc or not parts.path.startswith("/"):
        raise ConfigError(f"an embedded ClickHouse URL looks like chdb:///absolute/path, got {url!r}")
    return Path(parts.path)


def is_locked(folder: Path) -> bool:
    """True when some open engine (this process included: flock is per open file) holds the folder."""
    try:
        fd = os.open(folder / "status", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


#: lock_holder's answer when the folder is locked but the system cannot say by whom (no /proc/locks).
UNKNOWN_HOLDER = 0


def lock_holder(folder: Path) -> int | None:
    """The pid whose engine holds the folder, None when free (Linux names it through /proc/locks).

    Naming the pid lets a process tell its own engine (a second client on the same folder is fine: chDB shares
    one engine per process) from a rival's, which a bare flock probe cannot: flock conflicts across descriptors
    of one process too.
    """
    try:
        st = os.stat(folder / "status")
    except FileNotFoundError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        table = Path("/proc/locks").read_text()
    except OSError:
        return UNKNOWN_HOLDER if is_locked(folder) else None
    for line in table.splitlines():
        fields = line.split()  # "5: FLOCK  ADVISORY  WRITE 32080 fe:00:9996616 0 EOF"
        if "FLOCK" in fields and device in fields and "->" not in fields:
            return int(fields[fields.index(device) - 1])
    return None


@dataclass(frozen=True)
class Owner:
    pid: int
    url: str
    token: str
    path: str


def owner_file(folder: Path) -> Path:
    return folder.with_name(folder.name + ".owner.json")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_owner(folder: Path) -> Owner | None:
    """The owner file's content if its process still holds the folder; else None (stale: dead or pid reused)."""
    try:
        data = json.loads(owner_file(folder).read_text())
        owner = Owner(pid=int(data["pid"]), url=str(data["url"]), token=str(data["token"]), path=str(data["path"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    holder = lock_holder(folder)
    if holder is None or holder not in (owner.pid, UNKNOWN_HOLDER) or not _pid_alive(owner.pid):
        return None
    return owner


def write_owner(folder: Path, owner: Owner) -> Path:
    """Write atomically with mode 0600 (created so, never chmod-ed after: no window where others can read it)."""
    target = owner_file(folder)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(owner), f)
    os.replace(tmp, target)
    return target


def remove_owner(folder: Path, pid: int) -> None:
    """Remove the owner file if it is still ours (a newer holder may have replaced it)."""
    target = owner_file(folder)
    with contextlib.suppress(OSError, ValueError, KeyError):
        if int(json.loads(target.read_text())["pid"]) == pid:
            target.unlink()
