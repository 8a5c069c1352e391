"""Turning raw Kafka values into payloads, or into the reason they can't be (for the DLQ).

Every check that can reject input lives here, in one pure function, so the score agent and the fuzz
tests see exactly the same behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from llmwatch.schemas import Payload, SchemaError

P = TypeVar("P", bound=Payload)

#: Reasons are logged and stored with every dead letter; a validator that echoes a huge input value must not
#: turn them into copies of the payload.
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class Rejected:
    error_type: str  # empty | oversized | encoding | schema | unsupported_version
    reason: str


@dataclass(frozen=True)
class Decoded(Generic[P]):
    payload: P


def decode(model: type[P], raw: bytes | str | None, *, max_bytes: int) -> Decoded[P] | Rejected:
    """Decode `raw` as `model`, never raising for bad input."""
    if raw is None or len(raw) == 0:
        return Rejected("empty", "empty value")
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:
        return Rejected("oversized", f"{len(raw)} bytes is over the {max_bytes}-byte limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Rejected("encoding", f"not valid UTF-8 at byte {e.start}")
    if "\x00" in text:
        return Rejected("encoding", "contains a NUL character")
    try:
        return Decoded(model.decode(text))
    except SchemaError as e:
        kind = "unsupported_version" if "major version" in e.reason else "schema"
        return Rejected(kind, _bounded(str(e)))
    except RecursionError:
        return Rejected("schema", f"{model.schema_name}: nested too deeply")
    except (ValueError, TypeError, OverflowError) as e:  # defensive: anything pydantic lets through
        return Rejected("schema", _bounded(f"{model.schema_name}: {type(e).__name__}: {e}"))


def _bounded(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"
