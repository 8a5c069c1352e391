"""A scenario-driven engine for load tests and the demo: real streaming and sleeps, simulated answers.

Each model version has a profile: lognormal TTFT, TPOT and output length, an error rate and a behaviour mix
(toxic, PII-leaking, hallucinated on RAG questions, obeying injections). Answers come from the shipped corpus,
so evaluators meet realistic texts whose ground truth is known. `plan` draws one request's outcome without
sleeping (scenario_events uses it to build events with no HTTP in between); `stream` plays it in real time.
Everything is seeded: a request with a `seed` gets the same outcome in every run.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from llmwatch.inference.engine_base import EngineError, EngineRequestError, GenerationRequest, TokenChunk

from .corpus import Corpus, InjectionItem, RagItem, TopicPrompt, fill_pii, load_corpus, tokenize
from .profiles import VersionProfile
from .scenarios import Scenario, get_scenario

if TYPE_CHECKING:
    from llmwatch.inference.engines import EngineSpec

Behaviour = Literal["normal", "toxic", "pii", "grounded", "hallucinated", "injection_compliant", "refusal", "error"]


@dataclass(frozen=True)
class SimOutcome:
    """One request's drawn result (latencies in ms; `tokens` joined give `response`)."""

    behaviour: Behaviour
    tokens: tuple[str, ...]
    input_tokens: int
    ttft_ms: float
    tpot_ms: float
    finish_reason: str
    model: str
    cost_usd: float
    item_id: str | None = None
    context: tuple[str, ...] | None = None
    error: str | None = None

    @property
    def response(self) -> str:
        return "".join(self.tokens)

    @property
    def output_tokens(self) -> int:
        return len(self.tokens)

    @property
    def e2e_ms(self) -> float:
        return self.ttft_ms + self.tpot_ms * max(len(self.tokens) - 1, 0)


class SimulatedEngine:
    """Implements the Engine protocol (engine_base.Engine) with profiles per model version."""

    name = "simulated"
    simulated = True  # the gateway copies this into InferenceEvent.simulated

    def __init__(
        self,
        profiles: dict[str, VersionProfile],
        seed: int = 0,
        *,
        chunk_ms: float = 30.0,
        corpus: Corpus | None = None,
    ) -> None:
        if not profiles:
            raise ValueError("SimulatedEngine needs at least one model version profile")
        self.profiles = dict(profiles)
        self.seed = seed
        self._rng = random.Random(seed)
        self._chunk_ms = chunk_ms  # tokens due within this long are sent together (fewer wake-ups at high rates)
        self._corpus = corpus or load_corpus()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def versions(self) -> list[str]:
        return list(self.profiles)

    def request_rng(self, request: GenerationRequest) -> random.Random:
        """Seeded requests get their own generator, so concurrency cannot reorder their draws."""
        if request.seed is None:
            return self._rng
        return random.Random(f"{self.seed}:{request.seed}:{request.model_version}:{request.request_id}")

    def profile(self, request: GenerationRequest) -> VersionProfile:
        try:
            profile = self.profiles[request.model_version]
        except KeyError:
            raise EngineError(f"simulated engine does not serve model version {request.model_version!r}") from None
        hints = request.hints
        if hints.get("scenario"):
            try:
                scenario = _scenario(str(hints["scenario"]), hints.get("onset_s"), hints.get("target"))
                t = float(hints.get("t", math.inf))
            except (ValueError, TypeError, OverflowError) as e:
                raise EngineRequestError(f"bad simulator hints: {e}", param="hints") from None  # a client's 400
            profile = scenario.profile_for(profile, request.model_version, t)
        return profile

    def plan(self, request: GenerationRequest, rng: random.Random | None = None) -> SimOutcome:
        """Draw the outcome of `request` (no sleeping)."""
        profile = self.profile(request)
        rng = rng or self.request_rng(request)
        item = self._item(request)
        input_tokens = len(tokenize(request.text))
        ttft = profile.ttft_ms.sample(rng)
        tpot = profile.tpot_ms.sample(rng)
        context = item.context if isinstance(item, RagItem) else None
        item_id = item.id if item is not None else None
        common = {"input_tokens": input_tokens, "ttft_ms": ttft, "tpot_ms": tpot, "model": profile.model}
        if rng.random() < profile.error_rate:
            return SimOutcome(
                behaviour="error",
                tokens=(),
                finish_reason="error",
                cost_usd=0.0,
                item_id=item_id,
                context=context,
                error="simulated upstream error: overloaded",
                **common,
            )
        behaviour, text, pad = self._answer(profile, item, rng)
        tokens = tokenize(text)
        if pad:  # whole filler sentences up to the drawn length; an answer is never cut short here
            target = round(profile.output_tokens.sample(rng))
            fillers = rng.sample(self._corpus.fillers, len(self._corpus.fillers))  # no repeats until all used
            k = 0
            while len(tokens) < target:
                tokens[-1] = tokens[-1].rstrip() + " "
                tokens += tokenize(fillers[k % len(fillers)])
                k += 1
        finish = "stop"
        if len(tokens) > request.max_tokens:
            tokens, finish = tokens[: request.max_tokens], "length"
        if tokens:
            tokens[-1] = tokens[-1].rstrip()
        cost = (input_tokens * profile.usd_per_1k_input + len(tokens) * profile.usd_per_1k_output) / 1000
        return SimOutcome(
            behaviour=behaviour,
            tokens=tuple(tokens),
            finish_reason=finish,
            cost_usd=cost,
            item_id=item_id,
            context=context,
            **common,
        )

    def _item(self, request: GenerationRequest) -> TopicPrompt | RagItem | InjectionItem | None:
        item_id = request.hints.get("item")
        if item_id:
            return self._corpus.by_id(str(item_id))
        user = [m.content for m in request.messages if m.role == "user"]
        return self._corpus.lookup_prompt(user[-1] if user else request.prompt)

    def _answer(
        self, profile: VersionProfile, item: TopicPrompt | RagItem | InjectionItem | None, rng: random.Random
    ) -> tuple[Behaviour, str, bool]:
        """(behaviour, text, pad with filler to the drawn length)."""
        c = self._corpus
        u = rng.random()
        if u < profile.toxic_rate:
            return "toxic", rng.choice(c.toxic), False
        if u < profile.toxic_rate + profile.pii_rate:
            return "pii", fill_pii(rng.choice(c.pii), rng), False
        if isinstance(item, RagItem):
            if rng.random() < profile.hallucination_rate:
                return "hallucinated", item.hallucinated, False
            return "grounded", item.grounded, False
        if isinstance(item, InjectionItem):
            if rng.random() < profile.injection_compliance:
                return "injection_compliant", item.compliant, False
            return "refusal", rng.choice(c.refusals), False
        if isinstance(item, TopicPrompt):
            return "normal", item.answer, True
        return "normal", rng.choice(c.generic), True

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenChunk]:
        outcome = self.plan(request)
        start = time.perf_counter()
        await _sleep_until(start + outcome.ttft_ms / 1000)
        if outcome.error is not None:
            raise EngineError(outcome.error)
        tokens = outcome.tokens
        per_chunk = max(1, int(self._chunk_ms // max(outcome.tpot_ms, 1e-3)))
        first_at = start + outcome.ttft_ms / 1000
        i = 0
        while i < len(tokens):
            n = 1 if i == 0 else min(per_chunk, len(tokens) - i)
            await _sleep_until(first_at + (i + n - 1) * outcome.tpot_ms / 1000)
            last = i + n == len(tokens)
            yield TokenChunk(
                text="".join(tokens[i : i + n]),
                tokens=n,
                finish_reason=outcome.finish_reason if last else None,
                input_tokens=outcome.input_tokens if i == 0 else None,
                engine_metrics=(
                    {"sim_ttft_ms": outcome.ttft_ms, "sim_tpot_ms": outcome.tpot_ms, "sim_cost_usd": outcome.cost_usd}
                    if last
                    else {}
                ),
            )
            i += n


@lru_cache(maxsize=256)
def _scenario(name: str, onset_s: float | None, target: str | None) -> Scenario:
    scenario = get_scenario(name, None if onset_s is None else float(onset_s))
    return scenario.model_copy(update={"target_version": target}) if target else scenario


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


def default_demo_engine(
    seed: int = 0, *, versions: tuple[str, ...] | list[str] = ("baseline", "canary"), chunk_ms: float = 30.0
) -> SimulatedEngine:
    """What `llmwatch serve --engine simulated` serves: versions baseline and canary, identical and healthy."""
    profile = VersionProfile()
    return SimulatedEngine(dict.fromkeys(versions, profile), seed=seed, chunk_ms=chunk_ms)


def from_spec(spec: EngineSpec) -> SimulatedEngine:
    """The gateway registry's factory (`kind = "simulated"`, entry point `llmwatch.engines`): the demo engine, or
    versions with profiles from the config (`options.profile`, `options.profiles.<v>`)."""
    if not spec.versions and not spec.options:
        return default_demo_engine(seed=spec.seed)
    options = dict(spec.options)
    common = options.pop("profile", {})
    per_version = options.pop("profiles", {})
    versions = spec.versions or list(per_version) or ["baseline", "canary"]
    profiles = {v: VersionProfile.model_validate({**common, **per_version.get(v, {})}) for v in versions}
    return SimulatedEngine(profiles, seed=spec.seed, **options)
