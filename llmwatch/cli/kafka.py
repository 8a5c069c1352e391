"""`llmwatch kafka up | down | status`: the local single-node broker (see llmwatch/local/kafka.py)."""

from __future__ import annotations

import click

from ._common import not_built


@click.group("kafka")
def group() -> None:
    """Local Apache Kafka broker (KRaft, from Maven Central)."""


@group.command("up")
def up() -> None:
    """Provision (once, cached), start and create topics."""
    not_built("kafka up", "issue 2")


@group.command("down")
def down() -> None:
    """Stop the local broker."""
    not_built("kafka down", "issue 2")


@group.command("status")
def status() -> None:
    """Exit 0 when the broker is up, 3 when down."""
    not_built("kafka status", "issue 2")


def register(cli: click.Group) -> None:
    cli.add_command(group)
