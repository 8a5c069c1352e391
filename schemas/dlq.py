"""Dead letters: input that could not be processed, kept with its raw bytes and where it came from."""

from __future__ import annotations

import base64

from pydantic import Field

from .base import Payload, UTCDateTime, utcnow


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
        keep_bytes: int = 1_000_000,
    ) -> DeadLetter:
        """Build a record; raw values above `keep_bytes` are truncated (raw_size keeps the true size)."""
        raw = raw or b""
        return cls(
            source_topic=topic,
            partition=partition,
            offset=offset,
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            raw_b64=base64.b64encode(raw[:keep_bytes]).decode(),
            raw_size=len(raw),
            reason=reason[:4000],
            error_type=error_type,
            stage=stage,
        )

    def raw(self) -> bytes:
        return base64.b64decode(self.raw_b64)
