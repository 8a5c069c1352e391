"""What the ingest routes do with a body: OTLP traces and logs, batches of events and feedback → the publisher.

Nothing here knows HTTP (the routes map its values to responses, like the gateway's serving). Every route publishes
through the one EventPublisher, all of a batch or none of it: when the publisher's buffer cannot take the whole
batch, the answer is a 503 with Retry-After and nothing is enqueued, so a client that retries (OTLP exporters do)
loses nothing and duplicates nothing (span events have stable ids, and every table dedups on event_id anyway).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmwatch.schemas import Feedback, InferenceEvent, SchemaError
from llmwatch.settings import GatewaySettings

from . import otlp
from .gateway_metrics import GatewayMetrics
from .protocol import ErrorResponse

log = logging.getLogger(__name__)

Signal = Literal["traces", "logs", "events", "feedback"]
Publishable = InferenceEvent | Feedback
#: batches refused for room in the buffer: the client should retry after this long
RETRY_AFTER_S = 1


@dataclass(frozen=True)
class Reply:
    """A successful answer: the body and its media type."""

    body: bytes
    media_type: str


class Ingest:
    """Turns ingest bodies into published events; `publish` and `room` are the publisher's (room: free slots)."""

    def __init__(
        self,
        settings: GatewaySettings,
        publish: Callable[[Publishable], bool],
        room: Callable[[], int],
        metrics: GatewayMetrics | None = None,
        *,
        source: str = "otlp",
    ) -> None:
        self._publish = publish
        self._room = room
        self._metrics = metrics or GatewayMetrics()
        self._salt = settings.user_id_salt.get_secret_value().encode()[:64]
        self._limit = settings.max_body_bytes
        self._source = source

    def hash_id(self, value: str | None) -> str | None:
        """The gateway's keyed hash: OTLP spans may carry raw user and session ids, events never do."""
        if not value:
            return None
        return hashlib.blake2b(value.encode(), key=self._salt, digest_size=16).hexdigest()

    # --- OTLP -------------------------------------------------------------------------------------

    def traces(self, body: bytes, content_type: str | None, encoding: str | None) -> Reply | ErrorResponse:
        return self._export(
            "traces", body, content_type, encoding, otlp.decode_traces, otlp.span_records,
            ExportTraceServiceResponse(), "rejected_spans",
        )  # fmt: skip

    def logs(self, body: bytes, content_type: str | None, encoding: str | None) -> Reply | ErrorResponse:
        return self._export(
            "logs", body, content_type, encoding, otlp.decode_logs, otlp.log_records,
            ExportLogsServiceResponse(), "rejected_log_records",
        )  # fmt: skip

    def _export(
        self,
        signal: Signal,
        body: bytes,
        content_type: str | None,
        encoding: str | None,
        decode: Callable[[bytes, str | None], Any],
        records: Callable[[Any], Any],
        response: Any,
        rejected_field: str,
    ) -> Reply | ErrorResponse:
        """One OTLP export request: decode, map, publish whole or refuse, answer with its partial success
        (`rejected_field`: what the signal's OTLP response calls the rejected count)."""
        try:
            request = decode(otlp.decompress(body, encoding, self._limit), content_type)
        except otlp.OtlpError as e:
            return self._bad(signal, str(e))
        mapped = otlp.map_records(records(request), hash_id=self.hash_id, source=self._source)
        refused = self._enqueue(signal, mapped.events)
        if refused is not None:
            return refused
        self._count(signal, mapped)
        if mapped.rejected:
            setattr(response.partial_success, rejected_field, mapped.rejected)
            response.partial_success.error_message = mapped.first_error
        return Reply(otlp.encode_response(response, content_type or ""), otlp.media_type(content_type))

    # --- llmwatch's own JSON ------------------------------------------------------------------------

    def events(self, body: bytes) -> Reply | ErrorResponse:
        """A JSON array of InferenceEvents (or {"events": [...]}); all valid, or a 400 naming the first bad one."""
        return self._batch("events", body, InferenceEvent)

    def feedback(self, body: bytes) -> Reply | ErrorResponse:
        """One Feedback object, an array of them, or {"feedback": [...]}."""
        return self._batch("feedback", body, Feedback)

    def _batch(
        self, signal: Signal, body: bytes, model: type[InferenceEvent] | type[Feedback]
    ) -> Reply | ErrorResponse:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            return self._bad(signal, f"The request body is not valid JSON: {e}")
        items: Any = data.get(signal, data) if isinstance(data, dict) else data
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list) or not items:
            return self._bad(signal, f"Expected a JSON array of {model.schema_name} objects (or {{'{signal}': [...]}})")
        payloads: list[Publishable] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                return self._bad(
                    signal, f"{signal}[{i}]: expected an object, got {type(item).__name__}", f"{signal}[{i}]"
                )
            try:
                payloads.append(model.decode(item))
            except SchemaError as e:
                return self._bad(signal, f"{signal}[{i}]: {e}", f"{signal}[{i}]")
        refused = self._enqueue(signal, payloads)
        if refused is not None:
            return refused
        self._metrics.ingested(signal, "accepted", len(payloads))
        ids = [p.feedback_id if isinstance(p, Feedback) else p.event_id for p in payloads]
        return Reply(json.dumps({"accepted": len(payloads), "ids": ids}).encode(), otlp.JSON)

    # --- shared -------------------------------------------------------------------------------------

    def _enqueue(self, signal: Signal, payloads: Sequence[Publishable]) -> ErrorResponse | None:
        """Publish every payload, or none (503) when the buffer lacks room for all of them."""
        if not payloads:
            return None
        if self._room() < len(payloads):
            self._metrics.ingested(signal, "busy", len(payloads))
            return _busy(len(payloads))
        for i, payload in enumerate(payloads):
            if not self._publish(payload):  # only when the publisher closed under us: the client retries the batch
                log.warning("ingest: publisher refused %s %d of %d", signal, i + 1, len(payloads))
                self._metrics.ingested(signal, "busy", len(payloads) - i)
                return _busy(len(payloads))
        return None

    def _count(self, signal: Signal, mapped: otlp.Mapped) -> None:
        self._metrics.ingested(signal, "accepted", len(mapped.events))
        self._metrics.ingested(signal, "not_llm", mapped.not_llm)
        self._metrics.ingested(signal, "rejected", mapped.rejected)

    def _bad(self, signal: Signal, message: str, param: str | None = None) -> ErrorResponse:
        self._metrics.ingested(signal, "invalid", 1)
        return ErrorResponse.of(400, message[:2000], param=param)


def _busy(n: int) -> ErrorResponse:
    return ErrorResponse.of(
        503,
        f"The event buffer has no room for {n} more events now (Kafka slow or unreachable): retry later.",
        type="service_unavailable",
        code="busy",
    )
