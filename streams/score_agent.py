"""Score agent: llm.inference.events → (validate) → evaluators → llm.eval.scores; bad input → llm.dlq."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from llmwatch.schemas import InferenceEvent

from .context import WorkerContext
from .decode import Decoded, decode
from .hold import process_held
from .scoring import EventScorer

log = logging.getLogger(__name__)
STAGE = "score"


def install(ctx: WorkerContext, scorer: EventScorer) -> None:
    w = ctx.settings.worker

    @ctx.app.agent(ctx.topics["events"], name="llmwatch.score")
    async def score(stream: Any) -> None:
        async for batch in stream.take_events(w.score_batch, within=w.score_within_s):
            await process_held(
                stream, batch, lambda b=batch: process_batch(ctx, scorer, b), agent=STAGE, metrics=ctx.metrics
            )


async def _run(scorer: EventScorer, fn: Callable[[list[Any]], list[Any]], payloads: list[Any]) -> list[Any]:
    """Models run in a thread: ONNX/torch release the GIL, so the loop keeps consuming meanwhile. Pure-Python
    scoring (the light evaluators) runs inline: in a thread it only fought the loop for the GIL, which cost
    ~25 % more CPU per event and, in one run of two or three, twice the CPU (`llmwatch bench pipeline`)."""
    if scorer.suite.uses_model:
        return await asyncio.to_thread(fn, payloads)
    return fn(payloads)


async def process_batch(ctx: WorkerContext, scorer: EventScorer, batch: list[Any]) -> None:
    """Decode, dead-letter the bad, score the good, send. Never raises for the content of a record."""
    ctx.metrics.events.labels(agent=STAGE).inc(len(batch))
    ctx.metrics.batch_size.labels(agent=STAGE).observe(len(batch))
    good: list[tuple[Any, InferenceEvent]] = []
    for event in batch:
        result = decode(InferenceEvent, event.message.value, max_bytes=ctx.settings.worker.max_event_bytes)
        if isinstance(result, Decoded):
            good.append((event, result.payload))
        else:
            await ctx.reject(event, result, STAGE)
    if not good:
        return
    payloads = [p for _, p in good]
    started = time.perf_counter()
    try:
        scored: list[Any] = await _run(scorer, scorer.score, payloads)
    except Exception as e:
        log.warning("scoring a batch of %d failed (%s); scoring one by one", len(payloads), e)
        scored = await _run(scorer, scorer.score_one_by_one, payloads)
    ctx.metrics.scoring_seconds.observe(time.perf_counter() - started)
    scores_topic = ctx.topics["scores"]
    for (event, _), s in zip(good, scored, strict=True):
        if isinstance(s, Exception):
            await ctx.dead_letter(
                event, reason=f"evaluator failed: {type(s).__name__}: {s}"[:2000], error_type="processing", stage=STAGE
            )
            continue
        s.source_partition, s.source_offset = event.message.partition, event.message.offset
        await scores_topic.send(key=s.window_key.encode(), value=s.encode())
    ctx.metrics.emitted.labels(agent=STAGE).inc(len(good))
