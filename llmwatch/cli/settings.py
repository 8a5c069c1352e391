"""`llmwatch settings`: the effective configuration (secrets masked) or its reference table."""

from __future__ import annotations

import json

import click


@click.command("settings")
@click.option("--markdown", is_flag=True, help="Print the reference table (docs/configuration.md).")
def settings_cmd(markdown: bool) -> None:
    """Show the effective settings (secrets masked)."""
    from llmwatch.settings import get_settings
    from llmwatch.settings_doc import effective_settings, settings_markdown

    if markdown:
        click.echo(settings_markdown(), nl=False)
    else:
        click.echo(json.dumps(effective_settings(get_settings()), indent=2, default=str))


def register(cli: click.Group) -> None:
    cli.add_command(settings_cmd)
