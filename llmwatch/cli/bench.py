"""`llmwatch bench NAME`: the benchmarks (llmwatch/bench). Each exposes a click command named `command` and writes
its section of BENCHMARKS.md; a bench's module is imported only when that bench runs."""

from __future__ import annotations

import importlib

import click

#: bench name → module that defines `command` (a click.Command)
BENCHES = {
    "evaluators": "llmwatch.bench.evaluators",
    "gateway": "llmwatch.bench.gateway",
    "ingest": "llmwatch.bench.ingest",
    "pipeline": "llmwatch.bench.pipeline",
    "canary": "llmwatch.bench.canary",
    "soak": "llmwatch.bench.soak",
    "failover": "llmwatch.bench.failover",
}


class _BenchGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(BENCHES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module_name = BENCHES.get(name)
        if module_name is None:
            return None
        command: click.Command = importlib.import_module(module_name).command
        return command


@click.group("bench", cls=_BenchGroup)
def group() -> None:
    """Benchmarks (figures go to BENCHMARKS.md with the command that produced them)."""


def register(cli: click.Group) -> None:
    cli.add_command(group)
