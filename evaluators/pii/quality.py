"""How well PII redaction holds on the generated evaluation set (data/pii/, built by scripts/build_pii_set.py from
Faker and phonenumbers): redaction recall per PII type, and the share of clean texts (numbers that are no PII:
prices, decimals, dates, versions, ids, coordinates, measurements) in which anything is flagged.

A value counts as redacted when it is gone from the redacted text: neither the value as written nor, for the
types written with digits, its digit sequence is left in it (a redaction that leaves an extension or a country code
next to the placeholder still counts; one that leaves the subscriber digits does not)."""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..redaction import Redactor
from .detector import PiiDetector
from .phones import digits
from .recognizers import DIGIT_TYPES

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "pii"
SPLITS = ("train", "validation", "test")

#: The figures docs/security.md states for the test split (a CI test fails when redaction falls below them):
#: redaction recall per type at least, and the clean-text flag rate at most.
DOCUMENTED_RECALL = {"CREDIT_CARD": 1.0, "PHONE_NUMBER": 0.985}
DOCUMENTED_CLEAN_FLAG_RATE = 0.003


@lru_cache(maxsize=4)
def load_split(split: str = "test", data_dir: Path = DATA_DIR) -> tuple[dict[str, Any], ...]:
    """The rows of one split: `{"id", "kind": "pii"|"clean", "text", "source", "entities"|"numbers"}`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    path = data_dir / f"{split}.jsonl"
    return tuple(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def value_gone(entity_type: str, value: str, redacted: str) -> bool:
    """Whether `value` is gone from `redacted` (see the module docstring)."""
    if value in redacted:
        return False
    if entity_type in DIGIT_TYPES:
        return digits(value) not in digits(redacted)
    return True


def redaction_report(
    split: str = "test", detector: PiiDetector | None = None, *, data_dir: Path = DATA_DIR, examples: int = 10
) -> dict[str, Any]:
    """Redaction recall per PII type and the clean-text flag rate on one split, as a JSON-able dict.

    `recall[type]` = {n, redacted, recall}; `clean` = {n, flagged, flag_rate, by_kind: {kind: {n, flagged}}};
    `misses` and `false_alarms` hold up to `examples` ids with what was left or found (generated values, no one's
    data)."""
    detector = detector or PiiDetector(cache_size=0)
    redactor = Redactor()
    rows = load_split(split, data_dir)
    total: Counter[str] = Counter()
    gone: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    flagged_kinds: Counter[str] = Counter()
    misses: list[dict[str, Any]] = []
    false_alarms: list[dict[str, Any]] = []
    for row in rows:
        scan = detector.scan(row["text"])
        if row["kind"] == "clean":
            kind = row["numbers"][0] if row["numbers"] else "other"
            kinds[kind] += 1
            if scan.entities:
                flagged_kinds[kind] += 1
                if len(false_alarms) < examples:
                    found = [{"type": e.type, "text": e.text} for e in scan.entities]
                    false_alarms.append({"id": row["id"], "found": found})
            continue
        redacted = redactor.redact(row["text"], scan.spans())
        for entity in row["entities"]:
            total[entity["type"]] += 1
            if value_gone(entity["type"], entity["value"], redacted):
                gone[entity["type"]] += 1
            elif len(misses) < examples:
                misses.append({"id": row["id"], "type": entity["type"], "value": entity["value"], "left": redacted})
    n_clean, n_flagged = sum(kinds.values()), sum(flagged_kinds.values())
    return {
        "dataset": str(data_dir.name),
        "split": split,
        "backend": detector.backend,
        "recall": {
            t: {"n": total[t], "redacted": gone[t], "recall": round(gone[t] / total[t], 4)} for t in sorted(total)
        },
        "clean": {
            "n": n_clean,
            "flagged": n_flagged,
            "flag_rate": round(n_flagged / n_clean, 4) if n_clean else None,
            "by_kind": {k: {"n": kinds[k], "flagged": flagged_kinds[k]} for k in sorted(kinds)},
        },
        "misses": misses,
        "false_alarms": false_alarms,
    }
