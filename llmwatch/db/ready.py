"""The analysts' ready queries in sql/queries, shipped as package data so `llmwatch db ready` finds them.

A query's values are server-side parameters (`{hours:UInt32}` in its SQL), each declared in its header comment:

    -- param hours UInt32 = 24  hours looked back from now
    -- param toxicity_threshold Float64 = eval.toxicity_threshold  score at or above which a response counts

A default is a literal (`''` is the empty string, which the queries read as "all"), or a settings path
(`eval.toxicity_threshold`): then the query uses the threshold windows, the judge and alerts use.
`llmwatch db ready NAME --param hours=6` overrides one; `llmwatch db ready` lists them all.

The header's first sentence is the query's title, the rest of its prose its description.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from llmwatch.errors import ConfigError

if TYPE_CHECKING:
    from llmwatch.settings import Settings

_PARAM = re.compile(r"^--\s*param\s+(?P<name>\w+)\s+(?P<type>\S+)\s*=\s*(?P<default>\S+)(?:\s+(?P<about>.*))?$")
_USED = re.compile(r"\{(?P<name>\w+):(?P<type>[^}]+)\}")


@dataclass(frozen=True)
class QueryParam:
    name: str
    type: str
    default: str
    about: str = ""

    def default_value(self, settings: Settings | None) -> Any:
        """The literal default, or the value of the setting it names (`eval.toxicity_threshold`; without
        `settings`, that setting's default)."""
        if len(self.default) >= 2 and self.default[0] == self.default[-1] == "'":
            return self.default[1:-1]  # a quoted literal: '' is the empty string
        section, _, field_name = self.default.partition(".")
        if not field_name or section[:1].isdigit():
            return self.default
        if settings is None:
            from llmwatch.settings import Settings

            settings = Settings()
        if not hasattr(getattr(settings, section, None), field_name):
            raise ConfigError(f"parameter {self.name}: no setting {self.default}")
        return getattr(getattr(settings, section), field_name)


@dataclass(frozen=True)
class ReadyQuery:
    name: str
    sql: str

    @property
    def header(self) -> list[str]:
        """The header comment's prose lines (parameter declarations left out)."""
        out = []
        for line in self.sql.splitlines():
            if not line.startswith("--"):
                break
            if not _PARAM.match(line):
                out.append(line.removeprefix("--").strip())
        return out

    @property
    def title(self) -> str:
        """The header comment's first sentence, whole (it may span lines)."""
        text = " ".join(ln for ln in self.header if ln)
        end = text.find(". ")
        return text if end < 0 else text[: end + 1]

    @property
    def description(self) -> str:
        """The header's prose after the title."""
        text = " ".join(ln for ln in self.header if ln)
        return text[len(self.title) :].strip()

    @cached_property
    def params(self) -> dict[str, QueryParam]:
        declared = {
            m["name"]: QueryParam(m["name"], m["type"], m["default"], m["about"] or "")
            for m in (_PARAM.match(ln) for ln in self.sql.splitlines() if ln.startswith("--"))
            if m
        }
        used = {m["name"] for m in _USED.finditer(self.sql)}
        if used - set(declared):
            raise ConfigError(
                f"ready query {self.name}: parameters without a `-- param` line: {sorted(used - set(declared))}"
            )
        return declared

    def parameters(
        self, settings: Settings | None = None, overrides: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Every declared parameter's value: the override, else the default (settings resolved)."""
        overrides = dict(overrides or {})
        unknown = set(overrides) - set(self.params)
        if unknown:
            known = ", ".join(self.params) or "none"
            raise ConfigError(
                f"ready query {self.name} has no parameter {', '.join(sorted(unknown))} (it has: {known})"
            )
        return {name: overrides.get(name, p.default_value(settings)) for name, p in self.params.items()}


def ready_queries() -> dict[str, ReadyQuery]:
    folder = files("llmwatch.sql").joinpath("queries")
    found = [
        ReadyQuery(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8"))
        for p in folder.iterdir()
        if p.name.endswith(".sql")
    ]
    return {q.name: q for q in sorted(found, key=lambda q: q.name)}
