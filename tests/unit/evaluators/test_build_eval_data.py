"""The set builder (scripts/build_eval_data.py): how a voice-assistant intent line becomes requests, where the sources
pinned later land, and which templates are not prompts."""

from __future__ import annotations

from collections import Counter
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


def test_technical_questions_are_test_rows_from_four_packages(build: ModuleType) -> None:
    """Technical and SQL questions measure the weights and do not move them: test split only, every package capped."""
    from llmwatch.evaluators.datasets import load_set

    for split in ("train", "validation"):
        rows = load_set("injection", split)
        assert not [
            r for r in rows if r.slice == "technical_question" or r.source.split(":")[0] in build.TECHNICAL_PACKAGES
        ]
    test = [r for r in load_set("injection", "test") if r.slice == "technical_question"]
    assert len(test) >= 300 and {r.label for r in test} == {0} and {r.role for r in test} == {"user"}
    assert {r.source.split(":")[0] for r in test} == set(build.TECHNICAL_PACKAGES)
    assert any("SQL" in r.text or r.text.startswith(("How many", "What is", "List")) for r in test)
    assert max(Counter(r.source for r in test).values()) <= 20 * build.PER_TECHNICAL_GROUP  # Spider: 20 databases


@pytest.mark.parametrize(
    "text",
    [
        '#!/bin/sh\nset -eu\nroot="$1"',
        'if [ -z "$X" ]; then\n    export X=1\nfi',
        "PlanOverlay {\n    /* keep the card flush */\n    width: 2;\n}",
        "Widget {\n    height: auto;\n    color: $text;\n}",
        '<!DOCTYPE html>\n<html lang="en">',
    ],
)
def test_scripts_and_style_sheets_are_not_templates(build: ModuleType, text: str) -> None:
    assert build._SCRIPT_OR_STYLE.search(text)


@pytest.mark.parametrize(
    "text",
    [
        'You are a grader. Given the {question} and the {answer}, return JSON:\n{\n  "score": 1,\n  "reason": "..."\n}',
        "Rules:\n- Be brief; cite the context.\n- Done? Say DONE.\nQuestion: {input}",
        "Summarise the following in one line: {text}\nFormat: plain text; no markdown",
    ],
)
def test_prompts_with_code_like_lines_stay_templates(build: ModuleType, text: str) -> None:
    assert not build._SCRIPT_OR_STYLE.search(text)


def test_no_split_holds_a_script_or_style_sheet_as_a_template(build: ModuleType) -> None:
    from llmwatch.evaluators.datasets import load_set

    for split in ("train", "validation", "test"):
        rows = [r for r in load_set("injection", split) if r.slice == "prompt_template"]
        assert rows and not [r.source for r in rows if build._SCRIPT_OR_STYLE.search(r.text)], split
