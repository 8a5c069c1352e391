"""Alerts raised from verdicts and window thresholds (Alertmanager-compatible when sent)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from .base import Payload, UTCDateTime, utcnow


class Alert(Payload):
    schema_name = "Alert"

    alert_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    ts: UTCDateTime = Field(default_factory=utcnow)
    deployment: str
    rule: str = Field(description="Stable rule name, e.g. 'canary_failed', 'ttft_p95_high'.")
    severity: Literal["info", "warning", "critical"] = "warning"
    status: Literal["firing", "resolved"] = "firing"
    fingerprint: str = Field(description="Dedup key: hash of (deployment, rule).")
    summary: str
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    verdict_id: str | None = None
    starts_at: UTCDateTime = Field(default_factory=utcnow)
    ends_at: UTCDateTime | None = None
