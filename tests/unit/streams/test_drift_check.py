"""Window drift: the first baseline window is the reference; a topic shift scores higher than more of the same."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from llmwatch.settings import Settings
from llmwatch.sim.corpus import load_corpus
from llmwatch.streams.drift_check import MIN_PROMPTS, make_drift_fn
from llmwatch.streams.windowing import Closing, WindowKey, WindowStats

T0 = datetime(2026, 11, 22, tzinfo=UTC)


def closing(variant: str, prompts: list[str]) -> Closing:
    st = WindowStats()
    st.prompts = list(prompts)
    return Closing(WindowKey("demo", "v1", variant, "default"), T0, st, [])


def test_reference_then_shift_scores_higher_than_same_topics() -> None:
    corpus = load_corpus()
    rng = random.Random(0)
    base = [p.prompt for s in ("base",) for p in corpus.topic_prompts(s)]
    drifted = [p.prompt for p in corpus.topic_prompts("drift")]
    fn = make_drift_fn(Settings())
    assert fn(closing("canary", rng.choices(base, k=60))) == (None, None)  # no reference from a canary window
    assert fn(closing("baseline", rng.choices(base, k=MIN_PROMPTS - 1))) == (None, None)  # too few prompts
    assert fn(closing("baseline", rng.choices(base, k=80))) == (0.0, 1.0)  # becomes the reference
    same_score, same_p = fn(closing("baseline", rng.choices(base, k=80)))
    shift_score, shift_p = fn(closing("canary", rng.choices(drifted, k=80)))
    assert shift_score > 3 * max(same_score, 1e-6)
    assert shift_p < 0.05 <= same_p
