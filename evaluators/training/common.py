"""Pieces the trainers share: a logistic fit with C chosen on validation AUC, and authored supplements."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np


def fit_logistic(
    x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, cs: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0)
) -> tuple[Any, float, dict[float, float]]:
    """Balanced logistic regression; C is the one with the best validation AUC (ties: the smaller C)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    aucs: dict[float, float] = {}
    models: dict[float, Any] = {}
    for c in cs:
        model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, y)
        aucs[c] = float(roc_auc_score(y_val, model.decision_function(x_val)))
        models[c] = model
    best = max(cs, key=lambda c: (round(aucs[c], 3), -c))
    return models[best], best, aucs


def supplement(name: str) -> list[dict[str, Any]]:
    """An authored supplement (train split only, never evaluated on): rows of `data/<name>`."""
    path = Path(str(files("llmwatch.evaluators") / "data" / name))
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def encode_cached(embedder: Any, texts: list[str], cache_dir: Path | None = None) -> np.ndarray:
    """embedder.encode(texts), with vectors kept per text in `cache_dir/<backend>.npz` when given: retraining after a
    change of the data, head or calibration embeds only the texts it has not seen."""
    import hashlib

    if cache_dir is None:
        return embedder.encode(texts, batch_size=64, use_cache=False)
    path = cache_dir / f"{embedder.backend}.npz"
    keys = [hashlib.sha256(t.encode()).digest()[:16] for t in texts]
    store: dict[bytes, np.ndarray] = {}
    if path.exists():
        with np.load(path) as f:
            # numpy's S16 drops trailing NUL bytes on read: pad them back, or 1 key in 256 never hits
            store = dict(zip((bytes(k).ljust(16, b"\0") for k in f["keys"]), f["vectors"], strict=True))
    missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in store))
    if missing:
        fresh = embedder.encode(missing, batch_size=64, use_cache=False)
        store.update(zip((hashlib.sha256(t.encode()).digest()[:16] for t in missing), fresh, strict=True))
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.asarray(list(store), dtype="S16"), vectors=np.vstack(list(store.values())))
        tmp.replace(path)
    return np.vstack([store[k] for k in keys])


def align(platt: Any, own_threshold: float, common: float) -> Any:
    """Shift a Platt map so that `own_threshold` (the role's or backend's FPR-target point) lands on `common`:
    score >= common then flags exactly what score >= own_threshold flagged before. It adds a constant to the logit,
    i.e. the calibration of a different prior of attacks (validation slices hold different shares)."""
    from ..calibration import Platt, logit

    delta = float(logit(np.asarray([common]))[0] - logit(np.asarray([own_threshold]))[0])
    return Platt(platt.a, platt.b + delta)
