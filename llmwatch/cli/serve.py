"""`llmwatch serve`: the OpenAI-compatible gateway."""

from __future__ import annotations

import click

from ._common import not_built


@click.command("serve", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def serve() -> None:
    """OpenAI-compatible inference gateway."""
    not_built("serve", "issue 3")


def register(cli: click.Group) -> None:
    cli.add_command(serve)
