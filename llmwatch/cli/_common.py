"""Small helpers shared by the command modules."""

from __future__ import annotations

from llmwatch.errors import NotBuiltYet


def not_built(what: str, issue: str) -> None:
    raise NotBuiltYet(f"`llmwatch {what}` is not built yet ({issue})")
