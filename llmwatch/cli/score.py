"""`llmwatch score FILE.jsonl`: offline scoring with the evaluators."""

from __future__ import annotations

import click

from ._common import not_built


@click.command("score", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def score() -> None:
    """Score JSON lines (prompt, response, context) offline."""
    not_built("score", "issue 4")


def register(cli: click.Group) -> None:
    cli.add_command(score)
