"""Pydantic models of every topic payload, and the topic registry."""

from .alerts import Alert
from .base import SCHEMA_VERSION, Payload, SchemaError, UTCDateTime, utcnow
from .canary import CanaryVerdict, ControlCommand, ExperimentSpec, MetricVerdict, TrafficWeights
from .dlq import DeadLetter
from .events import SYSTEM_CHARS_ATTR, Feedback, InferenceEvent, PiiFindings
from .registry import PAYLOADS, TopicSpec, topic_registry
from .scores import EvalScores
from .windows import WindowMetrics

__all__ = [
    "PAYLOADS",
    "SCHEMA_VERSION",
    "SYSTEM_CHARS_ATTR",
    "Alert",
    "CanaryVerdict",
    "ControlCommand",
    "DeadLetter",
    "EvalScores",
    "ExperimentSpec",
    "Feedback",
    "InferenceEvent",
    "MetricVerdict",
    "Payload",
    "PiiFindings",
    "SchemaError",
    "TopicSpec",
    "TrafficWeights",
    "UTCDateTime",
    "WindowMetrics",
    "topic_registry",
    "utcnow",
]
