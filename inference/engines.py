"""Engine factory (kind name → engine) and the errors engines raise with an HTTP meaning.

Heavy engines (torch, vLLM) are imported only when asked for, so the simulated gateway and the CLI
start fast and run where those packages are missing (the error then names the missing package).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from .engine_base import Engine, EngineError

EngineKind = Literal["simulated", "transformers", "vllm", "openai"]
ENGINE_KINDS: tuple[str, ...] = ("simulated", "transformers", "vllm", "openai")


class EngineRequestError(EngineError):
    """The engine refused the request as invalid (prompt too long, bad sampling values): a 400 naming `param`."""

    status_code = 400

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class EngineUnavailable(EngineError):
    """The engine is not loaded (yet) or was stopped: a 503, the client may retry."""

    status_code = 503


class UpstreamError(EngineError):
    """An OpenAI-compatible upstream failed; keeps its status for the log and the event."""

    status_code = 502

    def __init__(self, message: str, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status


class EngineSpec(BaseModel):
    """One engine of a gateway config (`[[engines]]` in the TOML file)."""

    kind: EngineKind
    model: Path | None = Field(None, description="Local HF model dir (transformers, vllm).")
    upstream: str | None = Field(None, description="Base URL of an OpenAI-compatible server (openai).")
    versions: list[str] = Field(
        default_factory=list,
        description="Model versions it serves: transformers/vllm one name (default: the model dir name); "
        "openai the upstream model ids (default: the upstream's /v1/models).",
    )
    seed: int = Field(0, description="Seed of the simulated engine.")
    options: dict[str, Any] = Field(default_factory=dict, description="Engine-specific keyword arguments.")

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
    version = spec.versions[0] if spec.versions else None
    if spec.kind == "simulated":
        return _simulated(spec)
    if spec.kind == "transformers":
        from .engine_transformers import TransformersEngine

        return TransformersEngine(spec.model, version=version, **spec.options)
    if spec.kind == "vllm":
        from .engine_vllm import VllmEngine

        return VllmEngine(spec.model, version=version, **spec.options)
    from .engine_openai import OpenAIEngine

    assert spec.upstream is not None
    return OpenAIEngine(spec.upstream, models=spec.versions or None, **spec.options)


def _simulated(spec: EngineSpec) -> Engine:
    """The demo engine, or versions with profiles from the config (`options.profile`, `options.profiles.<v>`)."""
    from .engine_simulated import SimulatedEngine, VersionProfile, default_demo_engine

    if not spec.versions and not spec.options:
        return default_demo_engine(seed=spec.seed)
    options = dict(spec.options)
    common = options.pop("profile", {})
    per_version = options.pop("profiles", {})
    versions = spec.versions or list(per_version) or ["baseline", "canary"]
    profiles = {v: VersionProfile.model_validate({**common, **per_version.get(v, {})}) for v in versions}
    return SimulatedEngine(profiles, seed=spec.seed, **options)


def default_version(model: Path | str) -> str:
    """Version name of a local model when none is configured: its folder name."""
    return Path(model).resolve().name or "model"
