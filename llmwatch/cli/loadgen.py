"""`llmwatch loadgen --scenario NAME (--rate R --duration D | --count N) --target URL|kafka`."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from rich.console import Console

    from llmwatch.settings import Settings
    from llmwatch.sim.loadgen import LoadgenConfig, LoadgenResult, Progress

# Kept here so `llmwatch --help` need not import the engine; tests check it equals scenarios.SCENARIOS.
SCENARIO_NAMES = (
    "steady",
    "latency-regression",
    "toxicity-regression",
    "pii-leak",
    "hallucination",
    "prompt-injection-attack",
    "drift",
)


@click.command("loadgen")
@click.option("--scenario", required=True, type=click.Choice(SCENARIO_NAMES), help="Traffic and injected regression.")
@click.option("--rate", type=float, default=None, help="Requests per second (open loop).")
@click.option("--duration", type=float, default=None, help="Seconds of traffic at --rate.")
@click.option("--count", type=int, default=None, help="Number of requests (with --rate: paced; kafka: else unpaced).")
@click.option(
    "--target",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="A gateway's base URL, or 'kafka' to publish simulated events straight to the events topic.",
)
@click.option("--deployment", default="demo", show_default=True, help="Deployment (the request's `model`).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same traffic.")
@click.option(
    "--canary-weight",
    type=click.FloatRange(0, 1),
    default=None,
    help="Kafka target: canary share of the simulated events [default: 0.5]. A gateway routes by its own weights.",
)
@click.option("--onset", type=float, default=None, help="Seconds into the run when the regression starts.")
@click.option("--stream", is_flag=True, help="HTTP target: stream responses (measures client-side TTFT).")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--concurrency", type=int, default=2_000, show_default=True, help="Most unanswered requests at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def loadgen(
    scenario: str,
    rate: float | None,
    duration: float | None,
    count: int | None,
    target: str,
    deployment: str,
    seed: int,
    canary_weight: float | None,
    onset: float | None,
    stream: bool,
    max_tokens: int,
    concurrency: int,
    as_json: bool,
) -> None:
    """Open-loop traffic with known injected regressions (scenarios: see --scenario)."""
    from rich.console import Console

    from llmwatch.settings import get_settings
    from llmwatch.sim.loadgen import loadgen_config, run_loadgen

    config = loadgen_config(
        scenario=scenario,
        target=target,
        rate=rate,
        duration_s=duration,
        count=count,
        deployment=deployment,
        seed=seed,
        canary_weight=0.5 if canary_weight is None else canary_weight,
        onset_s=onset,
        stream=stream,
        max_tokens=max_tokens,
        max_in_flight=concurrency,
    )
    console = Console(stderr=True)
    if config.is_http and canary_weight is not None:
        console.print("[yellow]--canary-weight applies to --target kafka; the gateway routes by its weights topic")
    result = asyncio.run(_run_with_progress(config, get_settings(), console, run_loadgen))
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        _print_summary(result)
    if result.planned and result.ok == 0:
        raise SystemExit(1)


async def _run_with_progress(
    config: LoadgenConfig,
    settings: Settings,
    console: Console,
    run: Callable[[LoadgenConfig, Settings, Progress], Awaitable[LoadgenResult]],
) -> LoadgenResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    what = f"{config.scenario} → {config.target}"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as bar:
        task = bar.add_task(what, total=config.planned)
        return await run(config, settings, lambda done, total: bar.update(task, completed=done))


def _print_summary(result: LoadgenResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"loadgen {result.scenario} → {result.target}", show_header=False)
    rate = f"{result.achieved_rate:.1f}/s" + (f" (target {result.target_rate:g}/s)" if result.target_rate else "")
    rows = [
        ("planned / sent", f"{result.planned} / {result.sent}"),
        ("ok", str(result.ok)),
        ("errors", f"{result.errors} {json.dumps(result.error_kinds) if result.error_kinds else ''}".strip()),
        ("achieved rate", rate),
        ("late sends", f"{result.late_sends} (max {result.max_late_ms:.1f} ms late)"),
        ("elapsed", f"{result.elapsed_s:.1f} s"),
    ]
    if result.latency_ms:
        rows.append(("latency ms", _pcts(result.latency_ms)))
    if result.ttft_ms:
        rows.append(("client TTFT ms", _pcts(result.ttft_ms)))
    if result.variants:
        rows.append(("variants", ", ".join(f"{k}={v}" for k, v in sorted(result.variants.items()))))
    if result.publisher:
        rows.append(("publisher", ", ".join(f"{k}={v}" for k, v in result.publisher.items())))
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def _pcts(p: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.1f}" for k, v in p.items())


def register(cli: click.Group) -> None:
    cli.add_command(loadgen)
