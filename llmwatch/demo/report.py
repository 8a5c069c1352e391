"""The demo's report: one self-contained HTML page plus the plots as PNG files, built from ClickHouse alone.

The data (report_data.py) come from the tables the pipeline wrote, for one deployment and time span; the figures
(figures.py) are drawn from them; this module writes the page. The page has no script and no external resource:
the PNGs are also inlined as data URLs, so it opens anywhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .figures import PLOTS, Period, render_plots
from .report_data import ReportData, load_report_data


@dataclass(frozen=True)
class AlertmanagerSeen:
    """What the run's Alertmanager held at the end (`alerts`: its v2 API) and the notifications it sent to the local
    receiver (receiver name, webhook body); `note` says why none ran."""

    url: str = ""
    alerts: list[dict[str, Any]] | None = None
    notifications: list[tuple[str, dict[str, Any]]] | None = None
    note: str = ""


@dataclass(frozen=True)
class ReadyResult:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    error: str | None = None


def run_ready_queries(client: Any, parameters: Mapping[str, Mapping[str, Any]] | None = None) -> list[ReadyResult]:
    """The analysts' ready queries (sql/queries) with their parameters (query name → values; default: each query's
    defaults); a failing one is reported, not raised."""
    from llmwatch.db.ready import ready_queries

    out: list[ReadyResult] = []
    for q in ready_queries().values():
        try:
            values = parameters.get(q.name, {}) if parameters is not None else q.parameters()
            result = client.query(q.sql, parameters=dict(values) or None)
            out.append(ReadyResult(q.name, q.title, list(result.column_names), [list(r) for r in result.result_rows]))
        except Exception as e:
            out.append(ReadyResult(q.name, q.title, [], [], f"{type(e).__name__}: {e}"[:500]))
    return out


# --------------------------------------------------------------------------------------------- html
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
.ok{color:#1b7f2a;font-weight:600} .bad{color:#c62828;font-weight:600}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px;width:100%}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f5f5f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0 2em} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:13px} details{margin:.5em 0} summary{cursor:pointer;font-weight:600}
code{background:#f5f5f5;padding:0 3px}
"""


def _cell(v: Any) -> str:
    if v is None:
        return '<td class="num">–</td>'
    if isinstance(v, bool):
        return f"<td>{v}</td>"
    if isinstance(v, int | float):
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        return f'<td class="num">{text}</td>'
    if isinstance(v, dict | list | tuple):
        return f"<td>{html.escape(json.dumps(v, default=str))}</td>"
    return f"<td>{html.escape(str(v))}</td>"


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]], limit: int = 200) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in rows[:limit])
    more = f"<p>… {len(rows) - limit} more rows</p>" if len(rows) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _when(data: ReportData, t_ms: int) -> str:
    t = dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC)
    return f"{t.strftime('%H:%M:%S')} (+{data.rel(t_ms):.0f} s)"


def write_html(
    data: ReportData,
    plots: dict[str, Path],
    out_dir: Path,
    *,
    title: str = "llmwatch demo report",
    ok: bool | None = None,
    summary: Sequence[str] = (),
    ready: Sequence[ReadyResult] = (),
    settings: dict[str, Any] | None = None,
    alertmanager: AlertmanagerSeen | None = None,
) -> Path:
    """index.html next to the PNGs; every plot is inlined (data URL) and linked to its file."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='sub'>deployment <code>{html.escape(data.deployment)}</code>, "
        f"{data.since:%Y-%m-%d %H:%M:%S} – {data.until:%H:%M:%S} UTC; "
        f"events stored: {', '.join(f'{v} {n}' for v, n in data.events.items()) or 'none'}</p>",
    ]
    if ok is not None:
        verdict = "<span class='ok'>story outcomes met</span>" if ok else "<span class='bad'>outcomes NOT met</span>"
        parts.append(f"<h2 id='summary'>Summary: {verdict}</h2>")
    if summary:
        parts.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in summary) + "</ul>")
    parts.append("<h2>Plots</h2>")
    for name, caption in PLOTS:
        if name not in plots:
            continue
        png = plots[name]
        b64 = base64.b64encode(png.read_bytes()).decode()
        parts.append(
            f"<figure id='plot-{name}'><img class='plot' data-plot='{name}' alt='{html.escape(caption)}' "
            f"src='data:image/png;base64,{b64}'><figcaption>{html.escape(caption)} — "
            f"<a href='{html.escape(png.name)}'>{html.escape(png.name)}</a></figcaption></figure>"
        )
    verdicts = {v.verdict_id: v for v in data.verdicts}
    parts.append("<h2 id='moves'>Traffic moves (audit)</h2>")
    move_rows = []
    for m in data.moves:
        v = verdicts.get(m.verdict_id or "")
        by_command = f"command {m.command_id}" if m.command_id else "timer"
        cause = f"verdict {m.verdict_id} ({v.result})" if v else by_command
        shares = ", ".join(f"{k} {w:.0%}" for k, w in sorted(m.weights.items()))
        move_rows.append([m.seq, _when(data, m.t_ms), m.state, shares, cause, m.reason])
    parts.append(_table(["seq", "time", "state", "weights", "caused by", "reason"], move_rows))
    causing = [verdicts[m.verdict_id] for m in data.moves if m.verdict_id in verdicts]
    if causing:
        parts.append("<h3>Verdicts that moved traffic</h3>")
        parts.append(
            _table(
                ["time", "verdict", "canary", "result", "failed metrics", "canary n", "baseline n", "reason"],
                [
                    [
                        _when(data, v.t_ms),
                        v.verdict_id,
                        v.canary_version,
                        v.result,
                        ", ".join(v.failed_metrics),
                        v.canary_n,
                        v.baseline_n,
                        v.reason,
                    ]
                    for v in causing
                ],
            )
        )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for v in data.verdicts:
        counts[(v.canary_version, v.result)] += 1
    parts.append("<h3>All verdicts</h3>")
    parts.append(_table(["canary", "result", "verdicts"], [[c, r, n] for (c, r), n in sorted(counts.items())]))
    parts.append("<h2 id='alerts'>Alerts</h2>")
    parts.append(
        _table(
            ["time", "rule", "severity", "status", "source", "summary"],
            [[_when(data, a.t_ms), a.rule, a.severity, a.status, a.source, a.summary] for a in data.alerts],
        )
        if data.alerts
        else "<p>none</p>"
    )
    if alertmanager is not None:
        parts.extend(_alertmanager_section(alertmanager))
    if ready:
        parts.append("<h2 id='ready'>Analysts' ready queries (sql/queries)</h2>")
        for r in ready:
            parts.append(
                f"<details><summary>{html.escape(r.name)}: {html.escape(r.title)} ({len(r.rows)} rows)</summary>"
            )
            parts.append(f"<p class='bad'>{html.escape(r.error)}</p>" if r.error else _table(r.columns, r.rows, 50))
            parts.append("</details>")
    if settings:
        parts.append("<h2>How this run was configured</h2>")
        parts.append(_table(["setting", "value"], [[k, v] for k, v in settings.items()]))
    parts.append("</body></html>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _alertmanager_section(seen: AlertmanagerSeen) -> list[str]:
    parts = ["<h2 id='alertmanager'>Alerts Alertmanager received</h2>"]
    if seen.alerts is None:
        return [*parts, f"<p>{html.escape(seen.note or 'No Alertmanager ran.')}</p>"]
    parts.append(
        f"<p>The alerter posted to a real Alertmanager at <code>{html.escape(seen.url)}</code> running "
        "<code>deploy/alertmanager/alertmanager.yml</code> (its receivers pointed at this run's local receiver, its "
        "timings shortened). It held these alerts at the end:</p>"
    )
    rows = [
        [
            a["labels"].get("alertname"),
            a["labels"].get("severity"),
            a["labels"].get("model_version", ""),
            a["status"]["state"],
            "silenced" if a["status"]["silencedBy"] else ("inhibited" if a["status"]["inhibitedBy"] else ""),
            ", ".join(r["name"] for r in a.get("receivers", [])),
            a["startsAt"][11:19],
            a["annotations"].get("summary", ""),
        ]
        for a in sorted(seen.alerts, key=lambda a: a["startsAt"])
    ]
    columns = ["alertname", "severity", "model_version", "state", "muted", "receiver", "since (UTC)", "summary"]
    parts.append(_table(columns, rows) if rows else "<p>none</p>")
    notes = seen.notifications or []
    parts.append(f"<h3>Notifications it sent ({len(notes)})</h3>")
    parts.append(
        _table(
            ["receiver", "status", "group", "alerts"],
            [
                [
                    receiver,
                    body.get("status"),
                    ", ".join(f"{k}={v}" for k, v in sorted(body.get("groupLabels", {}).items())),
                    "; ".join(
                        f"{x['labels'].get('alertname')} {x['labels'].get('model_version', '')} ({x['status']})"
                        for x in body.get("alerts", [])
                    ),
                ]
                for receiver, body in notes
            ],
        )
        if notes
        else "<p>none</p>"
    )
    return parts


def build_report(
    client: Any,
    out_dir: Path,
    deployment: str,
    since: dt.datetime,
    until: dt.datetime,
    *,
    periods: Sequence[Period] = (),
    ready: Sequence[ReadyResult] | None = None,
    **html_options: Any,
) -> Path:
    """Load, plot and write the report; returns the path of index.html."""
    data = load_report_data(client, deployment, since, until)
    plots = render_plots(data, out_dir, periods)
    return write_html(data, plots, out_dir, ready=ready if ready is not None else (), **html_options)
