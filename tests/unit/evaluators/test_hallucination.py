"""Groundedness: the fact checks by hand, None without context, the NLI backend, and the labeled-set floor."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from llmwatch.evaluators.base import EvalItem, build_evaluator
from llmwatch.evaluators.hallucination import (
    HallucinationEvaluator,
    build,
    check_facts,
    claims,
    context_units,
    months,
    names,
    numbers,
    split_sentences,
)
from llmwatch.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "data" / "groundedness.jsonl"
#: Recorded floor (measured 0.953 with onnx-int8, 0.951 with torch; target ≥ 0.85).
AUC_FLOOR = 0.90

CTX = [
    "The Eiffel Tower was completed in March 1889. It is 330 metres tall and was designed by Gustave Eiffel's company."
]


@pytest.fixture(scope="module")
def evaluator() -> HallucinationEvaluator:
    return build(Settings())


def test_split_sentences_keeps_abbreviations_and_bullets() -> None:
    text = 'Dr. Smith moved to the U.S. in 1999. It cost $3.5 million! Was it worth it? "Yes." Fine.'
    text += "\n- a bullet point\n2. a step"
    assert split_sentences(text) == [
        "Dr. Smith moved to the U.S. in 1999.",
        "It cost $3.5 million!",
        "Was it worth it?",
        '"Yes."',
        "Fine.",
        "a bullet point",
        "a step",
    ]


def test_numbers_months_names() -> None:
    assert numbers("It cost $3.5 million or 1,500 euros; five of 12; 3rd place; 10k users, one day") == {
        "3.5", "3500000", "1500", "5", "12", "3", "10", "10000"
    }  # fmt: skip
    assert months("On 5 May 2020, a Tuesday, we may go; also in Sept") == {"may", "tuesday", "september"}
    assert names("Later the Tower was copied in Tokyo by Nikken Sekkei.") == {"Tower", "Tokyo", "Nikken", "Sekkei"}


def test_check_facts_flags_what_the_sources_lack() -> None:
    source = CTX[0] + "\nWhen was it built?"
    assert check_facts("It opened in March 1889 and is 330 metres tall.", source).degree == 0.0
    wrong_number = check_facts("It is 450 metres tall.", source)
    assert wrong_number.numbers == {"450"} and wrong_number.degree == 1.0
    assert check_facts("It was completed in June 1889.", source).months == {"june"}
    one_name = check_facts("It was designed by Gustave Eiffel and Tokyo engineers.", source)
    assert one_name.names == {"Tokyo"} and one_name.degree == 0.5


def test_claims_skip_abstentions_and_fillers() -> None:
    assert claims("Sure. The context does not mention phone support. Premium includes email support.") == [
        "Premium includes email support."
    ]
    assert len(context_units(["A b c. D e f. G h i."])) == 3 + 1 + 2  # sentences, whole passage, pairs


def test_not_applicable_without_context(evaluator: HallucinationEvaluator) -> None:
    items = [
        EvalItem("q", "The tower is 330 metres tall.", None),
        EvalItem("q", "The tower is 330 metres tall.", []),
        EvalItem("q", "", CTX),
        EvalItem("q", "The tower is 330 metres tall.", CTX),
    ]
    out = evaluator.score_batch(items)
    assert [o["hallucination"] for o in out[:3]] == [None, None, None]
    assert out[3]["hallucination"] == pytest.approx(0.0, abs=0.05)


def test_grounded_low_contradicted_high(evaluator: HallucinationEvaluator) -> None:
    grounded, number, invented, offtopic = evaluator.scores(
        [
            EvalItem("How tall?", "The tower was finished in March 1889 and stands 330 metres high.", CTX),
            EvalItem("How tall?", "The tower was finished in March 1889 and stands 450 metres high.", CTX),
            EvalItem(
                "How tall?", "The tower was completed in 1889. It was moved to Lyon in 1920 and painted gold.", CTX
            ),
            EvalItem("How tall?", "Our support team answers billing questions around the clock.", CTX),
        ]
    )
    assert grounded is not None and grounded < 0.2
    assert number == 1.0
    assert invented == pytest.approx(0.5, abs=0.1)  # one of two sentences unsupported
    assert offtopic is not None and offtopic > 0.9


def test_registered_and_named(evaluator: HallucinationEvaluator) -> None:
    ev = build_evaluator("hallucination", Settings())
    assert ev.name.startswith("hallucination@1/minilm-") and ev.outputs == ("hallucination",)
    assert ev.embedder is evaluator.embedder  # one model per process


def test_labeled_set_auc_floor(evaluator: HallucinationEvaluator) -> None:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = np.array([r["label"] for r in rows])
    assert (labels == 0).sum() >= 50 and (labels == 1).sum() >= 50
    kinds = {r["kind"] for r in rows if r["label"] == 1}
    assert {"number", "date", "invented", "offtopic", "entity"} <= kinds
    scores = evaluator.scores([EvalItem(r["prompt"], r["response"], r["context"]) for r in rows])
    assert all(s is not None and 0.0 <= s <= 1.0 for s in scores)
    auc = roc_auc_score(labels, scores)
    assert auc >= AUC_FLOOR, f"groundedness ROC-AUC {auc:.3f} fell below the recorded floor {AUC_FLOOR}"


# --- NLI backend, with a tiny cross-encoder built here (none ships offline) ---------------------------
def _tiny_nli(path: Path, favour: str) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = ["the", "a", "is", "in", "of", "and", "tower", "was", "built", "completed", "metres", "tall", "march"]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "."]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=3,
        id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # a classifier that always answers `favour`: checks the label mapping end to end
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([8.0 if labels[i] == favour else 0.0 for i in range(3)]))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize(("favour", "expected"), [("entailment", 0.0), ("contradiction", 1.0)])
def test_nli_backend_loads_a_local_cross_encoder(tmp_path: Path, favour: str, expected: float) -> None:
    ev = build(Settings(eval={"nli_model": _tiny_nli(tmp_path / favour, favour)}))
    assert ev.backend == "nli+facts" and ev.embedder is None
    items = [EvalItem("q", "The tower is 330 metres tall. It was completed in March.", CTX), EvalItem("q", "x")]
    [score, none] = ev.scores(items)
    assert score == pytest.approx(expected, abs=0.01) and none is None


def test_missing_nli_dir_falls_back_with_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        ev = build(Settings(eval={"nli_model": tmp_path / "absent"}))
    assert ev.backend.startswith("minilm-") and "not a local directory" in caplog.text
