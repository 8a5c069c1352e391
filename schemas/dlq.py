"""Dead letters: input that could not be processed, kept with its raw bytes and where it came from."""

from __future__ import annotations

import base64

from pydantic import Field

from .base import MAX_MESSAGE_BYTES, Payload, UTCDateTime, utcnow

#: Bytes of the source record's Kafka key a dead letter keeps (keys are ids: a longer one is cut).
DLQ_KEY_KEEP_BYTES = 16 * 1024
#: What a dead letter's record needs besides its value: the key (base64), the other fields (a reason of up to 4000
#: characters, JSON escaping each to as many as 6 bytes), the DLQ's record key and Kafka's record overhead.
DLQ_ENVELOPE_BYTES = DLQ_KEY_KEEP_BYTES * 4 // 3 + 64 * 1024
#: Bytes of the value a dead letter keeps: the most whose record (base64 is 4/3) still fits one message of llm.dlq
#: (max.message.bytes = MAX_MESSAGE_BYTES), so a value up to ~6 MiB is kept whole and can be replayed from the
#: DLQ; a larger one is dead-lettered all the same, cut (`raw_size` keeps the true size, `truncated` says so).
DLQ_KEEP_BYTES = (MAX_MESSAGE_BYTES - DLQ_ENVELOPE_BYTES) // 4 * 3


class DeadLetter(Payload):
    schema_name = "DeadLetter"

    ts: UTCDateTime = Field(default_factory=utcnow)
    source_topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key_b64: str | None = None
    raw_b64: str = Field(description="The original value, base64 (it may not be UTF-8).")
    raw_size: int = Field(ge=0)
    reason: str = Field(max_length=4000)
    error_type: str = Field(description="schema, oversized, encoding, unsupported_version, processing…")
    stage: str = Field(description="Which agent dead-lettered it.")

    @classmethod
    def of(
        cls,
        *,
        raw: bytes | None,
        key: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        reason: str,
        error_type: str,
        stage: str,
        keep_bytes: int = DLQ_KEEP_BYTES,
    ) -> DeadLetter:
        """Build a record; a value above `keep_bytes` is cut (raw_size keeps its true size, `truncated` says so),
        and a key above DLQ_KEY_KEEP_BYTES: the record fits the DLQ topic whatever came in."""
        raw = raw or b""
        return cls(
            source_topic=topic,
            partition=partition,
            offset=offset,
            key_b64=base64.b64encode(key[:DLQ_KEY_KEEP_BYTES]).decode() if key is not None else None,
            raw_b64=base64.b64encode(raw[:keep_bytes]).decode(),
            raw_size=len(raw),
            reason=reason[:4000],
            error_type=error_type,
            stage=stage,
        )

    def raw(self) -> bytes:
        return base64.b64decode(self.raw_b64)

    @property
    def truncated(self) -> bool:
        """The value holds fewer bytes than the original had: not replayable as it is."""
        kept = len(self.raw_b64) // 4 * 3 - self.raw_b64[-2:].count("=")
        return kept < self.raw_size
