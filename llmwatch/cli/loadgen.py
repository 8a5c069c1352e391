"""`llmwatch loadgen --scenario NAME`."""

from __future__ import annotations

import click

from ._common import not_built


@click.command("loadgen", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def loadgen() -> None:
    """Open-loop traffic with known injected regressions."""
    not_built("loadgen", "issue 3")


def register(cli: click.Group) -> None:
    cli.add_command(loadgen)
