"""PII in prompts and responses: the entity types found, whether the response leaks a value the prompt did
not hold, and redacted copies of both texts for storage.

Offline by construction: presidio's pattern recognizers (with checksums where the format has one) behind
an NLP engine that loads nothing. Names and places need an NER model and no trustworthy one ships in a
package, so the default claims nothing about them; `LLMWATCH_EVAL__NER_MODEL` (a local spaCy model dir)
adds PERSON and LOCATION.

Speed: presidio runs every recognizer on every text, although most texts cannot hold most entities. Here a
cheap necessary-condition regex per entity type picks the recognizers that run (none, for most texts), and
the phone recognizer (libphonenumber, region by region, the slow one) only parses windows around digit runs
long enough to be a number (FastPhoneRecognizer).

Scan budget: libphonenumber costs ~40 µs per character it parses, so a long digit-heavy text (a CSV of numbers, a
dump of digit groups) costs seconds per 64 KiB, and a 1 MB prompt would stall the score agent for over a minute.
The cost follows the windows parsed around phone-like digit runs (each run plus a margin either side), not the
text's length: prose with a few numbers is cheap at any length. So the budget is counted in those window
characters, in text order (`pii_phone_scan_chars`, 32 KiB by default: 1-2 s at worst), not as a cut of the text
at N characters, which would mask every number of a long but ordinary prompt. It bites on digit-heavy text only
(a CSV of numbers exceeds it from ~10 KiB: its runs are short and their windows overlap). Runs that do not fit
are not parsed, and the stored copy masks each of them whole as `<UNSCANNED>` (a run is the only place a phone
number can be, so nothing unscanned is stored raw); every other recognizer (email, card with Luhn, SSN, IBAN...)
still scans the whole text, cheap regexes. The evaluator then reports `pii_partial`, which the stored event
carries as the attribute `llmwatch.pii_scan=partial`: detection there may have missed a phone number (or a leak).
"""

from __future__ import annotations

import os

# tldextract builds a module-level extractor at import that would fetch the public suffix list at first use.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import base64
import bisect
import ipaddress
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import phonenumbers
import tldextract
from phonenumbers.phonenumberutil import _VALID_PUNCTUATION
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine, NoOpNlpEngine, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    CryptoRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    MacAddressRecognizer,
    PhoneRecognizer,
    SpacyRecognizer,
    UkNinoRecognizer,
    UsItinRecognizer,
    UsSsnRecognizer,
)

from llmwatch.schemas import DeadLetter, Feedback
from llmwatch.settings import get_settings

from .base import Evaluator, Sample, register
from .redaction import Redactor, excerpt

log = logging.getLogger(__name__)

#: What the offline default reports: structured identifiers with a fixed format, most with a checksum.
#: Left out as too noisy on LLM traffic: dates, URLs, UUIDs, US bank/passport/driver-licence numbers.
PATTERN_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "US_ITIN",
    "UK_NINO",
    "IP_ADDRESS",
    "MAC_ADDRESS",
    "CRYPTO",
)
#: Added by a local NER model only.
NER_ENTITIES = ("PERSON", "LOCATION")
#: Below this presidio score a match is not reported (a bare phone-like number scores 0.4, a weak SSN 0.05
#: unless a context word such as "ssn" comes before it).
SCORE_THRESHOLD = 0.4
#: Phone numbers are reported from seven digits as written (shorter national numbers exist but are rare).
PHONE_MIN_DIGITS = 7
#: Characters libphonenumber may parse per text, over the windows around digit runs (see the module docstring).
PHONE_SCAN_CHARS = 32 * 1024
#: The type of a stretch the phone recognizer did not scan (over the budget): stored masked as `<UNSCANNED>`.
UNSCANNED = "UNSCANNED"

# libphonenumber's own separators (a character-class body; it holds ranges and escapes).
_PHONE_PUNCT = f"[{_VALID_PUNCTUATION}]"
#: A maximal digit run the phone matcher could read as one number: digits joined by up to 4 separators.
_PHONE_RUN = re.compile(rf"\d(?:{_PHONE_PUNCT}{{0,4}}\d)*", re.IGNORECASE)
#: The same runs when they hold PHONE_MIN_DIGITS digits or more: the regex skips the short ones itself, which
#: took phone_runs from 7.3 to 4.1 µs per text against counting each run's digits (same spans, tests check it).
_LONG_PHONE_RUN = re.compile(rf"\d(?:{_PHONE_PUNCT}{{0,4}}\d){{{PHONE_MIN_DIGITS - 1},}}", re.IGNORECASE)
_PHONE_MARGIN = 24  # room around a run for "+", "(" and an extension ("ext. 1234")

# fmt: off
#: Words that, just before a number, say it identifies something else (an order, a build, a timestamp).
#: Negative context as DLP rule sets use it; applied to the digit formats that collide with such numbers.
DENY_CONTEXT = frozenset({
    "order", "orders", "invoice", "inv", "po", "receipt", "transaction", "txn", "confirmation", "booking",
    "ticket", "case", "tracking", "shipment", "parcel", "ref", "reference", "id", "job", "batch", "lot",
    "isbn", "sku", "gtin", "ean", "upc", "serial", "part", "model", "patent",
    "build", "version", "ver", "release", "firmware", "commit", "timestamp", "epoch", "unix",
    "chapter", "section", "clause", "appendix", "figure", "table", "step",
})
# fmt: on
_DENY_TYPES = frozenset({"PHONE_NUMBER", "US_SSN", "US_ITIN", "IP_ADDRESS"})
_WORD = re.compile(r"[^\W\d_]+")

_DIGIT_TYPES = frozenset({"PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "US_ITIN"})

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


def _words_before(text: str, start: int, n: int) -> list[str]:
    return [w.lower() for w in _WORD.findall(text, max(0, start - 64), start)[-n:]]


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


_DAY, _MONTH = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])"
#: Runs that are a date (2024-05-22, 22/05/2024, 05.22.24): libphonenumber rejects most of them, slowly.
_DATE_RUN = re.compile(rf"(?:19|20)\d\d([-/.]){_MONTH}\1{_DAY}|{_DAY}([-/.]){_DAY}\2(?:(?:19|20)\d\d|\d\d)")


def phone_runs(text: str) -> list[re.Match[str]]:
    """Digit runs that may hold a phone number: seven digits or more, not a date."""
    return [m for m in _LONG_PHONE_RUN.finditer(text) if not _DATE_RUN.fullmatch(m.group())]


def phone_windows(text: str, budget: int) -> tuple[list[tuple[re.Match[str], int, int]], list[tuple[int, int]]]:
    """The phone runs to parse, each with its window (run, lo, hi), in text order while their windows fit in
    `budget` characters; and the (start, end) of the runs that did not fit (a later, smaller run may still fit)."""
    scanned: list[tuple[re.Match[str], int, int]] = []
    skipped: list[tuple[int, int]] = []
    used = 0
    for run in phone_runs(text):
        lo, hi = max(0, run.start() - _PHONE_MARGIN), min(len(text), run.end() + _PHONE_MARGIN)
        if used + hi - lo > budget:
            skipped.append(run.span())
            continue
        used += hi - lo
        scanned.append((run, lo, hi))
    return scanned, skipped


#: Necessary conditions: where no test of an entity type finds its substring, its recognizer cannot match and is
#: skipped. Each finds a substring that every match of presidio's pattern contains (tests check it on random
#: text). Tests of digit formats run on the text's digit zones only, a few dozen characters of a long text.
TEXT_TESTS: tuple[tuple[str, Callable[[str], object]], ...] = (
    ("EMAIL_ADDRESS", re.compile("@").search),
    # the lookbehind after the first digit: tried at digits only (2.4 against 3.5 µs per text)
    ("IBAN_CODE", re.compile(r"\d(?<=[A-Z]{2}\d)\d").search),  # presidio matches IBANs case-sensitively
    ("IP_ADDRESS", re.compile(r":[0-9a-f]{0,4}:", re.IGNORECASE).search),  # IPv6: two colons at least
    # three literal-led branches, no back-reference, no IGNORECASE: 1.9 against 5.0 µs per text
    ("MAC_ADDRESS", re.compile(r":[0-9a-fA-F]{2}:|-[0-9a-fA-F]{2}-|\.[0-9a-fA-F]{4}\.").search),
    ("CRYPTO", re.compile(r"[13]\w{25}").search),
)
DIGIT_TESTS: tuple[tuple[str, Callable[[str], object]], ...] = (
    ("PHONE_NUMBER", phone_runs),
    ("CREDIT_CARD", re.compile(r"\d{4}[- ]?\d{3,4}[- ]?\d{3,4}[- ]?\d{3}").search),
    ("US_SSN", re.compile(r"\d{3}[- .]?\d{2}[- .]?\d{4}|\d{5}-\d{4}|\d{3}-\d{6}").search),
    ("US_ITIN", re.compile(r"9\d{2}[- ]?\d{2}[- ]?\d{4}").search),
    ("UK_NINO", re.compile(r"\d{2} ?\d{2} ?\d{2}").search),
    ("IP_ADDRESS", re.compile(r"\d\.\d{1,3}\.\d").search),  # IPv4
)
#: A digit and what may follow it inside a number in any of the DIGIT_TESTS (libphonenumber's separators first:
#: that class body starts with a literal "-").
_DIGIT_ZONE = re.compile(rf"\d[{_VALID_PUNCTUATION}\d\s.:/+]*", re.IGNORECASE)


def triggered(text: str) -> set[str]:
    """Entity types whose recognizers could match in `text`."""
    found = {entity for entity, test in TEXT_TESTS if test(text)}
    zones = "\n".join(_DIGIT_ZONE.findall(text))  # "\n" separates like the letters it replaces
    if zones:
        found.update(entity for entity, test in DIGIT_TESTS if entity not in found and test(zones))
    return found


class FastPhoneRecognizer(PhoneRecognizer):
    """presidio's phone recognizer (libphonenumber, region by region) made cheap enough for every event.

    libphonenumber rescans the whole text once per region, and most of its time goes to parsing digit runs
    that are no number at all. Here each long digit run is matched in a small window around it, regions
    stop at the first that reads the whole run as a number (the others could only add parts of it), dates
    and runs a valid card or IBAN covers are skipped, and CA is left out of presidio's regions (NANP: it
    finds exactly what US finds).
    """

    REGIONS = ("US", "GB", "IN", "DE", "FR", "BR", "IL")

    def __init__(self, budget: int = PHONE_SCAN_CHARS) -> None:
        super().__init__(supported_regions=self.REGIONS)
        self.budget = budget  # window characters parsed per text; runs past it are left to the caller to mask
        # A long run that a card or IBAN (checksum, score 1.0) covers loses any overlap with a phone anyway.
        self._claimers: tuple[EntityRecognizer, ...] = (CreditCardRecognizer(), IbanRecognizer())

    def _claimed(self, window: str, start: int, end: int) -> bool:
        return any(
            r.start <= start and r.end >= end
            for claimer in self._claimers
            for r in claimer.analyze(window, claimer.supported_entities)
        )

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        found: list[RecognizerResult] = []
        for run, lo, hi in phone_windows(text, self.budget)[0]:
            window = text[lo:hi]
            if len(_digits(run.group())) >= 13 and self._claimed(window, run.start() - lo, run.end() - lo):
                continue
            for region in self.supported_regions:
                whole = False
                for m in phonenumbers.PhoneNumberMatcher(window, region, leniency=self.leniency):
                    start, end = m.start + lo, m.end + lo
                    if end <= run.start() or start >= run.end():
                        continue  # a neighbour's: its own window finds it whole
                    if len(_digits(m.raw_string)) < PHONE_MIN_DIGITS:
                        continue  # a short piece of the run ("030000" of "00000 030000"): no phone alone
                    whole = whole or (start <= run.start() and end >= run.end())
                    found.append(self._result(start, end, region))
                if whole:
                    break
        return EntityRecognizer.remove_duplicates(found)

    def _result(self, start: int, end: int, region: str) -> RecognizerResult:
        return RecognizerResult(
            entity_type=self.supported_entities[0],
            start=start,
            end=end,
            score=self.SCORE,
            analysis_explanation=self._get_analysis_explanation(region),
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            },
        )


class OfflineEmailRecognizer(EmailRecognizer):
    """Validates the domain against tldextract's bundled suffix list, never a fetched one."""

    _extract = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

    def validate_result(self, pattern_text: str) -> bool:
        return self._extract(pattern_text).fqdn != ""


class PrefixContextEnhancer(ContextAwareEnhancer):
    """presidio's context rule (a recognizer's context word among the five words before a match raises its
    score by 0.35, to at least 0.4) on a regex, not on spaCy lemmas: no tokenizer pass per text."""

    def __init__(self) -> None:
        super().__init__(
            context_similarity_factor=0.35,
            min_score_with_context_similarity=0.4,
            context_prefix_count=5,
            context_suffix_count=0,
        )

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        by_id = {r.id: r for r in recognizers}
        for result in raw_results:
            meta = result.recognition_metadata or {}
            recognizer = by_id.get(meta.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
            if recognizer is None or not recognizer.context:
                continue
            before = " ".join(_words_before(text, result.start, self.context_prefix_count) + (context or []))
            if any(word in before for word in recognizer.context):
                boosted = max(result.score + self.context_similarity_factor, self.min_score_with_context_similarity)
                result.score = min(boosted, self.MAX_SCORE)
        return raw_results


class _LoadedSpacyEngine(SpacyNlpEngine):
    """presidio's spaCy engine around a pipeline already loaded from a path (its loader downloads by name)."""

    def __init__(self, nlp: Any) -> None:
        super().__init__(models=[{"lang_code": "en", "model_name": "local"}])
        self.nlp = {"en": nlp}


def _pattern_recognizers(phone_budget: int = PHONE_SCAN_CHARS) -> list[EntityRecognizer]:
    return [
        OfflineEmailRecognizer(),
        FastPhoneRecognizer(phone_budget),
        CreditCardRecognizer(),
        IbanRecognizer(),
        UsSsnRecognizer(),
        UsItinRecognizer(),
        UkNinoRecognizer(),
        IpRecognizer(),
        MacAddressRecognizer(),
        CryptoRecognizer(),
    ]


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


def _resolve_overlaps(results: list[RecognizerResult]) -> list[RecognizerResult]:
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


def _placeholder_digits(digits: str) -> bool:
    """1234567890, 0123456, 5555555: what people type as a dummy value, not anyone's number."""
    return len(set(digits)) == 1 or digits in "01234567890" or digits in "98765432109"


def _not_personal_ip(value: str) -> bool:
    try:
        ip = ipaddress.ip_interface(value).ip
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified  # the local machine or no address: no one in particular


def _rejected(text: str, r: RecognizerResult) -> bool:
    value = text[r.start : r.end]
    if r.entity_type in _DENY_TYPES and not DENY_CONTEXT.isdisjoint(_words_before(text, r.start, 3)):
        return True
    if r.entity_type == "US_SSN" and _digits(value).startswith("9"):
        return True  # the SSA never issues area numbers 900-999 (that range is the ITIN's)
    if r.entity_type in {"PHONE_NUMBER", "US_SSN"} and _placeholder_digits(_digits(value)):
        return True
    if r.entity_type == "PHONE_NUMBER" and len(_digits(value).lstrip("0")) > 15:
        return True  # E.164 numbers have at most 15 digits: a longer run is a card, an account, an id
    return r.entity_type == "IP_ADDRESS" and _not_personal_ip(value)


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


class PiiDetector:
    """Finds PII entities in one text; built once (recognizers compiled, NER model loaded), then reused."""

    def __init__(
        self,
        ner_model: Path | None = None,
        *,
        prefilter: bool = True,
        cache_size: int = 4096,
        phone_scan_chars: int = PHONE_SCAN_CHARS,
    ) -> None:
        nlp = load_ner(ner_model) if ner_model else None
        self._phone_budget = phone_scan_chars
        recognizers = _pattern_recognizers(phone_scan_chars)
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
        results = _resolve_overlaps([r for r in results if not _rejected(text, r)])
        entities = (Entity(r.entity_type, r.start, r.end, text[r.start : r.end], r.score) for r in results)
        unscanned = phone_windows(text, self._phone_budget)[1] if "PHONE_NUMBER" in wanted else []
        return Scan(tuple(sorted(entities, key=lambda e: (e.start, e.end))), tuple(unscanned))


def normalise(entity_type: str, value: str) -> str:
    """The form in which two writings of one value compare equal (`+1 (212) 555-0147` ~ `212.555.0147`)."""
    if entity_type == "PHONE_NUMBER":
        try:
            region = None if value.lstrip().startswith("+") else "US"
            return str(phonenumbers.parse(value, region).national_number)
        except phonenumbers.NumberParseException:
            return _digits(value).lstrip("0")
    if entity_type in _DIGIT_TYPES:
        return _digits(value)
    if entity_type in {"IBAN_CODE", "UK_NINO", "MAC_ADDRESS"}:
        return re.sub(r"[\W_]", "", value).upper()
    if entity_type == "IP_ADDRESS":
        try:
            return str(ipaddress.ip_interface(value).ip)
        except ValueError:
            return value.lower()
    if entity_type == "CRYPTO" and not value.lower().startswith("bc1"):
        return value  # base58 is case-sensitive
    return " ".join(value.casefold().split())


def _prompt_holds(prompt: str, entity: Entity, key: str) -> bool:
    """Whether the prompt's text holds the value although detection there missed it (e.g. negative context)."""
    if entity.type in _DIGIT_TYPES:
        return any(_digits(m.group()).endswith(key) for m in _PHONE_RUN.finditer(prompt))
    folded = prompt.casefold()
    return entity.text.casefold() in folded or key.casefold() in folded


def leaks(prompt: str, prompt_entities: Sequence[Entity], response_entities: Sequence[Entity]) -> bool:
    """True when the response holds an entity value (normalised) that the prompt did not contain."""
    known = {normalise(e.type, e.text) for e in prompt_entities}
    for entity in response_entities:
        key = normalise(entity.type, entity.text)
        if key not in known and not _prompt_holds(prompt, entity, key):
            return True
    return False


def entity_types(entities: Sequence[Entity]) -> list[str]:
    return sorted({e.type for e in entities})


class PiiEvaluator(Evaluator):
    """Entity types in prompt and response, the leak flag, and redacted texts (when redaction is on).

    Its result also holds `pii_partial` (not a score: the scorer marks the stored event with it), True when a
    text had more phone-like digits than the scan budget."""

    id = "pii"
    version = 1
    outputs = ("pii_prompt", "pii_response", "pii_leak", "redacted_prompt", "redacted_response")

    def __init__(self, detector: PiiDetector | None = None, *, redact: bool = True) -> None:
        self.detector = detector or PiiDetector()
        self.redactor = Redactor() if redact else None
        self.backend = self.detector.backend

    def score_batch(self, items: Sequence[Sample]) -> list[dict[str, Any]]:
        return [self.score(item.prompt, item.response or "") for item in items]

    def score(self, prompt: str, response: str) -> dict[str, Any]:
        in_prompt, in_response = self.detector.scan(prompt), self.detector.scan(response)
        return {
            "pii_prompt": entity_types(in_prompt.entities),
            "pii_response": entity_types(in_response.entities),
            "pii_leak": leaks(prompt, in_prompt.entities, in_response.entities),
            "redacted_prompt": self.redactor.redact(prompt, in_prompt.spans()) if self.redactor else None,
            "redacted_response": self.redactor.redact(response, in_response.spans()) if self.redactor else None,
            "pii_partial": in_prompt.partial or in_response.partial,
        }


def _detector(settings: Any) -> PiiDetector:
    return PiiDetector(settings.eval.ner_model, phone_scan_chars=settings.eval.pii_phone_scan_chars)


@register("pii")
def build(settings: Any) -> PiiEvaluator:
    return PiiEvaluator(_detector(settings), redact=settings.eval.redact)


#: How much of a dead letter's raw value its copy in ClickHouse keeps (redacted; raw_size keeps the true size):
#: enough to see what was wrong, and a bound on the redaction time an adversarial record costs (~0.7 s at worst).
DEAD_LETTER_KEEP_CHARS = 8 * 1024


@lru_cache(maxsize=1)
def _default() -> tuple[PiiDetector, Redactor]:
    return _detector(get_settings()), Redactor()


def redact(text: str) -> str:
    """`text` with every entity the process-wide detector finds replaced by `<ENTITY_TYPE>` (for sinks, logs), and
    digit runs past the phone scan budget by `<UNSCANNED>`."""
    detector, redactor = _default()
    return redactor.redact(text, detector.scan(text).spans())


def redact_dead_letter(record: DeadLetter, keep_chars: int = DEAD_LETTER_KEEP_CHARS) -> DeadLetter:
    """The copy of a dead letter that the analysts' `dead_letters` table stores: its value and key as UTF-8 text
    (undecodable bytes replaced), cut to `keep_chars`, redacted, and its reason redacted (a validator may echo
    the input there).

    The llm.dlq topic keeps the raw bytes, for replay: it is access-controlled infrastructure like the events
    topic; the tables are not. Never raises: a record that cannot be redacted is stored without its value.
    """
    try:
        raw = excerpt(record.raw().decode("utf-8", "replace"), keep_chars)
        key = record.key_b64 and excerpt(base64.b64decode(record.key_b64).decode("utf-8", "replace"), keep_chars)
        return record.model_copy(
            update={
                "raw_b64": base64.b64encode(redact(raw).encode()).decode(),
                "key_b64": base64.b64encode(redact(key).encode()).decode() if key else record.key_b64,
                "reason": redact(record.reason),
            }
        )
    except Exception as e:  # the sink must go on; the DLQ topic still has the record
        log.warning(
            "dead letter %s@%s: redaction failed (%s); stored without its value",
            record.partition,
            record.offset,
            type(e).__name__,
        )
        return record.model_copy(
            update={"raw_b64": "", "key_b64": None, "reason": f"(reason not redactable) {record.error_type}"}
        )


def redact_feedback(record: Feedback) -> Feedback:
    """The copy of a feedback record that the `feedback` table stores: its comment (free text a user typed) and
    user_id (hashed by contract, but a producer may send an email) redacted; the llm.feedback topic keeps the
    original. Never raises: a record that cannot be redacted is stored without those two fields."""
    try:
        return record.model_copy(
            update={
                "comment": redact(record.comment) if record.comment else record.comment,
                "user_id": redact(record.user_id) if record.user_id else record.user_id,
            }
        )
    except Exception as e:  # the sink must go on; the topic still has the record
        log.warning(
            "feedback %s: redaction failed (%s); stored without comment and user", record.feedback_id, type(e).__name__
        )
        return record.model_copy(update={"comment": None, "user_id": None})
