"""Toxicity: quality floor on the held-out set, shipped weights, chunking, detoxify from local files."""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from llmwatch.evaluators.base import EvalItem
from llmwatch.evaluators.embeddings import get_embedder
from llmwatch.evaluators.toxicity import (
    DetoxifyToxicity,
    LinearHead,
    MiniLMToxicity,
    ProfanityToxicity,
    build,
    chunk_text,
    evaluate,
    load_labeled,
    train,
)
from llmwatch.settings import Settings

TEST_SET = Path(__file__).parents[2] / "data" / "toxicity.jsonl"
TRAIN_SET = Path(str(files("llmwatch.evaluators") / "data/toxicity_train.jsonl"))
#: Recorded floor; measured 0.989 (onnx-int8 and torch alike) when the weights were trained.
AUC_FLOOR = 0.95


@pytest.fixture(scope="module")
def embedder():
    return get_embedder()


@pytest.fixture(scope="module")
def tox(embedder) -> MiniLMToxicity:
    return MiniLMToxicity(embedder)


def _norm(t: str) -> str:
    return " ".join(t.lower().split())


def test_eval_set_is_big_enough_and_disjoint_from_training() -> None:
    texts, y = load_labeled(TEST_SET)
    train_texts, _ = load_labeled(TRAIN_SET)
    assert y.sum() >= 50 and (1 - y).sum() >= 50
    assert not {_norm(t) for t in texts} & {_norm(t) for t in train_texts}


def test_auc_on_held_out_set_stays_above_floor(tox: MiniLMToxicity) -> None:
    result = evaluate(tox, TEST_SET)
    assert result["auc"] >= AUC_FLOOR, result
    assert result["accuracy"] >= 0.85, result


def test_threats_and_identity_attacks_without_swearing_score_high(tox: MiniLMToxicity) -> None:
    rows = [json.loads(line) for line in TEST_SET.read_text().splitlines()]
    for category in ("threat", "identity_attack", "harassment", "sexual_harassment"):
        texts = [r["text"] for r in rows if r["category"] == category]
        combined = np.asarray(tox.score_texts(texts))
        profanity = np.asarray(tox.profanity.predict(texts))
        assert (combined >= 0.5).mean() >= 0.75, category
        assert combined.mean() > profanity.mean() + 0.3, category  # what the embedding head adds


def test_the_combination_rescues_a_threat_profanity_misses(tox: MiniLMToxicity) -> None:
    text = "Watch yourself, I know your address."
    assert tox.profanity.predict([text])[0] < 0.6
    assert tox.score_texts([text])[0] >= 0.5


def test_swearing_still_counts(tox: MiniLMToxicity) -> None:
    assert tox.score_texts(["Shut up, you stupid fucking moron."])[0] >= 0.8


@pytest.mark.parametrize(
    "text",
    [
        "Kill the worker process and restart the queue.",
        "The general's army was slaughtered at the river crossing in 1812.",
        "Breast and testicular exams help find cancer early.",
        "Headshot! We wiped the other squad in the last round.",
        "I completely disagree with your proposal; the costs are understated.",
    ],
)
def test_hard_negatives_stay_low(tox: MiniLMToxicity, text: str) -> None:
    assert tox.score_texts([text])[0] < 0.5


def test_shipped_weights_were_trained_on_the_shipped_data() -> None:
    import hashlib

    meta = LinearHead.load().meta
    assert meta["train_data"]["sha256"] == hashlib.sha256(TRAIN_SET.read_bytes()).hexdigest(), "run --train"
    assert len(meta["coef"]) == 385 and meta["license"] == "Apache-2.0"


def test_retraining_reproduces_the_shipped_head(embedder, tmp_path: Path) -> None:
    train(embedder, out=tmp_path / "w.json")
    texts, _ = load_labeled(TEST_SET)
    fresh = MiniLMToxicity(embedder, head=LinearHead.load(tmp_path / "w.json"))
    shipped = MiniLMToxicity(embedder)
    diff = np.abs(np.asarray(fresh.score_texts(texts)) - np.asarray(shipped.score_texts(texts)))
    assert diff.max() < 0.05


def test_one_abusive_sentence_in_a_long_polite_answer_is_not_diluted(tox: MiniLMToxicity) -> None:
    polite = "Thanks for reaching out about your order, we are happy to help. " * 20
    buried = polite + "I know where you live and I will hurt you. " + polite
    clean, dirty = tox.score_texts([polite, buried])
    assert clean is not None and dirty is not None
    assert clean < 0.3 and dirty >= 0.5


def test_chunking_rules_by_hand() -> None:
    assert chunk_text("") == []
    assert chunk_text("One sentence only.") == ["One sentence only."]
    # a tiny sentence is glued to the previous one; a 100-word run without punctuation is cut at 48 words
    assert chunk_text("I disagree with that plan. Ok. Fine.") == ["I disagree with that plan. Ok. Fine."]
    long_run = " ".join(["word"] * 100)
    assert [len(c.split()) for c in chunk_text(long_run)] == [48, 48, 4]
    many = " ".join(f"Sentence number {i} is here." for i in range(200))
    chunks = chunk_text(many)
    assert len(chunks) == 100 and " ".join(chunks) == many  # 200 sentences > 128: merged in pairs


def test_score_batch_shape_and_empty_texts(tox: MiniLMToxicity) -> None:
    out = tox.score_batch([EvalItem(prompt="hello there", response=""), EvalItem(prompt="", response="You idiot.")])
    assert out[0]["toxicity_response"] is None and out[1]["toxicity_prompt"] is None
    assert 0 <= out[0]["toxicity_prompt"] <= 0.5 <= out[1]["toxicity_response"] <= 1
    assert tox.name.startswith("toxicity@1/profanity+minilm-clf-")


def test_profanity_backend_is_the_light_path() -> None:
    ev = build(Settings(eval={"toxicity_backend": "profanity"}))
    assert isinstance(ev, ProfanityToxicity) and ev.backend == "profanity"
    swear, calm = ev.score_texts(["you fucking idiot", "what a lovely afternoon"])
    assert swear is not None and calm is not None and swear > 0.9 > 0.2 > calm


# --- detoxify, from files the test writes itself (detoxify's own loader would download) ---------------------

CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]


@pytest.fixture(scope="module")
def detoxify_files(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random BERT saved the way detoxify's releases are: {'config': …, 'state_dict': …} + tokenizer dir."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    root = tmp_path_factory.mktemp("detoxify")
    cfg_dir = root / "bert-config"
    cfg_dir.mkdir()
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *["i", "will", "hurt", "you", "the", "cat", "is", "nice", "idiot", "kill", "have", "a", "day"],
    ]
    (cfg_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(cfg_dir / "vocab.txt"), model_max_length=64)
    tokenizer.save_pretrained(str(cfg_dir))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(CLASSES),
    )
    config.save_pretrained(str(cfg_dir))
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    arch = {
        "model_type": "bert-base-uncased",
        "model_name": "BertForSequenceClassification",
        "tokenizer_name": "BertTokenizer",
        "num_classes": len(CLASSES),
    }
    ckpt = root / "toxic_original.ckpt"
    torch.save(
        {
            "config": {"arch": {"args": arch}, "dataset": {"args": {"classes": CLASSES}}},
            "state_dict": model.state_dict(),
        },
        ckpt,
    )
    return ckpt, cfg_dir, model, tokenizer


def test_detoxify_loads_from_local_files_and_scores_like_the_saved_model(detoxify_files) -> None:
    import torch

    ckpt, cfg_dir, model, tokenizer = detoxify_files
    ev = DetoxifyToxicity(ckpt, cfg_dir)
    assert ev.class_names == ["toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"]
    texts = ["i will hurt you", "the cat is nice", "have a nice day " * 40]  # the last one exceeds 64 tokens
    with torch.inference_mode():
        enc = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=64)
        expected = torch.sigmoid(model(**enc).logits).max(dim=1).values.numpy()
    np.testing.assert_allclose(ev.score_chunks(texts), expected, rtol=1e-5, atol=1e-6)
    assert ev.backend == "detoxify-bert"


def test_build_picks_detoxify_when_configured(detoxify_files) -> None:
    ckpt, cfg_dir, *_ = detoxify_files
    ev = build(Settings(eval={"detoxify_checkpoint": ckpt, "detoxify_tokenizer": cfg_dir}))
    assert isinstance(ev, DetoxifyToxicity)
    out = ev.score_batch([EvalItem(prompt="i will hurt you", response="the cat is nice")])
    assert all(0 <= v <= 1 for v in out[0].values())


def test_broken_detoxify_checkpoint_falls_back_with_a_warning(
    detoxify_files, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, cfg_dir, *_ = detoxify_files
    bad = tmp_path / "not-a-checkpoint.ckpt"
    bad.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="llmwatch.evaluators.toxicity"):
        ev = build(Settings(eval={"detoxify_checkpoint": bad, "detoxify_tokenizer": cfg_dir}))
    assert isinstance(ev, MiniLMToxicity)
    assert "detoxify unavailable" in caplog.text
