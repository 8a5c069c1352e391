"""`llmwatch db migrate | query "SQL"`."""

from __future__ import annotations

import click

from ._common import not_built


@click.group("db")
def group() -> None:
    """ClickHouse (embedded chDB by default)."""


@group.command("migrate")
def migrate() -> None:
    """Apply sql/migrations (re-running is a no-op)."""
    not_built("db migrate", "issue 2")


@group.command("query")
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
def query(sql: str, fmt: str) -> None:
    """Run SQL and print the result."""
    not_built("db query", "issue 2")


def register(cli: click.Group) -> None:
    cli.add_command(group)
