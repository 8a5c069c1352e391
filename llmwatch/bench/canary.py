"""`llmwatch bench canary`: simulated rollouts, our sequential judge next to a Kayenta-style one.

Prints a table, writes the figures to BENCHMARKS.md (section "canary") and, with --json, a file
{"ours": {...}, "baseline": {...}} with `aa_false_rollback_rate` and, per regression scenario,
`detection_rate`, `median_requests_to_rollback` and `p90_requests_to_rollback` (canary requests).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from llmwatch.bench.report import DEFAULT_PATH, write_section
from llmwatch.evaluators.canary_judge import JUDGE_NAME, JudgeConfig
from llmwatch.sim.canary import AA, SCENARIOS, Outcome, SimConfig, simulate_kayenta, simulate_ours

QUICK_ROLLOUTS = 1000
FULL_ROLLOUTS = 5000


def _summary(outcomes: dict[str, Outcome]) -> dict[str, Any]:
    out: dict[str, Any] = {"aa_false_rollback_rate": outcomes[AA].rollback_rate}
    aa_pass = outcomes[AA].pass_at
    if aa_pass is not None:
        out["aa_pass_rate"] = float(np.mean(~np.isnan(aa_pass)))
        out["aa_median_requests_to_pass"] = outcomes[AA].quantile(0.5, of="pass")
    for name, o in outcomes.items():
        if name == AA:
            continue
        out[name] = {
            "detection_rate": o.rollback_rate,
            "median_requests_to_rollback": o.quantile(0.5),
            "p90_requests_to_rollback": o.quantile(0.9),
        }
    return out


def run(sim: SimConfig, judge: JudgeConfig) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(ours, baseline, baseline with one more tolerated failed interval); each scenario has its own seed."""
    ours, kayenta, tolerant = {}, {}, {}
    lenient = sim.model_copy(update={"failure_limit": sim.failure_limit + 1})
    for i, name in enumerate(SCENARIOS):
        ours[name] = simulate_ours(name, sim, judge, np.random.default_rng([sim.seed, i, 0]), track_pass=name == AA)
        kayenta[name] = simulate_kayenta(name, sim, np.random.default_rng([sim.seed, i, 1]))
        tolerant[name] = simulate_kayenta(name, lenient, np.random.default_rng([sim.seed, i, 2]))
    return _summary(ours), _summary(kayenta), _summary(tolerant)


def _n(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _row(name: str, *results: dict[str, Any]) -> str:
    cells = []
    for r in results:
        s = r[name]
        spread = f"{_n(s['median_requests_to_rollback'])} / {_n(s['p90_requests_to_rollback'])}"
        cells.append(f"{100 * s['detection_rate']:.1f}% | {spread}")
    return f"| `{name}` | " + " | ".join(cells) + " |"


def targets(ours: dict[str, Any], base: dict[str, Any]) -> list[tuple[str, bool]]:
    checks = [("A/A false rollback ≤ 1%", ours["aa_false_rollback_rate"] <= 0.01)]
    for name in ("ttft_x2", "errors_+5pt"):
        o, b = ours[name], base[name]
        checks.append((f"{name} detection ≥ 99%", o["detection_rate"] >= 0.99))
        ok = o["median_requests_to_rollback"] is not None and (
            b["median_requests_to_rollback"] is None
            or o["median_requests_to_rollback"] <= b["median_requests_to_rollback"] / 2
        )
        checks.append((f"{name} median requests ≤ ½ baseline's", ok))
    return checks


def markdown(sim: SimConfig, judge: JudgeConfig, ours: dict, base: dict, tolerant: dict, seconds: float) -> str:
    lines = [
        f"{sim.rollouts:,} seeded rollouts per scenario (seed {sim.seed}), canary share {100 * sim.canary_share:g}%, "
        f"horizon {sim.horizon_canary:,} canary requests; {seconds:.0f} s.",
        "",
        f"- **ours** (`{JUDGE_NAME}`): anytime-valid mixture likelihood-ratio tests on all "
        f"{len(judge.metrics)} metrics (α = {judge.alpha_fail:g} split over them), judged every "
        f"{sim.eval_every:,} requests (~{sim.eval_every * sim.canary_share:.0f} canary).",
        f"- **Kayenta-style**: Mann–Whitney classifier (CI lower end > {sim.kayenta_fraction:g}·|HL estimate|, "
        f"{100 * sim.kayenta_confidence:g}% CI), intervals of {sim.interval_points} points × {sim.point_requests:,} "
        f"requests (~{sim.interval_points * sim.point_requests * sim.canary_share:,.0f} canary), "
        "every metric critical, "
        f"rollback after {sim.failure_limit} failed interval(s); the last columns tolerate {sim.failure_limit + 1}.",
        "",
        "| scenario | ours: rolled back | ours: median / p90 canary req. | Kayenta: rolled back | "
        "Kayenta: median / p90 | Kayenta +1 tolerated: rolled back | median / p90 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        _row(AA, {AA: _aa(ours)}, {AA: _aa(base)}, {AA: _aa(tolerant)}).replace(f"`{AA}`", "`aa` (false rollback)"),
    ]
    lines += [_row(name, ours, base, tolerant) for name in SCENARIOS if name != AA]
    lines += [
        "",
        f"Our judge passed {100 * ours.get('aa_pass_rate', 0):.1f}% of A/A canaries within the horizon "
        f"(median {_n(ours.get('aa_median_requests_to_pass'))} canary requests to a pass verdict).",
        "",
        "Targets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in targets(ours, base)) + ".",
    ]
    return "\n".join(lines)


def _aa(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "detection_rate": s["aa_false_rollback_rate"],
        "median_requests_to_rollback": None,
        "p90_requests_to_rollback": None,
    }


@click.command("canary")
@click.option("--quick", is_flag=True, help=f"{QUICK_ROLLOUTS:,} rollouts per scenario (under 3 minutes on 2 cores).")
@click.option("--rollouts", type=click.IntRange(min=1), default=None, help=f"Per scenario (default {FULL_ROLLOUTS:,}).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--horizon", type=click.IntRange(min=50), default=None, help="Canary requests per rollout (default 6,000)."
)
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
    horizon: int | None,
    json_path: Path | None,
    benchmarks: Path,
    no_benchmarks: bool,
) -> None:
    """Simulated canary rollouts: false rollbacks on A/A, detection and requests-to-rollback per regression."""
    sim = SimConfig(rollouts=rollouts or (QUICK_ROLLOUTS if quick else FULL_ROLLOUTS), seed=seed)
    if horizon is not None:
        sim = sim.model_copy(update={"horizon_canary": horizon})
    judge = JudgeConfig()
    started = time.perf_counter()
    ours, base, tolerant = run(sim, judge)
    seconds = time.perf_counter() - started
    text = markdown(sim, judge, ours, base, tolerant, seconds)
    click.echo(text)
    if json_path is not None:
        json_path.write_text(json.dumps({"ours": ours, "baseline": base}, indent=2) + "\n")
    if not no_benchmarks:
        write_section("canary", text, path=benchmarks)
