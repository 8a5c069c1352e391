"""`llmwatch bench NAME`: the benchmarks. Each lives next to the code it measures and exposes a click
command named `command`; they write their section of BENCHMARKS.md (llmwatch/benchreport.py)."""

from __future__ import annotations

import importlib

import click

from ._common import not_built

#: bench name → module that defines `command` (a click.Command)
BENCHES = {
    "evaluators": "llmwatch.evaluators.bench",
    "gateway": "llmwatch.inference.bench",
    "pipeline": "llmwatch.streams.bench",
    "canary": "llmwatch.evaluators.canary_bench",
    "soak": "llmwatch.streams.soak",
}


class _BenchGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(BENCHES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module_name = BENCHES.get(name)
        if module_name is None:
            return None
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise

            @click.command(name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
            def stub() -> None:
                not_built(f"bench {name}", "its issue")

            return stub
        return module.command


@click.group("bench", cls=_BenchGroup)
def group() -> None:
    """Benchmarks (figures go to BENCHMARKS.md with the command that produced them)."""


def register(cli: click.Group) -> None:
    cli.add_command(group)
