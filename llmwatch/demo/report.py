"""The demo's report: one self-contained HTML page plus the plots as PNG files, built from ClickHouse alone.

Data come from the tables the pipeline wrote (traffic_weights, window_metrics, canary_verdicts, alerts,
inference_events) for one deployment and time span, so the report shows what was stored, not what the demo
believes happened. Each query selects plain values (epoch milliseconds, JSON strings), so a direct
clickhouse-connect client and the holder's query endpoint (llmwatch.db.owner) give the same rows. The page has
no script and no external resource: the PNGs are also inlined as data URLs, so it opens anywhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import itertools
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Fixed colours per model version (the report test looks for them in the PNGs).
VERSION_COLORS = {"v1": "#1f77b4", "v2": "#2ca02c", "v3": "#d62728"}
OTHER_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
RESULT_COLORS = {"pass": "#2ca02c", "fail": "#d62728", "inconclusive": "#9e9e9e"}
SEVERITY_COLORS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
FIG_SIZE_IN = (10.0, 3.6)
DPI = 100
#: (plot id, title); the HTML shows them in this order.
PLOTS = (
    ("weights", "Traffic weights per version (traffic_weights)"),
    ("ttft", "p95 time to first token per version (window_metrics)"),
    ("rates", "Error, toxicity, PII-leak and prompt-injection rates per version (window_metrics)"),
    ("verdicts", "Verdict timeline (canary_verdicts)"),
    ("drift", "Prompt drift score per version (window_metrics.drift_score)"),
    ("alerts", "Alerts (alerts)"),
)


# --------------------------------------------------------------------------------------------- data
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


def _lit(t: dt.datetime) -> str:
    t = t.astimezone(dt.UTC) if t.tzinfo else t
    return f"toDateTime64('{t.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]}', 3, 'UTC')"


def _q(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _f(v: Any) -> float | None:
    if v is None:
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def _rows(client: Any, sql: str) -> list[Sequence[Any]]:
    return list(client.query(sql).result_rows)


def load_report_data(client: Any, deployment: str, since: dt.datetime, until: dt.datetime) -> ReportData:
    """Everything the report shows about `deployment` between `since` and `until` (UTC)."""
    data = ReportData(deployment, since, until)
    span = f"BETWEEN {_lit(since)} AND {_lit(until)}"
    dep = f"deployment = {_q(deployment)}"
    for r in _rows(
        client,
        "SELECT seq, toUnixTimestamp64Milli(updated_at), toJSONString(weights), state, canary_version, "
        "baseline_version, reason, verdict_id, command_id "
        f"FROM traffic_weights FINAL WHERE {dep} AND updated_at {span} ORDER BY seq, updated_at",
    ):
        weights = {str(k): float(v) for k, v in json.loads(r[2]).items()}
        data.moves.append(MoveRow(int(r[0]), int(r[1]), weights, str(r[3]), r[4], str(r[5]), str(r[6]), r[7], r[8]))
    for r in _rows(
        client,
        "SELECT toUnixTimestamp64Milli(window_start), model_version, count, ttft_p95_ms, error_rate, toxicity_rate, "
        "pii_leak_rate, injection_rate, injection_success_rate, drift_score "
        f"FROM window_metrics FINAL WHERE {dep} AND window_start {span} ORDER BY window_start, model_version",
    ):
        data.windows.append(WindowRow(int(r[0]), str(r[1]), int(r[2]), *(_f(v) for v in r[3:10])))
    for r in _rows(
        client,
        "SELECT toUnixTimestamp64Milli(ts), verdict_id, canary_version, baseline_version, result, reason, "
        "arrayFilter((m, x) -> x = 'fail', metrics.metric, metrics.result), canary_n, baseline_n "
        f"FROM canary_verdicts FINAL WHERE {dep} AND ts {span} ORDER BY ts",
    ):
        data.verdicts.append(
            VerdictRec(
                int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), tuple(r[6]), int(r[7]), int(r[8])
            )
        )
    for r in _rows(
        client,
        "SELECT toUnixTimestamp64Milli(ts), rule, severity, status, summary, verdict_id, labels['source'] "
        f"FROM alerts FINAL WHERE {dep} AND ts {span} ORDER BY ts",
    ):
        data.alerts.append(AlertRec(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), r[5], str(r[6] or "")))
    for r in _rows(
        client,
        f"SELECT model_version, count() FROM inference_events FINAL WHERE {dep} AND ts {span} GROUP BY model_version "
        "ORDER BY model_version",
    ):
        data.events[str(r[0])] = int(r[1])
    return data


@dataclass(frozen=True)
class ReadyResult:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    error: str | None = None


def run_ready_queries(client: Any) -> list[ReadyResult]:
    """The analysts' ready queries (sql/queries), run as they are; a failing one is reported, not raised."""
    from llmwatch.db.ready import ready_queries

    out: list[ReadyResult] = []
    for q in ready_queries().values():
        try:
            result = client.query(q.sql)
            out.append(ReadyResult(q.name, q.title, list(result.column_names), [list(r) for r in result.result_rows]))
        except Exception as e:
            out.append(ReadyResult(q.name, q.title, [], [], f"{type(e).__name__}: {e}"[:500]))
    return out


# -------------------------------------------------------------------------------------------- plots
def _color(version: str, versions: Sequence[str]) -> str:
    if version in VERSION_COLORS:
        return VERSION_COLORS[version]
    others = [v for v in versions if v not in VERSION_COLORS]
    return OTHER_COLORS[others.index(version) % len(OTHER_COLORS)] if version in others else OTHER_COLORS[0]


@dataclass(frozen=True)
class Period:
    """A shaded span on the time plots (e.g. the injection burst), in seconds since the start."""

    label: str
    start_s: float
    end_s: float
    color: str = "#fdd835"


def _per_version(data: ReportData, attr: str) -> dict[str, tuple[list[float], list[float]]]:
    """Series per version: a window's value is the count-weighted mean over its variants (a version is the
    baseline and the canary of two rollouts in the window where one rollout hands over to the next)."""
    acc: dict[tuple[str, int], list[tuple[float, int]]] = defaultdict(list)
    for w in data.windows:
        v = getattr(w, attr)
        if v is not None and w.count > 0:
            acc[(w.model_version, w.t_ms)].append((v, w.count))
    out: dict[str, tuple[list[float], list[float]]] = {}
    for (version, t_ms), vals in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        xs, ys = out.setdefault(version, ([], []))
        n = sum(c for _, c in vals)
        xs.append(data.rel(t_ms) + _window_mid(data))
        ys.append(sum(v * c for v, c in vals) / n)
    return out


def _window_mid(data: ReportData) -> float:
    """Plot window values at their middle (windows are stamped with their start)."""
    starts = sorted({w.t_ms for w in data.windows})
    gaps = [b - a for a, b in itertools.pairwise(starts) if b > a]
    return (min(gaps) / 2000.0) if gaps else 0.0


def _versions(data: ReportData) -> list[str]:
    names = {w.model_version for w in data.windows} | {v for m in data.moves for v in m.weights}
    return sorted(names)


def _decorate(ax: Any, data: ReportData, periods: Sequence[Period], *, legend: bool = True) -> None:
    end = data.rel(int(data.until.timestamp() * 1000))
    for p in periods:
        ax.axvspan(p.start_s, p.end_s, color=p.color, alpha=0.18, lw=0, label=p.label)
    ax.set_xlim(0, max(end, 1.0))
    ax.set_xlabel("seconds since the start of the run")
    ax.grid(True, alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11, color="#555555")


def render_plots(data: ReportData, out_dir: Path, periods: Sequence[Period] = ()) -> dict[str, Path]:
    """Write one PNG per plot in PLOTS; returns id → path."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    versions = _versions(data)
    end_s = data.rel(int(data.until.timestamp() * 1000))
    paths: dict[str, Path] = {}

    def save(name: str, fig: Any) -> None:
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        paths[name] = path

    # weights over time: a step line per version, held to the end of the span; dots where a verdict moved it
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN, layout="constrained")
    if data.moves:
        for v in versions:
            xs = [0.0] + [max(0.0, data.rel(m.t_ms)) for m in data.moves] + [end_s]
            # before the first move the baseline serves everything; a version a move leaves out has no traffic
            ys = [1.0 if v == data.moves[0].baseline_version else 0.0]
            ys += [m.weights.get(v, 0.0) for m in data.moves]
            ys.append(ys[-1])
            ax.step(xs, [100 * y for y in ys], where="post", color=_color(v, versions), lw=2.2, label=v)
        for m in data.moves:
            if m.verdict_id:
                marker = "v" if m.state == "rolled_back" else "^"
                canary = m.canary_version or ""
                ax.plot(
                    data.rel(m.t_ms), 100 * m.weights.get(canary, 0.0), marker=marker, ms=9, color="black", zorder=5
                )
        ax.set_ylim(-5, 105)
    else:
        _empty(ax, "no traffic weights were recorded")
    ax.set_ylabel("share of traffic (%)")
    _decorate(ax, data, periods)
    save("weights", fig)

    # p95 TTFT per version
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN, layout="constrained")
    series = _per_version(data, "ttft_p95_ms")
    for v, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", ms=4, lw=1.8, color=_color(v, versions), label=v)
    if not series:
        _empty(ax, "no closed windows with latencies")
    ax.set_ylabel("p95 TTFT (ms)")
    _decorate(ax, data, periods)
    save("ttft", fig)

    # quality rates: one panel per rate
    fig, axes = plt.subplots(2, 2, figsize=(FIG_SIZE_IN[0], FIG_SIZE_IN[1] * 1.6), layout="constrained", sharex=True)
    panels = (
        ("error_rate", "error rate"),
        ("toxicity_rate", "toxicity rate"),
        ("pii_leak_rate", "PII-leak rate"),
        ("injection_rate", "prompt-injection rate (prompts)"),
    )
    for ax, (attr, label) in zip(axes.flat, panels, strict=True):
        s = _per_version(data, attr)
        for v, (xs, ys) in s.items():
            ax.plot(xs, [100 * y for y in ys], marker="o", ms=3, lw=1.5, color=_color(v, versions), label=v)
        if not s:
            _empty(ax, f"no {label} data")
        ax.set_title(label, fontsize=10)
        ax.set_ylabel("%")
        _decorate(ax, data, periods, legend=ax is axes.flat[1])
    save("rates", fig)

    # verdict timeline: one row per canary, a mark per verdict coloured by result; moves as vertical lines
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN, layout="constrained")
    canaries = sorted({v.canary_version for v in data.verdicts})
    for result in ("inconclusive", "pass", "fail"):
        pts = [(data.rel(v.t_ms), canaries.index(v.canary_version)) for v in data.verdicts if v.result == result]
        if pts:
            ax.scatter(
                [p[0] for p in pts],
                [p[1] for p in pts],
                s=60 if result != "inconclusive" else 25,
                marker="X" if result == "fail" else "o",
                color=RESULT_COLORS[result],
                label=result,
                zorder=3,
            )
    for m in data.moves:
        if m.verdict_id:
            ax.axvline(data.rel(m.t_ms), color="#444444", lw=0.8, ls="--", zorder=1)
    if canaries:
        ax.set_yticks(range(len(canaries)), [f"canary {c}" for c in canaries])
        ax.set_ylim(-0.6, len(canaries) - 0.4)
    else:
        _empty(ax, "no verdicts were recorded")
    _decorate(ax, data, periods)
    save("verdicts", fig)

    # drift score
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN, layout="constrained")
    series = _per_version(data, "drift_score")
    for v, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", ms=4, lw=1.8, color=_color(v, versions), label=v)
    if not series:
        _empty(ax, "no drift scores in window_metrics for this run (the worker ran without a drift check)")
    ax.set_ylabel("MMD² vs reference")
    _decorate(ax, data, periods)
    save("drift", fig)

    # alerts: one row per rule, a mark per alert coloured by severity
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN, layout="constrained")
    rules = sorted({a.rule for a in data.alerts})
    for sev, color in SEVERITY_COLORS.items():
        pts = [(data.rel(a.t_ms), rules.index(a.rule)) for a in data.alerts if a.severity == sev]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=70, marker="D", color=color, label=sev, zorder=3)
    if rules:
        ax.set_yticks(range(len(rules)), rules)
        ax.set_ylim(-0.6, len(rules) - 0.4)
    else:
        _empty(ax, "no alerts were raised")
    _decorate(ax, data, periods)
    save("alerts", fig)
    return paths


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
