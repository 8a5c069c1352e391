"""The ClickHouse sink: batches of payloads → their tables, retried until durable, never dropped.

One `BatchWriter` serves every table: a single DB thread (chDB is one process, one connection), inserts
through the row mapping of `llmwatch.db.tables` (parameterised, never SQL text), exponential back-off on
errors that can pass (connection, timeouts, too many parts, injected faults), dead-letter of rows that can
never be written (mapping or type errors). While it retries, the calling agent is blocked, so Faust stops
pulling from that topic: back-pressure instead of dropping.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmwatch.errors import LlmwatchError
from llmwatch.schemas import Payload

log = logging.getLogger(__name__)

#: Error text fragments of ClickHouse errors that retrying cannot fix.
PERMANENT = (
    "UNKNOWN_TABLE",
    "NO_SUCH_COLUMN",
    "TYPE_MISMATCH",
    "CANNOT_PARSE",
    "ILLEGAL_TYPE_OF_ARGUMENT",
    "UNKNOWN_IDENTIFIER",
    "Code: 60",
    "Code: 16.",
    "Code: 53.",
)


class SinkWriteError(LlmwatchError):
    """A batch could not be written."""


class InjectedFault(SinkWriteError):
    """Raised by the fault-injection hook (reliability tests): always retryable."""


def is_permanent(error: BaseException) -> bool:
    if isinstance(error, InjectedFault):
        return False
    if isinstance(error, (TypeError, ValueError, KeyError, AttributeError)):
        return True
    from clickhouse_connect.driver.exceptions import DataError

    if isinstance(error, DataError):  # the client could not serialise a row: retrying cannot help
        return True
    text = str(error)
    return any(p in text for p in PERMANENT)


#: the reliability tests' switch of ClickHouse faults (a file path); read by the worker, never set in production
FAULT_FILE_ENV = "LLMWATCH_TEST_FAULT_FILE"


@dataclass
class FaultInjector:
    """Makes the next `fail_next` inserts fail, and/or delays each insert (simulates a slow or down database).

    `switch`: a file another process controls while the worker runs (the reliability tests name it in
    `LLMWATCH_TEST_FAULT_FILE`; it is not a user setting). While it exists, every insert fails (content `fail`) or
    waits first (content `delay 0.5`): ClickHouse down or slow, without touching the engine. One stat() per insert
    when set; nothing at all when not.
    """

    fail_next: int = 0
    delay_s: float = 0.0
    failures: int = 0
    switch: Path | None = None

    @classmethod
    def from_environment(cls) -> FaultInjector | None:
        """The test hook `LLMWATCH_TEST_FAULT_FILE`, when a reliability test set it; None otherwise."""
        path = os.environ.get(FAULT_FILE_ENV)
        return cls(switch=Path(path)) if path else None

    def before_insert(self, table: str, rows: int) -> None:
        delay, fail = self.delay_s, self.fail_next > 0
        if self.switch is not None:
            mode = _read_switch(self.switch)
            if mode is not None:
                fail = fail or mode == "fail"
                if mode.startswith("delay"):
                    delay = max(delay, float(mode.split()[1]) if len(mode.split()) > 1 else 1.0)
        if delay:
            time.sleep(delay)
        if fail:
            self.fail_next = max(0, self.fail_next - 1)
            self.failures += 1
            raise InjectedFault(f"injected failure writing {rows} rows to {table}")


def _read_switch(path: Path) -> str | None:
    try:
        return path.read_text().strip().lower() or "fail"
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return "fail"


@dataclass(frozen=True)
class PreparedRow:
    """A row already mapped for its table (by the scoring process), with the record it came from: what a
    dead letter carries if the row can never be written."""

    values: tuple[Any, ...]
    raw: bytes

    def encode(self) -> bytes:
        return self.raw


Storable = Payload | PreparedRow


@dataclass
class SinkStats:
    rows_written: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    retries: int = 0
    dead_lettered: int = 0
    last_write_lag_s: float = 0.0


class BatchWriter:
    """Writes payload batches to ClickHouse on one dedicated thread, retrying until they are durable."""

    def __init__(
        self,
        client: Any,
        *,
        retry_max_s: float = 30.0,
        fault: FaultInjector | None = None,
        insert: Callable[[Any, Sequence[Payload]], None] | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.retry_max_s = retry_max_s
        self.fault = fault or FaultInjector()
        self.stats = SinkStats()
        self._insert = insert or _insert_payloads
        self._on_retry = on_retry  # counts each retry as it happens: an outage shows while it lasts
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self.stopping = False

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run any blocking DB call on the sink's thread (chDB must stay on one connection)."""
        return asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def write(self, table: str, payloads: Sequence[Storable]) -> list[Storable]:
        """Insert `payloads`; returns those that can never be written (for the DLQ). Raises SinkWriteError
        only when the worker is stopping before the batch became durable (its offsets stay uncommitted)."""
        if not payloads:
            return []
        delay = 0.1
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.run(self._do_insert, table, payloads)
            except Exception as e:
                if is_permanent(e):
                    return await self._isolate(table, payloads, e)
                self.stats.retries += 1
                if self._on_retry is not None:
                    self._on_retry(table)
                log.warning("insert into %s failed (attempt %d, retrying in %.1fs): %s", table, attempt, delay, e)
                if self.stopping:
                    raise SinkWriteError(f"stopping with {len(payloads)} rows for {table} unwritten") from e
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            self.stats.batches += 1
            self.stats.rows_written[table] = self.stats.rows_written.get(table, 0) + len(payloads)
            return []

    def _do_insert(self, table: str, payloads: Sequence[Storable]) -> None:
        self.fault.before_insert(table, len(payloads))
        if isinstance(payloads[0], PreparedRow):
            _insert_prepared(self.client, table, payloads)  # type: ignore[arg-type]
        else:
            self._insert(self.client, payloads)  # type: ignore[arg-type]

    async def _isolate(self, table: str, payloads: Sequence[Storable], error: BaseException) -> list[Storable]:
        """A permanent error: write rows one by one so only the ones that fail are dead-lettered."""
        if len(payloads) == 1:
            log.error("row for %s can never be written, dead-lettering it: %s", table, error)
            self.stats.dead_lettered += 1
            return list(payloads)
        bad: list[Storable] = []
        for p in payloads:
            bad.extend(await self.write(table, [p]))
        return bad


def _insert_payloads(client: Any, payloads: Sequence[Payload]) -> None:
    from llmwatch.db.tables import spec_for

    spec_for(type(payloads[0])).insert(client, payloads)


def _insert_prepared(client: Any, table: str, rows: Sequence[PreparedRow]) -> None:
    from llmwatch.db.tables import SPECS, Table

    SPECS[Table(table)].insert_rows(client, [r.values for r in rows])
