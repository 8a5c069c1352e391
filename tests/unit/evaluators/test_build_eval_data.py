"""The set builder (scripts/build_eval_data.py): how a voice-assistant intent line becomes requests, and where the
later skills land."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def build(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("build_eval_data")


def test_alternatives_and_optional_words_expand_to_every_sentence(build: ModuleType) -> None:
    assert sorted(build.expand_intent_line("(enable|turn on) parrot mode")) == [
        "enable parrot mode",
        "turn on parrot mode",
    ]
    # an empty alternative and an optional part drop the word, and the spaces around it
    assert sorted(build.expand_intent_line("take (my user |)picture")) == ["take my user picture", "take picture"]
    assert sorted(build.expand_intent_line("[please] stop [the|that] song")) == [
        "please stop song",
        "please stop that song",
        "please stop the song",
        "stop song",
        "stop that song",
        "stop the song",
    ]
    assert build.expand_intent_line("what time is it") == ["what time is it"]


def test_nested_groups_expand(build: ModuleType) -> None:
    assert sorted(build.expand_intent_line("((good|bad) day|night)")) == ["bad day", "good day", "night"]


def test_an_unbalanced_line_is_kept_as_written(build: ModuleType) -> None:
    for line in ("bad (line", "bad line)", "[open (the door]"):
        assert build.expand_intent_line(line) == [line]


def test_a_line_of_many_alternatives_is_capped_by_hash_not_by_position(build: ModuleType) -> None:
    """Twenty alternatives x two give forty sentences; the cap keeps `limit` of them, the same ones on every run, and
    not just those of the first alternatives."""
    line = "(" + "|".join(f"word{i}" for i in range(20)) + ") (on|off)"
    kept = build.expand_intent_line(line, limit=12)
    assert len(kept) == 12 and kept == build.expand_intent_line(line, limit=12)
    assert len({s.split()[0] for s in kept}) > 6  # spread over the alternatives
    assert len(build.expand_intent_line(line, limit=100)) == 40


def test_later_skills_train_only_and_leave_the_first_skills_splits_alone(build: ModuleType) -> None:
    """Skills pinned after the test split was drawn feed training only: validation and test keep the skills earlier
    weights were thresholded and measured on, and no later skill's line takes a first skill's line away."""
    from llmwatch.evaluators.datasets import load_set

    later = build.LATER_ASSISTANT_PACKAGES
    assert later and not later & set(build.ASSISTANT_PACKAGES)
    for split in ("validation", "test"):
        assert not [r for r in load_set("injection", split) if r.source.split(":")[0] in later], split
    train = [r for r in load_set("injection", "train") if r.source.split(":")[0] in later]
    assert {r.slice for r in train} == {"assistant_request", "assistant_request_multilingual"}
    assert len({r.source.split(":")[0] for r in train if r.slice == "assistant_request"}) >= 10
    for split in ("train", "validation", "test"):  # toxicity copies the first skills' English lines only
        assert not [r for r in load_set("toxicity", split) if r.source.split(":")[0] in later], split
