"""`llmwatch worker` (Faust agents)."""

from __future__ import annotations

import click

from ._common import not_built


@click.command("worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def worker() -> None:
    """Faust worker running the agents."""
    not_built("worker", "issue 5")


def register(cli: click.Group) -> None:
    cli.add_command(worker)
