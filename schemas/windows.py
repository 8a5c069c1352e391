"""Windowed aggregates per deployment × model_version × variant × prompt_version."""

from __future__ import annotations

from pydantic import Field

from .base import Payload, UTCDateTime, utcnow


class WindowMetrics(Payload):
    """One tumbling (or hopping) window of scores. `window_id` is stable, so re-emits replace."""

    schema_name = "WindowMetrics"

    window_id: str = Field(description="deployment/model_version/variant/prompt_version/start-epoch-ms/size_s")
    window_start: UTCDateTime
    window_end: UTCDateTime
    size_s: float = Field(gt=0)
    emitted_at: UTCDateTime = Field(default_factory=utcnow)
    final: bool = Field(True, description="False for early (partial) emits of a window still open.")
    deployment: str
    model_version: str
    variant: str = "baseline"
    prompt_version: str = "default"
    count: int = Field(ge=0)
    error_count: int = Field(0, ge=0, description="Requests with status error (evaluators/metrics.py).")
    cancelled_count: int = Field(
        0, ge=0, description="Requests the client cancelled: in `count`, not in the error rate's denominator."
    )
    late_count: int = Field(0, ge=0, description="Events that arrived after the window closed (counted, still stored).")
    error_rate: float = Field(0.0, ge=0, le=1, description="error_count / (count − cancelled_count).")
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    ttft_p99_ms: float | None = None
    tpot_p50_ms: float | None = None
    tpot_p95_ms: float | None = None
    tpot_p99_ms: float | None = None
    e2e_p50_ms: float | None = None
    e2e_p95_ms: float | None = None
    e2e_p99_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    toxicity_rate: float | None = Field(None, ge=0, le=1)
    toxicity_mean: float | None = Field(None, ge=0, le=1)
    pii_leak_rate: float | None = Field(None, ge=0, le=1)
    injection_rate: float | None = Field(None, ge=0, le=1)
    injection_mean: float | None = Field(None, ge=0, le=1)
    injection_success_rate: float | None = Field(None, ge=0, le=1)
    hallucination_rate: float | None = Field(None, ge=0, le=1)
    hallucination_mean: float | None = Field(None, ge=0, le=1)
    hallucination_count: int = Field(0, ge=0, description="Events with context, where hallucination applies.")
    drift_score: float | None = Field(None, description="MMD² of prompt embeddings vs the reference window.")
    drift_p_value: float | None = Field(None, ge=0, le=1)
    sketches: dict[str, str] = Field(
        default_factory=dict, description="Serialized mergeable latency sketches (base64), for roll-ups."
    )
