"""`llmwatch demo`: everything end to end on the embedded defaults (llmwatch/demo does the work)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=60),
    default=180.0,
    show_default=True,
    help="Time budget of the story (start-up and the report come on top); every phase and deadline scales with "
    "it. The story ends once both canaries' outcomes happened, plus a short cool-down.",
)
@click.option(
    "--scenario",
    default="demo-regression",
    show_default=True,
    help="What is wrong with the second canary: demo-regression (TTFT ×2 and PII leaks) or a loadgen scenario.",
)
@click.option("--rate", type=click.FloatRange(min=1), default=40.0, show_default=True, help="Requests per second.")
@click.option("--live/--no-live", default=None, help="Live terminal view (default: when stdout is a terminal).")
@click.option(
    "--full-evaluators", is_flag=True, help="Use the configured evaluator backends (slower), not the light ones."
)
@click.option("--keep-topics", is_flag=True, help="Leave this run's Kafka topics on the broker.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the traffic and the simulated engine.")
@click.option(
    "--engine",
    type=click.Choice(["simulated", "transformers", "openai"]),
    default="simulated",
    show_default=True,
    help="What serves v1 and v2 (v3, the bad build, is always simulated). A CPU model needs a low --rate (≈5).",
)
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path), help="transformers: model dir.")
@click.option("--upstream", help="openai: base URL of an OpenAI-compatible server that serves model ids v1 and v2.")
def demo(
    duration_s: float,
    scenario: str,
    rate: float,
    live: bool | None,
    full_evaluators: bool,
    keep_topics: bool,
    seed: int,
    engine: str,
    model: Path | None,
    upstream: str | None,
) -> None:
    """Run the storyline end to end and write an HTML report.

    Starts (or reuses) Kafka, a worker (all agents, ClickHouse migrated) and the gateway with versions v1, v2, v3;
    canary v2 is promoted step by step on pass verdicts (with an injection burst and prompt drift on the way),
    then canary v3 regresses and is rolled back by a fail verdict. Exit 0 when that happened (checked in
    ClickHouse), 1 when not; everything it started is stopped, on Ctrl-C too.
    """
    from llmwatch.demo import DemoOptions, run_demo
    from llmwatch.settings import get_settings

    options = DemoOptions(
        duration_s=duration_s,
        scenario=scenario,
        rate=rate,
        live=live,
        full_evaluators=full_evaluators,
        keep_topics=keep_topics,
        seed=seed,
        engine=engine,
        model=model,
        upstream=upstream,
    )
    result = run_demo(get_settings(), options)
    click.echo(f"report: {result.report}")
    click.echo(f"wall time: {result.wall_s:.0f} s")
    if not result.ok:
        click.echo(f"llmwatch demo: the story's outcomes did not happen: {result.message}", err=True)
        sys.exit(1)
    click.echo("demo complete: the story's outcomes happened")


def register(cli: click.Group) -> None:
    cli.add_command(demo)
