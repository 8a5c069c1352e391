"""Running a real worker process and feeding it: shared by the integration tests, the pipeline benchmark
and the demo, so they all exercise the same command a user runs (`llmwatch worker`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Self

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, SecretStr

from llmwatch.local.lifetime import die_with_parent
from llmwatch.schemas import Payload
from llmwatch.settings import Settings


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
    for key, value in settings:
        if key.startswith(("kafka_", "clickhouse_")) and value is not None:
            env[f"LLMWATCH_{key.upper()}"] = _env_value(value)
    return env


def _env_value(value: Any) -> str:
    """How a settings value is written in an environment variable (secrets in clear: the child needs them)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value)
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return str(value)


class ChildProcess:
    """An `llmwatch` command as a child process in its own session, its output in a log file, dying with its
    parent. Subclasses say which command (`command()`) and how to stop gracefully (`stop_timeout_s`)."""

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
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float | None = None) -> int | None:
        """Graceful stop (SIGTERM: a worker commits what it processed, a gateway flushes its publisher)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s if timeout_s is not None else self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """kill -9: no chance to commit or flush."""
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class WorkerProcess(ChildProcess):
    """`llmwatch worker` as a child process, with its log in a file."""

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
        return [
            "worker",
            "--agents",
            ",".join(self.agents),
            "--web-port",
            str(self.web_port),
            "--loglevel",
            self.loglevel,
        ]

    def metrics(self) -> str:
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.web_port}/metrics", timeout=5).text


class GatewayProcess(ChildProcess):
    """`llmwatch serve` as a child process (simulated engine unless told), with its log in a file: the reliability
    tests and the soak drive the same command a user runs, over HTTP."""

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

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Until /ready says 200 (engines loaded, Kafka reachable); raises with the log tail otherwise."""
        import httpx

        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"the gateway exited:\n{self.log_tail()}")
            return httpx.get(f"{self.url}/ready", timeout=2, trust_env=False).status_code == 200

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the gateway was not ready within {timeout_s:.0f} s:\n{self.log_tail()}")

    def metrics(self) -> str:
        import httpx

        return httpx.get(f"{self.url}/metrics", timeout=5, trust_env=False).text


def landed_counts(settings: Settings) -> tuple[int, int, int, int]:
    """(events, score rows, sum of window counts, dead letters), FINAL: what "nothing lost" is checked on."""
    return (
        int(query_scalar(settings, "SELECT count() FROM inference_events FINAL") or 0),
        int(query_scalar(settings, "SELECT count() FROM eval_scores FINAL") or 0),
        int(query_scalar(settings, "SELECT sum(count) FROM window_metrics FINAL") or 0),
        int(query_scalar(settings, "SELECT count() FROM dead_letters FINAL") or 0),
    )


#: the worker gauges and counters that say where a stalled run stands
_PROGRESS_METRICS = (
    "llmwatch_agent_events_total",
    "llmwatch_agent_emitted_total",
    "llmwatch_sink_rows_total",
    "llmwatch_late_events_total",
    "llmwatch_held_events",
    "llmwatch_open_windows",
    "llmwatch_stuck_batches_total",
    "llmwatch_sink_retries_total",
    "llmwatch_dlq_total",
)


def landing_report(settings: Settings, worker: WorkerProcess | None = None, size_s: float | None = None) -> str:
    """Where a "nothing lost" wait stands: the landed counts, the window counts beside the score rows of each
    window (which window over- or under-counts), and the worker's progress metrics."""
    lines = [f"landed (events, scores, window sum, dlq): {landed_counts(settings)}"]
    size = size_s or settings.worker.window_size_s
    rows = query_rows(
        settings,
        "SELECT toString(w.window_start), w.deployment, w.model_version, w.n, w.late, w.final, s.n FROM "
        "(SELECT window_start, deployment, model_version, sum(count) AS n, sum(late_count) AS late, "
        "min(final) AS final FROM window_metrics FINAL GROUP BY window_start, deployment, model_version) AS w "
        "FULL OUTER JOIN (SELECT toStartOfInterval(ts, toIntervalMillisecond("
        f"{int(size * 1000)})) AS window_start, deployment, model_version, count() AS n FROM eval_scores FINAL "
        "GROUP BY window_start, deployment, model_version) AS s "
        "USING (window_start, deployment, model_version) ORDER BY window_start, deployment, model_version",
    )
    lines.append("window start | deployment | version | window count | late | final | score rows")
    lines += [" | ".join(str(v) for v in r) + ("" if r[3] == r[6] else "   <-- differs") for r in rows]
    if worker is not None and worker.alive():
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(worker.metrics()):
            if family.name.removesuffix("_total") in {m.removesuffix("_total") for m in _PROGRESS_METRICS}:
                values = {",".join(f"{k}={v}" for k, v in s.labels.items()): s.value for s in family.samples}
                lines.append(f"{family.name}: {values}")
        lag = metric_sums(worker.metrics(), "llmwatch_consumer_lag", by="topic")
        lines.append(f"llmwatch_consumer_lag: {lag}")
    return "\n".join(lines)


def _process_tree(pid: int) -> list[Any]:
    """The process and all its descendants (a worker and its scoring process); [] once it is gone."""
    import psutil

    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU of a process and its descendants, None once it is gone."""
    import psutil

    procs = _process_tree(pid)
    if not procs:
        return None
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:  # a child that ended meanwhile
            continue
        total += t.user + t.system
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, MiB (0 once it is gone)."""
    import psutil

    procs = _process_tree(pid)
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def metric_sums(text: str, name: str, by: str | None = None) -> dict[str | None, float]:
    """Sum of every sample of `name`, grouped by the label `by` (e.g. consumer lag by topic over its partitions):
    parse_metrics keeps only the first label, which would let partitions overwrite each other."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str | None, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                key = sample.labels.get(by) if by else None
                out[key] = out.get(key, 0.0) + sample.value
    return out


async def produce(settings: Settings, topic: str, records: Iterable[Payload | bytes], *, key_of: Any = None) -> int:
    """Publish payloads (or raw bytes) to `topic`; returns how many were sent (all acknowledged)."""
    producer = AIOKafkaProducer(
        **settings.kafka_client_kwargs(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        compression_type="zstd",
        max_request_size=16 * 1024 * 1024,
    )
    await producer.start()
    n = 0
    try:
        for record in records:
            if isinstance(record, Payload):
                key = key_of(record) if key_of else getattr(record, "event_id", None)
                await producer.send(topic, value=record.encode(), key=key.encode() if key else None)
            else:
                await producer.send(topic, value=record)
            n += 1
        await producer.flush()
    finally:
        await producer.stop()
    return n


def produce_sync(settings: Settings, topic: str, records: Iterable[Payload | bytes]) -> int:
    return asyncio.run(produce(settings, topic, records))


def query_scalar(settings: Settings, sql: str) -> Any:
    """One value from ClickHouse. With embedded chDB the query goes through the worker that holds the folder
    and this process never opens it (chDB keeps a folder locked by the first process that opens it)."""
    from llmwatch.db.owner import open_query_client

    client = open_query_client(settings, require_holder=True)
    try:
        result = client.query(sql)
        rows = getattr(result, "result_rows", None)
        if rows is None:
            rows = result.rows
        return rows[0][0] if rows else None
    finally:
        client.close()


def query_rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a query, through the worker that holds an embedded chDB folder (see query_scalar)."""
    from llmwatch.db.owner import open_query_client

    client = open_query_client(settings, require_holder=True)
    try:
        result = client.query(sql)
        rows = getattr(result, "result_rows", None)
        return [tuple(r) for r in (rows if rows is not None else result.rows)]
    finally:
        client.close()


def wait_for(
    predicate: Any,
    timeout_s: float,
    what: str,
    interval_s: float = 1.0,
    worker: WorkerProcess | None = None,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Poll `predicate()` until it returns a truthy value; raise with `describe()` (what state it got stuck in)
    and the worker's log tail on timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        if worker is not None and not worker.alive():
            raise AssertionError(f"worker died while waiting for {what}:\n{worker.log_tail()}")
        time.sleep(interval_s)
    tail = worker.log_tail() if worker else ""
    state = ""
    if describe is not None:
        try:
            state = describe()
        except Exception as e:
            state = f"(could not describe the state: {e})"
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})\n{state}\n{tail}")


def parse_metrics(text: str) -> dict[tuple[str, str | None, str | None], float]:
    """Prometheus text → {(name, first label, its value): value} (enough for the tests' checks)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, str | None, str | None], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label, value = next(iter(sample.labels.items()), (None, None))
            out[(sample.name, label, value)] = sample.value
    return out


def read_partitions(settings: Settings, role: str) -> dict[int, list[tuple[bytes | None, bytes]]]:
    """Every (key, value) in the topic of `role`, from the beginning, per partition in offset order."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from llmwatch.schemas import topic_registry

    spec = topic_registry(settings)[role]

    async def read() -> dict[int, list[tuple[bytes | None, bytes]]]:
        consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            out: dict[int, list[tuple[bytes | None, bytes]]] = {p: [] for p in range(spec.partitions)}
            while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
                for tp, records in (await consumer.getmany(*tps, timeout_ms=1000)).items():
                    out[tp.partition].extend((r.key, r.value) for r in records)
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())
