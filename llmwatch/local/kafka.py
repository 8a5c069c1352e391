"""A real single-node Apache Kafka (KRaft) on loopback, for demos, tests and CI on one machine.

`up` provisions the jars (kafka_dist), renders server.properties (kafka_config), formats the log dir
once, starts `java … kafka.Kafka` in its own session, waits for a metadata answer and creates the
registry's topics. `down` stops exactly the process it started (pidfile). Everything lives under
settings.data_dir / "kafka"; the jars under settings.cache_dir.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files
from pathlib import Path

import psutil
from filelock import FileLock, Timeout

from llmwatch.errors import ConfigError, KafkaError
from llmwatch.kafka_topics import ensure_topics_sync
from llmwatch.settings import Settings

from .aio import run_sync
from .kafka_config import (
    LocalAddress,
    choose_controller_port,
    new_cluster_id,
    parse_local_address,
    port_is_free,
    previous_controller_port,
    render_server_properties,
)
from .kafka_dist import Echo, KafkaDist, check_version, ensure_jars, find_java
from .kafka_probe import describe_cluster_sync, wait_until_up
from .pidfile import PidFile

log = logging.getLogger(__name__)

_LOG4J = files("llmwatch.deploy") / "local/kafka/log4j.properties"
_VERSION_PROP = "-Dllmwatch.kafka.version="
_LOCK_TIMEOUT_S = 900.0
_TAIL_LINES = 25
_EXCEPTION = re.compile(r"^(?:[\w$]+\.)+[\w$]*(?:Exception|Error): (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class BrokerPaths:
    """Where one local broker keeps its state."""

    root: Path

    @property
    def log_dir(self) -> Path:
        """Kafka's log.dirs (the partitions and the KRaft metadata log)."""
        return self.root / "data"

    @property
    def server_properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j_properties(self) -> Path:
        return self.root / "log4j.properties"

    @property
    def broker_log(self) -> Path:
        return self.root / "broker.log"

    @property
    def jvm_output(self) -> Path:
        """The JVM's own stdout/stderr (crashes before logging starts: bad flags, OOM)."""
        return self.root / "broker.out"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    def is_formatted(self) -> bool:
        return (self.log_dir / "meta.properties").is_file()


class BrokerState(StrEnum):
    RUNNING = "running"  # ours, answers metadata requests
    STARTING = "starting"  # ours, process alive, not answering yet
    STOPPED = "stopped"
    FOREIGN = "foreign"  # a broker answers at the address, but not one started from this data dir
    REMOTE = "remote"  # non-loopback address, reachable
    UNREACHABLE = "unreachable"  # non-loopback address, no answer


@dataclass(frozen=True)
class BrokerStatus:
    state: BrokerState
    address: str
    pid: int | None = None
    version: str | None = None
    uptime_s: float | None = None
    cluster_id: str | None = None

    @property
    def up(self) -> bool:
        return self.state in {BrokerState.RUNNING, BrokerState.FOREIGN, BrokerState.REMOTE}

    def describe(self) -> str:
        version = f"Kafka {self.version}" if self.version else "Kafka"
        match self.state:
            case BrokerState.RUNNING:
                return f"{version} running at {self.address} (pid {self.pid}, up {_duration(self.uptime_s)})"
            case BrokerState.STARTING:
                return f"{version} process is alive (pid {self.pid}) but does not answer at {self.address} yet"
            case BrokerState.FOREIGN:
                return f"a Kafka broker answers at {self.address}, but llmwatch did not start it from this data dir"
            case BrokerState.REMOTE:
                return f"Kafka at {self.address} is reachable (not a local broker llmwatch manages)"
            case BrokerState.UNREACHABLE:
                return f"Kafka at {self.address} does not answer (not a local broker llmwatch manages)"
        return f"local Kafka at {self.address} is not running"


@dataclass(frozen=True)
class UpResult:
    pid: int
    version: str
    address: str
    elapsed_s: float
    already_running: bool
    topics_created: list[str]


@dataclass(frozen=True)
class DownResult:
    pid: int | None  # None: nothing was running
    elapsed_s: float = 0.0
    killed: bool = False  # needed SIGKILL after the timeout
    purged: bool = False


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def last_exception(log_text: str) -> str | None:
    """The message of the last Java exception in a log ("Stored node id 7 doesn't match …"), if any."""
    matches = _EXCEPTION.findall(log_text)
    return matches[-1].strip() if matches else None


def _log(message: str) -> None:
    log.info(message)


class LocalKafka:
    """One local broker, identified by its data dir (settings.data_dir / "kafka")."""

    def __init__(self, settings: Settings, echo: Echo = _log) -> None:
        self.settings = settings
        self.echo = echo
        self.paths = BrokerPaths(settings.data_dir.resolve() / "kafka")
        self.dist = KafkaDist(settings.kafka_version, settings.cache_dir.resolve())
        self.pidfile = PidFile(self.paths.pid_file, marker=str(self.paths.server_properties))

    # --- up ------------------------------------------------------------------------------------
    def up(self, timeout_s: float = 90.0) -> UpResult:
        """Start the broker unless it runs already, then make sure the registry's topics exist."""
        started = time.monotonic()
        address = parse_local_address(self.settings.kafka)
        check_version(self.settings.kafka_version)
        with self._lock():
            proc = self.pidfile.process()
            if proc is not None:
                self.echo(f"Kafka already running at {address} (pid {proc.pid})")
                self._wait_ready(proc.pid, proc.is_running, timeout_s)
                created = self._create_topics()
                return UpResult(proc.pid, self._version_of(proc), str(address), 0.0, True, created)
            pid = self._start(address, timeout_s)
        created = self._create_topics()
        elapsed = time.monotonic() - started
        self.echo(f"Kafka {self.dist.version} up at {address} (pid {pid}, {elapsed:.1f} s)")
        return UpResult(pid, self.dist.version, str(address), elapsed, False, created)

    def _start(self, address: LocalAddress, timeout_s: float) -> int:
        if not port_is_free(address.host, address.port):
            raise KafkaError(f"port {address} is taken by {_who_listens(address.port)}; cannot start Kafka there")
        java = find_java()
        libs = ensure_jars(self.dist, self.echo)
        self._write_config(address)
        if not self.paths.is_formatted():
            self.echo("formatting KRaft log dir…")
            self._format(java)
        self.echo("starting broker…")
        popen = self._spawn(java, libs)
        self.pidfile.write(popen.pid)
        if not self._wait_ready(popen.pid, lambda: popen.poll() is None, timeout_s):
            self._give_up(popen, timeout_s)
        return popen.pid

    def _write_config(self, address: LocalAddress) -> None:
        self.paths.root.mkdir(parents=True, exist_ok=True)
        previous = None
        if self.paths.server_properties.is_file():
            previous = previous_controller_port(self.paths.server_properties.read_text(encoding="utf-8"))
        controller_port = choose_controller_port(address, previous)
        text = render_server_properties(address, controller_port, self.paths.log_dir)
        self.paths.server_properties.write_text(text, encoding="utf-8")
        self.paths.log4j_properties.write_text(_LOG4J.read_text(encoding="utf-8"), encoding="utf-8")

    def _jvm_props(self) -> list[str]:
        return [
            f"-Dlog4j.configuration=file:{self.paths.log4j_properties}",
            f"-Dkafka.logs.dir={self.paths.root}",
            "-Djava.awt.headless=true",
        ]

    def _format(self, java: Path) -> None:
        cmd = [
            str(java),
            "-Xmx256m",
            *self._jvm_props(),
            "-cp",
            self.dist.classpath(),
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            new_cluster_id(),
            "-c",
            str(self.paths.server_properties),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.paths.root)
        except (OSError, subprocess.SubprocessError) as e:
            raise KafkaError(f"formatting the KRaft log dir failed: {e}") from e
        if proc.returncode != 0 or not self.paths.is_formatted():
            output = (proc.stdout + proc.stderr).strip()[-2000:]
            where = self.paths.log_dir
            raise KafkaError(f"formatting the KRaft log dir {where} failed (exit {proc.returncode}):\n{output}")

    def _spawn(self, java: Path, libs: Path) -> subprocess.Popen[bytes]:
        heap = self.settings.kafka_heap_mb
        cmd = [
            str(java),
            f"-Xmx{heap}m",
            f"-Xms{min(heap, 128)}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            *self._jvm_props(),
            f"{_VERSION_PROP}{self.dist.version}",
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(self.paths.server_properties),
        ]
        with self.paths.jvm_output.open("ab") as out:
            try:
                return subprocess.Popen(
                    cmd,
                    cwd=self.paths.root,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # survives the CLI and its terminal's Ctrl-C
                    close_fds=True,
                )
            except OSError as e:
                raise KafkaError(f"cannot start {java}: {e}") from e

    def _wait_ready(self, pid: int, alive: Callable[[], bool], timeout_s: float) -> bool:
        info = run_sync(wait_until_up(self.settings, timeout_s, alive))
        if info is None:
            return False
        log.debug("broker pid %s answers: %s", pid, info)
        return True

    def _give_up(self, popen: subprocess.Popen[bytes], timeout_s: float) -> None:
        """The broker died or never answered: leave no process behind, and say why."""
        code = popen.poll()
        if code is None:
            _stop(psutil.Process(popen.pid), timeout_s=15.0)
            what = f"did not answer a metadata request within {timeout_s:.0f} s (stopped it)"
        else:
            what = f"exited with code {code}"
        self.pidfile.remove()
        cause = last_exception(tail(self.paths.broker_log, 200) + "\n" + tail(self.paths.jvm_output, 50))
        raise KafkaError(f"the Kafka broker {what}{f': {cause}' if cause else ''}\n{self._log_tails()}")

    def _log_tails(self) -> str:
        parts = []
        jvm = tail(self.paths.jvm_output, 10)
        if jvm:
            parts.append(f"JVM output ({self.paths.jvm_output}):\n{jvm}")
        broker = tail(self.paths.broker_log)
        log_file = self.paths.broker_log
        parts.append(f"last lines of {log_file}:\n{broker}" if broker else f"{log_file} is empty (no broker log)")
        return "\n".join(parts)

    def _create_topics(self) -> list[str]:
        self.echo("creating topics…")
        created = ensure_topics_sync(self.settings)
        if created:
            self.echo(f"created {len(created)} topics: {', '.join(created)}")
        else:
            self.echo("topics already present")
        return created

    # --- down ----------------------------------------------------------------------------------
    def down(self, timeout_s: float = 30.0, purge: bool = False) -> DownResult:
        """Stop our broker (SIGTERM, SIGKILL after `timeout_s`); `purge` also deletes its log dir."""
        with self._lock():
            proc = self.pidfile.process()
            result = DownResult(pid=None)
            if proc is not None:
                started = time.monotonic()
                killed = _stop(proc, timeout_s)
                self.pidfile.remove()
                result = DownResult(pid=proc.pid, elapsed_s=time.monotonic() - started, killed=killed)
            if purge:
                shutil.rmtree(self.paths.log_dir, ignore_errors=True)
                result = DownResult(result.pid, result.elapsed_s, result.killed, purged=True)
            return result

    # --- status --------------------------------------------------------------------------------
    def status(self) -> BrokerStatus:
        try:
            address = str(parse_local_address(self.settings.kafka))
        except ConfigError:
            reachable = describe_cluster_sync(self.settings) is not None
            state = BrokerState.REMOTE if reachable else BrokerState.UNREACHABLE
            return BrokerStatus(state, self.settings.kafka)
        proc = self.pidfile.process()
        info = describe_cluster_sync(self.settings)
        if proc is None:
            state = BrokerState.FOREIGN if info else BrokerState.STOPPED
            return BrokerStatus(state, address, cluster_id=info.get("cluster_id") if info else None)
        return BrokerStatus(
            BrokerState.RUNNING if info else BrokerState.STARTING,
            address,
            pid=proc.pid,
            version=self._version_of(proc),
            uptime_s=max(0.0, time.time() - proc.create_time()),
            cluster_id=info.get("cluster_id") if info else None,
        )

    # --- helpers -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One up/down at a time per data dir (colleagues' test sessions may race to start it)."""
        self.paths.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.paths.lock_file))
        try:
            lock.acquire(timeout=_LOCK_TIMEOUT_S)
        except Timeout as e:
            raise KafkaError(f"another llmwatch process holds {self.paths.lock_file} (kafka up/down running?)") from e
        try:
            yield
        finally:
            lock.release()

    def _version_of(self, proc: psutil.Process) -> str:
        try:
            for arg in proc.cmdline():
                if arg.startswith(_VERSION_PROP):
                    return arg.removeprefix(_VERSION_PROP)
        except psutil.Error:
            pass
        return self.dist.version


def _stop(proc: psutil.Process, timeout_s: float) -> bool:
    """SIGTERM, wait, SIGKILL; True when it had to kill. Reaps the process when it is our child."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout_s)
        return False
    except psutil.NoSuchProcess:
        return False
    except psutil.TimeoutExpired:
        log.warning("Kafka pid %s ignored SIGTERM for %.0f s; killing it", proc.pid, timeout_s)
    try:
        proc.kill()
        proc.wait(timeout=10)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired as e:
        raise KafkaError(f"Kafka pid {proc.pid} survived SIGKILL") from e
    return True


def _who_listens(port: int) -> str:
    """Best effort "pid N (name)" of the process listening on `port`."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                try:
                    return f"another process (pid {conn.pid}, {psutil.Process(conn.pid).name()})"
                except psutil.Error:
                    return f"another process (pid {conn.pid})"
    except psutil.Error:
        pass
    return "another process"
