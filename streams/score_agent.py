"""Score agent: llm.inference.events → (validate) → evaluators → llm.eval.scores; bad input → llm.dlq.

The agent only moves records: decoding and scoring happen in the scoring process (streams/score_process.py)
or, with it off, in the worker (`InlineScoring`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .context import WorkerContext
from .decode import Rejected
from .hold import held_offsets, release_after
from .score_producer import ScoreProducer
from .scoring import EventScorer, Failed, Outcome, Record, Scored, score_records

if TYPE_CHECKING:
    from .score_sink import ScoreRows

log = logging.getLogger(__name__)
STAGE = "score"


class Scoring(Protocol):
    async def score(self, records: Sequence[Record]) -> list[Outcome]: ...

    def wait_ready(self) -> None:
        """Block until scoring can start (the worker calls it once it is built)."""


class InlineScoring:
    """Scoring in the worker itself (`LLMWATCH_WORKER__SCORE_PROCESS=false`). Models run in a thread: ONNX and
    torch release the GIL, so the loop keeps consuming meanwhile. Pure-Python scoring (the light evaluators)
    runs inline: in a thread it only fought the loop for the GIL, which cost ~25 % more CPU per event."""

    def __init__(self, scorer: EventScorer, *, max_bytes: int, rows: bool = False) -> None:
        self.scorer = scorer
        self.max_bytes = max_bytes
        self.rows = rows

    def wait_ready(self) -> None:
        """Ready at once: the suite was built and warmed up in the constructor's caller."""

    async def score(self, records: Sequence[Record]) -> list[Outcome]:
        if self.scorer.suite.uses_model:
            return await asyncio.to_thread(
                score_records, self.scorer, records, max_bytes=self.max_bytes, rows=self.rows
            )
        return score_records(self.scorer, records, max_bytes=self.max_bytes, rows=self.rows)


def install(
    ctx: WorkerContext, scoring: Scoring, rows: ScoreRows | None = None, *, stored_by: str | None = None
) -> None:
    """`rows`: this worker's sink, when the score agent stores what it scores (streams/score_sink.py); its scores
    then carry the header STORED_BY = `stored_by`, so this worker's sink agent skips them on llm.eval.scores."""
    w = ctx.settings.worker

    @ctx.app.agent(ctx.topics["events"], name="llmwatch.score")
    async def score(stream: Any) -> None:
        """Up to `score_in_flight` batches at once: the next ones score while this one is sent. Sends stay in
        batch order; an event is released once its batch was sent (and, with `rows`, stored)."""
        offsets = held_offsets(stream)
        in_flight: deque[asyncio.Future[Any]] = deque()  # sends in batch order, each after the one before
        releasing: set[asyncio.Future[bool]] = set()
        producer = ScoreProducer(ctx.settings, ctx.settings.topics.scores, stored_by=stored_by)
        try:
            async for batch in stream.take_events(w.score_batch, within=w.score_within_s):
                held = [offsets.hold(e) for e in batch]  # at once: nothing is acked before it was sent
                scored = asyncio.ensure_future(score_batch(ctx, scoring, batch))
                previous = in_flight[-1] if in_flight else None
                sent = asyncio.ensure_future(send_outcomes(ctx, producer, batch, scored, after=previous, rows=rows))
                in_flight.append(sent)
                release = asyncio.ensure_future(
                    release_after(offsets, held, lambda s=sent: _stored(s), agent=STAGE, metrics=ctx.metrics)
                )
                releasing.add(release)
                release.add_done_callback(releasing.discard)
                while in_flight and (len(in_flight) >= w.score_in_flight or in_flight[0].done()):
                    with contextlib.suppress(Exception):  # a failed send was logged; its offsets stay held
                        await in_flight.popleft()
        finally:
            for task in (*in_flight, *releasing):
                if not task.done():
                    task.cancel()  # its offsets stay held: replayed after a restart
            with contextlib.suppress(Exception):
                await producer.stop()

    if rows is not None:

        @ctx.app.timer(interval=max(0.05, w.sink_within_s / 2), name="llmwatch.score.store")
        async def store_partial_batches() -> None:
            await rows.flush_due(time.monotonic())


async def _stored(sent: Awaitable[asyncio.Future[None] | None]) -> None:
    stored = await sent
    if stored is not None:
        await stored


async def score_batch(ctx: WorkerContext, scoring: Scoring, batch: list[Any]) -> list[Outcome]:
    ctx.metrics.events.labels(agent=STAGE).inc(len(batch))
    ctx.metrics.batch_size.labels(agent=STAGE).observe(len(batch))
    records = [Record(e.message.value, e.message.partition, e.message.offset) for e in batch]
    started = time.perf_counter()
    outcomes = await scoring.score(records)
    ctx.metrics.scoring_seconds.observe(time.perf_counter() - started)
    return outcomes


async def send_outcomes(
    ctx: WorkerContext,
    producer: ScoreProducer,
    batch: list[Any],
    scored: Awaitable[list[Outcome]],
    *,
    after: Awaitable[Any] | None = None,
    rows: ScoreRows | None = None,
) -> asyncio.Future[None] | None:
    """Send one batch's outcomes once the batch before it (`after`) was sent, so scores keep their order; return
    once the broker has them. With `rows`, queue the scored rows for storage and return the future of their
    being durable."""
    outcomes = await scored
    if after is not None:
        with contextlib.suppress(Exception):  # that batch failed and stays held; this one still goes out
            await after
    scored_ones = [o for o in outcomes if isinstance(o, Scored)]
    await producer.send([(o.key, o.value) for o in scored_ones])
    for event, outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, Rejected):
            await ctx.reject(event, outcome, STAGE)
        elif isinstance(outcome, Failed):
            await ctx.dead_letter(event, reason=outcome.reason, error_type="processing", stage=STAGE)
    sent = len(scored_ones)
    ctx.metrics.emitted.labels(agent=STAGE).inc(sent)
    if rows is None:
        return None
    return await rows.add(scored_ones)
