"""`llmwatch kafka up | down | status`: the local single-node broker (see llmwatch/local/kafka.py)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from llmwatch.settings import get_settings

if TYPE_CHECKING:
    from llmwatch.local.kafka import LocalKafka

EXIT_DOWN = 3


def _local_kafka() -> LocalKafka:
    """Imported lazily: other commands need neither aiokafka's admin client nor psutil."""
    from llmwatch.local.kafka import LocalKafka

    return LocalKafka(get_settings(), echo=click.echo)


@click.group("kafka")
def group() -> None:
    """Local Apache Kafka broker (KRaft, from Maven Central)."""


@group.command("up")
@click.option("--timeout", "timeout_s", default=90.0, show_default=True, help="Seconds to wait for the broker.")
def up(timeout_s: float) -> None:
    """Provision (once, cached), start and create topics."""
    _local_kafka().up(timeout_s=timeout_s)


@group.command("down")
@click.option("--timeout", "timeout_s", default=30.0, show_default=True, help="Seconds before SIGKILL.")
@click.option("--purge", is_flag=True, help="Also delete the broker's log dir (all topics and data).")
def down(timeout_s: float, purge: bool) -> None:
    """Stop the local broker."""
    kafka = _local_kafka()
    result = kafka.down(timeout_s=timeout_s, purge=purge)
    if result.pid is None:
        click.echo("local Kafka is not running")
    else:
        how = "killed after SIGTERM timed out" if result.killed else "stopped"
        click.echo(f"Kafka {how} (pid {result.pid}, {result.elapsed_s:.1f} s)")
    if result.purged:
        click.echo(f"deleted {kafka.paths.log_dir}")


@group.command("status")
def status() -> None:
    """Exit 0 when the broker is up, 3 when down."""
    state = _local_kafka().status()
    click.echo(state.describe())
    if not state.up:
        sys.exit(EXIT_DOWN)


@group.command("topics")
def topics() -> None:
    """Create the registry's topics on the configured cluster (any cluster, not only the local one)."""
    from llmwatch.kafka_topics import ensure_topics_sync
    from llmwatch.schemas import topic_registry
    from llmwatch.settings import get_settings

    settings = get_settings()
    created = ensure_topics_sync(settings)
    for spec in topic_registry(settings).values():
        state = "created" if spec.name in created else "exists"
        click.echo(f"{spec.name:28} {state:8} partitions={spec.partitions} {spec.config()['cleanup.policy']}")


def register(cli: click.Group) -> None:
    cli.add_command(group)
