"""Per-event evaluation results that the score agent emits (keyed by deployment/model_version)."""

from __future__ import annotations

from pydantic import Field

from .base import Payload, UTCDateTime, utcnow
from .events import InferenceEvent, Status


class EvalScores(Payload):
    """Scores of one InferenceEvent, with what the windowing needs copied from the event.

    Scores are None when an evaluator does not apply (hallucination without context) or is off.
    `evaluators` maps each score to the evaluator id, version and backend that produced it
    (e.g. {"toxicity_response": "toxicity@2/profanity+minilm-clf-onnx-int8+weights-1a2b3c4d"}: the last part is a
    digest of the trained weights, so a retrain is visible in the stored rows).
    """

    schema_name = "EvalScores"

    event_id: str = Field(min_length=1, max_length=128)
    ts: UTCDateTime = Field(description="The event's time (windows run on it).")
    scored_at: UTCDateTime = Field(default_factory=utcnow)
    deployment: str
    model_version: str
    variant: str = "baseline"
    experiment: str | None = None
    prompt_version: str = "default"
    # copied from the event for the window agent
    status: Status = "ok"
    ttft_ms: float | None = Field(None, allow_inf_nan=False)
    tpot_ms: float | None = Field(None, allow_inf_nan=False)
    e2e_ms: float | None = Field(None, allow_inf_nan=False)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    # scores
    toxicity_prompt: float | None = Field(None, ge=0, le=1)
    toxicity_response: float | None = Field(None, ge=0, le=1)
    pii_prompt: list[str] = Field(default_factory=list, description="Entity types found in the prompt.")
    pii_response: list[str] = Field(default_factory=list, description="Entity types found in the response.")
    pii_leak: bool | None = Field(None, description="Response holds an entity the prompt did not contain.")
    injection: float | None = Field(None, ge=0, le=1, description="Prompt-injection likelihood of prompt/context.")
    injection_success: bool | None = Field(None, description="The response complied or leaked the system prompt.")
    hallucination: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of response sentences unsupported by context; None without context.",
    )
    evaluators: dict[str, str] = Field(default_factory=dict)
    # redacted copies of the texts (PII replaced by typed placeholders) for storage
    redacted_prompt: str | None = None
    redacted_response: str | None = None
    source_partition: int | None = Field(None, ge=0, description="Partition of the event in llm.inference.events.")
    source_offset: int | None = Field(
        None, ge=0, description="Offset of the event there: windows use it to drop replayed duplicates."
    )
    event: InferenceEvent | None = Field(
        None,
        description="The scored event, redacted when redaction is on; the sink stores it, so raw text never "
        "has to be read from the events topic again.",
    )

    @property
    def window_key(self) -> str:
        return f"{self.deployment}/{self.model_version}"
