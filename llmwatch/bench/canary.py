"""`llmwatch bench canary`: seeded rollouts on production-like traffic, our judge next to a Kayenta-style one.

Every rollout runs the production judge and controller through the public offline API (`OfflineRollout`: the
worker's `JudgeCore` and `RolloutMachine` on an explicit clock, verdicts every `judge.interval_s`, steps
1 → 5 → 25 → 50 → 100 %), fed by the canary traffic simulator (llmwatch/sim/canary.py) following the weights it
publishes; the Kayenta-style judge (`KayentaRollout`: 1-minute points, one 10-minute interval per step, every
metric critical) gets the same traffic, seed for seed. Writes the table to BENCHMARKS.md (section "canary") and,
with --json, {"ours": {scenario: {...}}, "baseline": {scenario: {...}}, "meta": {...}} with, per scenario,
`rollback_rate`, `promote_rate`, `undecided_rate`, `median_requests_to_decision` (canary requests until the
promotion or rollback), `median_minutes_to_decision`, and for `srm_low_traffic` `srm_detected_rate` and
`median_minutes_to_srm`.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import numpy as np

from llmwatch.bench.report import DEFAULT_PATH, write_section
from llmwatch.evaluators.canary import JUDGE_NAME
from llmwatch.evaluators.canary.kayenta import NAME as KAYENTA_NAME
from llmwatch.evaluators.canary.kayenta import KayentaConfig
from llmwatch.settings import Settings
from llmwatch.sim.canary import BASELINE, CANARY, DEPLOYMENT, SCENARIOS, RolloutOutcome, Scenario, run_rollout
from llmwatch.streams.offline import KayentaRollout, OfflineRollout

QUICK_ROLLOUTS = 40
FULL_ROLLOUTS = 300
HORIZON_MIN = 120.0
START = datetime(2026, 1, 1, tzinfo=UTC)
SRM = "srm_low_traffic"


def simulate(scenario: Scenario, judge: str, seed: int, settings: Settings, horizon_min: float) -> RolloutOutcome:
    """One rollout of `scenario` under `judge` ("ours" or "baseline")."""
    if judge == "ours":
        run: Any = OfflineRollout(
            deployment=DEPLOYMENT, baseline=BASELINE, canary=CANARY, start=START, settings=settings
        )
    else:
        run = KayentaRollout(
            deployment=DEPLOYMENT,
            baseline=BASELINE,
            canary=CANARY,
            start=START,
            settings=settings,
            config=KayentaConfig(),
        )
    return run_rollout(
        scenario, run, seed, start=START, horizon_s=horizon_min * 60.0, stratum_s=settings.judge.stratum_s
    )


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def summarise(outcomes: list[RolloutOutcome], *, srm: bool) -> dict[str, Any]:
    n = len(outcomes)
    decided = [o for o in outcomes if o.outcome != "undecided"]
    out: dict[str, Any] = {
        "rollouts": n,
        "rollback_rate": sum(o.outcome == "rolled_back" for o in outcomes) / n,
        "promote_rate": sum(o.outcome == "promoted" for o in outcomes) / n,
        "undecided_rate": sum(o.outcome == "undecided" for o in outcomes) / n,
        "median_requests_to_decision": _median([o.canary_requests for o in decided]),
        "median_minutes_to_decision": _median([o.minutes for o in decided]),
        "p90_minutes_to_decision": float(np.quantile([o.minutes for o in decided], 0.9)) if decided else None,
        "undecided_blocked_by": dict(Counter(m for o in outcomes for m in o.blocked_by).most_common()),
    }
    if srm:
        found = [o.srm_minutes for o in outcomes if o.srm_minutes is not None]
        out["srm_detected_rate"] = len(found) / n
        out["median_minutes_to_srm"] = _median(found)
        out["p90_minutes_to_srm"] = float(np.quantile(found, 0.9)) if found else None
    return out


def run(
    names: list[str],
    rollouts: int,
    seed: int,
    settings: Settings,
    horizon_min: float,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ours, baseline): per scenario, the summary of `rollouts` seeded rollouts; both judges see the same traffic."""
    ours: dict[str, Any] = {}
    base: dict[str, Any] = {}
    for i, name in enumerate(names):
        scenario = SCENARIOS[name]
        results: dict[str, list[RolloutOutcome]] = {"ours": [], "baseline": []}
        started = time.perf_counter()
        for k in range(rollouts):
            traffic_seed = int(np.random.SeedSequence([seed, i, k]).generate_state(1)[0])
            for judge in results:
                results[judge].append(simulate(scenario, judge, traffic_seed, settings, horizon_min))
        ours[name] = summarise(results["ours"], srm=name == SRM)
        base[name] = summarise(results["baseline"], srm=name == SRM)
        if progress:
            progress(f"{name}: {time.perf_counter() - started:.0f} s")
    return ours, base


# ------------------------------------------------------------------------------------------ report
EXPECTED = {"promote": "promoted", "rollback": "rolled_back", "srm": "sample-ratio mismatch flagged"}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, fmt: str = ",.0f") -> str:
    return "—" if x is None else format(x, fmt)


def _cells(s: dict[str, Any], name: str) -> str:
    if name == SRM:
        return (
            f"{_pct(s['srm_detected_rate'])} flagged, median {_num(s['median_minutes_to_srm'], '.1f')} min "
            f"(p90 {_num(s['p90_minutes_to_srm'], '.1f')}) | {_pct(s['rollback_rate'])} / {_pct(s['promote_rate'])}"
        )
    return (
        f"{_pct(s['rollback_rate'])} / {_pct(s['promote_rate'])} / {_pct(s['undecided_rate'])} | "
        f"{_num(s['median_minutes_to_decision'], '.1f')} min, {_num(s['median_requests_to_decision'])} req."
    )


def targets(ours: dict[str, Any], base: dict[str, Any]) -> list[tuple[str, bool]]:
    """The issue's done-when targets that this run can check."""
    checks: list[tuple[str, bool]] = []
    for name in ("aa_heavy_tail", "aa_load_drift", "aa_error_bursts", "sparse_metric_aa"):
        if name in ours:
            checks.append((f"{name}: false rollbacks ≤ 1%", ours[name]["rollback_rate"] <= 0.01))
    limits = {"tail_p99_x2": 0.95, "ttft_x1.2": 0.90, "errors_1to3pct": 0.99, "toxicity_x3": 0.95, "pii_leak_x3": 0.95}
    for name, limit in limits.items():
        if name in ours:
            checks.append((f"{name}: rolled back ≥ {100 * limit:g}%", ours[name]["rollback_rate"] >= limit))
    if "sparse_metric_aa" in ours:
        held = ours["sparse_metric_aa"]["undecided_blocked_by"]
        checks.append(
            (
                "sparse_metric_aa: no rollout held up by a sparse metric",
                not {"injection_success_rate", "hallucination_rate"} & set(held),
            )
        )
    if SRM in ours:
        s = ours[SRM]
        ok = s["srm_detected_rate"] >= 0.99 and (s["p90_minutes_to_srm"] or 1e9) <= 10.0
        checks.append((f"{SRM}: flagged within 10 min (≥ 99% of rollouts, p90 ≤ 10 min)", ok))
    healthy = [n for n in ("aa_heavy_tail", "aa_load_drift", "aa_error_bursts") if n in ours]
    mine = [ours[n]["median_minutes_to_decision"] for n in healthy if ours[n]["promote_rate"] > 0.5]
    theirs = [base[n]["median_minutes_to_decision"] for n in healthy if base[n]["promote_rate"] > 0.5]
    if mine and theirs:
        checks.append(
            (
                "healthy canary: median minutes to promote ≤ Kayenta-style's",
                float(np.median(mine)) <= float(np.median(theirs)),
            )
        )
    return checks


def markdown(
    ours: dict[str, Any],
    base: dict[str, Any],
    rollouts: int,
    seed: int,
    settings: Settings,
    horizon: float,
    secs: float,
) -> str:
    j, r = settings.judge, settings.rollout
    steps = " → ".join(f"{100 * w:g}%" for w in r.steps)
    lines = [
        f"{rollouts:,} seeded rollouts per scenario (seed {seed}), both judges on the same traffic; steps {steps}; "
        f"horizon {horizon:g} min; {secs:.0f} s.",
        "",
        f"- **ours** (`{JUDGE_NAME}`): the production judge and controller through `OfflineRollout` — verdicts every "
        f"{j.interval_s:g} s on {j.stratum_s:g}-s time strata, α_fail {j.alpha_fail:g}, risk budget {j.alpha_pass:g} "
        f"(a step to weight w needs evidence at min(1, {j.alpha_pass:g}/w)), SRM α {j.alpha_srm:g}, at least "
        f"{r.min_step_duration_s:g} s and {r.min_sample} canary requests per step, `rollout_stuck` after "
        f"{r.max_step_duration_s:g} s.",
        f"- **Kayenta-style** (`{KAYENTA_NAME}`, `KayentaRollout`): Mann–Whitney classifier (98 % CI, High when its "
        "lower end > 0.25·|HL estimate|) on 1-minute points, one 10-minute interval per step, every metric critical, "
        "rolled back on the first failed interval.",
        "- Cells: rolled back / promoted / undecided at the horizon | median minutes and canary requests to the "
        "decision (promotion or rollback).",
        "",
        "| scenario | traffic | correct | ours | ours: to decision | Kayenta-style | Kayenta: to decision |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in ours:
        sc = SCENARIOS[name]
        lines.append(
            f"| `{name}` | {sc.description} ({sc.rps:g} req/s) | {EXPECTED[sc.expect]} | "
            f"{_cells(ours[name], name)} | {_cells(base[name], name)} |"
        )
    held = {name: s["undecided_blocked_by"] for name, s in ours.items() if s["undecided_blocked_by"]}
    if held:
        lines += [
            "",
            "Ours, undecided at the horizon, by the gating metrics the last verdict had not passed: "
            + "; ".join(f"`{n}`: " + ", ".join(f"{m} {c}" for m, c in h.items()) for n, h in held.items())
            + ".",
        ]
    lines += [
        "",
        "Targets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in targets(ours, base)) + ".",
    ]
    return "\n".join(lines)


@click.command("canary")
@click.option("--quick", is_flag=True, help=f"{QUICK_ROLLOUTS} rollouts per scenario (a few minutes on 2 cores).")
@click.option("--rollouts", type=click.IntRange(min=1), default=None, help=f"Per scenario (default {FULL_ROLLOUTS}).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--horizon", "horizon_min", type=click.FloatRange(min=10), default=HORIZON_MIN, show_default=True,
              help="Minutes a rollout may run before it counts as undecided.")  # fmt: skip
@click.option("--scenario", "scenarios", multiple=True, type=click.Choice(list(SCENARIOS)), help="Only these.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--benchmarks",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_PATH,
    show_default=True,
    help="Markdown file whose 'canary' section receives the figures.",
)
@click.option("--no-benchmarks", is_flag=True, help="Do not touch the benchmarks file.")
def command(
    quick: bool,
    rollouts: int | None,
    seed: int,
    horizon_min: float,
    scenarios: tuple[str, ...],
    json_path: Path | None,
    benchmarks: Path,
    no_benchmarks: bool,
) -> None:
    """Seeded canary rollouts per traffic scenario: our judge and a Kayenta-style one, decisions and their speed."""
    n = rollouts or (QUICK_ROLLOUTS if quick else FULL_ROLLOUTS)
    names = list(scenarios) or list(SCENARIOS)
    settings = Settings()
    started = time.perf_counter()
    ours, base = run(names, n, seed, settings, horizon_min, progress=lambda m: click.echo(m, err=True))
    secs = time.perf_counter() - started
    text = markdown(ours, base, n, seed, settings, horizon_min, secs)
    click.echo(text)
    if json_path is not None:
        meta = {"rollouts": n, "seed": seed, "horizon_min": horizon_min, "seconds": secs, "judge": JUDGE_NAME,
                "baseline_judge": KAYENTA_NAME, "argv": sys.argv[1:]}  # fmt: skip
        json_path.write_text(json.dumps({"ours": ours, "baseline": base, "meta": meta}, indent=2) + "\n")
    if not no_benchmarks:
        write_section("canary", text, path=benchmarks)
