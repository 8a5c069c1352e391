"""`llmwatch bench NAME`: the benchmarks; each writes its figures for BENCHMARKS.md."""

from __future__ import annotations

import click


@click.group("bench")
def group() -> None:
    """Benchmarks (figures go to BENCHMARKS.md with the command that produced them)."""


def register(cli: click.Group) -> None:
    cli.add_command(group)
