"""PiiDetector: one text in, the PII entities in it out (and the digit runs the phone scan had no budget for).

presidio's AnalyzerEngine over the pattern recognizers, behind an NLP engine that loads nothing unless a local NER
model is configured; the prefilter picks the recognizers that can match (none, for most texts), the context rules
drop what is no PII, and overlapping spans of different types resolve to the higher score."""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import presidio_import  # noqa: F401  (first: presidio without transformers and torch)

# isort: split
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import NlpEngine, NoOpNlpEngine, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from llmwatch.settings import PII_PHONE_REGIONS

from .phones import PHONE_SCAN_CHARS
from .recognizers import (
    NER_ENTITIES,
    PATTERN_ENTITIES,
    SCORE_THRESHOLD,
    PhoneNumberRecognizer,
    PrefixContextEnhancer,
    pattern_recognizers,
    rejected,
    triggered,
)

log = logging.getLogger(__name__)

#: The type of a stretch the phone recognizer did not scan (over the budget): stored masked as `<UNSCANNED>`.
UNSCANNED = "UNSCANNED"

#: One opaque hex identifier (a hash, a UUID) with at least one letter: the form user and session ids take by
#: contract. Nothing in it is an entity, and the phone matcher would read a UUID's "0390-4120" as one (5 of
#: 3,000 random UUIDs), so such a value is not scanned; a digits-only value still is (it may be a phone).
_OPAQUE_ID = re.compile(r"(?=[\d-]*[a-fA-F])[0-9a-fA-F]{8,}(?:-[0-9a-fA-F]{4,})*")


@dataclass(frozen=True, slots=True)
class Entity:
    """One detected value: its type, where it sits in the text, and presidio's confidence."""

    type: str
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class Scan:
    """What detection found in one text, and the digit runs the phone recognizer had no budget left for."""

    entities: tuple[Entity, ...]
    unscanned: tuple[tuple[int, int], ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.unscanned)

    def spans(self) -> list[Entity]:
        """What redaction replaces: the entities, and each unscanned run whole, merged with what it overlaps."""
        if not self.unscanned:
            return list(self.entities)
        masks = (Entity(UNSCANNED, start, end, "", 1.0) for start, end in self.unscanned)
        out: list[Entity] = []
        for span in sorted([*self.entities, *masks], key=lambda e: (e.start, e.end)):
            last = out[-1] if out else None
            if last is not None and span.start < last.end and UNSCANNED in (span.type, last.type):
                out[-1] = Entity(UNSCANNED, last.start, max(last.end, span.end), "", 1.0)
            else:
                out.append(span)
        return out


class _LoadedSpacyEngine(SpacyNlpEngine):
    """presidio's spaCy engine around a pipeline already loaded from a path (its loader downloads by name)."""

    def __init__(self, nlp: Any) -> None:
        super().__init__(models=[{"lang_code": "en", "model_name": "local"}])
        self.nlp = {"en": nlp}


def load_ner(path: Path) -> Any | None:
    """A spaCy pipeline with an entity recognizer from a local dir, or None (logged) when it cannot serve."""
    import spacy

    try:
        nlp = spacy.load(path)
    except (OSError, ValueError, KeyError, ImportError) as e:
        log.warning("PII: NER model %s could not be loaded (%s); names and places are not detected", path, e)
        return None
    wanted = {"PERSON", "PER", "LOC", "GPE", "LOCATION"}
    if not any(wanted & set(labels) for labels in nlp.pipe_labels.values()):
        log.warning("PII: NER model %s has no PERSON/LOCATION labels; names and places are not detected", path)
        return None
    return nlp


def resolve_overlaps(results: list[RecognizerResult]) -> list[RecognizerResult]:
    """One entity per stretch of text: where spans of different types overlap the higher score wins.

    The kept spans are disjoint, so only the neighbours by start can overlap a new one (a bisect, not a scan of
    all kept: a long text may hold tens of thousands of matches). Returned by position."""
    kept: list[RecognizerResult] = []
    starts: list[int] = []
    for r in sorted(results, key=lambda r: (-r.score, r.start - r.end, r.start)):
        i = bisect.bisect_right(starts, r.start)
        if (i and kept[i - 1].end > r.start) or (i < len(kept) and kept[i].start < r.end):
            continue
        kept.insert(i, r)
        starts.insert(i, r.start)
    return kept


class PiiDetector:
    """Finds PII entities in one text; built once (recognizers compiled, NER model loaded), then reused."""

    def __init__(
        self,
        ner_model: Path | None = None,
        *,
        prefilter: bool = True,
        cache_size: int = 4096,
        phone_scan_chars: int = PHONE_SCAN_CHARS,
        phone_regions: tuple[str, ...] = PII_PHONE_REGIONS,
    ) -> None:
        nlp = load_ner(ner_model) if ner_model else None
        recognizers = pattern_recognizers(phone_scan_chars, tuple(phone_regions))
        self._phones = next(r for r in recognizers if isinstance(r, PhoneNumberRecognizer)).finder
        engine: NlpEngine
        if nlp is None:
            engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
            engine.load()
            self.backend = "presidio-patterns"
            self.entities: tuple[str, ...] = PATTERN_ENTITIES
        else:
            engine = _LoadedSpacyEngine(nlp)
            recognizers.append(SpacyRecognizer(supported_entities=list(NER_ENTITIES)))
            self.backend = f"presidio-patterns+spacy-ner:{nlp.meta.get('name', 'local')}"
            self.entities = PATTERN_ENTITIES + NER_ENTITIES
        self._ner = nlp is not None
        self._prefilter = prefilter
        self._analyzer = AnalyzerEngine(
            registry=RecognizerRegistry(recognizers=recognizers, supported_languages=["en"]),
            nlp_engine=engine,
            supported_languages=["en"],
            default_score_threshold=SCORE_THRESHOLD,
            context_aware_enhancer=PrefixContextEnhancer(),
        )
        # Prompts repeat (templates, canned checks): the same text is analysed once per process.
        self.scan = lru_cache(maxsize=cache_size)(self._scan)

    def detect(self, text: str) -> tuple[Entity, ...]:
        return self.scan(text).entities

    def candidates(self, text: str) -> list[str]:
        """Entity types whose recognizers could match in `text` (all of them without the prefilter)."""
        if not self._prefilter:
            return list(self.entities)
        found = triggered(text)
        wanted = [entity for entity in PATTERN_ENTITIES if entity in found]
        return wanted + list(NER_ENTITIES) if self._ner else wanted

    def _scan(self, text: str) -> Scan:
        wanted = self.candidates(text) if text.strip() and not _OPAQUE_ID.fullmatch(text) else []
        if not wanted:
            return Scan(())
        results = self._analyzer.analyze(text, language="en", entities=wanted)
        results = resolve_overlaps([r for r in results if not rejected(text, r)])
        entities = (Entity(r.entity_type, r.start, r.end, text[r.start : r.end], r.score) for r in results)
        unscanned = self._phones.runs(text)[1] if "PHONE_NUMBER" in wanted else []
        return Scan(tuple(sorted(entities, key=lambda e: (e.start, e.end))), tuple(unscanned))


def detector_from(settings: Any) -> PiiDetector:
    """The detector the settings describe (`settings.eval`)."""
    return PiiDetector(
        settings.eval.ner_model,
        phone_scan_chars=settings.eval.pii_phone_scan_chars,
        phone_regions=tuple(settings.eval.pii_phone_regions),
    )
