"""Prometheus' and Alertmanager's own tools, built from their Go modules once and cached (tooling, not product).

The tests check llmwatch's deploy files with the real tools: `promtool test rules` (every alert rule),
`amtool check-config` (deploy/alertmanager), and a real Alertmanager that receives the alerter's alerts. Neither
project publishes them on PyPI, so they are built with the installed Go toolchain from the released module
versions below, into `<cache dir>/go-tools/<tool>-<version>/<tool>` (`LLMWATCH_CACHE_DIR`, ~/.cache/llmwatch by
default), once: building promtool takes ~12 minutes on 2 cores, amtool ~1.5, alertmanager ~2. A version change
builds into a new folder. Builds run niced, one at a time per tool (a file lock), and print what they do.

The alertmanager command embeds its web UI (`ui/app/dist`), which the project builds with npm and leaves out of
its Go module: that folder gets a one-page placeholder before `go build`; the API the tests use is all Go.

    python -m llmwatch.harness.gotools            # build what is missing, print the paths
    python -m llmwatch.harness.gotools promtool   # one tool
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from llmwatch.errors import LlmwatchError


class GoToolError(LlmwatchError):
    """A tool could not be built (no Go toolchain, no network for a first build, a failed build)."""


@dataclass(frozen=True)
class GoTool:
    name: str
    module: str
    version: str
    package: str  # inside the module
    minutes: float  # build time seen on 2 busy cores, for the progress message
    embeds_ui: bool = False

    @property
    def target(self) -> str:
        return f"{self.module}/{self.package}@{self.version}"


TOOLS: dict[str, GoTool] = {
    t.name: t
    for t in (
        GoTool("promtool", "github.com/prometheus/prometheus", "v0.316.0", "cmd/promtool", 12),
        GoTool("amtool", "github.com/prometheus/alertmanager", "v0.35.0", "cmd/amtool", 1.5),
        GoTool("alertmanager", "github.com/prometheus/alertmanager", "v0.35.0", "cmd/alertmanager", 2, True),
    )
}

_UI_PLACEHOLDER = (
    "<!doctype html><title>Alertmanager</title><p>This Alertmanager was built by llmwatch's tests from its Go "
    "module, without the web UI (npm-built, not part of the module). The API is at /api/v2/.</p>\n"
)


def cache_root(cache_dir: Path | None = None) -> Path:
    if cache_dir is None:
        from llmwatch.settings import Settings

        cache_dir = Settings().cache_dir
    return cache_dir / "go-tools"


def tool_path(name: str, cache_dir: Path | None = None) -> Path:
    tool = TOOLS[name]
    return cache_root(cache_dir) / f"{tool.name}-{tool.version}" / tool.name


def go_binary() -> str:
    found = shutil.which("go") or next((p for p in ("/usr/local/go/bin/go",) if os.access(p, os.X_OK)), None)
    if found is None:
        raise GoToolError(
            "the Go toolchain is needed to build promtool and alertmanager for the tests (once; then cached): "
            "install Go ≥ 1.24 (https://go.dev/dl) and put `go` on PATH"
        )
    return found


def _nice() -> None:
    os.nice(10)  # a first build takes minutes of both cores: let the rest of the machine go first


def _run(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None) -> str:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, preexec_fn=_nice, check=False)
    if done.returncode != 0:
        raise GoToolError(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def _build(tool: GoTool, out_dir: Path) -> None:
    go = go_binary()
    env = {**os.environ, "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0"}
    if not tool.embeds_ui:
        _run([go, "install", tool.target], env={**env, "GOBIN": str(out_dir)})
        return
    # The module as released, in a writable copy, with the UI folder its go:embed needs.
    info = json.loads(_run([go, "mod", "download", "-json", f"{tool.module}@{tool.version}"], env=env))
    with tempfile.TemporaryDirectory(prefix=f"llmwatch-{tool.name}-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(info["Dir"], src)
        for path in [src, *src.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        for ui in ("elm", "mantine"):
            (src / "ui" / "app" / "dist" / ui).mkdir(parents=True, exist_ok=True)
            (src / "ui" / "app" / "dist" / ui / "index.html").write_text(_UI_PLACEHOLDER)
        ldflags = f"-X github.com/prometheus/common/version.Version={tool.version.removeprefix('v')}"
        out = out_dir / tool.name
        _run(
            [go, "build", "-mod=mod", "-trimpath", "-ldflags", ldflags, "-o", str(out), f"./{tool.package}"],
            env=env,
            cwd=src,
        )


def ensure(name: str, cache_dir: Path | None = None, say: Callable[[str], None] | None = None) -> Path:
    """The path of a built tool, building it first if it is not cached (prints progress through `say`)."""
    say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
    tool = TOOLS[name]
    path = tool_path(name, cache_dir)
    if path.is_file() and os.access(path, os.X_OK):
        return path
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.parent.parent / f".{tool.name}.lock")):
        if path.is_file():  # built by another process while this one waited
            return path
        say(
            f"building {tool.name} {tool.version} from its Go module {tool.module} (first time only, about "
            f"{tool.minutes:g} min on 2 cores; cached in {path.parent})"
        )
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".{tool.name}-", dir=path.parent.parent))
        try:
            _build(tool, staging)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / tool.name, path)  # whole or absent: an interrupted build leaves no binary
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        say(f"built {tool.name} {tool.version} in {time.monotonic() - started:.0f} s: {path}")
    return path


def main(argv: list[str]) -> int:
    names = argv or list(TOOLS)
    unknown = [n for n in names if n not in TOOLS]
    if unknown:
        print(f"unknown tool(s) {unknown}; known: {', '.join(TOOLS)}", file=sys.stderr)
        return 2
    try:
        for name in names:
            print(ensure(name))
    except GoToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
