"""Writes one benchmark's section of BENCHMARKS.md, with the command that produced it.

Each bench owns the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; re-running a bench
replaces only its own section, so figures always sit next to the exact command and date.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_PATH = Path("BENCHMARKS.md")


def machine_line() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(name: str, body_markdown: str, *, path: Path = DEFAULT_PATH, command: str | None = None) -> Path:
    """Replace (or append) the section for `name` in `path`."""
    command = command or "llmwatch " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- bench:{name} -->\n"
        f"### `{name}`\n\n"
        f"Command: `{command}` — run {stamp} on {machine_line()}.\n\n"
        f"{body_markdown.strip()}\n"
        f"<!-- /bench:{name} -->"
    )
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nEvery figure below was produced by the command shown with it.\n"
    )
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _m: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    return path
