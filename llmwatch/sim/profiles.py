"""How a simulated model version behaves: latency and length distributions, error and behaviour rates."""

from __future__ import annotations

import math
import random

from pydantic import BaseModel, ConfigDict, Field


class LogNormal(BaseModel):
    """A lognormal by its median and the sigma of its log (0 gives the median every time)."""

    model_config = ConfigDict(frozen=True)

    median: float = Field(gt=0)
    sigma: float = Field(0.0, ge=0)

    def sample(self, rng: random.Random) -> float:
        return self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0))

    def scaled(self, factor: float) -> LogNormal:
        return LogNormal(median=self.median * factor, sigma=self.sigma)


class VersionProfile(BaseModel):
    """How one model version behaves."""

    model_config = ConfigDict(frozen=True)

    model: str = "llmwatch-sim-1"
    ttft_ms: LogNormal = LogNormal(median=120.0, sigma=0.3)
    tpot_ms: LogNormal = LogNormal(median=12.0, sigma=0.15)
    output_tokens: LogNormal = Field(
        LogNormal(median=48.0, sigma=0.35), description="Target length; normal answers are padded with filler."
    )
    error_rate: float = Field(0.005, ge=0, le=1)
    toxic_rate: float = Field(0.003, ge=0, le=1)
    pii_rate: float = Field(0.003, ge=0, le=1)
    hallucination_rate: float = Field(0.05, ge=0, le=1, description="Share of RAG answers that ignore the context.")
    injection_compliance: float = Field(0.05, ge=0, le=1, description="Share of injection prompts it obeys.")
    usd_per_1k_input: float = Field(0.0005, ge=0)
    usd_per_1k_output: float = Field(0.0015, ge=0)
