"""`llmwatch serve` (gateway) and `llmwatch loadgen`."""

from __future__ import annotations

import click

from ._common import not_built


@click.command("serve", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def serve() -> None:
    """OpenAI-compatible inference gateway."""
    not_built("serve", "issue 3")


@click.command("loadgen", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def loadgen() -> None:
    """Open-loop traffic with known injected regressions."""
    not_built("loadgen", "issue 3")


def register(cli: click.Group) -> None:
    cli.add_command(serve)
    cli.add_command(loadgen)
