"""Sink agents: each stored topic → its ClickHouse table, in batches, offsets released only once written.

The scores topic fills two tables: `inference_events` from the (redacted) event the score carries, and
`eval_scores`. Raw events are never read from llm.inference.events here, so raw text cannot land when
redaction is on; dead letters (raw input) and feedback (a user's free-text comment) are stored as redacted copies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from llmwatch.schemas import (
    Alert,
    CanaryVerdict,
    DeadLetter,
    EvalScores,
    Feedback,
    Payload,
    TrafficWeights,
    WindowMetrics,
)
from llmwatch.schemas.registry import MAX_MESSAGE_BYTES

from .context import WorkerContext
from .decode import Decoded, decode
from .hold import held_offsets
from .score_producer import STORED_BY
from .sink import BatchWriter, SinkWriteError, Storable

log = logging.getLogger(__name__)
STAGE = "sink"

#: topic role → payload type stored from it
STORED: dict[str, type[Payload]] = {
    "scores": EvalScores,
    "windows": WindowMetrics,
    "verdicts": CanaryVerdict,
    "weights": TrafficWeights,
    "alerts": Alert,
    "feedback": Feedback,
    "dlq": DeadLetter,
}


def install(ctx: WorkerContext, writer: BatchWriter) -> None:
    """One agent per stored topic role. Scores that carry the STORED_BY header were stored by the worker that
    scored them (streams/score_sink.py) and are released without being stored again."""
    for role, model in STORED.items():
        _install_one(ctx, writer, role, model)


def _install_one(ctx: WorkerContext, writer: BatchWriter, role: str, model: type[Payload]) -> None:
    w = ctx.settings.worker
    skip_stored = role == "scores"

    async def sink(stream: Any) -> None:
        async for batch in stream.take_events(w.sink_batch, within=w.sink_within_s):
            await write_batch(ctx, writer, stream, role, model, batch, skip_stored=skip_stored)

    ctx.app.agent(ctx.topics[role], name=f"llmwatch.sink.{role}")(sink)


async def write_batch(
    ctx: WorkerContext,
    writer: BatchWriter,
    stream: Any,
    role: str,
    model: type[Payload],
    batch: list[Any],
    *,
    skip_stored: bool = False,
) -> None:
    agent = f"sink.{role}"
    offsets = held_offsets(stream)
    held = [offsets.hold(event) for event in batch]  # before anything can fail: nothing is acked unwritten
    if skip_stored:  # stored by the worker that scored them: released with the rest, in order
        batch = [e for e in batch if not _stored(e)]
    ctx.metrics.events.labels(agent=agent).inc(len(batch))
    if batch:
        ctx.metrics.batch_size.labels(agent=agent).observe(len(batch))
    payloads: list[Payload] = []
    for event in batch:
        result = decode(model, event.message.value, max_bytes=MAX_MESSAGE_BYTES)
        if isinstance(result, Decoded):
            payloads.append(result.payload)
        elif role != "dlq":
            await ctx.reject(event, result, STAGE)
        else:  # a DLQ record we cannot read: log it, never loop it back into the DLQ
            log.error("unreadable DLQ record %s@%s: %s", event.message.partition, event.message.offset, result)
    try:
        if role == "scores":
            events = [s.event for s in payloads if isinstance(s, EvalScores) and s.event is not None]
            await store(ctx, writer, "inference_events", events)
            await store(ctx, writer, "eval_scores", payloads)  # its row mapping leaves the embedded event out
        elif role == "dlq" and ctx.settings.eval.redact:
            await store(ctx, writer, role, await asyncio.to_thread(_redacted_dead_letters, payloads))
        elif role == "feedback" and ctx.settings.eval.redact:
            await store(ctx, writer, role, await asyncio.to_thread(_redacted_feedback, payloads))
        else:
            await store(ctx, writer, role, payloads)
    except SinkWriteError as e:
        log.warning("%s: %s; %d offsets stay uncommitted and will be replayed", agent, e, len(held))
        return
    await offsets.release(held)
    newest = max((getattr(p, "ts", None) for p in payloads if getattr(p, "ts", None) is not None), default=None)
    if newest is not None:
        ctx.metrics.sink_lag.labels(table=role).set(max(0.0, time.time() - newest.timestamp()))


def _stored(event: Any) -> bool:
    """Whether the score's rows were stored by the worker that scored it (its STORED_BY header). That worker
    released the event's offset only once they were durable, so each marked score is stored by someone: by that
    worker, or by whichever scores the event again after a crash."""
    headers = event.message.headers
    if not headers:
        return False
    keys = headers.keys() if isinstance(headers, dict) else (k for k, _ in headers)
    return STORED_BY in keys


def _redacted_dead_letters(payloads: list[Payload]) -> list[Payload]:
    """Dead letters hold raw input: the table gets redacted copies, the llm.dlq topic keeps the raw bytes."""
    from llmwatch.evaluators.pii.sinks import redact_dead_letter

    return [redact_dead_letter(p) if isinstance(p, DeadLetter) else p for p in payloads]


def _redacted_feedback(payloads: list[Payload]) -> list[Payload]:
    """Feedback comments are free text a user typed: the table gets redacted copies, the topic keeps the original."""
    from llmwatch.evaluators.pii.sinks import redact_feedback

    return [redact_feedback(p) if isinstance(p, Feedback) else p for p in payloads]


async def store(ctx: WorkerContext, writer: BatchWriter, table: str, payloads: Sequence[Storable]) -> None:
    """Write `payloads` to `table`; rows that can never be written go to the DLQ."""
    if not payloads:
        return
    unwritable = await writer.write(table, payloads)
    ctx.metrics.sink_rows.labels(table=table).inc(len(payloads) - len(unwritable))
    for p in unwritable:
        record = DeadLetter.of(
            raw=p.encode(),
            key=None,
            topic=f"clickhouse:{table}",
            partition=0,
            offset=0,
            reason="row can never be written to ClickHouse",
            error_type="sink",
            stage=STAGE,
        )
        await ctx.topics["dlq"].send(key=f"sink/{table}".encode(), value=record.encode())
        ctx.metrics.dlq.labels(stage=STAGE, error_type="sink").inc()
