"""Engines without a network: the transformers engine on the tiny model, stream parsing, vLLM's timings, factory."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from llmwatch.harness.tiny_model import MARKER, build_tiny_model
from llmwatch.inference.engine_base import (
    ChatMessage,
    EngineError,
    EngineRequestError,
    EngineUnavailable,
    GenerationRequest,
    Timing,
    render_prompt,
    timed_stream,
)
from llmwatch.inference.engine_openai import OpenAIEngine, iter_sse_data
from llmwatch.inference.engine_transformers import TransformersEngine
from llmwatch.inference.engines import EngineSpec, build_engine

#: the engine fixture lives on the session loop; its tests must run there too
session_loop = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-model")


@pytest.fixture(scope="session")
async def engine(tiny_model: Path) -> AsyncIterator[TransformersEngine]:
    eng = TransformersEngine(tiny_model, version="tiny-v1")
    await eng.start()
    yield eng
    await eng.stop()


def _greedy_ids(engine: TransformersEngine, request: GenerationRequest) -> tuple[int, int]:
    """(prompt ids, generated ids) straight from `generate`, to check the streamed counts against."""
    import torch

    tok, model = engine._tokenizer, engine._model
    text, templated = render_prompt(tok, request)
    ids = tok(text, return_tensors="pt", add_special_tokens=not templated)["input_ids"]
    with torch.inference_mode():
        out = model.generate(input_ids=ids, max_new_tokens=request.max_tokens, do_sample=False)
    return ids.shape[1], out.shape[1] - ids.shape[1]


def test_tiny_model_is_reused_once_built(tiny_model: Path) -> None:
    stamp = (tiny_model / MARKER).stat().st_mtime_ns
    assert build_tiny_model(tiny_model) == tiny_model
    assert (tiny_model / MARKER).stat().st_mtime_ns == stamp
    assert (tiny_model / "model.safetensors").stat().st_size > 1_000_000


@session_loop
async def test_transformers_streams_token_ids_with_real_ttft(engine: TransformersEngine) -> None:
    request = GenerationRequest(
        model_version="tiny-v1", messages=(ChatMessage("user", "hello there"),), max_tokens=24, temperature=0.0
    )
    timing = Timing()
    chunks = [c async for c in timed_stream(engine, request, timing)]
    n_prompt, n_generated = _greedy_ids(engine, request)
    assert timing.output_tokens == n_generated
    assert timing.input_tokens == n_prompt
    assert sum(1 for c in chunks if c.tokens) == n_generated  # one chunk per generated step
    assert timing.ttft_ms is not None and timing.e2e_ms is not None
    assert 0 < timing.ttft_ms < timing.e2e_ms
    assert timing.finish_reason == ("length" if n_generated == 24 else "stop")


@session_loop
async def test_transformers_cancellation_stops_the_generate_thread(engine: TransformersEngine) -> None:
    request = GenerationRequest(model_version="tiny-v1", prompt="count with me", max_tokens=900, temperature=0.0)
    before = threading.active_count()
    stream = engine.stream(request)
    got = 0
    async for chunk in stream:
        got += chunk.tokens
        if got >= 3:
            break
    await stream.aclose()
    for _ in range(100):  # the stopping criterion ends generate at its next step
        if threading.active_count() <= before:
            break
        await asyncio.sleep(0.02)
    assert threading.active_count() <= before


@session_loop
async def test_transformers_refuses_what_it_cannot_serve(engine: TransformersEngine, tiny_model: Path) -> None:
    with pytest.raises(EngineRequestError, match="serves 'tiny-v1'"):
        async for _ in engine.stream(GenerationRequest(model_version="other", prompt="x")):
            pass
    with pytest.raises(EngineRequestError, match="exceeds the context"):
        async for _ in engine.stream(GenerationRequest(model_version="tiny-v1", prompt="x", max_tokens=5000)):
            pass
    with pytest.raises(EngineUnavailable, match="not loaded"):
        async for _ in TransformersEngine(tiny_model).stream(GenerationRequest(model_version="tiny-model")):
            pass
    with pytest.raises(EngineUnavailable, match="does not exist"):
        await TransformersEngine(tiny_model / "missing").start()


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


@session_loop
async def test_sse_parser_joins_multiline_data_and_skips_comments() -> None:
    got = [d async for d in iter_sse_data(_lines(": keep-alive", "data: a", "data: b", "", "event: x", "data:c", ""))]
    assert got == ["a\nb", "c"]


@session_loop
async def test_openai_chunks_count_tokens_and_take_usage_from_the_stream() -> None:
    # vLLM/OpenAI chat stream: a role announcement, two tokens (one an empty partial-UTF-8 delta), a closing
    # chunk with only the finish reason, then the usage chunk that is the truth for token counts.
    payloads = [
        '{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
        '{"choices":[{"index":0,"delta":{"content":"Hel"}}]}',
        '{"choices":[{"index":0,"delta":{"content":""}}]}',
        '{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}',
        '{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}',
        "[DONE]",
    ]
    chunks = [c async for c in OpenAIEngine("http://127.0.0.1:1")._chunks(_lines(*payloads))]
    assert [c.tokens for c in chunks] == [1, 1, 1]  # 2 streamed + 1 reported by usage only
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].input_tokens == 7
    assert "".join(c.text for c in chunks) == "Hel"


@session_loop
async def test_openai_error_mid_stream_is_an_engine_error() -> None:
    payloads = ['{"choices":[{"index":0,"text":"a"}]}', '{"error":{"message":"overloaded"}}']
    with pytest.raises(EngineError, match="overloaded"):
        async for _ in OpenAIEngine("http://127.0.0.1:1")._chunks(_lines(*payloads)):
            pass


def test_vllm_request_metrics_are_read_from_its_own_stats() -> None:
    from vllm.v1.metrics.stats import RequestStateStats

    from llmwatch.inference.engine_vllm import request_metrics

    stats = RequestStateStats(
        num_generation_tokens=11,
        queued_ts=100.0,
        scheduled_ts=100.002,
        first_token_ts=100.010,
        last_token_ts=100.060,
        first_token_latency=0.025,
    )
    got = request_metrics(stats, generated=11)
    assert got["ttft_ms"] == pytest.approx(25.0)
    assert got["tpot_ms"] == pytest.approx(50.0 / 10)
    assert got["queue_ms"] == pytest.approx(2.0)
    assert got["prefill_ms"] == pytest.approx(8.0)
    assert request_metrics(None, 3) == {}


def test_engine_specs_say_what_is_missing() -> None:
    with pytest.raises(ValidationError, match="needs `model`"):
        EngineSpec(kind="vllm")
    with pytest.raises(ValidationError, match="needs `upstream`"):
        EngineSpec(kind="openai")
    with pytest.raises(ValidationError, match="one model version"):
        EngineSpec(kind="transformers", model=Path("/m"), versions=["a", "b"])
    assert build_engine(EngineSpec(kind="simulated")).versions() == ["baseline", "canary"]
    eng = build_engine(EngineSpec(kind="transformers", model=Path("/models/chat-7b")))
    assert eng.name == "transformers" and eng.versions() == ["chat-7b"]
