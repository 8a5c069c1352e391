"""`llmwatch` commands as child processes: the worker and the gateway exactly as a user starts them.

Each child runs in its own session (Ctrl-C in a terminal reaches only the parent, which stops it), writes its
output to a log file, receives the parent's settings as LLMWATCH_* variables, and dies with its parent (Linux
parent-death signal), so a killed benchmark or test leaves no orphan holding a chDB folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import httpx
from pydantic import BaseModel, SecretStr

from llmwatch.local.lifetime import die_with_parent
from llmwatch.settings import Settings
from llmwatch.tls import default_tls_context

from .wait import HarnessError, ProcessDied, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    """The LLMWATCH_* variables that reproduce `settings` in a child process."""
    env = {
        "LLMWATCH_KAFKA": settings.kafka,
        "LLMWATCH_DATA_DIR": str(settings.data_dir),
        "LLMWATCH_CACHE_DIR": str(settings.cache_dir),
        "LLMWATCH_PARTITIONS": str(settings.partitions),
        "LLMWATCH_CLICKHOUSE": settings.clickhouse_url,
    }
    for role, name in settings.topics.model_dump().items():
        env[f"LLMWATCH_TOPICS__{role.upper()}"] = name
    sections = [name for name, value in settings if isinstance(value, BaseModel) and name != "topics"]
    for section in sections:
        for key, value in getattr(settings, section):
            if value is None:
                continue
            env[f"LLMWATCH_{section.upper()}__{key.upper()}"] = _env_value(value)
    if settings.prices:
        env["LLMWATCH_PRICES"] = _env_value(settings.prices)
    for key, value in settings:
        if key.startswith(("kafka_", "clickhouse_")) and value is not None:
            env[f"LLMWATCH_{key.upper()}"] = _env_value(value)
    env["LLMWATCH_REDACT_AT_SOURCE"] = _env_value(settings.redact_at_source)
    return env


def _env_value(value: Any) -> str:
    """How a settings value is written in an environment variable (secrets in clear: the child needs them)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value, default=_json_default)
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} cannot go into an environment variable")


def run_cli(settings: Settings, *args: str, timeout_s: float = 150) -> str:
    """`llmwatch ARGS…` as a user runs it, with `settings` in its environment; its output, or HarnessError with
    what it printed when it exits non-zero."""
    done = subprocess.run(
        [sys.executable, "-m", "llmwatch", *args],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        raise HarnessError(f"`llmwatch {' '.join(args)}` exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


class ChildProcess:
    """An `llmwatch` command as a child process. Subclasses say which command (`command()`), what to call it in
    messages (`name`) and how long a graceful stop may take (`stop_timeout_s`)."""

    name = "child process"
    stop_timeout_s = 60.0

    def __init__(self, settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Self:
        env = {**os.environ, **settings_env(self.settings), **self.extra_env, "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "llmwatch", *self.command()],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        return self

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise HarnessError(f"{self.name} was never started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float | None = None) -> int | None:
        """Graceful stop (SIGTERM: a worker commits what it processed, a gateway flushes its publisher); kill -9
        after `timeout_s`. Returns the exit code (None when it had to be killed)."""
        if self.proc is None or not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s if timeout_s is not None else self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """kill -9 of the whole session: no chance to commit or flush."""
        if self.proc is not None and self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Self:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WorkerProcess(ChildProcess):
    """`llmwatch worker --agents …` with its /metrics page on a known port."""

    name = "the worker"

    def __init__(
        self,
        settings: Settings,
        agents: Sequence[str],
        log_path: Path,
        *,
        web_port: int | None = None,
        extra_env: dict[str, str] | None = None,
        loglevel: str = "info",
    ) -> None:
        super().__init__(settings, log_path, extra_env)
        self.agents = list(agents)
        self.web_port = web_port or free_port()
        self.loglevel = loglevel  # "debug" in the privacy tests: the most a log can ever say

    def command(self) -> list[str]:
        agents = ",".join(self.agents)
        return ["worker", "--agents", agents, "--web-port", str(self.web_port), "--loglevel", self.loglevel]

    def metrics(self) -> str:
        return httpx.get(
            f"http://127.0.0.1:{self.web_port}/metrics", timeout=5, trust_env=False, verify=default_tls_context()
        ).text


class GatewayProcess(ChildProcess):
    """`llmwatch serve` (simulated engine unless `args` say otherwise) on a known port."""

    name = "the gateway"
    stop_timeout_s = 30.0

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        *,
        port: int | None = None,
        args: Sequence[str] = ("--engine", "simulated"),
        extra_env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(settings, log_path, extra_env)
        self.port = port or free_port()
        self.args = list(args)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return ["serve", *self.args, "--host", "127.0.0.1", "--port", str(self.port)]

    def ready(self) -> bool:
        """Whether /ready says 200 (engines loaded, Kafka reachable); raises what /ready says otherwise."""
        response = httpx.get(f"{self.url}/ready", timeout=2, trust_env=False, verify=default_tls_context())
        if response.status_code != 200:
            raise HarnessError(f"/ready answered {response.status_code}: {response.text[:300]}")
        return True

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Until /ready says 200; ProcessDied or WaitTimeout (with the log tail) otherwise."""
        if not self.alive():
            raise ProcessDied(f"{self.name} is not running:\n{self.log_tail()}")
        wait_for(self.ready, timeout_s, "the gateway to be ready", interval_s=0.3, processes=[self])

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=5, trust_env=False, verify=default_tls_context()).text


class IngestProcess(GatewayProcess):
    """`llmwatch ingest` (the OTLP/HTTP receiver and JSON ingestion) on a known port."""

    name = "the ingest service"

    def __init__(self, settings: Settings, log_path: Path, *, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(settings, log_path, port=port, args=(), **kwargs)

    def command(self) -> list[str]:
        return ["ingest", "--host", "127.0.0.1", "--port", str(self.port)]
