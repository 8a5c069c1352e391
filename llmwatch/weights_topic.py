"""The compacted weights topic (llm.traffic.weights), read one way by everyone who follows it.

Its readers — the gateway's router (which split serves), the controller (its rollouts, and whether another
controller took over), the judge (which canary it judges), `llmwatch rollout` and the demo — read it without a
consumer group, every partition from the beginning, and pass each record through one `WeightsView`, so they
agree on what the topic says:

- **Order and fencing.** Every record carries the epoch of the controller that wrote it (each controller that
  takes over raises it) and a seq per deployment. A record applies when its (epoch, seq) is above its
  deployment's current one and its epoch is not below the highest epoch seen on the topic; an epoch belongs to
  the controller whose record reached the topic first with it (two controllers that took the same epoch at
  once: the second is fenced). Anything else is *stale* and rejected: a replayed copy, an older move, or a move
  of a controller that was replaced (fenced).
- **Tombstones** (a null value keyed by the deployment: how a compacted topic deletes a key) delete the
  deployment: the router serves its default version again, the controller and the judge forget its rollout.
  A tombstone without a key is skipped.
- **Unreadable records** are skipped, counted and logged; they never stop a reader.
- **A missing topic** holds nothing: the reader is caught up at once (the defaults are current), keeps looking
  for the topic, and logs that it is missing; `WeightsView.topic_exists` lets a caller such as
  `llmwatch rollout status` say so.
- **Kafka errors** are retried with back-off; the reconnect replays the topic, which changes nothing (no record
  is newer than what the view holds).

Core, not streams or inference: both import it, and they never import each other.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError as AioKafkaError

from llmwatch.errors import KafkaError
from llmwatch.local.aio import cancel_and_wait
from llmwatch.schemas import SchemaError, TrafficWeights
from llmwatch.settings import Settings

log = logging.getLogger(__name__)

#: how often a reader looks for its topic while it has no partitions (it may not exist yet)
TOPIC_LOOK_S = 0.5
#: how often a reader says that the topic is still missing
MISSING_WARN_S = 60.0


@dataclass(frozen=True)
class WeightsChange:
    """What one applied record changed: the deployment's new weights, or None when it was deleted."""

    deployment: str
    weights: TrafficWeights | None


class WeightsView:
    """What the records read so far say: the latest TrafficWeights per deployment and the highest epoch."""

    def __init__(self) -> None:
        self.latest: dict[str, TrafficWeights] = {}
        self.epoch = 0
        self.epoch_owner: str | None = None  # the controller that wrote the first record of `epoch`
        self.topic_exists = True  # until a reader finds it missing
        self.applied = 0
        self.rejected = 0
        self.unreadable = 0
        self.last_rejected: tuple[TrafficWeights, str] | None = None

    def stale(self, w: TrafficWeights) -> str | None:
        """Why `w` must not apply (None: it applies)."""
        if w.epoch < self.epoch:
            return f"stale epoch {w.epoch}: a controller of epoch {self.epoch} took over (fenced)"
        if w.epoch == self.epoch and None not in (w.controller, self.epoch_owner) and w.controller != self.epoch_owner:
            return f"epoch {w.epoch} belongs to controller {self.epoch_owner} (fenced)"
        current = self.latest.get(w.deployment)
        if current is not None and (w.epoch, w.seq) <= (current.epoch, current.seq):
            return f"not newer than epoch {current.epoch} seq {current.seq}"
        return None

    def apply(self, w: TrafficWeights) -> WeightsChange | None:
        """Apply `w` if it is not stale; returns the change, or None when it was rejected."""
        why = self.stale(w)
        if why is not None:
            self.rejected += 1
            self.last_rejected = (w, why)
            log.debug("weights of %s (epoch %d seq %d) rejected: %s", w.deployment, w.epoch, w.seq, why)
            return None
        self.latest[w.deployment] = w
        if w.epoch > self.epoch or self.epoch_owner is None:
            self.epoch, self.epoch_owner = w.epoch, w.controller
        self.applied += 1
        return WeightsChange(w.deployment, w)

    def delete(self, deployment: str) -> WeightsChange:
        self.latest.pop(deployment, None)
        return WeightsChange(deployment, None)

    def apply_record(self, key: bytes | None, value: bytes | None) -> WeightsChange | None:
        """One record as it comes off the topic: a tombstone, TrafficWeights, or something unreadable."""
        if value is None:
            if not key:
                log.warning("weights topic: skipping a tombstone without a key")
                return None
            return self.delete(key.decode(errors="replace"))
        try:
            w = TrafficWeights.decode(value)
        except SchemaError as e:
            self.unreadable += 1
            log.warning("weights topic: skipping an unreadable record: %s", e.reason)
            return None
        return self.apply(w)


Handler = Callable[[WeightsChange], Any]  # may return an awaitable
StaleHandler = Callable[[TrafficWeights, str], Any]  # a record the view rejected, and why


def _consumer(settings: Settings, poll_ms: int) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **settings.kafka_client_kwargs(),
        group_id=None,  # every reader sees every record; none commits offsets
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=poll_ms,
        metadata_max_age_ms=5_000,
    )


class WeightsReader:
    """Replays the weights topic into a WeightsView, then follows it; `on_change` gets every change in order.

    `caught_up` is set once the records that were on the topic when the reader started have been applied (at
    once when the topic does not exist); `sync()` waits for the records on it at the time of the call."""

    def __init__(
        self,
        settings: Settings,
        on_change: Handler | None = None,
        *,
        on_stale: StaleHandler | None = None,
        view: WeightsView | None = None,
        poll_ms: int = 100,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.topic = settings.topics.weights
        self.on_change = on_change
        self.on_stale = on_stale
        self.view = view or WeightsView()
        self.poll_ms = poll_ms
        self.max_backoff_s = max_backoff_s
        self.caught_up = asyncio.Event()
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._syncs: list[asyncio.Future[None]] = []  # sync() calls not yet given an end offset
        self._targets: list[tuple[dict[TopicPartition, int], list[asyncio.Future[None]]]] = []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="llmwatch-weights-reader")

    def cancel(self) -> None:
        """Stop following without waiting (from synchronous shutdown hooks)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    async def wait_caught_up(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self.caught_up.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def sync(self, timeout_s: float = 30.0) -> None:
        """Return once every record on the topic at the time of the call has been applied; KafkaError after
        `timeout_s` (the reader keeps trying)."""
        self.start()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._syncs.append(done)
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout_s)
        except TimeoutError:
            raise KafkaError(
                f"could not read {self.topic} to its end within {timeout_s:.0f} s ({self.last_error or 'no answer'})"
            ) from None

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            consumer = _consumer(self.settings, self.poll_ms)
            try:
                await consumer.start()
                consumer.subscribe([self.topic])
                backoff = 0.2
                await self._follow(consumer)
            except (AioKafkaError, OSError) as e:
                self.last_error = repr(e)
                log.warning("weights reader: %r; retrying in %.1f s", e, backoff)
            finally:
                await consumer.stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        replay_end: dict[TopicPartition, int] | None = None
        for _, waiting in self._targets:  # a reconnect: positions start over, so do the ends they wait for
            self._syncs.extend(waiting)
        self._targets = []
        looked = warned = -math.inf
        while True:
            for records in (await consumer.getmany(timeout_ms=self.poll_ms)).values():
                for record in records:
                    rejected = self.view.rejected
                    change = self.view.apply_record(record.key, record.value)
                    if change is not None and self.on_change is not None:
                        result = self.on_change(change)
                    elif self.view.rejected > rejected and self.on_stale is not None and self.view.last_rejected:
                        result = self.on_stale(*self.view.last_rejected)
                    else:
                        continue
                    if isinstance(result, Awaitable):
                        await result
            assigned = consumer.assignment()
            if not assigned and time.monotonic() - looked >= TOPIC_LOOK_S:
                # No partitions: the topic may not exist yet (brokers here do not create topics). Look often: the
                # consumer's own metadata refresh (every 5 s) would find a new topic too late for its first weights.
                looked = time.monotonic()
                if self.topic in await consumer.topics():
                    consumer.subscribe([self.topic])  # forces the metadata refresh that assigns its partitions
                else:
                    self.view.topic_exists = False
                    self._resolve(self._take_syncs())  # nothing on a missing topic to wait for
                    if not self.caught_up.is_set():
                        self.caught_up.set()
                        log.info("weights topic %s does not exist (yet): nothing to replay", self.topic)
                    if time.monotonic() - warned > MISSING_WARN_S:
                        log.warning("weights topic %s does not exist (yet); run `llmwatch kafka up`", self.topic)
                        warned = time.monotonic()
            if not assigned:
                continue
            self.view.topic_exists = True
            if replay_end is None and not self.caught_up.is_set():
                replay_end = await consumer.end_offsets(list(assigned))
            if replay_end is not None and await _at(consumer, replay_end):
                replay_end = None
                self.caught_up.set()
                log.info("weights topic %s replayed (%d applied)", self.topic, self.view.applied)
            waiting = self._take_syncs()
            if waiting:
                self._targets.append((await consumer.end_offsets(list(assigned)), waiting))
            for target in list(self._targets):
                if await _at(consumer, target[0]):
                    self._targets.remove(target)
                    self._resolve(target[1])

    def _take_syncs(self) -> list[asyncio.Future[None]]:
        waiting, self._syncs = self._syncs, []
        return waiting

    @staticmethod
    def _resolve(futures: list[asyncio.Future[None]]) -> None:
        for f in futures:
            if not f.done():
                f.set_result(None)


async def _at(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    """Whether the consumer's position reached `end` on every partition (by position, not by record: compaction
    and transaction markers leave gaps in the offsets)."""
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True


async def read_weights(settings: Settings, *, timeout_s: float = 30.0) -> WeightsView:
    """The topic read to its end offsets of now: the latest TrafficWeights per deployment, the highest epoch, and
    whether the topic exists. KafkaError when it cannot be read within `timeout_s`."""
    reader = WeightsReader(settings)
    try:
        await reader.sync(timeout_s)
    finally:
        await reader.stop()
    return reader.view
