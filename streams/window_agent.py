"""Window agent: llm.eval.scores → event-time tumbling windows → llm.window.metrics.

Offsets of scores inside an open window are held (streams/hold.py) and released only once the window
was emitted, so a crash replays exactly the open windows; closed windows know their highest offset and
ignore the replayed records they already hold (streams/windowing.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from llmwatch.evaluators.metrics import Thresholds
from llmwatch.schemas import EvalScores
from llmwatch.schemas.registry import MAX_MESSAGE_BYTES

from .context import WorkerContext
from .decode import Decoded, decode
from .hold import HeldOffsets
from .window_restore import recent_window_metrics
from .windowing import Closing, TumblingWindower, WindowConfig, to_metrics

log = logging.getLogger(__name__)
STAGE = "window"

DriftFn = Callable[[Closing], tuple[float | None, float | None]]


def window_config(ctx: WorkerContext) -> WindowConfig:
    w, e = ctx.settings.worker, ctx.settings.eval
    return WindowConfig(
        size_s=w.window_size_s,
        lateness_s=w.window_lateness_s,
        idle_close_s=w.window_idle_close_s,
        retention_s=max(3600.0, w.window_size_s + w.window_lateness_s),
        thresholds=Thresholds.from_settings(e),
    )


class WindowEmitter:
    """Glue between the pure windower and the topics: emit, then release the held offsets."""

    def __init__(self, ctx: WorkerContext, cfg: WindowConfig, drift: DriftFn | None = None) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.windower = TumblingWindower(cfg)
        self.drift = drift
        self.stream: Any = None
        self.held: HeldOffsets | None = None  # set with the stream; None when driven without Kafka (tests)
        self.restored = False

    async def restore(self) -> None:
        """Before the first score: the windows already emitted (see streams/window_restore.py)."""
        if self.restored:
            return
        topic = self.ctx.settings.topics.windows
        since = self.cfg.retention_s + self.cfg.size_s + self.cfg.lateness_s
        started = time.monotonic()
        try:
            found = await recent_window_metrics(self.ctx.settings, topic, since)
        except Exception as e:  # a worker that cannot read history still windows new data correctly
            log.warning("could not read emitted windows from %s (%s); a replay may re-emit partial windows", topic, e)
            found = []
        n = self.windower.restore_closed(found)
        self.restored = True
        log.info(
            "restored %d closed windows from %d records of %s in %.1f s",
            n,
            len(found),
            topic,
            time.monotonic() - started,
        )

    async def add_batch(self, batch: list[Any]) -> None:
        m = self.ctx.metrics
        m.events.labels(agent=STAGE).inc(len(batch))
        now = time.time()
        for event in batch:
            self._hold(event)  # before anything can fail: an unprocessed event must never be acked
        for event in batch:
            result = decode(EvalScores, event.message.value, max_bytes=MAX_MESSAGE_BYTES)
            if not isinstance(result, Decoded):
                await self.ctx.reject(event, result, STAGE)
                await self._release([event])
                continue
            outcome, re_emit = self.windower.add(
                result.payload,
                partition=event.message.partition,
                offset=event.message.offset,
                wall_now=now,
                token=event,
            )
            if outcome in ("duplicate", "too_late"):
                m.late_events.labels(outcome=outcome).inc()
                await self._release([event])
            elif re_emit is not None:
                m.late_events.labels(outcome="late").inc()
                await self._emit(re_emit)
        await self.flush(now)

    async def flush(self, now: float, *, flush_all: bool = False) -> int:
        closing = self.windower.due(now, flush_all=flush_all)
        for c in closing:
            await self._emit(c)
        self.ctx.metrics.open_windows.set(self.windower.open_windows)
        self.ctx.metrics.held_events.set(self.windower.held())
        return len(closing)

    async def _emit(self, c: Closing) -> None:
        # drift once per window, when it first closes; a late re-emit keeps that value
        if self.drift is not None and c.stats.drift is None and len(c.stats.prompts) > 0:
            try:
                # off the event loop: embedding a window's sample takes ~0.3 s that consuming and sinking need
                c.stats.drift = await asyncio.to_thread(self.drift, c)
            except Exception as e:
                log.warning("drift check failed for %s: %s", c.key, e)
                c.stats.drift = (None, None)
        drift = c.stats.drift or (None, None)
        metrics = to_metrics(c.key, c.start, self.cfg, c.stats, final=c.final, drift=drift)
        key = f"{c.key.deployment}/{c.key.model_version}".encode()
        await self.ctx.topics["windows"].send(key=key, value=metrics.encode())
        self.ctx.metrics.emitted.labels(agent=STAGE).inc()
        await self._release(c.tokens)
        c.tokens.clear()

    def _hold(self, event: Any) -> None:
        if self.held is not None:
            self.held.hold(event)

    async def _release(self, events: list[Any]) -> None:
        if self.held is not None:
            await self.held.release(events)


def install(ctx: WorkerContext, drift: DriftFn | None = None) -> WindowEmitter:
    emitter = WindowEmitter(ctx, window_config(ctx), drift)

    @ctx.app.agent(ctx.topics["scores"], name="llmwatch.window")
    async def window(stream: Any) -> None:
        await emitter.restore()
        emitter.stream, emitter.held = stream, HeldOffsets(stream)
        async for batch in stream.take_events(512, within=0.5):
            await emitter.add_batch(batch)

    @ctx.app.timer(interval=1.0, name="llmwatch.window.clock")
    async def clock() -> None:
        if emitter.stream is not None:
            await emitter.flush(time.time())

    return emitter
