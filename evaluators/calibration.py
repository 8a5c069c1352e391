"""Calibrated scores and one decision rule, shared by every evaluator that flags.

A model's raw logit becomes a probability through Platt scaling fitted on its validation set (`Platt`), and the
default flag threshold is the lowest one whose false-positive rate on the validation set's benign rows stays at
or under a stated target (`threshold_for_fpr`), or, where the evaluator says so, whose flag rate stays under a
ceiling in each kind of benign text and under the target on their mean (`threshold_for_slices`). An item is flagged
when its score is `>=` the threshold (`flagged`): the same comparison everywhere.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Platt:
    """p = sigmoid(a * logit + b), fitted on validation logits."""

    a: float = 1.0
    b: float = 0.0

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        z = self.a * np.asarray(logits, dtype=np.float64) + self.b
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def to_json(self) -> dict[str, float]:
        return {"a": round(self.a, 6), "b": round(self.b, 6)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Platt:
        return cls(float(d["a"]), float(d["b"]))


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> Platt:
    """Logistic regression of the label on the logit (one feature, almost no penalty)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(logits, dtype=np.float64).reshape(-1, 1)
    model = LogisticRegression(C=1e4, max_iter=1000).fit(x, np.asarray(labels, dtype=int))
    return Platt(float(model.coef_[0][0]), float(model.intercept_[0]))


def threshold_for_fpr(benign_scores: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold t (rounded up to 4 decimals) with mean(benign >= t) <= target_fpr."""
    s = np.sort(np.asarray(benign_scores, dtype=np.float64))[::-1]
    allowed = math.floor(target_fpr * len(s))  # benign rows that may score >= t
    if len(s) == 0:
        return 0.5
    return min(1.0, _just_above(s[allowed] if allowed < len(s) else 0.0))


def _just_above(score: float) -> float:
    """The 4-decimal threshold strictly above `score`: a benign row scoring `score` stays below it."""
    return math.ceil(float(score) * 10_000 + 1e-9) / 10_000


def threshold_for_slices(
    benign_scores: np.ndarray,
    benign_slices: Sequence[str],
    target_fpr: float,
    slice_target_fpr: float,
    min_slice_rows: int,
) -> float:
    """The lowest threshold (4 decimals) keeping every benign slice of at least min_slice_rows rows at <=
    slice_target_fpr and the mean of those slices' flag rates at <= target_fpr (all rows pooled when no slice is
    that big). One kind of benign text (templates, security pages) may not take the whole false-positive budget
    while thousands of easy questions keep the overall rate low; and the mean counts each kind once, so a large easy
    source (a few thousand greetings) does not buy the hard kinds a larger budget, as a pooled rate would."""
    scores = np.asarray(benign_scores, dtype=np.float64)
    kinds = np.asarray(benign_slices)
    groups = [scores[kinds == k] for k in dict.fromkeys(kinds.tolist())]
    big = [g for g in groups if len(g) >= min_slice_rows] or [scores]

    def meets(t: float) -> bool:
        rates = [float((g >= t).mean()) for g in big]
        return float(np.mean(rates)) <= target_fpr and all(r <= slice_target_fpr for r in rates)

    if len(scores) == 0:
        return 0.5
    # candidates: just above each score, and 0; the rates only fall as t rises, so the first that meets is bisected
    candidates = sorted({0.0, *(_just_above(x) for x in scores)})
    first = bisect.bisect_left(candidates, True, key=meets)
    return min(1.0, candidates[min(first, len(candidates) - 1)])


def logit(p: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p / (1 - p))


def flagged(score: float | None, threshold: float) -> bool | None:
    """The one decision rule: flagged when score >= threshold; None when there is no score."""
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return None
    return bool(score >= threshold)
