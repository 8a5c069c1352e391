"""Token prices per model version, and the cost of an event that has token counts but no cost.

The table is keyed by model version (an event's `model_version`, else its `response_model`, else its `model`), each
entry in US dollars per million tokens: input, output, and cached input (input tokens served from a prompt cache,
billed at their own rate; the input rate when not given). It comes from settings (`LLMWATCH_PRICES`, JSON) and the
gateway config (`[prices."version"]`), and is applied wherever events enter: the gateway, the ingest service and
the SDK (the publisher), and the worker for events written to Kafka by anyone else. A cost the producer set is
never replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field

_PER = 1_000_000


class ModelPrice(BaseModel):
    """US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, allow_inf_nan=False, description="Per million input tokens.")
    output: float = Field(ge=0, allow_inf_nan=False, description="Per million output tokens.")
    cached_input: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Per million cached input tokens (default: the input rate)."
    )

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(cached_tokens, input_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return ((input_tokens - cached) * self.input + cached * cached_rate + output_tokens * self.output) / _PER


class Priced(Protocol):
    """What pricing reads of an event (an InferenceEvent; a protocol, so settings, which hold the table, need not
    import the schemas)."""

    model_version: str
    response_model: str | None
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cost_usd: float | None

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...


E = TypeVar("E", bound=Priced)


class PriceTable:
    """model version → ModelPrice; `apply` fills `cost_usd` where it is missing."""

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self.prices = dict(prices or {})

    def __bool__(self) -> bool:
        return bool(self.prices)

    def merged(self, other: Mapping[str, ModelPrice]) -> PriceTable:
        """This table with `other`'s entries on top (a gateway config over the settings)."""
        return PriceTable({**self.prices, **other})

    def price_of(self, event: Priced) -> ModelPrice | None:
        for key in (event.model_version, event.response_model, event.model):
            if key is not None and key in self.prices:
                return self.prices[key]
        return None

    def cost(self, event: Priced) -> float | None:
        """The cost of `event` at these prices (None: no price for it, or no tokens to price)."""
        if not (event.input_tokens or event.output_tokens):
            return None
        price = self.price_of(event)
        if price is None:
            return None
        return price.cost(event.input_tokens, event.output_tokens, event.cached_input_tokens)

    def apply(self, event: E) -> E:
        """`event` with its cost filled in when it has token counts, no cost, and a price; else `event` itself."""
        if event.cost_usd is not None or not self.prices:
            return event
        cost = self.cost(event)
        return event if cost is None else event.model_copy(update={"cost_usd": cost})
