"""Which model version serves a request: canary splits per request, A/B arms per user.

The split of each deployment comes from TrafficWeights messages on the controller's compacted topic, which
`WeightsWatcher` follows. Until one arrives a deployment serves 100% of its baseline: the safe default, so a
gateway that cannot read the topic never sends traffic to a canary.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import itertools
import logging
import math
import random
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError as AioKafkaError

from llmwatch.schemas import SchemaError, TrafficWeights
from llmwatch.settings import Settings

log = logging.getLogger(__name__)

#: how often the watcher looks for its topic while it has no partitions (it may not exist yet)
TOPIC_LOOK_S = 0.5


class UnknownDeployment(KeyError):
    """No default and no weights name this deployment (the gateway answers 404)."""


@dataclass(frozen=True)
class Route:
    model_version: str
    variant: str  # "baseline", "canary", or the A/B arm
    experiment: str | None = None


@dataclass(frozen=True)
class _Split:
    """An immutable snapshot per deployment, swapped whole so a concurrent `choose` never sees half an update."""

    seq: int
    versions: tuple[str, ...]
    cumulative: tuple[float, ...]
    variants: tuple[str, ...]
    experiment: str | None = None
    salt: str | None = None

    @classmethod
    def fixed(cls, version: str) -> _Split:
        return cls(seq=-1, versions=(version,), cumulative=(1.0,), variants=("baseline",))

    @classmethod
    def from_weights(cls, w: TrafficWeights) -> _Split:
        if w.experiment is not None:
            shares = w.experiment.arms
            variants = {v: v for v in shares}  # an arm's variant is its own name
        else:
            shares = w.weights
            variants = {v: _variant(v, w) for v in shares}
        versions = tuple(sorted(shares))  # sorted: the same weights give the same buckets in every process
        cumulative = tuple(itertools.accumulate(shares[v] for v in versions))
        return cls(
            seq=w.seq,
            versions=versions,
            cumulative=cumulative,
            variants=tuple(variants[v] for v in versions),
            experiment=w.experiment.name if w.experiment else None,
            salt=w.experiment.salt if w.experiment else None,
        )

    def pick(self, u: float) -> int:
        # u in [0, 1); the last bucket also takes float rounding at the top end.
        return min(bisect.bisect_right(self.cumulative, u * self.cumulative[-1]), len(self.versions) - 1)


def _variant(version: str, w: TrafficWeights) -> str:
    if version == w.baseline_version:
        return "baseline"
    if version == w.canary_version:
        return "canary"
    return version


def stable_unit(salt: str, user_id: str) -> float:
    """A user's fixed point in [0, 1) for one experiment: the same in every process and every restart."""
    digest = hashlib.sha256(f"{salt}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Router:
    """Routes requests of each deployment by its latest TrafficWeights."""

    def __init__(self, defaults: dict[str, str], *, rng: random.Random | None = None) -> None:
        self._defaults = dict(defaults)
        self._splits: dict[str, _Split] = {d: _Split.fixed(v) for d, v in defaults.items()}
        self._rng = rng or random.Random()

    def deployments(self) -> list[str]:
        return sorted(self._splits)

    def weights_seq(self, deployment: str) -> int | None:
        """The seq of the weights in force (None while the default applies)."""
        split = self._splits.get(deployment)
        return None if split is None or split.seq < 0 else split.seq

    def apply(self, weights: TrafficWeights) -> bool:
        """Take a new split; an older seq than the one in force is ignored (returns False)."""
        current = self._splits.get(weights.deployment)
        if current is not None and weights.seq < current.seq:
            log.debug("ignoring weights seq %d < %d for %s", weights.seq, current.seq, weights.deployment)
            return False
        self._splits[weights.deployment] = _Split.from_weights(weights)
        return True

    def reset(self, deployment: str) -> None:
        """Forget a deployment's weights (a tombstone on the topic): back to its default, or unknown."""
        if deployment in self._defaults:
            self._splits[deployment] = _Split.fixed(self._defaults[deployment])
        else:
            self._splits.pop(deployment, None)

    def choose(self, deployment: str, user_id: str | None = None) -> Route:
        split = self._splits.get(deployment)
        if split is None:
            raise UnknownDeployment(deployment)
        # Experiments pin users to arms; requests without a user id (and canary splits) draw per request.
        u = stable_unit(split.salt, user_id) if split.salt is not None and user_id else self._rng.random()
        i = split.pick(u)
        return Route(split.versions[i], split.variants[i], split.experiment)


class WeightsWatcher:
    """Replays the compacted weights topic from the beginning into a Router, then keeps following it.

    Reads without a consumer group (every gateway must see every message, none commits offsets). Kafka being
    down never stops routing: the router keeps its last split (or the baseline default) while this retries.
    """

    def __init__(self, settings: Settings, router: Router, *, poll_ms: int = 100, max_backoff_s: float = 5.0) -> None:
        self._settings = settings
        self._router = router
        self._topic = settings.topics.weights
        self._poll_ms = poll_ms
        self._max_backoff_s = max_backoff_s
        self._task: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        self.applied = 0
        self.rejected = 0
        self.last_error: str | None = None

    @property
    def caught_up(self) -> bool:
        """True once everything on the topic at start has been applied."""
        return self._caught_up.is_set()

    async def start(self, wait_s: float = 5.0) -> None:
        """Start following; wait up to `wait_s` (0: not at all) for the replay so the next requests see the split."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="llmwatch-weights-watcher")
        if wait_s <= 0:
            return
        try:
            await asyncio.wait_for(self._caught_up.wait(), wait_s)
        except TimeoutError:
            log.warning(
                "weights topic %s not replayed within %.1f s; routing on defaults meanwhile",
                self._topic,
                wait_s,
            )

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            consumer = AIOKafkaConsumer(
                **self._settings.kafka_client_kwargs(),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self._poll_ms,
                metadata_max_age_ms=5_000,
            )
            try:
                await consumer.start()
                consumer.subscribe([self._topic])  # no group: every partition, from the beginning
                backoff = 0.2
                await self._follow(consumer)
            except (AioKafkaError, OSError) as e:
                self.last_error = repr(e)
                log.warning("weights watcher: %r; retrying in %.1f s", e, backoff)
            finally:
                await consumer.stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        end: dict[TopicPartition, int] | None = None
        looked = warned = -math.inf
        while True:
            batches = await consumer.getmany(timeout_ms=self._poll_ms)
            for records in batches.values():
                for record in records:
                    self._handle(record.key, record.value)
            assigned = consumer.assignment()
            if not assigned and time.monotonic() - looked >= TOPIC_LOOK_S:
                # No partitions: the topic may not exist yet (no auto-creation). Then there is nothing to replay:
                # the defaults are current. Look again often, as the consumer's own metadata refresh (every 5 s)
                # would see it too late for its first weights to apply within a second.
                looked = time.monotonic()
                if self._topic in await consumer.topics():
                    consumer.subscribe([self._topic])  # forces the metadata refresh that assigns its partitions
                else:
                    if not self._caught_up.is_set():
                        self._caught_up.set()
                        log.info("weights topic %s does not exist (yet): nothing to replay", self._topic)
                    if time.monotonic() - warned > 60:
                        log.warning("weights topic %s does not exist (yet); routing on defaults", self._topic)
                        warned = time.monotonic()
            if not assigned or self._caught_up.is_set():
                continue
            if end is None:
                end = await consumer.end_offsets(list(assigned))
            if await _at_end(consumer, end):
                self._caught_up.set()
                log.info("weights topic %s replayed (%d applied)", self._topic, self.applied)

    def _handle(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:  # tombstone: the deployment's weights were deleted
            if key:
                self._router.reset(key.decode(errors="replace"))
            return
        try:
            weights = TrafficWeights.decode(value)
        except SchemaError as e:
            self.rejected += 1
            log.warning("weights watcher: skipping a bad message: %s", e.reason)
            return
        if self._router.apply(weights):
            self.applied += 1


async def _at_end(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True
