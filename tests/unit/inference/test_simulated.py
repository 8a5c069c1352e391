"""Simulated engine: reproducible outcomes, real-time streaming that matches them, behaviours from the corpus."""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter

import pytest

from llmwatch.inference.engine_base import ChatMessage, EngineError, GenerationRequest, Timing, timed_stream
from llmwatch.sim.corpus import (
    fake_card,
    fake_iban,
    fake_phone,
    fake_ssn,
    iban_valid,
    load_corpus,
    luhn_valid,
)
from llmwatch.sim.engine import SimulatedEngine, default_demo_engine
from llmwatch.sim.profiles import LogNormal, VersionProfile

CORPUS = load_corpus()


def _request(version: str = "baseline", seed: int | None = 1, **kw: object) -> GenerationRequest:
    messages = (ChatMessage("system", CORPUS.system_prompt), ChatMessage("user", CORPUS.prompts[0].prompt))
    return GenerationRequest(model_version=version, messages=messages, seed=seed, **kw)  # type: ignore[arg-type]


def test_demo_engine_serves_baseline_and_canary_with_identical_profiles() -> None:
    engine = default_demo_engine(seed=0)
    assert engine.versions() == ["baseline", "canary"]
    assert engine.profiles["baseline"] == engine.profiles["canary"]
    assert engine.name == "simulated" and engine.simulated is True


def test_same_seed_same_outcome_different_seed_different_latency() -> None:
    a, b = default_demo_engine(seed=0), default_demo_engine(seed=0)
    assert a.plan(_request(seed=7)) == b.plan(_request(seed=7))
    assert a.plan(_request(seed=7)).ttft_ms != a.plan(_request(seed=8)).ttft_ms
    assert default_demo_engine(seed=1).plan(_request(seed=7)).ttft_ms != a.plan(_request(seed=7)).ttft_ms


def test_known_prompt_gets_its_corpus_answer() -> None:
    outcome = default_demo_engine().plan(_request())
    assert outcome.behaviour == "normal"
    assert outcome.response.startswith(CORPUS.prompts[0].answer)
    assert outcome.output_tokens == len(outcome.tokens) and outcome.finish_reason == "stop"


def test_max_tokens_truncates_with_finish_reason_length() -> None:
    outcome = default_demo_engine().plan(_request(max_tokens=5))
    assert outcome.output_tokens == 5 and outcome.finish_reason == "length"


def test_unknown_version_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="does not serve"):
        default_demo_engine().plan(_request(version="v9"))


def test_latency_distributions_follow_the_profile() -> None:
    profile = VersionProfile(ttft_ms=LogNormal(median=200, sigma=0.3), tpot_ms=LogNormal(median=20, sigma=0.1))
    engine = SimulatedEngine({"v": profile}, seed=3)
    outcomes = [engine.plan(_request("v", seed=i)) for i in range(2_000)]
    assert statistics.median(o.ttft_ms for o in outcomes) == pytest.approx(200, rel=0.05)
    assert statistics.median(o.tpot_ms for o in outcomes) == pytest.approx(20, rel=0.03)
    o = outcomes[0]
    assert o.e2e_ms == pytest.approx(o.ttft_ms + o.tpot_ms * (o.output_tokens - 1))


def test_behaviour_rates_follow_the_profile() -> None:
    profile = VersionProfile(error_rate=0.1, toxic_rate=0.2, pii_rate=0.1)
    engine = SimulatedEngine({"v": profile}, seed=0)
    counts = Counter(engine.plan(_request("v", seed=i)).behaviour for i in range(5_000))
    assert counts["error"] / 5_000 == pytest.approx(0.1, abs=0.02)
    # toxic and pii are drawn among the non-errors
    assert counts["toxic"] / 5_000 == pytest.approx(0.9 * 0.2, abs=0.02)
    assert counts["pii"] / 5_000 == pytest.approx(0.9 * 0.1, abs=0.02)
    toxic = next(o for i in range(100) if (o := engine.plan(_request("v", seed=i))).behaviour == "toxic")
    assert toxic.response in CORPUS.toxic


def test_rag_and_injection_prompts_answer_by_their_kind() -> None:
    profile = VersionProfile(error_rate=0, toxic_rate=0, pii_rate=0, hallucination_rate=1.0, injection_compliance=0.0)
    engine = SimulatedEngine({"v": profile})
    rag, inj = CORPUS.rag[0], CORPUS.injections[0]
    out = engine.plan(GenerationRequest(model_version="v", prompt=rag.question, seed=1))
    assert (out.behaviour, out.response, out.context) == ("hallucinated", rag.hallucinated, rag.context)
    out = engine.plan(GenerationRequest(model_version="v", prompt="anything", seed=1, hints={"item": inj.id}))
    assert out.behaviour == "refusal" and out.response in CORPUS.refusals


async def test_stream_plays_the_outcome_in_real_time() -> None:
    profile = VersionProfile(
        ttft_ms=LogNormal(median=60), tpot_ms=LogNormal(median=4), output_tokens=LogNormal(median=40), error_rate=0
    )
    engine = SimulatedEngine({"v": profile}, seed=0, chunk_ms=10)
    request = _request("v", seed=3)
    planned = engine.plan(request)
    timing = Timing()
    chunks = [c async for c in timed_stream(engine, request, timing)]
    assert "".join(c.text for c in chunks) == planned.response
    assert timing.output_tokens == planned.output_tokens >= 40
    assert timing.input_tokens == planned.input_tokens > 0
    assert chunks[-1].finish_reason == "stop" and chunks[-1].engine_metrics["sim_ttft_ms"] == 60
    assert len(chunks) < planned.output_tokens  # tokens due within chunk_ms travel together
    assert 60 <= timing.ttft_ms < 60 + 150  # measured, so scheduling noise only adds
    assert timing.tpot_ms == pytest.approx(4, abs=1.5)


async def test_an_error_outcome_raises_after_the_first_token_delay() -> None:
    engine = SimulatedEngine({"v": VersionProfile(error_rate=1.0, ttft_ms=LogNormal(median=5))})
    with pytest.raises(EngineError, match="simulated upstream error"):
        async for _ in engine.stream(_request("v")):
            pass


def test_fake_pii_is_valid_in_format() -> None:
    rng = random.Random(0)
    for _ in range(200):
        assert luhn_valid(fake_card(rng))
        assert iban_valid(fake_iban(rng))
        area, group, serial = map(int, fake_ssn(rng).split("-"))
        assert 0 < area < 900 and area != 666 and group > 0 and serial > 0
        assert re.fullmatch(r"\([2-9]\d\d\) [2-9]\d\d-\d{4}", fake_phone(rng))
    assert not luhn_valid("4111 1111 1111 1112") and luhn_valid("4111 1111 1111 1111")
    assert iban_valid("GB82 WEST 1234 5698 7654 32")


def test_pii_replies_carry_the_values_and_differ_between_draws() -> None:
    engine = SimulatedEngine({"v": VersionProfile(error_rate=0, toxic_rate=0, pii_rate=1.0)})
    replies = {engine.plan(_request("v", seed=i)).response for i in range(50)}
    assert len(replies) > 40
    assert all("{" not in r for r in replies)
    assert any(re.search(r"\b[\w.]+@example\.(com|org|net)\b", r) for r in replies)
