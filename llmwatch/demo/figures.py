"""The demo report's figures, one function per figure; each returns a matplotlib Figure of ReportData."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .report_data import ReportData

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


def _figure(size: tuple[float, float] = FIG_SIZE_IN) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size, layout="constrained")


def weights_figure(data: ReportData, periods: Sequence[Period]) -> Any:
    """A step line per version, held to the end of the span; a marker where a verdict moved it."""
    versions = _versions(data)
    end_s = data.rel(int(data.until.timestamp() * 1000))
    fig, ax = _figure()
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
    return fig


def _series_figure(data: ReportData, periods: Sequence[Period], attr: str, ylabel: str, empty: str) -> Any:
    versions = _versions(data)
    fig, ax = _figure()
    series = _per_version(data, attr)
    for v, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", ms=4, lw=1.8, color=_color(v, versions), label=v)
    if not series:
        _empty(ax, empty)
    ax.set_ylabel(ylabel)
    _decorate(ax, data, periods)
    return fig


def ttft_figure(data: ReportData, periods: Sequence[Period]) -> Any:
    return _series_figure(data, periods, "ttft_p95_ms", "p95 TTFT (ms)", "no closed windows with latencies")


def rates_figure(data: ReportData, periods: Sequence[Period]) -> Any:
    """One panel per quality rate."""
    import matplotlib.pyplot as plt

    versions = _versions(data)
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
    return fig


def verdicts_figure(data: ReportData, periods: Sequence[Period]) -> Any:
    """One row per canary, a mark per verdict coloured by result; moves as vertical lines."""
    fig, ax = _figure()
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
    return fig


def drift_figure(data: ReportData, periods: Sequence[Period]) -> Any:
    empty = "no drift scores in window_metrics for this run (the worker ran without a drift check)"
    return _series_figure(data, periods, "drift_score", "MMD² vs reference", empty)


def alerts_figure(data: ReportData, periods: Sequence[Period]) -> Any:
    """One row per rule, a mark per alert coloured by severity."""
    fig, ax = _figure()
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
    return fig


#: plot id → figure; PLOTS gives their titles and order
FIGURES: dict[str, Callable[[ReportData, Sequence[Period]], Any]] = {
    "weights": weights_figure,
    "ttft": ttft_figure,
    "rates": rates_figure,
    "verdicts": verdicts_figure,
    "drift": drift_figure,
    "alerts": alerts_figure,
}


def render_plots(data: ReportData, out_dir: Path, periods: Sequence[Period] = ()) -> dict[str, Path]:
    """Write one PNG per plot in PLOTS; returns id → path."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, _title in PLOTS:
        fig = FIGURES[name](data, periods)
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        paths[name] = path
    return paths
