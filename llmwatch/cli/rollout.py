"""`llmwatch controller`, `llmwatch rollout …`, `llmwatch experiment report`."""

from __future__ import annotations

import click

from ._common import not_built


@click.command("controller", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def controller() -> None:
    """The traffic controller."""
    not_built("controller", "issue 6")


@click.command("rollout", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def rollout() -> None:
    """pause | resume | promote | abort DEPLOYMENT."""
    not_built("rollout", "issue 6")


@click.command("experiment", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def experiment() -> None:
    """A/B experiment reports."""
    not_built("experiment", "issue 6")


def register(cli: click.Group) -> None:
    for c in (controller, rollout, experiment):
        cli.add_command(c)
