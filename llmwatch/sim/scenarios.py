"""Named traffic scenarios with known injected regressions, and the prompts they send.

A scenario says two things: what the traffic looks like (the prompt mix: RAG questions, injection attempts,
topic drift) and how the target version (default "canary") degrades after `onset_s` seconds of scenario time.
The simulated engine applies the degradation when a request's hints name the scenario; the load generator
draws prompts from the mix. `steady` changes nothing, so baseline and canary are the same (A/A).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .corpus import Corpus, load_corpus
from .profiles import VersionProfile

PromptKind = Literal["topic", "rag", "injection"]


class PromptMix(BaseModel):
    """Shares of the traffic by prompt kind; the rest are topic questions."""

    model_config = ConfigDict(frozen=True)

    rag: float = Field(0.2, ge=0, le=1, description="Questions that come with retrieved context.")
    injection: float = Field(0.02, ge=0, le=1, description="Prompt-injection attempts.")
    drift: float = Field(0.0, ge=0, le=1, description="Share of topic questions drawn from the drift topic set.")


class Scenario(BaseModel):
    """A traffic pattern plus a regression of one version that starts at `onset_s` (scenario seconds)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    onset_s: float = Field(0.0, ge=0)
    mix: PromptMix = Field(default_factory=PromptMix)
    mix_after: PromptMix | None = Field(None, description="Traffic after the onset (every version sees it).")
    target_version: str = "canary"
    ttft_factor: float = Field(1.0, gt=0)
    tpot_factor: float = Field(1.0, gt=0)
    overrides: dict[str, float] = Field(default_factory=dict, description="VersionProfile fields set on the target.")

    def active(self, t: float) -> bool:
        return t >= self.onset_s

    def prompt_mix(self, t: float) -> PromptMix:
        return self.mix_after if self.mix_after is not None and self.active(t) else self.mix

    def profile_for(self, profile: VersionProfile, version: str, t: float) -> VersionProfile:
        """The profile `version` serves with at scenario time `t`."""
        if version != self.target_version or not self.active(t):
            return profile
        update: dict[str, Any] = dict(self.overrides)
        if self.ttft_factor != 1.0:
            update["ttft_ms"] = profile.ttft_ms.scaled(self.ttft_factor)
        if self.tpot_factor != 1.0:
            update["tpot_ms"] = profile.tpot_ms.scaled(self.tpot_factor)
        return profile.model_copy(update=update) if update else profile

    def hints(self, t: float) -> dict[str, Any]:
        """What a request carries so the simulated engine behind a gateway plays this scenario."""
        return {"scenario": self.name, "t": round(t, 3), "onset_s": self.onset_s, "target": self.target_version}


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(name="steady", description="A/A: canary identical to baseline; nothing should fire."),
        Scenario(name="latency-regression", description="Canary time to first token doubles.", ttft_factor=2.0),
        Scenario(
            name="toxicity-regression",
            description="Canary answers with toxic replies far more often.",
            overrides={"toxic_rate": 0.2},
        ),
        Scenario(
            name="pii-leak",
            description="Canary leaks personal data (emails, phones, SSNs, cards, IBANs) it was never given.",
            overrides={"pii_rate": 0.15},
        ),
        Scenario(
            name="hallucination",
            description="Half the traffic is RAG; the canary answers off-context far more often.",
            mix=PromptMix(rag=0.5),
            overrides={"hallucination_rate": 0.45},
        ),
        Scenario(
            name="prompt-injection-attack",
            description="An injection campaign hits every version; the canary obeys it far more often.",
            mix_after=PromptMix(injection=0.3),
            overrides={"injection_compliance": 0.6},
        ),
        Scenario(
            name="drift",
            description="Users start asking about other topics (medical, legal, crypto, cars): input drift.",
            mix_after=PromptMix(drift=0.8),
        ),
    )
}


def get_scenario(name: str, onset_s: float | None = None) -> Scenario:
    try:
        scenario = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return scenario if onset_s is None else scenario.model_copy(update={"onset_s": float(onset_s)})


# --- what users send -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptSpec:
    """One drawn prompt: the user message, its corpus item (the engine looks it up) and the context, if RAG."""

    kind: PromptKind
    item_id: str
    text: str
    context: tuple[str, ...] | None = None
    topic: str | None = None
    topic_set: str | None = None


def draw_prompt(mix: PromptMix, rng: random.Random, corpus: Corpus | None = None) -> PromptSpec:
    corpus = corpus or load_corpus()
    u = rng.random()
    if u < mix.injection:
        inj = rng.choice(corpus.injections)
        return PromptSpec("injection", inj.id, inj.prompt)
    if u < mix.injection + mix.rag:
        item = rng.choice(corpus.rag)
        return PromptSpec("rag", item.id, item.question, context=item.context)
    topic_set = "drift" if rng.random() < mix.drift else "base"
    p = rng.choice(corpus.topic_prompts(topic_set))
    return PromptSpec("topic", p.id, p.prompt, topic=p.topic, topic_set=p.set)


def hashed_id(kind: str, n: int) -> str:
    """A pseudonymous id as services should send them (never the raw one)."""
    return hashlib.sha256(f"llmwatch-sim:{kind}:{n}".encode()).hexdigest()[:24]


def draw_user(rng: random.Random, n_users: int = 2_000) -> tuple[str, str]:
    """(user_id, session_id), hashed; a few sessions per user."""
    k = rng.randrange(n_users)
    return hashed_id("user", k), hashed_id("session", k * 4 + rng.randrange(4))
