"""`llmwatch demo`: everything end to end on the embedded defaults."""

from __future__ import annotations

import click

from ._common import not_built


@click.command("demo", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def demo() -> None:
    """Run the end-to-end storyline and write a report."""
    not_built("demo", "issue 7")


def register(cli: click.Group) -> None:
    cli.add_command(demo)
