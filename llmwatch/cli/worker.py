"""`llmwatch worker`: the Faust worker running the agents."""

from __future__ import annotations

import click


@click.command("worker")
@click.option("--agents", help="Comma-separated agents to run (default: settings.worker.agents).")
@click.option("--web-port", type=int, help="Port of the worker's /metrics page.")
@click.option("--loglevel", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
def worker(agents: str | None, web_port: int | None, loglevel: str) -> None:
    """Faust worker running the agents (score, window, sink, judge, controller, alerter)."""
    from llmwatch.settings import get_settings
    from llmwatch.streams.worker import run_worker

    settings = get_settings()
    if web_port is not None:
        settings = settings.model_copy(update={"worker": settings.worker.model_copy(update={"web_port": web_port})})
    run_worker(settings, agents.split(",") if agents else None, loglevel=loglevel)


def register(cli: click.Group) -> None:
    cli.add_command(worker)
