"""The broker's pid file, trusted only when the pid still runs the command we started.

A bare pid can be reused by an unrelated process after a crash or reboot; `down` must never signal that.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class PidFile:
    path: Path
    marker: str  # a string the owner's command line must contain (our server.properties path)

    def read(self) -> int | None:
        """The pid written there, or None when the file is missing or garbled."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        return int(text) if text.isdigit() and int(text) > 0 else None

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{pid}\n", encoding="ascii")
        os.replace(tmp, self.path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def process(self) -> psutil.Process | None:
        """The live process the pid file names, if it is still ours; a stale file is removed."""
        pid = self.read()
        if pid is None:
            if self.path.exists():
                self.remove()
            return None
        proc = owned_process(pid, self.marker)
        if proc is None:
            self.remove()
        return proc


def owned_process(pid: int, marker: str) -> psutil.Process | None:
    """psutil.Process(pid) when it is alive (not a zombie) and its command line contains `marker`."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return proc if any(marker in arg for arg in cmdline) else None
