"""Score agent: llm.inference.events → (validate) → evaluators → llm.eval.scores; bad input → llm.dlq.

The agent only moves records: decoding and scoring happen in the scoring process (streams/score_process.py)
or, with it off, in the worker (`InlineScoring`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from .context import WorkerContext
from .decode import Rejected
from .hold import held_offsets, release_after
from .scoring import EventScorer, Outcome, Record, Scored, score_records

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

    def __init__(self, scorer: EventScorer, *, max_bytes: int) -> None:
        self.scorer = scorer
        self.max_bytes = max_bytes

    def wait_ready(self) -> None:
        """Ready at once: the suite was built and warmed up in the constructor's caller."""

    async def score(self, records: Sequence[Record]) -> list[Outcome]:
        if self.scorer.suite.uses_model:
            return await asyncio.to_thread(score_records, self.scorer, records, max_bytes=self.max_bytes)
        return score_records(self.scorer, records, max_bytes=self.max_bytes)


def install(ctx: WorkerContext, scoring: Scoring) -> None:
    w = ctx.settings.worker

    @ctx.app.agent(ctx.topics["events"], name="llmwatch.score")
    async def score(stream: Any) -> None:
        """Two batches in flight: the next one scores while this one is sent. Sends stay in batch order, and
        with a scoring process the loop's other work (windows, the sink) no longer leaves it waiting."""
        offsets = held_offsets(stream)
        in_flight: deque[asyncio.Future[bool]] = deque()  # sends in batch order, each after the one before
        try:
            async for batch in stream.take_events(w.score_batch, within=w.score_within_s):
                held = [offsets.hold(e) for e in batch]  # at once: nothing is acked before it was sent
                scored = asyncio.ensure_future(score_batch(ctx, scoring, batch))
                previous = in_flight[-1] if in_flight else None
                in_flight.append(
                    asyncio.ensure_future(
                        release_after(
                            offsets,
                            held,
                            lambda b=batch, s=scored, p=previous: send_outcomes(ctx, b, s, after=p),
                            agent=STAGE,
                            metrics=ctx.metrics,
                        )
                    )
                )
                while in_flight and (len(in_flight) >= w.score_in_flight or in_flight[0].done()):
                    await in_flight.popleft()
        finally:
            for sending in in_flight:
                if not sending.done():
                    sending.cancel()  # its offsets stay held: replayed after a restart


async def score_batch(ctx: WorkerContext, scoring: Scoring, batch: list[Any]) -> list[Outcome]:
    ctx.metrics.events.labels(agent=STAGE).inc(len(batch))
    ctx.metrics.batch_size.labels(agent=STAGE).observe(len(batch))
    records = [Record(e.message.value, e.message.partition, e.message.offset) for e in batch]
    started = time.perf_counter()
    outcomes = await scoring.score(records)
    ctx.metrics.scoring_seconds.observe(time.perf_counter() - started)
    return outcomes


async def send_outcomes(
    ctx: WorkerContext, batch: list[Any], scored: Awaitable[list[Outcome]], *, after: Awaitable[Any] | None = None
) -> None:
    """Send one batch's outcomes once the batch before it (`after`) was sent, so scores keep their order."""
    outcomes = await scored
    if after is not None:
        await after
    scores_topic = ctx.topics["scores"]
    sent = 0
    for event, outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, Scored):
            await scores_topic.send(key=outcome.key, value=outcome.value)
            sent += 1
        elif isinstance(outcome, Rejected):
            await ctx.reject(event, outcome, STAGE)
        else:
            await ctx.dead_letter(event, reason=outcome.reason, error_type="processing", stage=STAGE)
    ctx.metrics.emitted.labels(agent=STAGE).inc(sent)
