"""ajv, the usual JavaScript JSON Schema validator, run from npm on the schemas `llmwatch schemas export` writes.

Installed on first use into a cache folder outside the repository (`LLMWATCH_NODE_CACHE`, default
~/.cache/llmwatch/node), so a clean clone needs only Node, npm and the registry; later runs reuse it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from llmwatch.schemas.export import export_json_schemas

PACKAGES = ("ajv@8", "ajv-formats@3")
SCRIPT = Path(__file__).parents[1] / "js" / "ajv_validate.cjs"


def node_modules() -> Path:
    """The folder holding ajv and ajv-formats, installed with npm when missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("the ajv test needs Node.js and npm on PATH (apt-get install nodejs npm)")
    root = Path(os.environ.get("LLMWATCH_NODE_CACHE") or Path.home() / ".cache" / "llmwatch" / "node")
    root.mkdir(parents=True, exist_ok=True)
    modules = root / "node_modules"
    with FileLock(str(root / ".install.lock")):
        if not all((modules / name.split("@")[0] / "package.json").exists() for name in PACKAGES):
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(root), *PACKAGES],
                check=True,
                capture_output=True,
                timeout=600,
            )
    return modules


def ajv_validate(work: Path, docs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Export the schemas into `work`, compile them all in strict mode and validate `docs` ((schema name, doc))."""
    schemas = work / "schemas"
    export_json_schemas(schemas)
    lines = work / "docs.jsonl"
    lines.write_text("".join(json.dumps({"schema": name, "doc": doc}) + "\n" for name, doc in docs))
    env = {**os.environ, "NODE_PATH": str(node_modules())}
    done = subprocess.run(
        ["node", str(SCRIPT), str(schemas), str(lines)], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise AssertionError(f"ajv failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
