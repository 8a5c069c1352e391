"""CPU engine for a local Hugging Face model dir: `generate` runs in a thread and streams through a streamer.

transformers' TextIteratorStreamer decodes word by word; we subclass it so every generated step also
reports how many token ids it carried, and hand both to the event loop. That makes TTFT the first
generated token (not the first printable word) and output_tokens a count of ids, not of text chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine_base import (
    EngineError,
    EngineRequestError,
    EngineUnavailable,
    GenerationRequest,
    TokenChunk,
    default_version,
    render_prompt,
)

if TYPE_CHECKING:
    from .engines import EngineSpec

log = logging.getLogger(__name__)

try:  # guarded: the gateway runs the simulated engine where torch/transformers are missing
    from transformers import StoppingCriteria, TextIteratorStreamer
except ImportError as e:  # pragma: no cover - exercised only on slim installs
    _IMPORT_ERROR: ImportError | None = e
    StoppingCriteria = TextIteratorStreamer = object  # type: ignore[assignment,misc]
else:
    _IMPORT_ERROR = None


class _StepStreamer(TextIteratorStreamer):  # type: ignore[misc,valid-type]
    """TextIteratorStreamer that posts (text, token ids in this step) to an asyncio queue."""

    def __init__(self, tokenizer: Any, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._loop = loop
        self._queue = queue
        self._step_tokens = 0

    def put(self, value: Any) -> None:
        prompt = self.next_tokens_are_prompt
        self._step_tokens = 0 if prompt else int(value.numel())
        super().put(value)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        tokens, self._step_tokens = self._step_tokens, 0
        self.post(("end", text, 0) if stream_end else ("step", text, tokens))

    def post(self, item: tuple[str, Any, int]) -> None:
        # RuntimeError: the loop closed under a cancelled request; nobody is listening any more
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


class _StopWhenSet(StoppingCriteria):  # type: ignore[misc,valid-type]
    """Ends generation at the next step once the request is cancelled."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self._event.is_set(), dtype=torch.bool)


class TransformersEngine:
    """One local model, one model version; `max_concurrency` generations at a time (queued beyond)."""

    name = "transformers"

    def __init__(
        self,
        model_dir: Path | str,
        *,
        version: str | None = None,
        max_concurrency: int = 1,
        threads: int | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.version = version or default_version(model_dir)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._threads = threads
        self._model: Any = None
        self._tokenizer: Any = None
        self.load_s: float | None = None

    def versions(self) -> list[str]:
        return [self.version]

    @property
    def loaded(self) -> bool:
        return self._model is not None

    async def start(self) -> None:
        if _IMPORT_ERROR is not None:
            raise EngineUnavailable(f"engine 'transformers' needs torch and transformers: {_IMPORT_ERROR}")
        if not self.model_dir.is_dir():
            raise EngineUnavailable(f"model directory {self.model_dir} does not exist")
        started = time.perf_counter()
        self._tokenizer, self._model = await asyncio.to_thread(self._load)
        self.load_s = time.perf_counter() - started
        log.info("transformers engine loaded %s in %.2f s", self.model_dir, self.load_s)

    def _load(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self._threads:
            torch.set_num_threads(self._threads)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
            model = AutoModelForCausalLM.from_pretrained(self.model_dir).eval()
        except (OSError, ValueError) as e:
            raise EngineUnavailable(f"cannot load model from {self.model_dir}: {e}") from e
        return tokenizer, model

    async def stop(self) -> None:
        self._model = self._tokenizer = None

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenChunk]:
        if self._model is None:
            raise EngineUnavailable("engine 'transformers' is not loaded")
        if request.model_version != self.version:
            raise EngineRequestError(f"engine 'transformers' serves {self.version!r}, not {request.model_version!r}")
        async with self._slots:
            async for chunk in self._generate(request):
                yield chunk

    async def _generate(self, request: GenerationRequest) -> AsyncIterator[TokenChunk]:
        tokenizer, model = self._tokenizer, self._model
        text, templated = render_prompt(tokenizer, request)
        input_ids = tokenizer(text, return_tensors="pt", add_special_tokens=not templated)["input_ids"]
        n_input = int(input_ids.shape[1])
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and n_input + request.max_tokens > limit:
            raise EngineRequestError(
                f"prompt ({n_input} tokens) + max_tokens ({request.max_tokens}) exceeds the context ({limit})"
            )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()
        streamer = _StepStreamer(tokenizer, loop, queue)
        kwargs = self._generate_kwargs(request, tokenizer, streamer, cancel)
        kwargs["input_ids"] = input_ids
        worker = threading.Thread(target=self._run, args=(model, kwargs, streamer, request.seed), daemon=True)
        worker.start()
        produced = 0
        try:
            while True:
                kind, payload, tokens = await queue.get()
                if kind == "error":
                    raise EngineError(f"generation failed: {type(payload).__name__}: {payload}") from payload
                if kind == "end":
                    finish = "length" if produced >= request.max_tokens else "stop"
                    yield TokenChunk(text=payload, tokens=0, finish_reason=finish, input_tokens=n_input)
                    return
                produced += tokens
                yield TokenChunk(text=payload, tokens=tokens, input_tokens=n_input if produced == tokens else None)
        finally:
            cancel.set()

    @staticmethod
    def _generate_kwargs(
        request: GenerationRequest, tokenizer: Any, streamer: _StepStreamer, cancel: threading.Event
    ) -> dict[str, Any]:
        from transformers import StoppingCriteriaList

        kwargs: dict[str, Any] = {
            "max_new_tokens": request.max_tokens,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_StopWhenSet(cancel)]),
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        }
        if request.temperature > 0:
            kwargs.update(do_sample=True, temperature=request.temperature, top_p=request.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None)
        if request.stop:
            kwargs.update(stop_strings=list(request.stop), tokenizer=tokenizer)
        return kwargs

    @staticmethod
    def _run(model: Any, kwargs: dict[str, Any], streamer: _StepStreamer, seed: int | None) -> None:
        import torch

        try:
            if seed is not None:
                torch.manual_seed(seed)
            with torch.inference_mode():
                model.generate(**kwargs)
        except Exception as e:  # surfaced to the awaiting request as an EngineError
            streamer.post(("error", e, 0))


def from_spec(spec: EngineSpec) -> TransformersEngine:
    """The registry's factory (`kind = "transformers"`)."""
    assert spec.model is not None  # EngineSpec requires it for this kind
    return TransformersEngine(spec.model, version=spec.versions[0] if spec.versions else None, **spec.options)
