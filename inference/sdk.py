"""The producer SDK for services that call an LLM themselves: emit InferenceEvent and Feedback to llmwatch.

Async services use `EventPublisher` directly. Everything else (Flask, Django, scripts) uses `LlmwatchClient`,
which runs the same publisher on a background thread, so `emit` is a non-blocking, thread-safe enqueue:

    from llmwatch.inference.sdk import LlmwatchClient, hash_id
    from llmwatch.schemas import Feedback, InferenceEvent

    with LlmwatchClient() as llmwatch:                      # LLMWATCH_KAFKA=broker:9092 and friends
        event = InferenceEvent(
            deployment="support-bot", model="gpt-x", model_version="2025-06", user_id=hash_id(user),
            prompt=prompt, response=answer, input_tokens=n_in, output_tokens=n_out,
            ttft_ms=ttft, e2e_ms=total, source="support-api",
        )
        llmwatch.emit(event)                                # False only if the buffer is full
        llmwatch.emit(Feedback(event_id=event.event_id, deployment="support-bot", thumbs=1))
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from concurrent.futures import Future

from llmwatch.errors import LlmwatchError
from llmwatch.schemas import Feedback, InferenceEvent
from llmwatch.settings import Settings, get_settings

from .publisher import EventPublisher, PublisherStats


def hash_id(raw: str, salt: str = "") -> str:
    """A pseudonymous user or session id (events must never carry the raw one)."""
    return hashlib.sha256(f"{salt}\x00{raw}".encode()).hexdigest()[:32]


class LlmwatchClient:
    """A publisher on its own thread and event loop, for code that has no event loop of its own."""

    def __init__(self, settings: Settings | None = None, *, max_buffer: int = 10_000, drain_timeout_s: float = 10):
        self.publisher = EventPublisher(settings or get_settings(), max_buffer=max_buffer)
        self._drain_timeout_s = drain_timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llmwatch-sdk", daemon=True)

    def start(self) -> LlmwatchClient:
        self._thread.start()
        self._call(self.publisher.start()).result(timeout=120)  # with redaction at source: loads the PII detector
        return self

    def emit(self, payload: InferenceEvent | Feedback) -> bool:
        """Enqueue for Kafka and return at once; False (counted in stats.dropped) when the buffer is full."""
        return self.publisher.publish(payload)

    def flush(self, timeout_s: float = 10.0) -> bool:
        return self._call(self.publisher.flush(timeout_s)).result(timeout=timeout_s + 5)

    def close(self) -> None:
        """Deliver what is buffered (up to drain_timeout_s), then stop the thread."""
        if not self._thread.is_alive():
            return
        try:
            self._call(self.publisher.stop(self._drain_timeout_s)).result(timeout=self._drain_timeout_s + 15)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    @property
    def stats(self) -> PublisherStats:
        return self.publisher.stats

    def __enter__(self) -> LlmwatchClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: object) -> Future:  # type: ignore[type-arg]
        if not self._thread.is_alive():
            raise LlmwatchError("LlmwatchClient is not started (use start() or a with-block)")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
