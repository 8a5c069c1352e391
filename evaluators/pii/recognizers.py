"""The recognizers PII detection runs (presidio's pattern recognizers, offline, with checksums where the format has
one), the cheap necessary-condition tests that pick which of them run on a text, and the context rules applied to
what they find."""

from __future__ import annotations

import os

# tldextract builds a module-level extractor at import that would fetch the public suffix list at first use.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import ipaddress
import re
from collections.abc import Callable

import tldextract
from phonenumbers.phonenumberutil import _VALID_PUNCTUATION

from .. import presidio_import  # noqa: F401  (first: presidio without transformers and torch)

# isort: split
from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    CryptoRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    MacAddressRecognizer,
    UkNinoRecognizer,
    UsItinRecognizer,
    UsSsnRecognizer,
)

from llmwatch.settings import PII_PHONE_REGIONS

from .cards import find_cards
from .phones import LONG_PHONE_RUN, PHONE_MAX_DIGITS, PHONE_SCAN_CHARS, PhoneFinder, digits

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
#: Words that, nearer to the number than any word above, say it is personal data after all ("order paid with
#: card ...", "ticket holder's phone ...").
CONFIRM_CONTEXT = frozenset({
    "phone", "telephone", "tel", "mobile", "cell", "fax", "call", "contact", "card", "visa", "mastercard", "amex",
    "credit", "debit", "ssn", "itin",
})
# fmt: on
_DENY_TYPES = frozenset({"PHONE_NUMBER", "US_SSN", "US_ITIN", "IP_ADDRESS"})
_WORD = re.compile(r"[^\W\d_]+")

#: Types written with digits: two writings of one value compare by their digits.
DIGIT_TYPES = frozenset({"PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "US_ITIN"})


def words_before(text: str, start: int, n: int) -> list[str]:
    return [w.lower() for w in _WORD.findall(text, max(0, start - 64), start)[-n:]]


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
    ("PHONE_NUMBER", LONG_PHONE_RUN.search),
    ("CREDIT_CARD", re.compile(r"[0-9](?:[ \u00a0-]?[0-9]){11}").search),
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


class _SpanRecognizer(EntityRecognizer):
    """A presidio recognizer around a finder written here (no patterns of presidio's own)."""

    ENTITY: str

    def __init__(self) -> None:
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__, supported_language="en")

    def load(self) -> None:  # nothing to load
        pass

    def _result(self, start: int, end: int, score: float, explanation: str) -> RecognizerResult:
        return RecognizerResult(
            entity_type=self.ENTITY,
            start=start,
            end=end,
            score=score,
            analysis_explanation=AnalysisExplanation(type(self).__name__, score, textual_explanation=explanation),
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            },
        )


class PhoneNumberRecognizer(_SpanRecognizer):
    """Phone numbers in every region's international and national formats (phones.PhoneFinder)."""

    ENTITY = "PHONE_NUMBER"

    def __init__(self, regions: tuple[str, ...] = PII_PHONE_REGIONS, budget: int = PHONE_SCAN_CHARS) -> None:
        self.finder = PhoneFinder(regions, budget)
        super().__init__()

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        found, _ = self.finder.find(text)
        return [self._result(m.start, m.end, m.score, f"phone number ({m.region})") for m in found]


class CardRecognizer(_SpanRecognizer):
    """Payment card numbers: a network's IIN range and length, and the Luhn digit (cards.find_cards)."""

    ENTITY = "CREDIT_CARD"

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return [self._result(m.start, m.end, 1.0, f"{m.network} card") for m in find_cards(text)]


#: Top-level names reserved for tests, examples, documentation and private networks (RFC 2606, RFC 6761, RFC 6762,
#: RFC 8375, ICANN's .internal), and the private names companies use (.corp, .lan, .home): not in the public
#: suffix list, yet an address there is someone's address (jane.doe@corp.example).
RESERVED_TLDS = frozenset(
    {
        "example",
        "test",
        "invalid",
        "localhost",
        "local",
        "internal",
        "arpa",
        "corp",
        "lan",
        "home",
        "intranet",
        "private",
        "localdomain",
    }
)


class OfflineEmailRecognizer(EmailRecognizer):
    """Validates the domain against tldextract's bundled suffix list, never a fetched one, and accepts the reserved
    and private top-level names."""

    _extract = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

    def validate_result(self, pattern_text: str) -> bool:
        if pattern_text.rsplit(".", 1)[-1].lower() in RESERVED_TLDS:
            return True
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
            before = " ".join(words_before(text, result.start, self.context_prefix_count) + (context or []))
            if any(word in before for word in recognizer.context):
                boosted = max(result.score + self.context_similarity_factor, self.min_score_with_context_similarity)
                result.score = min(boosted, self.MAX_SCORE)
        return raw_results


def pattern_recognizers(
    phone_budget: int = PHONE_SCAN_CHARS, phone_regions: tuple[str, ...] = PII_PHONE_REGIONS
) -> list[EntityRecognizer]:
    return [
        OfflineEmailRecognizer(),
        PhoneNumberRecognizer(phone_regions, phone_budget),
        CardRecognizer(),
        IbanRecognizer(),
        UsSsnRecognizer(),
        UsItinRecognizer(),
        UkNinoRecognizer(),
        IpRecognizer(),
        MacAddressRecognizer(),
        CryptoRecognizer(),
    ]


def _placeholder_digits(value: str) -> bool:
    """1234567890, 0123456, 5555555: what people type as a dummy value, not anyone's number."""
    return len(set(value)) == 1 or value in "01234567890" or value in "98765432109"


def _not_personal_ip(value: str) -> bool:
    try:
        ip = ipaddress.ip_interface(value).ip
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified  # the local machine or no address: no one in particular


#: Words between a label and its number that say nothing ("order number is 123", "your ticket no. 45").
_FILLER = frozenset(
    {
        "no",
        "nr",
        "nº",
        "num",
        "number",
        "is",
        "was",
        "are",
        "the",
        "a",
        "an",
        "of",
        "for",
        "your",
        "our",
        "my",
        "his",
        "her",
        "their",
        "this",
        "that",
        "new",
        "old",
    }
)


#: The labels that deny a card number (a checksum and an issuer range are strong evidence; only an id that
#: carries a check digit of its own can pass both).
CARD_DENY_CONTEXT = frozenset(
    {
        "ean",
        "gtin",
        "upc",
        "isbn",
        "imei",
        "iccid",
        "sku",
        "tracking",
        "serial",
        "order",
        "invoice",
        "transaction",
        "txn",
        "ref",
        "reference",
    }
)


def denied(text: str, start: int, deny: frozenset[str] = DENY_CONTEXT) -> bool:
    """Whether the word that labels the number (the nearest word before it, fillers skipped) says it is something
    else: an order, a ticket, a version. Only the label counts: a deny word further back is just prose."""
    for word in reversed(words_before(text, start, 4)):
        if word in _FILLER:
            continue
        return word in deny and word not in CONFIRM_CONTEXT
    return False


def _version_ip(text: str, start: int) -> bool:
    """Chrome/97.0.5113.229, rv:1.9.7.20: a product version in a user agent, not an address."""
    return text[max(0, start - 3) : start].lower() == "rv:" or (
        start >= 2 and text[start - 1] == "/" and text[start - 2].isalpha()
    )


def _inside_a_longer_number(text: str, start: int, end: int) -> bool:
    """978-84-7561-986-6: the SSN-shaped middle of a longer hyphenated number (an ISBN, an order id)."""
    after = text[end : end + 2]
    before = text[max(0, start - 2) : start]
    return (len(after) == 2 and after[0] in "-./" and after[1].isdigit()) or (
        len(before) == 2 and before[1] in "-./" and before[0].isdigit()
    )


def rejected(text: str, r: RecognizerResult) -> bool:
    """Whether a recognizer's match is no PII after all: negative context, impossible or dummy values."""
    value = text[r.start : r.end]
    if r.entity_type == "CREDIT_CARD" and denied(text, r.start, CARD_DENY_CONTEXT):
        return True
    if r.entity_type in _DENY_TYPES and not value.lstrip("(").startswith("+") and denied(text, r.start):
        return True  # (a number written with its country code is a phone whatever the word before it)
    if r.entity_type in {"US_SSN", "US_ITIN"} and _inside_a_longer_number(text, r.start, r.end):
        return True
    if r.entity_type == "US_SSN" and digits(value).startswith("9"):
        return True  # the SSA never issues area numbers 900-999 (that range is the ITIN's)
    if r.entity_type in {"PHONE_NUMBER", "US_SSN"} and _placeholder_digits(digits(value)):
        return True
    if r.entity_type == "PHONE_NUMBER" and len(digits(value).lstrip("0")) > PHONE_MAX_DIGITS + 1:
        return True  # E.164 numbers have at most 15 digits (16 with a trunk 0 or 1): a longer run is an id
    return r.entity_type == "IP_ADDRESS" and (_not_personal_ip(value) or _version_ip(text, r.start))
