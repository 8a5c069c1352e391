"""What the demo's report shows, read from ClickHouse alone (llmwatch/db/queries.py): the tables the pipeline
wrote, for one deployment and time span, so the report shows what was stored, not what the demo believes happened."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

from llmwatch.db import queries


@dataclass(frozen=True)
class MoveRow:
    seq: int
    t_ms: int
    weights: dict[str, float]
    state: str
    canary_version: str | None
    baseline_version: str
    reason: str
    verdict_id: str | None
    command_id: str | None


@dataclass(frozen=True)
class WindowRow:
    t_ms: int
    model_version: str
    count: int
    ttft_p95_ms: float | None
    error_rate: float | None
    toxicity_rate: float | None
    pii_leak_rate: float | None
    injection_rate: float | None
    injection_success_rate: float | None
    drift_score: float | None


@dataclass(frozen=True)
class VerdictRec:
    t_ms: int
    verdict_id: str
    canary_version: str
    baseline_version: str
    result: str
    reason: str
    failed_metrics: tuple[str, ...]
    canary_n: int
    baseline_n: int


@dataclass(frozen=True)
class AlertRec:
    t_ms: int
    rule: str
    severity: str
    status: str
    summary: str
    verdict_id: str | None
    source: str


@dataclass
class ReportData:
    deployment: str
    since: dt.datetime
    until: dt.datetime
    moves: list[MoveRow] = field(default_factory=list)
    windows: list[WindowRow] = field(default_factory=list)
    verdicts: list[VerdictRec] = field(default_factory=list)
    alerts: list[AlertRec] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)

    @property
    def t0_ms(self) -> int:
        return int(self.since.timestamp() * 1000)

    def rel(self, t_ms: int) -> float:
        """Seconds since the start of the span."""
        return (t_ms - self.t0_ms) / 1000.0


def _f(v: Any) -> float | None:
    if v is None:
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def load_report_data(client: Any, deployment: str, since: dt.datetime, until: dt.datetime) -> ReportData:
    """Everything the report shows about `deployment` between `since` and `until` (UTC)."""
    data = ReportData(deployment, since, until)
    for r in queries.rollout_moves(client, deployment, since, until):
        weights = {str(k): float(v) for k, v in json.loads(r[2]).items()}
        data.moves.append(MoveRow(int(r[0]), int(r[1]), weights, str(r[3]), r[4], str(r[5]), str(r[6]), r[7], r[8]))
    for r in queries.window_rows(client, deployment, since, until):
        data.windows.append(WindowRow(int(r[0]), str(r[1]), int(r[2]), *(_f(v) for v in r[3:10])))
    for r in queries.verdict_rows(client, deployment, since, until):
        data.verdicts.append(
            VerdictRec(
                int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), tuple(r[6]), int(r[7]), int(r[8])
            )
        )
    for r in queries.alert_rows(client, deployment, since, until):
        data.alerts.append(AlertRec(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), r[5], str(r[6] or "")))
    for r in queries.events_by_version(client, deployment, since, until):
        data.events[str(r[0])] = int(r[1])
    return data
