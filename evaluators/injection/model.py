"""The learned part of injection scoring: features of a text's chunks and two logistic heads.

Features of a chunk: its all-MiniLM-L6-v2 embedding (384); for the text it belongs to, which rule families fired
(one 0/1 per family, plus the noisy-OR rule score); and the chunk's hashed character 2-5-grams and word 1-2-grams
(`ngrams`, 2 x 2^18 buckets, each block L2-normalised). The n-grams read what the English-only embedding cannot:
other languages, obfuscated spellings, the exact idioms of attacks; the embedding reads paraphrases no n-gram was
seen with. A text scores its best chunk, so one injected sentence in a long page is judged on its own; a head may
discount a window against the whole text by `window_penalty` x ln(windows) (`best_chunk`). Two heads,
one per role, because the question differs:
- `user`: is this prompt a direct attack (override, jailbreak, role-play, extraction, obfuscation, any language)?
- `context`: does this document or tool output carry instructions aimed at the model (not: is it about security)?
Both are trained on third-party text (`llmwatch eval train`), then Platt-calibrated on the validation split; the
weights of the dense features, calibration and default threshold ship in `data/injection_head.json`, the n-gram
weights (float16, one row per head) in `data/injection_ngrams.npz`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from ..base import weights_digest
from ..calibration import Platt, logit
from .matching import match_rules, score_rules
from .rules import FAMILIES

HEAD_FILE = "data/injection_head.json"
NGRAM_FILE = "data/injection_ngrams.npz"
NGRAM_BITS = 18  # buckets per analyzer: 2^18 keeps collisions rare for ~10^5 distinct n-grams and the file ~1 MB
ROLES = ("user", "context")
MAX_CHUNKS = 24
CHUNK_WORDS = 64
RULE_SCALE = 2.0  # rule features on the embedding's scale, so one L2 penalty treats both fairly
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def data_path(name: str) -> Path:
    return Path(str(files("llmwatch.evaluators") / name))


def chunks(text: str) -> list[str]:
    """The whole text plus windows of two consecutive sentences, so one injected sentence in a long page is compared
    on its own; long runs without punctuation are cut every CHUNK_WORDS words.

    Every sentence lies in a window. Past MAX_CHUNKS sentences the windows stop overlapping and widen to the
    stride (a page of 60 sentences: 20 windows of 3), so the cost stays bounded. Until 2026-12-07 they kept two
    sentences and skipped ahead: from 48 sentences on, every third sentence sat in no window (and from 25 on,
    the last one, where an appended instruction goes), which a padded document could use to hide one. The
    model reads 256 tokens of a window, so past ~23 x 256 tokens (~4,000 words) a wide window's tail is unread."""
    sentences: list[str] = []
    for s in _SENTENCE.split(text.strip()):
        words = s.split()
        sentences += [" ".join(words[i : i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS)]
    if len(sentences) <= 1:
        return [text.strip()] if text.strip() else []
    if len(sentences) <= MAX_CHUNKS:
        starts, width = range(len(sentences) - 1), 2
    else:
        width = -(-len(sentences) // (MAX_CHUNKS - 1))
        starts = range(0, len(sentences), width)
    return [text.strip(), *(" ".join(sentences[i : i + width]) for i in starts)]


def rule_features(text: str) -> np.ndarray:
    """One 0/1 per rule family that fired on `text` (de-obfuscated views included), then the noisy-OR score."""
    hits = match_rules(text)
    fired = {r.family for r in hits}
    return RULE_SCALE * np.asarray([*(f in fired for f in FAMILIES), score_rules(hits)], dtype=np.float64)


@functools.cache
def _vectorizers() -> tuple[Any, Any]:
    """sklearn's HashingVectorizer (murmurhash3: no vocabulary to ship, the same buckets in every version)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    common: dict[str, Any] = {"n_features": 2**NGRAM_BITS, "alternate_sign": False, "norm": "l2", "lowercase": True}
    char = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common)
    word = HashingVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b", **common)
    return char, word


def ngrams(texts: Sequence[str]) -> Any:
    """Hashed n-gram features of `texts`: a scipy CSR matrix (len(texts), 2 * 2^NGRAM_BITS)."""
    import scipy.sparse as sp

    char, word = _vectorizers()
    return sp.hstack([char.transform(texts), word.transform(texts)], format="csr")


@dataclass(frozen=True)
class Head:
    coef: np.ndarray  # dense part: embedding, then rule features
    intercept: float
    ngram_coef: np.ndarray | None = None  # hashed n-gram part (None: a head trained without n-grams)
    window_penalty: float = 0.0  # see `best_chunk`


@dataclass
class InjectionModel:
    heads: dict[str, Head]
    platt: dict[str, Platt]
    meta: dict[str, Any]
    digest: str = "unknown"  # of the head file and its n-grams (`weights_digest`)

    @classmethod
    def load(cls, path: Path | None = None) -> InjectionModel:
        path = path or data_path(HEAD_FILE)
        meta = json.loads(path.read_text())
        ngram_coef: dict[str, np.ndarray] = {}
        weight_files = [path]
        if meta.get("ngram_file"):
            weight_files.append(path.with_name(meta["ngram_file"]))
            with np.load(weight_files[-1]) as f:
                ngram_coef = {r: f[r].astype(np.float32) for r in meta["heads"] if r in f}
        heads = {
            r: Head(
                np.asarray(h["coef"], dtype=np.float64),
                float(h["intercept"]),
                ngram_coef.get(r),
                float(h.get("window_penalty", 0.0)),
            )
            for r, h in meta["heads"].items()
        }
        platt = {k: Platt.from_json(v) for k, v in meta["calibration"].items()}
        return cls(heads, platt, meta, weights_digest(*weight_files))

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])


def text_parts(
    embedder: Any, head: Head, texts: Sequence[str], rules: Sequence[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each text's whole-text logit, its best window's logit (-inf when it has no window) and its number of windows,
    under `head`. An empty text has no chunk: its whole-text logit is -20."""
    per_text = [chunks(t) for t in texts]
    whole, window, n_windows = np.full(len(texts), -20.0), np.full(len(texts), -np.inf), np.zeros(len(texts))
    unique = list(dict.fromkeys(c for cs in per_text for c in cs))
    if not unique:
        return whole, window, n_windows
    vectors = embedder.encode(unique).astype(np.float64)
    chunk_logits = vectors @ head.coef[: vectors.shape[1]]
    if head.ngram_coef is not None:
        chunk_logits += ngrams(unique) @ head.ngram_coef
    emb_logit = dict(zip(unique, chunk_logits.tolist(), strict=True))
    rules = rules if rules is not None else [rule_features(t) for t in texts]
    for i, cs in enumerate(per_text):
        if not cs:
            continue
        rule_part = float(rules[i] @ head.coef[vectors.shape[1] :]) + head.intercept
        whole[i] = emb_logit[cs[0]] + rule_part
        if len(cs) > 1:
            window[i] = max(emb_logit[c] for c in cs[1:]) + rule_part
            n_windows[i] = len(cs) - 1
    return whole, window, n_windows


def best_chunk(whole: np.ndarray, window: np.ndarray, n_windows: np.ndarray, penalty: float) -> np.ndarray:
    """max(whole text, best window - penalty x ln(windows)).

    The best of many windows is an extreme value: a long benign prompt (an application template, a pasted page)
    offers a dozen imperative sentences, and the best of a dozen draws of a benign score sits well above a single
    draw. The user head learned attacks from whole prompts (windows were only negatives), so its window hits are
    discounted by the log of how many were drawn; a short prompt (one window) is scored as before. The context
    head's positives are single planted sentences in long documents, so its penalty is 0."""
    discounted = window - penalty * np.log(np.maximum(n_windows, 1.0))
    return np.maximum(whole, discounted)


def text_logits(
    embedder: Any, head: Head, texts: Sequence[str], rules: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """Each text's best-chunk logit under `head` (`best_chunk`, with the head's window penalty)."""
    return best_chunk(*text_parts(embedder, head, texts, rules), head.window_penalty)


def rules_logit(rules: Sequence[np.ndarray]) -> np.ndarray:
    """The rules-only path's raw score (logit of the noisy-OR), for its own calibration."""
    return logit(np.asarray([r[-1] / RULE_SCALE for r in rules], dtype=np.float64))
