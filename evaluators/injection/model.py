"""The learned part of injection scoring: features of a text's chunks and two logistic heads.

Features of a chunk: its all-MiniLM-L6-v2 embedding (384) and, for the text it belongs to, which rule families
fired (one 0/1 per family, plus the noisy-OR rule score). A text scores its best chunk, so one injected sentence in
a long page is judged on its own. Two heads, one per role, because the question differs:
- `user`: is this prompt a direct attack (override, jailbreak, role-play, extraction, obfuscation, any language)?
- `context`: does this document or tool output carry instructions aimed at the model (not: is it about security)?
Both are trained on third-party text (`llmwatch eval train`), then Platt-calibrated on the validation split; the
weights, calibration and default threshold ship in `data/injection_head.json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import Platt, logit
from .matching import match_rules, score_rules
from .rules import FAMILIES

HEAD_FILE = "data/injection_head.json"
ROLES = ("user", "context")
MAX_CHUNKS = 24
CHUNK_WORDS = 64
RULE_SCALE = 2.0  # rule features on the embedding's scale, so one L2 penalty treats both fairly
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def data_path(name: str) -> Path:
    return Path(str(files("llmwatch.evaluators") / name))


def chunks(text: str) -> list[str]:
    """The whole text plus windows of two consecutive sentences, so one injected sentence in a long page is compared
    on its own; long runs without punctuation are cut every CHUNK_WORDS words."""
    sentences: list[str] = []
    for s in _SENTENCE.split(text.strip()):
        words = s.split()
        sentences += [" ".join(words[i : i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS)]
    if len(sentences) <= 1:
        return [text.strip()] if text.strip() else []
    stride = max(1, -(-(len(sentences) - 1) // (MAX_CHUNKS - 1)))
    windows = [" ".join(sentences[i : i + 2]) for i in range(0, len(sentences) - 1, stride)]
    return [text.strip(), *windows[: MAX_CHUNKS - 1]]


def rule_features(text: str) -> np.ndarray:
    """One 0/1 per rule family that fired on `text` (de-obfuscated views included), then the noisy-OR score."""
    hits = match_rules(text)
    fired = {r.family for r in hits}
    return RULE_SCALE * np.asarray([*(f in fired for f in FAMILIES), score_rules(hits)], dtype=np.float64)


@dataclass(frozen=True)
class Head:
    coef: np.ndarray
    intercept: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef + self.intercept


@dataclass
class InjectionModel:
    heads: dict[str, Head]
    platt: dict[str, Platt]
    meta: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> InjectionModel:
        meta = json.loads((path or data_path(HEAD_FILE)).read_text())
        heads = {
            r: Head(np.asarray(h["coef"], dtype=np.float64), float(h["intercept"])) for r, h in meta["heads"].items()
        }
        platt = {k: Platt.from_json(v) for k, v in meta["calibration"].items()}
        return cls(heads, platt, meta)

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])


def text_logits(
    embedder: Any, head: Head, texts: Sequence[str], rules: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """Each text's best-chunk logit under `head`."""
    per_text = [chunks(t) for t in texts]
    unique = list(dict.fromkeys(c for cs in per_text for c in cs))
    if not unique:
        return np.full(len(texts), -20.0)
    vectors = embedder.encode(unique).astype(np.float64)
    emb_logit = dict(zip(unique, (vectors @ head.coef[: vectors.shape[1]]).tolist(), strict=True))
    rules = rules if rules is not None else [rule_features(t) for t in texts]
    out = np.empty(len(texts))
    for i, cs in enumerate(per_text):
        rule_part = float(rules[i] @ head.coef[vectors.shape[1] :]) + head.intercept
        out[i] = (max(emb_logit[c] for c in cs) + rule_part) if cs else -20.0
    return out


def rules_logit(rules: Sequence[np.ndarray]) -> np.ndarray:
    """The rules-only path's raw score (logit of the noisy-OR), for its own calibration."""
    return logit(np.asarray([r[-1] / RULE_SCALE for r in rules], dtype=np.float64))
