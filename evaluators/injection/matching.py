"""Running the rules: one Hyperscan pass finds candidate patterns (`multiscan`), `re` confirms them, on the raw
text and on its de-obfuscated views; a hit seen only in a view also fires LW-INJ-ENC-003 (hiding an instruction is
itself a signal). `score_rules` combines hits by noisy-OR (the rules-only light path)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..multiscan import PatternSet
from .deobfuscate import decode_base64_blobs, deobfuscated_views
from .rules import RULES, RULES_BY_ID, Rule

_PATTERN_RULES: tuple[Rule, ...] = tuple(r for r in RULES if r.patterns)
_OBFUSCATION = RULES_BY_ID["LW-INJ-ENC-003"]
_BASE64 = RULES_BY_ID["LW-INJ-ENC-001"]


def match_rules(text: str) -> list[Rule]:
    """Rules that fire on `text` or on one of its de-obfuscated views (each rule at most once)."""
    hits: dict[str, Rule] = {}
    _add_firing(text, hits)
    obfuscated = False
    blobs = decode_base64_blobs(text)
    for view in [*deobfuscated_views(text), *blobs]:
        obfuscated = _add_firing(view, hits) or obfuscated
    if blobs:
        hits[_BASE64.id] = _BASE64
    if obfuscated:
        hits[_OBFUSCATION.id] = _OBFUSCATION
    return list(hits.values())


#: every rule pattern in one Hyperscan prefilter; _OWNER[i] = the rule pattern i belongs to
_RULE_PATTERNS = PatternSet([p for r in _PATTERN_RULES for p in r.patterns])
_OWNER: tuple[Rule, ...] = tuple(r for r in _PATTERN_RULES for _ in r.patterns)


def _add_firing(text: str, hits: dict[str, Rule]) -> bool:
    """Add to `hits` the rules not yet in it that fire on `text`, in ruleset order; True if any did."""
    before = len(hits)
    for i in _RULE_PATTERNS.candidates(text):
        rule = _OWNER[i]
        if rule.id not in hits and rule.fires(_RULE_PATTERNS.patterns[i], text):
            hits[rule.id] = rule
    return len(hits) > before


def score_rules(hits: Iterable[Rule]) -> float:
    """Noisy-OR of rule weights: independent pieces of evidence, each able to flag the text alone."""
    miss = 1.0
    for r in hits:
        miss *= 1.0 - r.weight
    return 1.0 - miss


def rule_scores(texts: Sequence[str]) -> list[float]:
    """Batch helper: the noisy-OR rule score of each text."""
    return [score_rules(match_rules(t)) for t in texts]
