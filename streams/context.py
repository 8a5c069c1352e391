"""What the agents of one role share inside a worker process: settings, the role's app (its consumer group) and
its topics, the ClickHouse writer, metrics (one registry for the whole process), and the dead-letter helper."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import faust

from llmwatch.schemas import DeadLetter
from llmwatch.settings import Settings

from .decode import Rejected
from .metrics import WorkerMetrics
from .sink import BatchWriter

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    settings: Settings
    app: faust.App
    topics: dict[str, faust.TopicT]
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    writer: BatchWriter | None = None
    #: what the worker closes on shutdown (the query endpoint, the scoring process, followers); one stack shared
    #: by the contexts of one worker process (one per consumer group)
    exit_stack: ExitStack = field(default_factory=ExitStack)
    instance_id: str = ""  # this worker's name (streams/worker.py: instance_id)

    async def dead_letter(self, event: Any, *, reason: str, error_type: str, stage: str) -> None:
        """Send the raw record to the DLQ with where it came from; never raises for the record's content. The
        record keeps as many raw bytes as fit the DLQ topic (schemas.dlq.DLQ_KEEP_BYTES): whole up to ~6 MiB."""
        msg = event.message
        record = DeadLetter.of(
            raw=msg.value,
            key=msg.key,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            reason=reason,
            error_type=error_type,
            stage=stage,
        )
        key = f"{msg.topic}/{msg.partition}/{msg.offset}".encode()
        await self.topics["dlq"].send(key=key, value=record.encode())
        self.metrics.dlq.labels(stage=stage, error_type=error_type).inc()
        log.info(
            "dead-lettered %s/%s@%s (%s): %s", msg.topic, msg.partition, msg.offset, error_type, self._loggable(reason)
        )

    def _loggable(self, text: str) -> str:
        """`text` fit for a log line: a reason may echo the input (a field name that is an email, a bad value),
        and logs are not where raw PII may land."""
        if not self.settings.eval.redact:
            return text
        from llmwatch.evaluators.pii import redact

        try:
            return redact(text)
        except Exception as e:  # never fail a dead letter over its log line
            return f"(reason withheld: redaction failed with {type(e).__name__})"

    async def reject(self, event: Any, rejected: Rejected, stage: str) -> None:
        await self.dead_letter(event, reason=rejected.reason, error_type=rejected.error_type, stage=stage)
