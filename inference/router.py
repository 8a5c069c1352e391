"""Which model version serves a request: canary splits per request, A/B arms per user.

The split of each deployment comes from TrafficWeights messages on the controller's compacted topic, which
`WeightsWatcher` follows. A split from a controller that another one replaced (a lower epoch) is rejected, so a
stale controller cannot move traffic (llmwatch/weights_topic.py). Until one arrives a deployment serves 100% of
its baseline: the safe default, so a gateway that cannot read the topic never sends traffic to a canary.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import logging
import random
from dataclasses import dataclass

from llmwatch.schemas import TrafficWeights
from llmwatch.settings import Settings
from llmwatch.weights_topic import WeightsChange, WeightsReader, WeightsView

log = logging.getLogger(__name__)


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
        self.view = WeightsView()  # what the weights topic said: the ordering and fencing rule lives there
        self._rng = rng or random.Random()

    def deployments(self) -> list[str]:
        return sorted(self._splits)

    def weights_seq(self, deployment: str) -> int | None:
        """The seq of the weights in force (None while the default applies)."""
        split = self._splits.get(deployment)
        return None if split is None or split.seq < 0 else split.seq

    def apply(self, weights: TrafficWeights) -> bool:
        """Take a new split unless it is stale (`WeightsView.stale`: not newer, or from a fenced controller's
        epoch); returns whether it applied."""
        change = self.view.apply(weights)
        if change is not None:
            self.on_change(change)
        return change is not None

    def reset(self, deployment: str) -> None:
        """Forget a deployment's weights (a tombstone on the topic): back to its default, or unknown."""
        self.on_change(self.view.delete(deployment))

    def on_change(self, change: WeightsChange) -> None:
        """A change `self.view` has already applied (the weights reader's hook)."""
        if change.weights is not None:
            self._splits[change.deployment] = _Split.from_weights(change.weights)
            return
        deployment = change.deployment
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
    """Replays the compacted weights topic into a Router, then keeps following it (llmwatch.weights_topic: the
    one reader of that topic, with its ordering, fencing, tombstone and missing-topic rules).

    Kafka being down never stops routing: the router keeps its last split (or the baseline default) while the
    reader retries.
    """

    def __init__(self, settings: Settings, router: Router, *, poll_ms: int = 100, max_backoff_s: float = 5.0) -> None:
        self._router = router
        self._reader = WeightsReader(
            settings, router.on_change, view=router.view, poll_ms=poll_ms, max_backoff_s=max_backoff_s
        )

    @property
    def caught_up(self) -> bool:
        """True once everything on the topic at start has been applied."""
        return self._reader.caught_up.is_set()

    @property
    def applied(self) -> int:
        return self._router.view.applied

    @property
    def rejected(self) -> int:
        """Records not applied: unreadable ones and stale ones (older, or from a fenced controller)."""
        return self._router.view.unreadable + self._router.view.rejected

    @property
    def last_error(self) -> str | None:
        return self._reader.last_error

    async def start(self, wait_s: float = 5.0) -> None:
        """Start following; wait up to `wait_s` (0: not at all) for the replay so the next requests see the split."""
        self._reader.start()
        if wait_s > 0 and not await self._reader.wait_caught_up(wait_s):
            log.warning(
                "weights topic %s not replayed within %.1f s; routing on defaults meanwhile", self._reader.topic, wait_s
            )

    async def stop(self) -> None:
        await self._reader.stop()
