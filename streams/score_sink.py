"""The score agent's own sink (`worker.sink_scores_locally`, on by default): the rows of the events a worker
has just scored go to ClickHouse from its score agent, in batches, instead of its sink agent reading every
score back from llm.eval.scores and decoding it again.

Why: in a worker that runs score and sink, each score was fetched back from Kafka and decoded with pydantic
once more in the worker's loop only to be stored. The scoring process maps the rows (it holds the objects
anyway, see `score_records(rows=True)`); the worker only inserts them. Scores are still published to
llm.eval.scores for the window agent and every other consumer, marked with the STORED_BY header (value: this
worker's instance id). Sink agents still read that topic, since workers without a sink may score into it too, and
release the marked records without decoding or storing them again; unmarked ones they store (rows are idempotent:
a score stored twice is one row).

Offsets: an event is released once its score was sent *and* its rows are durable (the future `add` returns).
While ClickHouse is slow or down, `add` blocks once `max_pending` rows wait: the score agent stops taking
events (back-pressure) instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime

from llmwatch.db.tables import SPECS, Table

from .context import WorkerContext
from .scoring import Scored
from .sink import BatchWriter, PreparedRow
from .sink_agent import store

log = logging.getLogger(__name__)
AGENT = "sink.scores"  # the same metrics as the sink agent it replaces
_TS = SPECS[Table.EVAL_SCORES].column_names.index("ts")


class ScoreRows:
    """Batches the rows of scored events (size- or time-bounded) and writes them through the BatchWriter."""

    def __init__(
        self, ctx: WorkerContext, writer: BatchWriter, *, batch_rows: int, max_wait_s: float, max_pending: int
    ) -> None:
        self.ctx = ctx
        self.writer = writer
        self.batch_rows = batch_rows
        self.max_wait_s = max_wait_s
        self.max_pending = max(max_pending, batch_rows)
        self._events: list[PreparedRow] = []
        self._scores: list[PreparedRow] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._first_at: float | None = None
        self._unwritten = 0  # buffered + being written
        self._space = asyncio.Event()
        self._space.set()
        self._lock = asyncio.Lock()
        self._flushing: asyncio.Future[None] | None = None

    async def add(self, scored: Sequence[Scored]) -> asyncio.Future[None]:
        """Queue the rows of `scored`; the future resolves once they are durable (raises SinkWriteError if the
        worker stopped first). Waits while `max_pending` rows are unwritten."""
        while self._unwritten >= self.max_pending:
            self._space.clear()
            await self._space.wait()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not scored:
            done.set_result(None)
            return done
        for s in scored:
            assert s.rows is not None, "the scoring process was started without rows"
            self._events.append(PreparedRow(s.rows[0], s.value))
            self._scores.append(PreparedRow(s.rows[1], s.value))
        self._waiters.append(done)
        self._unwritten += len(scored)
        if self._first_at is None:
            self._first_at = time.monotonic()
        if len(self._scores) >= self.batch_rows and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.ensure_future(self.flush())
        return done

    async def flush_due(self, now: float) -> None:
        """Called by a timer: write a partial batch once its first row waited `max_wait_s`."""
        if self._first_at is not None and now - self._first_at >= self.max_wait_s:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:  # one insert at a time, in order (chDB has one connection anyway)
            while self._scores:
                events, scores, waiters = self._events, self._scores, self._waiters
                self._events, self._scores, self._waiters, self._first_at = [], [], [], None
                await self._write(events, scores, waiters)

    async def _write(
        self, events: list[PreparedRow], scores: list[PreparedRow], waiters: list[asyncio.Future[None]]
    ) -> None:
        m = self.ctx.metrics
        m.events.labels(agent=AGENT).inc(len(scores))
        m.batch_size.labels(agent=AGENT).observe(len(scores))
        try:
            await store(self.ctx, self.writer, str(Table.INFERENCE_EVENTS), events)
            await store(self.ctx, self.writer, str(Table.EVAL_SCORES), scores)
        except Exception as e:  # SinkWriteError: stopping before the rows were durable; they will be replayed
            log.warning("%s: %d rows not written (%s); their offsets stay uncommitted", AGENT, len(scores), e)
            for w in waiters:
                if not w.done():
                    w.set_exception(e)
        else:
            for w in waiters:
                if not w.done():
                    w.set_result(None)
            newest: datetime = max(r.values[_TS] for r in scores)
            m.sink_lag.labels(table="scores").set(max(0.0, time.time() - newest.timestamp()))
        finally:
            self._unwritten -= len(scores)
            self._space.set()
