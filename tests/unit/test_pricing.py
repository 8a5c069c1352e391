"""The price table: cost = tokens × USD per million, cached input at its own rate, never over a producer's cost."""

from __future__ import annotations

import pytest

from llmwatch.inference.publisher import EventPublisher
from llmwatch.pricing import ModelPrice, PriceTable
from llmwatch.schemas import InferenceEvent
from llmwatch.settings import Settings

TABLE = PriceTable({"v1": ModelPrice(input=2.0, output=8.0, cached_input=0.5), "gpt-x": ModelPrice(input=1, output=1)})


def _event(**kw: object) -> InferenceEvent:
    return InferenceEvent(**{"deployment": "d", "model": "m", "model_version": "v1", **kw})  # type: ignore[arg-type]


def test_cost_by_hand() -> None:
    # 1,000 input of which 400 cached, 250 output: (600 × 2 + 400 × 0.5 + 250 × 8) / 1e6
    ev = TABLE.apply(_event(input_tokens=1000, cached_input_tokens=400, output_tokens=250))
    assert ev.cost_usd == pytest.approx((600 * 2.0 + 400 * 0.5 + 250 * 8.0) / 1e6)
    assert ModelPrice(input=3, output=4).cost(10, 0, 10) == pytest.approx(30 / 1e6)  # cached at the input rate


def test_a_producers_cost_no_tokens_or_no_price_leave_the_event_alone() -> None:
    given = _event(input_tokens=10, cost_usd=0.5)
    assert TABLE.apply(given) is given
    assert TABLE.apply(_event()).cost_usd is None
    assert TABLE.apply(_event(model_version="v9", input_tokens=5)).cost_usd is None


def test_lookup_falls_back_to_response_model_then_model() -> None:
    ev = InferenceEvent(deployment="d", model="gpt-x", model_version="unknown", input_tokens=1_000_000)
    assert TABLE.apply(ev).cost_usd == pytest.approx(1.0)


def test_settings_and_publisher_apply_it() -> None:
    settings = Settings(prices={"v1": {"input": 1.0, "output": 2.0}})  # type: ignore[dict-item]
    publisher = EventPublisher(settings, max_buffer=10)
    assert publisher.publish(_event(input_tokens=1_000_000, output_tokens=1_000_000))
    queued = publisher._waiting[0].payload
    assert isinstance(queued, InferenceEvent) and queued.cost_usd == pytest.approx(3.0)
    with pytest.raises(ValueError, match="extra"):
        ModelPrice.model_validate({"input": 1, "output": 1, "per_call": 3})
