"""Engine registry: kind name → factory, and the gateway config's `[[engines]]` entry.

The product's engines (transformers, vllm, openai) are imported only when asked for, so the gateway and the CLI
start fast and run where torch or vLLM are missing (the error then names the missing package). Other engines
plug in through the `llmwatch.engines` entry-point group, each a factory `(EngineSpec) -> Engine`: the
traffic simulator's `simulated` engine (llmwatch/sim) registers itself that way, so the gateway never imports
the simulator.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from .engine_base import Engine, EngineUnavailable

#: entry-point group of engine plugins (name → "module:factory")
ENTRY_POINT_GROUP = "llmwatch.engines"

#: the product's own engines: kind → "module:factory", imported on first use
BUILTIN: dict[str, str] = {
    "transformers": "llmwatch.inference.engine_transformers:from_spec",
    "vllm": "llmwatch.inference.engine_vllm:from_spec",
    "openai": "llmwatch.inference.engine_openai:from_spec",
}

EngineFactory = Callable[["EngineSpec"], Engine]


@cache
def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN}


def engine_kinds() -> tuple[str, ...]:
    """Every engine kind this installation can build: the built-in ones and the registered plugins."""
    return tuple(sorted({*BUILTIN, *_plugins()}))


def _factory(kind: str) -> EngineFactory:
    target = BUILTIN.get(kind) or _plugins().get(kind)
    if target is None:
        raise EngineUnavailable(f"no engine kind {kind!r} (known: {', '.join(engine_kinds())})")
    module, _, name = target.partition(":")
    factory: EngineFactory = getattr(importlib.import_module(module), name)
    return factory


class EngineSpec(BaseModel):
    """One engine of a gateway config (`[[engines]]` in the TOML file)."""

    kind: str
    model: Path | None = Field(None, description="Local HF model dir (transformers, vllm).")
    upstream: str | None = Field(None, description="Base URL of an OpenAI-compatible server (openai).")
    versions: list[str] = Field(
        default_factory=list,
        description="Model versions it serves: transformers/vllm one name (default: the model dir name); "
        "openai the upstream model ids (default: the upstream's /v1/models).",
    )
    seed: int = Field(0, description="Seed of the simulated engine.")
    options: dict[str, Any] = Field(default_factory=dict, description="Engine-specific keyword arguments.")

    @field_validator("kind")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in engine_kinds():
            raise ValueError(f"unknown engine kind {kind!r}; known: {', '.join(engine_kinds())}")
        return kind

    @model_validator(mode="after")
    def _needs(self) -> EngineSpec:
        if self.kind in {"transformers", "vllm"} and self.model is None:
            raise ValueError(f"engine {self.kind!r} needs `model` (a local model directory)")
        if self.kind == "openai" and not self.upstream:
            raise ValueError("engine 'openai' needs `upstream` (the base URL of an OpenAI-compatible server)")
        if self.kind in {"transformers", "vllm"} and len(self.versions) > 1:
            raise ValueError(f"engine {self.kind!r} serves one model version, got {self.versions}")
        return self


def build_engine(spec: EngineSpec) -> Engine:
    """A new, not yet started engine for `spec`."""
    return _factory(spec.kind)(spec)
