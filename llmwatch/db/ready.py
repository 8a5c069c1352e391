"""The analysts' ready queries in sql/queries, shipped as package data so `llmwatch db ready` finds them."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files


@dataclass(frozen=True)
class ReadyQuery:
    name: str
    sql: str

    @property
    def title(self) -> str:
        """The first line of the header comment."""
        return next((ln.lstrip("- ").strip() for ln in self.sql.splitlines() if ln.startswith("--")), "")


def ready_queries() -> dict[str, ReadyQuery]:
    folder = files("llmwatch.sql").joinpath("queries")
    found = [
        ReadyQuery(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8"))
        for p in folder.iterdir()
        if p.name.endswith(".sql")
    ]
    return {q.name: q for q in sorted(found, key=lambda q: q.name)}
