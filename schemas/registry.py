"""The topic registry: every topic llmwatch reads or writes, its key, partitioning and schema.

Topic names come from settings (so a shared cluster can prefix them); everything else is fixed
here, in one place, so producers, agents, `kafka up` and the docs agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .alerts import Alert
from .base import MAX_MESSAGE_BYTES, Payload  # every topic's max.message.bytes (in base: DeadLetter needs it too)
from .canary import CanaryVerdict, ControlCommand, TrafficWeights
from .dlq import DeadLetter
from .events import Feedback, InferenceEvent
from .scores import EvalScores
from .windows import WindowMetrics

if TYPE_CHECKING:
    from llmwatch.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    role: str  # attribute name in settings.topics
    name: str
    key: str  # how records are keyed
    schema: type[Payload]
    partitions: int
    compacted: bool = False
    retention_ms: int | None = None
    description: str = ""

    def config(self) -> dict[str, str]:
        """Topic-level configs for creation."""
        cfg = {"cleanup.policy": "compact" if self.compacted else "delete", "max.message.bytes": str(MAX_MESSAGE_BYTES)}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


_WEEK_MS = 7 * 24 * 3600 * 1000

# role, key, schema, compacted, single-partition, retention, description
_TOPICS: list[tuple[str, str, type[Payload], bool, bool, int | None, str]] = [
    (
        "events",
        "event_id",
        InferenceEvent,
        False,
        False,
        _WEEK_MS,
        "every prompt/response with its latencies",
    ),
    ("scores", "deployment/model_version", EvalScores, False, False, _WEEK_MS, "per-event evaluation scores"),
    ("windows", "deployment/model_version", WindowMetrics, False, False, _WEEK_MS, "windowed aggregates"),
    ("verdicts", "deployment", CanaryVerdict, False, False, _WEEK_MS, "canary judge verdicts"),
    ("weights", "deployment", TrafficWeights, True, True, None, "traffic split; compacted, last value wins"),
    ("alerts", "deployment", Alert, False, False, _WEEK_MS, "alerts raised by the alerter"),
    ("feedback", "event_id", Feedback, False, False, _WEEK_MS, "user feedback linked to events"),
    ("control", "deployment", ControlCommand, False, True, _WEEK_MS, "operator commands to the controller"),
    ("dlq", "source topic/partition/offset", DeadLetter, False, False, 4 * _WEEK_MS, "dead letters"),
]


def topic_registry(settings: Settings) -> dict[str, TopicSpec]:
    """role → TopicSpec, with names and partition counts from settings."""
    out: dict[str, TopicSpec] = {}
    for role, key, schema, compacted, single, retention, desc in _TOPICS:
        out[role] = TopicSpec(
            role=role,
            name=getattr(settings.topics, role),
            key=key,
            schema=schema,
            partitions=1 if single else settings.partitions,
            compacted=compacted,
            retention_ms=retention,
            description=desc,
        )
    return out


PAYLOADS: tuple[type[Payload], ...] = (
    InferenceEvent,
    Feedback,
    EvalScores,
    WindowMetrics,
    CanaryVerdict,
    TrafficWeights,
    ControlCommand,
    Alert,
    DeadLetter,
)
