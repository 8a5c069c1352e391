"""The demo's live terminal view: what ClickHouse says right now (through the worker that holds it), drawn with
rich once a second. Reading (`read_live`) and drawing (`render`) are separate so the drawing is tested on data."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from llmwatch.db import queries
from llmwatch.db.owner import open_query_client
from llmwatch.errors import LlmwatchError
from llmwatch.evaluators.metrics import Thresholds

from .story import DEPLOYMENT, VERSIONS
from .traffic import TrafficDriver

log = logging.getLogger(__name__)

#: Seconds of scores the per-version figures cover (fresher than closed windows).
LIVE_SPAN_S = 20


@dataclass
class VersionLive:
    n: int = 0
    ttft_p95_ms: float | None = None
    error_rate: float | None = None
    toxicity_rate: float | None = None
    pii_leak_rate: float | None = None
    injection_rate: float | None = None
    injection_success_rate: float | None = None


@dataclass
class LiveData:
    weights: dict[str, float] = field(default_factory=dict)
    state: str = "idle"
    reason: str = ""
    versions: dict[str, VersionLive] = field(default_factory=dict)
    verdicts: list[tuple[str, str, str, str]] = field(default_factory=list)  # time, canary, result, reason
    alerts: list[tuple[str, str, str, str]] = field(default_factory=list)  # time, rule, severity, summary
    events: int = 0
    error: str | None = None


@dataclass
class Progress:
    """What the demo process itself knows: story time, phase, traffic and the narration."""

    t: float
    duration_s: float
    phase: str
    traffic: str
    sent: int
    ok: int
    failed: int
    log: Sequence[tuple[float, str]] = ()


def _hms(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%H:%M:%S")
    text = str(value or "")
    return text[11:19] if len(text) >= 19 else text


def _map(value: Any) -> dict[str, float]:
    if isinstance(value, str):
        value = json.loads(value)
    return {str(k): float(v) for k, v in dict(value or {}).items()}


def read_live(client: Any, since: dt.datetime, thresholds: Thresholds) -> LiveData:
    """The view's data for this run (rows from `since` on), in a handful of small queries."""
    data = LiveData()
    try:
        latest = queries.latest_weights(client, DEPLOYMENT, since)
        if latest is not None:
            data.weights, data.state, data.reason = _map(latest[0]), str(latest[1]), str(latest[2])
        for row in queries.recent_by_version(client, DEPLOYMENT, since, LIVE_SPAN_S, thresholds):
            data.versions[str(row[0])] = VersionLive(int(row[1]), *(None if v is None else float(v) for v in row[2:]))
        data.verdicts = [
            (_hms(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in queries.recent_verdicts(client, DEPLOYMENT, since, 5)
        ]
        data.alerts = [
            (_hms(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in queries.recent_alerts(client, DEPLOYMENT, since, 4)
        ]
        data.events = queries.event_count(client, DEPLOYMENT, since)
    except Exception as e:  # the view must never stop the story; say what went wrong instead
        data.error = f"{type(e).__name__}: {e}"[:200]
        log.debug("live view query failed: %s", e)
    return data


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f} ms"


_RESULT_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}


def render(progress: Progress, live: LiveData) -> RenderableType:
    """One frame: header, per-version table, verdicts, alerts, narration."""
    head = Text.assemble(
        ("llmwatch demo ", "bold"),
        f"{progress.t:5.0f}/{progress.duration_s:.0f} s  ",
        (progress.phase, "cyan"),
        f"  traffic: {progress.traffic}  ",
        f"requests {progress.sent} sent, {progress.ok} ok, {progress.failed} failed; {live.events} events stored",
    )
    table = Table(title=f"deployment {DEPLOYMENT}: {live.state}", title_justify="left", expand=True)
    for col in (
        "version",
        "weight",
        f"n ({LIVE_SPAN_S} s)",
        "p95 TTFT",
        "errors",
        "toxic",
        "PII leak",
        "injection",
        "inj. success",
    ):
        table.add_column(col, justify="left" if col == "version" else "right")
    for v in sorted(set(VERSIONS) | set(live.weights) | set(live.versions)):
        m = live.versions.get(v, VersionLive())
        weight = live.weights.get(v)
        table.add_row(
            v,
            "–" if weight is None else f"{weight:.0%}",
            str(m.n),
            _ms(m.ttft_p95_ms),
            _pct(m.error_rate),
            _pct(m.toxicity_rate),
            _pct(m.pii_leak_rate),
            _pct(m.injection_rate),
            _pct(m.injection_success_rate),
        )
    verdicts = Table(title="latest verdicts", title_justify="left", expand=True, show_header=False)
    for _ in range(3):
        verdicts.add_column()
    verdicts.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
    for ts, canary, result, reason in live.verdicts:
        verdicts.add_row(ts, canary, Text(result, style=_RESULT_STYLE.get(result, "")), reason)
    alerts = Text("\n".join(f"{ts} {sev:8} {rule}: {summary}" for ts, rule, sev, summary in live.alerts) or "none")
    story = Text("\n".join(f"{t:6.1f} s  {line}" for t, line in list(progress.log)[-6:]) or "…")
    parts: list[RenderableType] = [head, table, verdicts, Panel(alerts, title="alerts"), Panel(story, title="story")]
    if live.error:
        parts.append(Text(f"(view: {live.error})", style="dim"))
    return Group(*parts)


class LiveView:
    """rich Live, refreshed once a second from ClickHouse (through the worker) and the demo's own counters."""

    def __init__(self, demo: Any, driver: TrafficDriver, since: dt.datetime) -> None:
        from rich.live import Live

        self.demo = demo
        self.driver = driver
        self.since = since
        self.client: Any = None
        self.live = Live(console=demo.console, auto_refresh=False, transient=False)
        self.data: Any = None

    def start(self) -> None:
        self.live.start()

    async def refresh(self, t: float) -> None:

        if self.client is None:
            try:
                self.client = open_query_client(self.demo.settings)
            except LlmwatchError as e:
                self.data = LiveData(error=str(e))
        if self.client is not None:
            thresholds = Thresholds.from_settings(self.demo.settings.eval)
            self.data = await asyncio.to_thread(read_live, self.client, self.since, thresholds)
        story = self.demo.story
        progress = Progress(
            t=t,
            duration_s=self.demo.plan.duration_s,
            phase=story.phase.value,
            traffic=story.traffic(t).label,
            sent=self.driver.sent,
            ok=self.driver.ok,
            failed=self.driver.failed,
            log=story.log,
        )
        self.live.update(render(progress, self.data or LiveData()), refresh=True)

    def stop(self) -> None:
        self.live.stop()
        if self.client is not None:
            self.client.close()
