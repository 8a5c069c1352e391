"""`llmwatch schemas export DIR`."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("schemas")
def group() -> None:
    """Topic payload schemas."""


@group.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export(directory: Path) -> None:
    """Write one JSON Schema file per topic payload into DIRECTORY."""
    from llmwatch.schemas.export import export_json_schemas

    for path in export_json_schemas(directory):
        click.echo(path)


@group.command("topics")
def topics() -> None:
    """List the topic registry (names from settings)."""
    from llmwatch.schemas import topic_registry
    from llmwatch.settings import get_settings

    for spec in topic_registry(get_settings()).values():
        compact = "compacted" if spec.compacted else "delete"
        click.echo(
            f"{spec.name:24} key={spec.key:30} partitions={spec.partitions} {compact:9} {spec.schema.schema_name}"
        )


def register(cli: click.Group) -> None:
    cli.add_command(group)
