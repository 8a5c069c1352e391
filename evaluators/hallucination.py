"""Groundedness of RAG answers: the share of response sentences the retrieved context does not support.

Each response sentence gets an "unsupported" degree in [0, 1]:
- semantic: how far its best cosine (MiniLM) against the context's sentences, 2-sentence chunks and whole
  passages falls below the calibrated band [`SIM_LOW`, `SIM_HIGH`] (1 below it, 0 above it, linear between),
  unless nearly all its content words occur in the sources (a terse paraphrase can score a low cosine) — or,
  with a local NLI cross-encoder, 1 - P(entailment) against the best context passage;
- facts: embeddings barely see a changed number or date, so a sentence whose numbers, months or weekdays
  appear in neither context nor prompt is unsupported outright, and one naming a proper noun that neither
  mentions is `NOVEL_NAME_PENALTY` unsupported per such name.
The score is the mean degree (a soft share). Events without context get None: not applicable, never a guess.
Sentences that abstain ("the context does not say") or carry no claim (fewer than 3 words) are not scored.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import Evaluator, Sample, register
from .embeddings import Embedder, get_embedder

log = logging.getLogger(__name__)

#: Calibrated on tests/data/groundedness.jsonl (see tests/unit/evaluators/test_hallucination.py).
SIM_LOW = 0.45
SIM_HIGH = 0.70
NOVEL_NAME_PENALTY = 0.5
LEX_FULL = 0.5
MIN_CLAIM_WORDS = 3

# --- sentences ---------------------------------------------------------------------------------------
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|vs|Dr|Mr|Mrs|Ms|Prof|St|No|Inc|Ltd|Co|Jr|Sr|approx|U\.S|a\.m|p\.m)\.$", re.I)
_BOUNDARY = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def split_sentences(text: str) -> list[str]:
    """Regex splitter (no model: nltk's punkt needs a data download) that keeps common abbreviations."""
    out: list[str] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line)
        pending, pos = "", 0
        for m in _BOUNDARY.finditer(line):
            pending += line[pos : m.end()]
            pos = m.end()
            if not _ABBREV.search(pending.rstrip()):
                out.append(pending.strip())
                pending = ""
        out.append((pending + line[pos:]).strip())
    return [s for s in out if any(c.isalnum() for c in s)]


# --- facts: numbers, dates, names --------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return text.split()


_SMALL = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
# "one" is mostly a pronoun: not a number here.
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(_words(f"{_SMALL} seventeen eighteen nineteen twenty")) if i >= 2}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80"})
_NUMBER_WORDS.update({"ninety": "90", "hundred": "100", "dozen": "12"})
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "k": 1e3, "bn": 1e9}
_NUM = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?!\d)(?:st|nd|rd|th)?"
    r"(?:\s*(thousand|million|billion|trillion|bn|k)\b)?",
    re.I,
)
_MONTHS = _words("January February March April May June July August September October November December")
_MONTHS += _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
# Capitalised only, so the verb "may" is not a month.
_MONTH = re.compile(r"\b(" + "|".join(_MONTHS) + r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\b")
_MONTH_SHORT = {m[:3]: m for m in _MONTHS[:12]} | {"Sept": "September"}
_WORD = re.compile(r"[A-Za-z][A-Za-z\-']+")
_NOT_NAMES = set(_words("The This That These Those There They Their Then When Where What Which While With Without"))
_NOT_NAMES |= set(_words("Your You Our However Also Yes Not For From And But Its It's Please Note Sure Here According"))
_ABSTAIN = re.compile(
    r"\b(?:(?:does|do|did)\s+not\s+(?:say|mention|specify|state|include|contain)|(?:is|are)\s+not\s+"
    r"(?:mentioned|specified|stated|given|provided|covered)|i\s+(?:do\s+not|don't)\s+know|no\s+information|"
    r"not\s+(?:in|from)\s+the\s+(?:context|document|text)|cannot\s+(?:find|tell|determine))\b",
    re.I,
)


def _word_numbers(text: str) -> str:
    return re.sub(r"\b[a-z]+\b", lambda m: _NUMBER_WORDS.get(m.group(0).lower(), m.group(0)), text)


def numbers(text: str) -> set[str]:
    """Every number in `text`, normalised ("1,500" → "1500", "2.5 million" → "2500000" and "2.5")."""
    found: set[str] = set()
    for m in _NUM.finditer(_word_numbers(text)):
        whole, frac, scale = m.group(1).replace(",", ""), m.group(2), (m.group(3) or "").lower()
        value = float(f"{whole}.{frac}" if frac else whole)
        found.add(_fmt(value))
        if scale in _SCALE:
            found.add(_fmt(value * _SCALE[scale]))
    return found


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def months(text: str) -> set[str]:
    """Month and weekday names, lower-cased and unabbreviated."""
    return {_MONTH_SHORT.get(m, m).lower() for m in _MONTH.findall(text)}


def names(sentence: str) -> set[str]:
    """Capitalised words after a sentence's first word: a cheap stand-in for named entities."""
    words = _WORD.findall(sentence)[1:]
    return {w for w in words if len(w) >= 3 and w[0].isupper() and w not in _NOT_NAMES and w not in _MONTHS}


@dataclass(frozen=True)
class FactCheck:
    """Why a sentence's facts fail: values it states that the sources lack."""

    numbers: frozenset[str]
    months: frozenset[str]
    names: frozenset[str]

    @property
    def degree(self) -> float:
        if self.numbers or self.months:
            return 1.0
        return min(1.0, NOVEL_NAME_PENALTY * len(self.names))


def check_facts(sentence: str, source: str) -> FactCheck:
    """Numbers, months/weekdays and names in `sentence` that `source` (context + prompt) never mentions."""
    src_lower = source.lower()
    src_numbers = numbers(source)
    return FactCheck(
        numbers=frozenset(n for n in numbers(sentence) if n not in src_numbers),
        months=frozenset(m for m in months(sentence) - months(source) if m not in src_lower),
        names=frozenset(n for n in names(sentence) if n.lower() not in src_lower and n.lower()[:-1] not in src_lower),
    )


def context_units(passages: Sequence[str]) -> list[str]:
    """Sentences, overlapping 2-sentence chunks and whole passages: the things a claim may match."""
    units: list[str] = []
    for passage in passages:
        sents = split_sentences(passage)
        units.extend(sents)
        if len(sents) > 2:
            units.append(" ".join(sents))
        units.extend(f"{a} {b}" for a, b in itertools.pairwise(sents))
    return list(dict.fromkeys(u for u in units if u.strip()))


# A short list beats importing scikit-learn (1-3 s) for its stop-word set.
_STOP = set(
    _words(
        "a an the and or but if then than so of to in on at by for from with without about into over under as is are "
        "was were be been being am do does did done have has had having it its it's this that these those there their "
        "they them he she his her we our you your i me my not no yes can could will would shall should may might must "
        "also just only very more most less some any all each every other such what which who whom whose when where "
        "why how after before during while up down out off again further once here both few own same too per via"
    )
)


def lexical_gap(sentence: str, source_words: set[str]) -> float:
    """Share of the sentence's content words absent from the sources (5-letter prefixes match: crude stemming)."""
    content = [w for w in re.findall(r"[a-z]{3,}", sentence.lower()) if w not in _STOP]
    if not content:
        return 0.0
    missing = [w for w in content if w not in source_words and w[:5] not in source_words]
    return len(missing) / len(content)


def source_vocabulary(source: str) -> set[str]:
    words = set(re.findall(r"[a-z]{3,}", source.lower()))
    return words | {w[:5] for w in words if len(w) >= 5}


def _ramp(sim: float) -> float:
    return float(np.clip((SIM_HIGH - sim) / (SIM_HIGH - SIM_LOW), 0.0, 1.0))


def _lex(gap: float) -> float:
    return float(np.clip(gap / LEX_FULL, 0.0, 1.0))


def claims(response: str) -> list[str]:
    """Response sentences that make a checkable claim."""
    return [
        s
        for s in split_sentences(response)
        if not _ABSTAIN.search(s) and (len(s.split()) >= MIN_CLAIM_WORDS or numbers(s) or months(s))
    ]


# --- the evaluator ------------------------------------------------------------------------------------
class _NLI:
    """A local NLI cross-encoder (sentence_transformers.CrossEncoder); P(entailment) per (premise, claim)."""

    def __init__(self, path: Path) -> None:
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(str(path), device="cpu", max_length=512, local_files_only=True)
        labels = {int(k): v.lower() for k, v in self.model.config.id2label.items()}
        hits = [i for i, v in labels.items() if v.startswith("entail")]
        if self.model.num_labels > 1 and not hits:
            raise ValueError(f"NLI model {path} has no entailment label: {labels}")
        self.entail = hits[0] if hits else 0

    def entailment(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        if self.model.num_labels == 1:
            return np.asarray(self.model.predict(pairs, activation_fn=_sigmoid()), dtype=np.float32).reshape(-1)
        probs = self.model.predict(pairs, apply_softmax=True, convert_to_numpy=True)
        return np.asarray(probs, dtype=np.float32)[:, self.entail]


def _sigmoid() -> Any:
    import torch

    return torch.nn.Sigmoid()


class HallucinationEvaluator(Evaluator):
    id = "hallucination"
    version = 1
    outputs = ("hallucination",)

    uses_model = True

    def __init__(self, embedder: Embedder | None, nli: _NLI | None = None) -> None:
        self.embedder = embedder
        self.nli = nli
        if nli is not None:
            self.backend = "nli+facts"
        elif embedder is not None:
            self.backend = f"minilm-{embedder.backend}+facts"
        else:
            raise ValueError("hallucination needs an embedder or an NLI model")

    def score_batch(self, items: Sequence[Sample]) -> list[dict[str, Any]]:
        return [{"hallucination": s} for s in self.scores(items)]

    def scores(self, items: Sequence[Sample]) -> list[float | None]:
        """Soft share of unsupported claims per item; None without context (or without a response)."""
        plans = [self._plan(it) for it in items]
        semantic = self._nli_degrees(plans) if self.nli else self._similarity_degrees(plans)
        out: list[float | None] = []
        for plan, sem in zip(plans, semantic, strict=True):
            if plan is None:
                out.append(None)
            elif not plan.claims:
                out.append(0.0)
            else:
                degrees = [max(s, f.degree) for s, f in zip(sem, plan.facts, strict=True)]
                out.append(float(np.clip(np.mean(degrees), 0.0, 1.0)))
        return out

    def explain(self, item: Sample) -> list[dict[str, Any]]:
        """Per-claim detail (degree, facts the sources lack): for reports and debugging."""
        plan = self._plan(item)
        if plan is None:
            return []
        sem = (self._nli_degrees if self.nli else self._similarity_degrees)([plan])[0]
        return [
            {"sentence": c, "semantic": s, "facts": f, "degree": max(s, f.degree)}
            for c, s, f in zip(plan.claims, sem, plan.facts, strict=True)
        ]

    def _plan(self, item: Sample) -> _Plan | None:
        passages = [p for p in (item.context or []) if p and p.strip()]
        if not passages or not (item.response or "").strip():
            return None
        source = "\n".join([*passages, item.prompt or ""])
        cl = claims(item.response)
        vocab = source_vocabulary(source)
        return _Plan(
            passages,
            context_units(passages),
            cl,
            [check_facts(c, source) for c in cl],
            [lexical_gap(c, vocab) for c in cl],
        )

    def _similarity_degrees(self, plans: Sequence[_Plan | None]) -> list[list[float]]:
        texts: dict[str, int] = {}
        for p in plans:
            for t in [*(p.claims if p else []), *(p.units if p else [])]:
                texts.setdefault(t, len(texts))
        assert self.embedder is not None
        vecs = self.embedder.encode(list(texts)) if texts else np.zeros((0, 1), dtype=np.float32)
        out: list[list[float]] = []
        for p in plans:
            if p is None or not p.claims or not p.units:
                out.append([1.0] * (len(p.claims) if p else 0))
                continue
            sims = vecs[[texts[c] for c in p.claims]] @ vecs[[texts[u] for u in p.units]].T
            # A paraphrase can sit below the cosine band yet reuse the context's words: either view may clear it.
            best = sims.max(axis=1)
            out.append([min(_ramp(float(s)), _lex(g)) for s, g in zip(best, p.gaps, strict=True)])
        return out

    def _nli_degrees(self, plans: Sequence[_Plan | None]) -> list[list[float]]:
        assert self.nli is not None
        pairs: list[tuple[str, str]] = []
        for p in plans:
            if p is not None:
                pairs.extend((passage, c) for c in p.claims for passage in p.passages)
        probs = self.nli.entailment(pairs)
        out: list[list[float]] = []
        i = 0
        for p in plans:
            if p is None:
                out.append([])
                continue
            n = len(p.claims) * len(p.passages)
            per = probs[i : i + n].reshape(len(p.claims), len(p.passages)) if n else np.zeros((0, 1))
            i += n
            out.append([float(1.0 - row.max()) for row in per])
        return out


@dataclass(frozen=True)
class _Plan:
    passages: list[str]
    units: list[str]
    claims: list[str]
    facts: list[FactCheck]
    gaps: list[float]


@register("hallucination")
def build(settings: Any = None) -> HallucinationEvaluator:
    """Similarity backend on the shared embedder; the NLI backend when `eval.nli_model` is a local dir."""
    eval_settings = getattr(settings, "eval", settings)
    nli_path = getattr(eval_settings, "nli_model", None)
    if nli_path is not None:
        if Path(nli_path).is_dir():
            return HallucinationEvaluator(None, _NLI(Path(nli_path)))
        log.warning("nli_model %s is not a local directory; using the embedding-similarity backend", nli_path)
    return HallucinationEvaluator(get_embedder(settings))
