"""vLLM's async engine in-process (the CPU build here, regular `vllm` on GPU images: same code).

vLLM times each request itself (arrival → first token, first → last token); those figures are closer to
the model than ours, so they go into `engine_metrics` as `ttft_ms`/`tpot_ms` and the gateway prefers them.
Token counts are token ids, never text chunks (a partial UTF-8 character streams as an empty delta).
The engine core runs in a child process: scripts that start this engine need an `if __name__ == "__main__":`
guard.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine_base import (
    RESPONSE_FORMAT,
    TOOLS,
    EngineError,
    EngineRequestError,
    EngineUnavailable,
    GenerationRequest,
    TokenChunk,
    ToolCallDelta,
    default_version,
    render_prompt,
)

if TYPE_CHECKING:
    from .engines import EngineSpec

log = logging.getLogger(__name__)

#: What PLATFORM.md measured working on the CPU build; only set where the caller has not.
CPU_ENV = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


def prepare_env(cache_root: Path | None = None) -> None:
    """Offline, small KV cache, caches under a project temp dir: must run before vLLM spawns its engine core."""
    for key, value in CPU_ENV.items():
        os.environ.setdefault(key, value)
    root = cache_root or Path(tempfile.gettempdir()) / "llmwatch-vllm-cache"
    os.environ.setdefault("VLLM_CACHE_ROOT", str(root))


def request_metrics(metrics: Any, generated: int) -> dict[str, float]:
    """vLLM's own per-request timings (RequestStateStats) in milliseconds; absent values are left out."""
    if metrics is None:
        return {}
    out: dict[str, float] = {}
    first = float(getattr(metrics, "first_token_latency", 0.0) or 0.0)
    if first > 0:
        out["ttft_ms"] = first * 1000
    first_ts = float(getattr(metrics, "first_token_ts", 0.0) or 0.0)
    last_ts = float(getattr(metrics, "last_token_ts", 0.0) or 0.0)
    if generated > 1 and last_ts > first_ts > 0:
        out["tpot_ms"] = (last_ts - first_ts) * 1000 / (generated - 1)
    queued, scheduled = float(getattr(metrics, "queued_ts", 0.0) or 0.0), float(getattr(metrics, "scheduled_ts", 0.0))
    if scheduled >= queued > 0:
        out["queue_ms"] = (scheduled - queued) * 1000
    if first_ts > scheduled > 0:
        out["prefill_ms"] = (first_ts - scheduled) * 1000
    n = getattr(metrics, "num_generation_tokens", None)
    if n is not None:
        out["generation_tokens"] = float(n)
    return out


def structured_output(request: GenerationRequest) -> tuple[dict[str, Any] | None, str | None]:
    """The structured-output constraint a request needs (StructuredOutputsParams' keyword arguments) and, when it
    forces tool calls, the mode ("named": one call of that tool, the output is its arguments; "required": a JSON
    list of {"name", "parameters"}). Tools the model may call or not (`auto`) need vLLM's model-specific tool
    parser, which only vLLM's OpenAI server has: refused with a 400, never ignored."""
    choice = request.tool_choice
    if request.tools and choice != "none":
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
            tool = next((t for t in request.tools if t.get("function", {}).get("name") == name), None)
            if tool is None:
                raise EngineRequestError(f"tool_choice names {name!r}, which is not in tools", param="tool_choice")
            return {"json": tool["function"].get("parameters") or {"type": "object"}}, "named"
        if choice == "required":
            options = [
                {
                    "type": "object",
                    "properties": {
                        "name": {"const": t["function"]["name"]},
                        "parameters": t["function"].get("parameters") or {"type": "object"},
                    },
                    "required": ["name", "parameters"],
                }
                for t in request.tools
            ]
            schema: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"anyOf": options}}
            if request.parallel_tool_calls is False:
                schema["maxItems"] = 1
            return {"json": schema}, "required"
        raise EngineRequestError(
            "engine 'vllm' (in-process) can force a tool call (tool_choice 'required' or a named tool) but has no "
            "tool-call parser for tool_choice 'auto': serve the model with vLLM's OpenAI server behind an 'openai' "
            "engine for that",
            param="tool_choice",
        )
    fmt = request.response_format or {}
    if fmt.get("type") == "json_schema":
        return {"json": (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}}, None
    if fmt.get("type") == "json_object":
        return {"json_object": True}, None
    return None, None


class VllmEngine:
    """One model, one model version, served by vLLM's AsyncLLM in this process.

    response_format (JSON schema or object) and forced tool calls are honoured with vLLM's structured-output
    decoding: the answer follows the schema whatever the model's quality.
    """

    name = "vllm"
    features = frozenset({TOOLS, RESPONSE_FORMAT})

    def __init__(
        self,
        model_dir: Path | str,
        *,
        version: str | None = None,
        max_model_len: int = 1024,
        cache_root: Path | None = None,
        engine_args: dict[str, Any] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.version = version or default_version(model_dir)
        self._max_model_len = max_model_len
        self._cache_root = cache_root
        self._extra_args = dict(engine_args or {})
        self._llm: Any = None
        self._tokenizer: Any = None
        self.load_s: float | None = None

    def versions(self) -> list[str]:
        return [self.version]

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    async def start(self) -> None:
        if not self.model_dir.is_dir():
            raise EngineUnavailable(f"model directory {self.model_dir} does not exist")
        prepare_env(self._cache_root)
        try:
            from vllm import AsyncEngineArgs, AsyncLLMEngine
        except ImportError as e:
            raise EngineUnavailable(f"engine 'vllm' needs vLLM (vllm-cpu on CPU machines): {e}") from e
        args = {
            "model": str(self.model_dir),
            "served_model_name": self.version,
            "enforce_eager": True,
            "disable_log_stats": False,
            "max_model_len": self._max_model_len,
            **self._extra_args,
        }
        started = time.perf_counter()
        try:
            # In a thread: the engine core takes 15-40 s to start and /health must answer meanwhile.
            llm = await asyncio.to_thread(AsyncLLMEngine.from_engine_args, AsyncEngineArgs(**args))
            self._tokenizer = llm.get_tokenizer()
            self._llm = llm
        except Exception as e:
            raise EngineUnavailable(f"vLLM failed to start on {self.model_dir}: {type(e).__name__}: {e}") from e
        self.load_s = time.perf_counter() - started
        log.info("vLLM engine started on %s in %.1f s", self.model_dir, self.load_s)

    async def stop(self) -> None:
        llm, self._llm = self._llm, None
        self._tokenizer = None
        if llm is not None:
            llm.shutdown()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenChunk]:
        if self._llm is None:
            raise EngineUnavailable("engine 'vllm' is not loaded")
        if request.model_version != self.version:
            raise EngineRequestError(f"engine 'vllm' serves {self.version!r}, not {request.model_version!r}")
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        constraint, tool_mode = structured_output(request)
        try:
            params = SamplingParams(
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                top_p=request.top_p,
                stop=list(request.stop) or None,
                seed=request.seed,
                output_kind=RequestOutputKind.DELTA,
                structured_outputs=StructuredOutputsParams(**constraint) if constraint else None,
            )
        except ValueError as e:
            raise EngineRequestError(f"invalid sampling parameters: {e}") from e
        if tool_mode is not None:
            async for chunk in _as_tool_calls(self._generate(request, params), request, tool_mode):
                yield chunk
            return
        async for chunk in self._generate(request, params):
            yield chunk

    async def _generate(self, request: GenerationRequest, params: Any) -> AsyncIterator[TokenChunk]:
        text, _templated = render_prompt(self._tokenizer, request)
        request_id = request.request_id or uuid.uuid4().hex
        generated = 0
        first = True
        try:
            async for out in self._llm.generate({"prompt": text}, params, request_id):
                completion = out.outputs[0]
                n = len(completion.token_ids)
                generated += n
                chunk = TokenChunk(text=completion.text, tokens=n)
                if first:
                    chunk.input_tokens = len(out.prompt_token_ids or ())
                    first = False
                if out.finished:
                    chunk.finish_reason = completion.finish_reason or "stop"
                    chunk.engine_metrics = request_metrics(out.metrics, generated)
                yield chunk
        except (ValueError, TypeError) as e:  # vLLM's validation errors (prompt too long, bad params)
            raise EngineRequestError(f"vLLM refused the request: {e}") from e
        except EngineError:
            raise
        except Exception as e:
            if type(e).__name__ == "EngineDeadError":
                self._llm = None
            raise EngineError(f"vLLM failed: {type(e).__name__}: {e}") from e


async def _as_tool_calls(
    chunks: AsyncIterator[TokenChunk], request: GenerationRequest, mode: str
) -> AsyncIterator[TokenChunk]:
    """The constrained output as tool calls: a named tool's arguments stream as they come; a `required` list is
    parsed once complete (its JSON holds the names)."""
    if mode == "named":
        name = (request.tool_choice or {}).get("function", {}).get("name")  # type: ignore[union-attr]
        opened = False
        async for chunk in chunks:
            delta = ToolCallDelta(index=0, arguments=chunk.text)
            if not opened and (chunk.tokens or chunk.finish_reason):
                delta = ToolCallDelta(index=0, id=f"call_{uuid.uuid4().hex[:24]}", name=name, arguments=chunk.text)
                opened = True
            chunk.tool_calls, chunk.text = (delta,), ""
            if chunk.finish_reason == "stop":
                chunk.finish_reason = "tool_calls"
            yield chunk
        return
    text: list[str] = []
    async for chunk in chunks:
        text.append(chunk.text)
        chunk.text = ""
        if chunk.finish_reason is not None:
            try:
                calls = json.loads("".join(text))
            except ValueError:
                calls = []  # cut short (max_tokens): no complete call to report
            chunk.tool_calls = tuple(
                ToolCallDelta(
                    index=i,
                    id=f"call_{uuid.uuid4().hex[:24]}",
                    name=str(c.get("name")),
                    arguments=json.dumps(c.get("parameters"), separators=(",", ":")),
                )
                for i, c in enumerate(calls if isinstance(calls, list) else [])
                if isinstance(c, dict)
            )
            if chunk.tool_calls and chunk.finish_reason == "stop":
                chunk.finish_reason = "tool_calls"
        yield chunk


def from_spec(spec: EngineSpec) -> VllmEngine:
    """The registry's factory (`kind = "vllm"`)."""
    assert spec.model is not None  # EngineSpec requires it for this kind
    return VllmEngine(spec.model, version=spec.versions[0] if spec.versions else None, **spec.options)
