"""What every topic payload shares: a schema version, tolerant reading and named errors.

Compatibility rule: a reader accepts any payload of the same major version. Fields that a
newer minor version added are ignored (not an error); a missing required field is an error
that names the field; another major version is refused so it can be dead-lettered.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_MAJOR = 1
#: 1.1: InferenceEvent gained the GenAI conventions' structured fields (schemas/events.py); nothing was removed.
SCHEMA_VERSION = f"{SCHEMA_MAJOR}.1"
#: Largest record llmwatch writes (a score carrying a large redacted event): every topic's max.message.bytes
#: (schemas/registry.py), and the producers' bound.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


class SchemaError(ValueError):
    """A payload that does not fit its schema; `reason` is short enough to store with a DLQ record."""

    def __init__(self, schema: str, reason: str) -> None:
        super().__init__(f"{schema}: {reason}")
        self.schema = schema
        self.reason = reason


def utcnow() -> datetime:
    return datetime.now(UTC)


def _describe(error: ValidationError, limit: int = 3) -> str:
    parts = []
    for e in error.errors()[:limit]:
        loc = ".".join(str(p) for p in e["loc"]) or "(payload)"
        parts.append(f"field '{loc}': {e['msg']}")
    more = error.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


class Payload(BaseModel):
    """Base of every message on a llmwatch topic."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    #: The name consumers use in logs and DLQ reasons; subclasses set it.
    schema_name: ClassVar[str] = "Payload"

    schema_version: str = Field(SCHEMA_VERSION, description="major.minor; readers accept any minor of their major.")

    @field_validator("schema_version")
    @classmethod
    def _same_major(cls, v: str) -> str:
        major, _, _minor = v.partition(".")
        if not major.isdigit():
            raise ValueError(f"schema_version must look like '1.0', got {v!r}")
        if int(major) != SCHEMA_MAJOR:
            raise ValueError(f"unsupported schema major version {major} (this reader knows {SCHEMA_MAJOR})")
        return v

    @classmethod
    def decode(cls, raw: bytes | str | dict[str, Any]) -> Self:
        """Parse bytes, text or a dict; raise SchemaError naming what is wrong."""
        try:
            if isinstance(raw, dict):
                return cls.model_validate(raw)
            return cls.model_validate_json(raw)
        except ValidationError as e:
            if any(err["type"] == "json_invalid" for err in e.errors()):
                raise SchemaError(cls.schema_name, f"not valid JSON: {e.errors()[0]['msg']}") from e
            raise SchemaError(cls.schema_name, _describe(e)) from e
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SchemaError(cls.schema_name, f"not valid UTF-8 JSON: {e}") from e

    def encode(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()


def _to_utc(v: datetime) -> datetime:
    # Naive timestamps are read as UTC (the contract says every timestamp is UTC); aware ones
    # are converted, so downstream code never compares mixed zones.
    if v.tzinfo is None:
        return v.replace(tzinfo=UTC)
    try:
        return v.astimezone(UTC)
    except OverflowError as e:  # 0001-01-01T00:00+05:00: a ValueError, so the error names the field
        raise ValueError(f"{v.isoformat()} is out of range in UTC") from e


#: A datetime that is always timezone-aware UTC once validated.
UTCDateTime = Annotated[datetime, AfterValidator(_to_utc)]
