"""Window agent: llm.eval.scores → event-time tumbling windows → llm.window.metrics.

Offsets of scores inside an open window are held (streams/hold.py) and released only once the window
was emitted, so a crash replays exactly the open windows; closed windows know their highest offset and
ignore the replayed records they already hold (streams/windowing.py).

Windows survive a hand-off. Several workers may run the window agent (one consumer group, the scores partitions
spread over them). Whenever this agent is assigned partitions — at start and at every rebalance — it reads the
windows already emitted back from llm.window.metrics (streams/window_restore.py) before it takes a score, so a
replay of a partition it took over never re-emits a final window with a partial count. At a rebalance it first
re-emits the late events it merged (so the next owner reads them), and it forgets the windows of partitions it
lost: their events were not committed, and the new owner replays them.
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

    def __init__(
        self, ctx: WorkerContext, cfg: WindowConfig, drift: DriftFn | None = None, *, reemit_interval_s: float = 0.0
    ) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.windower = TumblingWindower(cfg, reemit_interval_s=reemit_interval_s)
        self.drift = drift
        self.stream: Any = None
        self.held: HeldOffsets | None = None  # set with the stream; None when driven without Kafka (tests)
        self.restores = 0
        self.assigned: set[int] | None = None  # scores partitions owned; None: not tracked (driven without Faust)
        self.ready = asyncio.Event()  # cleared while a rebalance is under way: nothing is added or emitted
        self.ready.set()

    async def restore(self) -> None:
        """The windows already emitted (see streams/window_restore.py), read in before any score is taken."""
        topic = self.ctx.settings.topics.windows
        since = self.cfg.retention_s + self.cfg.size_s + self.cfg.lateness_s
        started = time.monotonic()
        try:
            found = await recent_window_metrics(self.ctx.settings, topic, since)
        except Exception as e:  # a worker that cannot read history still windows new data correctly
            log.warning("could not read emitted windows from %s (%s); a replay may re-emit partial windows", topic, e)
            found = []
        n = self.windower.restore_closed(found)
        self.restores += 1
        log.info(
            "restored %d closed windows from %d records of %s in %.1f s",
            n,
            len(found),
            topic,
            time.monotonic() - started,
        )

    async def on_revoked(self) -> None:
        """A rebalance begins: stop, and re-emit the late events merged so far, so the next owner reads them."""
        self.ready.clear()
        closing = self.windower.due(time.time(), flush_late=True)
        for c in closing:
            await self._emit(c)
        if closing:
            await self.ctx.app.producer.flush()  # on the broker before the next owner restores

    async def on_assigned(self, partitions: set[int]) -> None:
        """The rebalance ends with `partitions` of the scores topic: forget the lost ones, restore if any is new."""
        before = self.assigned if self.assigned is not None else set()
        lost, gained = before - partitions, partitions - before
        if lost:
            dropped = self.windower.drop_partitions(lost)
            if self.held is not None:
                self.held.forget(lost)
            log.info(
                "window: partitions %s moved away; %d held events left to their new owner", sorted(lost), len(dropped)
            )
        if gained or self.assigned is None:
            await self.restore()
        self.assigned = set(partitions)
        self.ready.set()

    async def add_batch(self, batch: list[Any]) -> None:
        await self.ready.wait()
        if self.assigned is not None:  # records read before a rebalance, of partitions that moved away
            batch = [e for e in batch if e.message.partition in self.assigned]
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
            outcome = self.windower.add(
                result.payload,
                partition=event.message.partition,
                offset=event.message.offset,
                wall_now=now,
                token=event,
            )
            if outcome in ("duplicate", "too_late"):
                m.late_events.labels(outcome=outcome).inc()
                await self._release([event])
            elif outcome == "late":
                m.late_events.labels(outcome="late").inc()  # re-emitted by `flush`, coalesced
        await self.flush(now)

    async def flush(self, now: float, *, flush_all: bool = False) -> int:
        if not self.ready.is_set():
            return 0
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
    w = ctx.settings.worker
    emitter = WindowEmitter(ctx, window_config(ctx), drift, reemit_interval_s=w.window_reemit_interval_s)
    emitter.assigned = set()
    emitter.ready.clear()  # until the first assignment has restored the emitted windows
    scores_topic = ctx.settings.topics.scores

    @ctx.app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: Any, **_: Any) -> None:
        await emitter.on_revoked()

    @ctx.app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **_: Any) -> None:
        await emitter.on_assigned({tp.partition for tp in assigned if tp.topic == scores_topic})

    @ctx.app.agent(ctx.topics["scores"], name="llmwatch.window")
    async def window(stream: Any) -> None:
        emitter.stream, emitter.held = stream, HeldOffsets(stream)
        async for batch in stream.take_events(512, within=0.5):
            await emitter.add_batch(batch)

    @ctx.app.timer(interval=1.0, name="llmwatch.window.clock")
    async def clock() -> None:
        if emitter.stream is not None:
            await emitter.flush(time.time())

    return emitter
