"""The event publisher: every request's InferenceEvent (and any Feedback) goes to Kafka through it.

`publish` only appends to a bounded in-memory buffer and returns, so the response path never waits on Kafka.
A background task feeds an idempotent aiokafka producer (acks=all, compressed, lingering to batch). While
Kafka is unreachable the buffer holds up to `max_buffer` events; beyond that `publish` refuses and counts
each refusal, so the counters always add up:

    accepted == sent + failed + queued          (and every refused call is counted in `dropped`)

Delivery is at least once: an event whose delivery failed transiently is retried, and may then land twice;
downstream tables dedup on event_id.

With `LLMWATCH_REDACT_AT_SOURCE=true` every payload is redacted before it is sent (evaluators/source_redaction.py):
prompts, responses and the other free-text fields lose their PII, and each event carries the PII findings of its
raw texts. Redaction runs in the sender, in a worker thread and in batches, never in `publish`, so the request path
still only appends to the buffer; the raw payload exists only in this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.errors import KafkaTimeoutError, ProducerClosed

from llmwatch.errors import ConfigError
from llmwatch.pricing import PriceTable
from llmwatch.schemas import Feedback, InferenceEvent
from llmwatch.settings import Settings

log = logging.getLogger(__name__)

Publishable = InferenceEvent | Feedback


@dataclass
class PublisherStats:
    """Exact counters (one event loop touches them, so no locks)."""

    accepted: int = 0  # publish() returned True
    sent: int = 0  # acknowledged by every in-sync replica
    failed: int = 0  # accepted, then given up: a non-retriable error, or still unsent when stop() timed out
    dropped: int = 0  # publish() returned False: buffer full, or publisher stopped
    retries: int = 0  # deliveries re-queued after a transient error
    queued: int = 0  # accepted and not yet sent or failed (waiting + handed to the producer)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class _Item:
    topic: str
    key: bytes
    payload: Publishable
    ready: bool = True  # False: still to be redacted before it may be sent


#: Payloads redacted in one hop to the redaction thread.
REDACT_BATCH = 64


def _source_redactor(settings: Settings) -> Any:
    try:
        from llmwatch.evaluators.source_redaction import SourceRedactor
    except ImportError as e:
        raise ConfigError(
            f"LLMWATCH_REDACT_AT_SOURCE needs the PII evaluator here: pip install 'llmwatch[evaluators]' ({e})"
        ) from e
    return SourceRedactor.from_settings(settings)


class EventPublisher:
    """Non-blocking, bounded, batched publishing of InferenceEvent and Feedback to their topics."""

    def __init__(
        self,
        settings: Settings,
        max_buffer: int = 10_000,
        *,
        linger_ms: int = 10,
        compression: str | None = "zstd",
        max_batch_bytes: int = 256 * 1024,
        request_timeout_ms: int = 30_000,
        max_backoff_s: float = 5.0,
        stall_s: float = 5.0,
        client_id: str = "llmwatch-publisher",
        prices: PriceTable | None = None,
    ) -> None:
        if max_buffer < 1:
            raise ValueError("max_buffer must be at least 1")
        self.max_buffer = max_buffer
        self.stats = PublisherStats()
        self._settings = settings
        #: fills cost_usd of events with token counts and no cost (settings.prices unless given)
        self.prices = prices if prices is not None else settings.price_table
        self._topics: dict[type, str] = {InferenceEvent: settings.topics.events, Feedback: settings.topics.feedback}
        self._producer_kwargs: dict[str, object] = {
            **settings.kafka_client_kwargs(),
            "client_id": client_id,
            "enable_idempotence": True,
            "acks": "all",
            "compression_type": compression,
            "linger_ms": linger_ms,
            "max_batch_size": max_batch_bytes,
            "request_timeout_ms": request_timeout_ms,
        }
        self._max_backoff_s = max_backoff_s
        self._stall_s = stall_s
        self._waiting: deque[_Item] = deque()
        self._in_flight = 0
        self._lock = threading.Lock()  # counters and buffer: publish() may run on another thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._stopped = False
        self._last_progress = time.monotonic()
        self.last_error: str | None = None
        self.redact_at_source = settings.redact_at_source
        self._redactor: Any = None  # built in start() when redact_at_source

    # --- the caller's side ------------------------------------------------------------------------

    def publish(self, payload: Publishable) -> bool:
        """Enqueue without waiting; False (and counted in `dropped`) when the buffer is full or closed.

        Safe to call from other threads too (the sync SDK does); the sender is woken on its own loop.
        """
        topic = self._topics.get(type(payload))
        if topic is None:
            raise TypeError(f"EventPublisher publishes InferenceEvent or Feedback, not {type(payload).__name__}")
        if self.prices and isinstance(payload, InferenceEvent):
            payload = self.prices.apply(payload)
        with self._lock:
            if self._closing or self.stats.queued >= self.max_buffer:
                self.stats.dropped += 1
                return False
            self._waiting.append(_Item(topic, payload.event_id.encode(), payload, ready=not self.redact_at_source))
            self.stats.accepted += 1
            self.stats.queued += 1
        if self._loop is None or _running_loop() is self._loop:
            self._notify()
        else:
            self._loop.call_soon_threadsafe(self._notify)
        return True

    def _notify(self) -> None:
        self._idle.clear()
        self._wake.set()

    @property
    def connected(self) -> bool:
        """The producer is up and deliveries are progressing (nothing stuck in flight for `stall_s`)."""
        if self._producer is None:
            return False
        return self._in_flight == 0 or time.monotonic() - self._last_progress < self._stall_s

    @property
    def queue_depth(self) -> int:
        return self.stats.queued

    def room(self) -> int:
        """How many more events `publish` would accept now (0 once stopping): a batch checks before it starts."""
        return 0 if self._closing else max(self.max_buffer - self.stats.queued, 0)

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background sender; Kafka being down is not an error (events buffer until it is back)."""
        if self._task is None:
            _check_compression(self._producer_kwargs["compression_type"])  # fail here, not in the background
            if self.redact_at_source and self._redactor is None:  # fail here too: no redactor, nothing is sent
                self._redactor = await asyncio.to_thread(_source_redactor, self._settings)
            self._closing = self._stopped = False
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self._run(), name="llmwatch-publisher")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything accepted so far is sent or failed; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Refuse new events, deliver what is buffered within `drain_timeout`, count the rest as failed."""
        self._closing = True
        self._wake.set()
        deadline = time.monotonic() + drain_timeout
        if self._task is not None:
            await self.flush(drain_timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await asyncio.wait_for(producer.stop(), max(deadline - time.monotonic(), 0.5))
            except (TimeoutError, AioKafkaError, OSError) as e:
                log.warning("publisher: producer did not close cleanly: %r", e)
        with self._lock:
            self._stopped = True  # late producer callbacks must not touch the final counts
            lost = self.stats.queued
            self.stats.failed += lost
            self.stats.queued = 0
            self._waiting.clear()
            self._in_flight = 0
        if lost:
            log.error("publisher: %d event(s) not delivered before stop (Kafka at %s)", lost, self._settings.kafka)
        self._idle.set()

    async def __aenter__(self) -> EventPublisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- the sender -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._feed()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not silently stop publishing for the life of the process
                log.exception("publisher: sender loop failed; restarting it in 1 s")
                await asyncio.sleep(1.0)

    async def _feed(self) -> None:
        backoff = 0.1
        while True:
            producer = self._producer or await self._connect()
            with self._lock:
                item = self._waiting.popleft() if self._waiting else None
                if item is None:
                    self._wake.clear()
                else:
                    self._in_flight += 1
            if item is None:
                await self._wake.wait()
                continue
            if not item.ready:
                item = await self._redact(item)
            try:
                future = await producer.send(item.topic, value=item.payload.encode(), key=item.key)
            except (KafkaTimeoutError, ProducerClosed, OSError) as e:
                # Could not even hand it over (no metadata / batch full for request_timeout_ms): Kafka is away.
                self._requeue(item, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            except AioKafkaError as e:
                self._give_up(item, e)
                continue
            backoff = 0.1
            future.add_done_callback(partial(self._delivered, item))

    async def _redact(self, item: _Item) -> _Item:
        """`item` redacted, and up to REDACT_BATCH - 1 more waiting ones with it (put back at the front, ready), in
        the redaction thread so that the event loop keeps serving."""
        with self._lock:
            more: list[_Item] = []
            while self._waiting and not self._waiting[0].ready and len(more) < REDACT_BATCH - 1:
                more.append(self._waiting.popleft())
        done = await asyncio.to_thread(self._redact_items, [item, *more])
        with self._lock:
            self._waiting.extendleft(reversed(done[1:]))
        return done[0]

    def _redact_items(self, items: list[_Item]) -> list[_Item]:
        out = []
        for it in items:
            p = it.payload
            try:
                safe = self._redactor.event(p) if isinstance(p, InferenceEvent) else self._redactor.feedback(p)
            except Exception as e:  # the redactors withhold what they cannot redact; this is the last guard
                log.warning("publisher: redacting %s failed (%s); its texts are withheld", it.key.decode(), e)
                safe = self._redactor.withheld(p)
            out.append(_Item(it.topic, it.key, safe, ready=True))
        return out

    async def _connect(self) -> AIOKafkaProducer:
        backoff = 0.1
        while True:
            producer = AIOKafkaProducer(**self._producer_kwargs)
            try:
                await producer.start()
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            except (AioKafkaError, OSError) as e:
                self.last_error = repr(e)
                log.warning("publisher: Kafka at %s unreachable (%r); retry in %.1fs", self._settings.kafka, e, backoff)
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            self._producer = producer
            self._last_progress = time.monotonic()
            return producer

    def _delivered(self, item: _Item, future: asyncio.Future[object]) -> None:
        if self._stopped:
            return
        error = None if future.cancelled() else future.exception()
        if future.cancelled():
            self._requeue(item, ProducerClosed())
        elif error is None:
            with self._lock:
                self._in_flight -= 1
                self.stats.sent += 1
                self.stats.queued -= 1
                idle = self.stats.queued == 0
            self._last_progress = time.monotonic()
            self.last_error = None
            if idle:
                self._idle.set()
        elif isinstance(error, AioKafkaError) and error.retriable:
            self._requeue(item, error)
        else:
            self._give_up(item, error)

    def _requeue(self, item: _Item, error: BaseException) -> None:
        with self._lock:
            self._in_flight -= 1
            self.stats.retries += 1
            self._waiting.appendleft(item)
        self.last_error = repr(error)
        self._wake.set()

    def _give_up(self, item: _Item, error: BaseException) -> None:
        with self._lock:
            self._in_flight -= 1
            self.stats.failed += 1
            self.stats.queued -= 1
            idle = self.stats.queued == 0
        self.last_error = repr(error)
        log.error("publisher: event %s to %s failed for good: %r", item.key.decode(), item.topic, error)
        if idle:
            self._idle.set()


def _check_compression(codec: object) -> None:
    if codec is None:
        return
    checker = AIOKafkaProducer._COMPRESSORS.get(str(codec), (None,))[0]
    if checker is None:
        raise ConfigError(f"event publisher: unknown compression {codec!r} (gzip, snappy, lz4, zstd or None)")
    if not checker():
        raise ConfigError(f"event publisher: the {codec} codec is not installed (pip install 'aiokafka[{codec}]')")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # called from a thread without a loop
        return None
