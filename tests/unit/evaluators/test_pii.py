"""PII: quality floors on tests/data/pii.jsonl, redaction, the prefilter's and the fast phone path's
faithfulness to presidio, leak rules, the optional NER model, and the evaluator contract."""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from llmwatch.evaluators import pii
from llmwatch.evaluators.base import EvalItem, build_evaluator
from llmwatch.evaluators.pii import detector as det
from llmwatch.evaluators.pii import leak, phones
from llmwatch.evaluators.pii import recognizers as rec
from llmwatch.evaluators.redaction import Redactor
from llmwatch.schemas.scores import EvalScores
from llmwatch.settings import Settings

DATA = Path(__file__).parents[2] / "data" / "pii.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
POSITIVES = [r for r in ROWS if r["entities"]]
#: Recorded floors (measured when the set was written: recall 1.00, precision 1.00 over 102 values).
RECALL_FLOOR, PRECISION_FLOOR, TYPE_RECALL_FLOOR = 0.95, 0.90, 0.90
#: What must never survive redaction.
REDACTED_TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE")


@pytest.fixture(scope="module")
def detector() -> det.PiiDetector:
    return det.PiiDetector(cache_size=0)


@pytest.fixture(scope="module")
def evaluator(detector: det.PiiDetector) -> pii.PiiEvaluator:
    return pii.PiiEvaluator(detector)


def _gold(row: dict) -> list[tuple[str, int, int]]:
    text = row["text"]
    return [(e["type"], text.index(e["value"]), text.index(e["value"]) + len(e["value"])) for e in row["entities"]]


def _same(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
    """Same type, spans overlapping by half their union (a leading "+1" or "ext." may differ)."""
    inter = min(a[2], b[2]) - max(a[1], b[1])
    return a[0] == b[0] and inter > 0 and inter / (max(a[2], b[2]) - min(a[1], b[1])) >= 0.5


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _alnum(s: str) -> str:
    return re.sub(r"[\W_]", "", s).upper()


# --- the labeled set -------------------------------------------------------------------------------------


def test_labeled_set_is_big_and_consistent() -> None:
    assert len(POSITIVES) >= 50 and len(ROWS) - len(POSITIVES) >= 50
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    for row in POSITIVES:
        for e in row["entities"]:
            assert e["value"] in row["text"] and e["type"] in rec.PATTERN_ENTITIES, row["id"]


def test_recall_and_precision_stay_above_the_floor(detector: det.PiiDetector) -> None:
    tp = 0
    misses, false_alarms = [], []
    for row in ROWS:
        gold = _gold(row)
        found = [(e.type, e.start, e.end) for e in detector.detect(row["text"])]
        tp += sum(any(_same(g, f) for f in found) for g in gold)
        misses += [(row["id"], g) for g in gold if not any(_same(g, f) for f in found)]
        false_alarms += [(row["id"], f) for f in found if not any(_same(g, f) for g in gold)]
    recall, precision = tp / (tp + len(misses)), tp / (tp + len(false_alarms))
    assert recall >= RECALL_FLOOR, misses
    assert precision >= PRECISION_FLOOR, false_alarms


@pytest.mark.parametrize("entity_type", REDACTED_TYPES)
def test_recall_per_core_type(detector: det.PiiDetector, entity_type: str) -> None:
    gold = [(row, g) for row in POSITIVES for g in _gold(row) if g[0] == entity_type]
    assert len(gold) >= 8
    hits = sum(any(_same(g, (e.type, e.start, e.end)) for e in detector.detect(row["text"])) for row, g in gold)
    assert hits / len(gold) >= TYPE_RECALL_FLOOR


def test_no_value_survives_redaction(evaluator: pii.PiiEvaluator) -> None:
    for row in POSITIVES:
        redacted = evaluator.score(row["text"], "")["redacted_prompt"]
        for e in row["entities"]:
            if e["type"] not in REDACTED_TYPES:
                continue
            value = e["value"]
            assert value not in redacted and f"<{e['type']}>" in redacted, (row["id"], redacted)
            if e["type"] == "IBAN_CODE":
                assert _alnum(value) not in _alnum(redacted), row["id"]
            elif e["type"] != "EMAIL_ADDRESS":
                assert _digits(value) not in _digits(redacted), (row["id"], redacted)


def test_redact_for_sinks_uses_typed_placeholders() -> None:
    text = "Mail li@example.com, call (212) 555-0147, pay 4983 6900 6026 7730."
    assert pii.redact(text) == "Mail <EMAIL_ADDRESS>, call <PHONE_NUMBER>, pay <CREDIT_CARD>."
    assert pii.redact("nothing personal here") == "nothing personal here"


@pytest.mark.parametrize(
    "value",
    ["6ba71e2a-0390-4120-b4bc-c5c73329a04d", "40082449-a718-4d13-b6ca-09244b72c9db", "73dad82ca2acf4d705a5dc63"],
)
def test_opaque_ids_are_left_alone(value: str) -> None:
    """User and session ids are hashes by contract: the phone matcher used to read a UUID's "0390-4120" as a
    number and corrupt the id; an opaque hex id is now not scanned at all."""
    assert pii.redact(value) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2125550147", "<PHONE_NUMBER>"),  # digits only: may be a phone, still scanned
        ("li@example.com", "<EMAIL_ADDRESS>"),  # a producer that sends an email as user id
        ("00:1a:2b:3c:4d:5e", "<MAC_ADDRESS>"),
        ("id 6ba71e2a call 212-555-0147", "id 6ba71e2a call <PHONE_NUMBER>"),  # a hex word inside text
    ],
)
def test_values_that_only_look_like_ids_are_still_scanned(value: str, expected: str) -> None:
    assert pii.redact(value) == expected


# --- speed tricks change nothing ---------------------------------------------------------------------------

_PIECES = st.one_of(
    st.sampled_from([" ", " ", ", ", ". ", "-", ".", ":", "::", "/", "@", "+", "(", ")", "#", "x", "ext "]),
    st.sampled_from(["call", "ssn", "iban", "ip", "wallet", "order", "mac", "at", "DE", "GB", "bc1q", "is"]),
    st.from_regex(r"[0-9]{1,5}", fullmatch=True),
    st.from_regex(r"[0-9a-fA-F]{2,4}", fullmatch=True),
    st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True),
    st.sampled_from([e["value"] for row in POSITIVES for e in row["entities"]]),
)
_TEXTS = st.lists(_PIECES, min_size=1, max_size=14).map("".join)


@pytest.fixture(scope="module")
def recognizers() -> list:
    return rec.pattern_recognizers()


@given(text=_TEXTS)
@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_recognizer_matches_only_where_its_trigger_does(recognizers: list, text: str) -> None:
    for recognizer in recognizers:
        (entity,) = recognizer.supported_entities
        if recognizer.analyze(text, [entity], None):
            assert entity in rec.triggered(text), (entity, text)


@given(text=_TEXTS)
@hsettings(max_examples=500, deadline=None)
def test_long_digit_runs_are_the_runs_with_enough_digits(text: str) -> None:
    """The long-run regex asks for PHONE_MIN_DIGITS itself: the same runs (from their first digit) as counting each
    maximal run's digits."""
    runs = phones.PHONE_RUN.finditer(text)
    counted = [m.span() for m in runs if len(phones.digits(m.group())) >= phones.PHONE_MIN_DIGITS]
    long_runs = [(m.end() - len(m.group().lstrip("+ (")), m.end()) for m in phones.LONG_PHONE_RUN.finditer(text)]
    assert long_runs == counted


def test_prefilter_gives_the_same_entities_on_the_labeled_set(detector: det.PiiDetector) -> None:
    unfiltered = det.PiiDetector(prefilter=False, cache_size=0)
    for row in ROWS:
        assert detector.detect(row["text"]) == unfiltered.detect(row["text"]), row["id"]


def test_texts_without_triggers_run_no_recognizer(detector: det.PiiDetector) -> None:
    assert detector.candidates("Summarise the attached report in three bullet points, please.") == []
    assert "EMAIL_ADDRESS" in detector.candidates("write to a@b")


_PHONE_FORMATS = st.sampled_from(
    ["(ddd) ddd-dddd", "ddd-ddd-dddd", "ddd.ddd.dddd", "dddddddddd", "0dddd dddddd", "0dd dddd dddd", "ddd dd dd dd"]
)


@st.composite
def _phone_texts(draw: st.DrawFn) -> tuple[str, list[tuple[int, int]]]:
    """Text with 1-3 numbers in common formats, and where each number's digits are."""
    text, spans = "", []
    for _ in range(draw(st.integers(1, 3))):
        number = "".join(draw(st.sampled_from("0123456789")) if c == "d" else c for c in draw(_PHONE_FORMATS))
        prefix = draw(st.sampled_from(["", "", "+1 ", "+44 ", "+49 ", "+33 ", "+91 ", "+55 ", "+972 ", "1-"]))
        bare = not prefix and number.isdigit()
        word = draw(st.sampled_from(["call", "fax", "tel:", "mobile"] if bare else ["call", "or", "and", "is", "fax"]))
        text += f"{' ' if text else ''}{word} "
        spans.append((len(text), len(text) + len(prefix + number)))
        text += prefix + number
    return text + draw(st.sampled_from(["", ".", " now", " x12"])), spans


@given(case=_phone_texts())
@hsettings(max_examples=200, deadline=None)
def test_phone_numbers_in_common_formats_are_found_whole(case: tuple[str, list[tuple[int, int]]]) -> None:
    """Every digit of every number lies in a PHONE_NUMBER span, whatever the digits (area codes unassigned or not);
    a bare run of digits needs a phone word before it."""
    text, spans = case
    numbers = [_digits(text[a:b]) for a, b in spans]
    assume(not any(len(set(n)) == 1 or n in "01234567890" for n in numbers))  # dummy values are left alone
    found = [e for e in det.PiiDetector(cache_size=0).detect(text) if e.type == "PHONE_NUMBER"]
    for a, b in spans:
        for i in range(a, b):
            if text[i].isdigit():
                assert any(e.start <= i < e.end for e in found), (text, text[a:b], found)


def test_detection_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    found = det.PiiDetector(cache_size=0).detect("write to jane.doe@example.com")
    assert [e.type for e in found] == ["EMAIL_ADDRESS"]
    assert rec.OfflineEmailRecognizer._extract.suffix_list_urls == ()


# --- rules ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "types"),
    [
        ("call 212-555-0147", ["PHONE_NUMBER"]),
        ("ticket 212-555-0147 was closed", []),  # negative context
        ("the number 1234567890 is a placeholder", []),
        ("proxy to 127.0.0.1:9000", []),  # loopback identifies no one
        ("from 192.0.2.10", ["IP_ADDRESS"]),
        ("ITIN 912-70-1234", ["US_ITIN"]),  # 9xx is never an SSN
        ("SSN 219099999", ["US_SSN"]),  # weak pattern, raised by its context word
        ("value 219099999", []),
        ("SSN 536-90-4399", ["US_SSN"]),  # a phone reading of the same digits loses the overlap
        ("use card 4929 5134 6771 3004", []),  # 16 digits, bad Luhn: no card, and too long for a phone
        ("Ada Lovelace lives in London", []),  # no names without an NER model
    ],
)
def test_rules(detector: det.PiiDetector, text: str, types: list[str]) -> None:
    assert [e.type for e in detector.detect(text)] == types


@pytest.mark.parametrize(
    ("entity_type", "a", "b"),
    [
        ("PHONE_NUMBER", "+1 (212) 555-0147", "212.555.0147"),
        ("PHONE_NUMBER", "+44 20 7946 0958", "020 7946 0958"),
        ("PHONE_NUMBER", "0049 30 1234567", "030 1234567"),
        ("PHONE_NUMBER", "+1-212-555-0147x12", "212.555.0147"),
        ("CREDIT_CARD", "4983 6900 6026 7730", "4983-6900-6026-7730"),
        ("IBAN_CODE", "DE83 3704 0044 0532 0130 11", "de83370400440532013011"),
        ("IP_ADDRESS", "2001:db8:0:0:0:0:0:1", "2001:DB8::1"),
        ("EMAIL_ADDRESS", "Jane.Doe@Example.com", "jane.doe@example.com"),
        ("MAC_ADDRESS", "00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e"),
    ],
)
def test_normalise_makes_writings_of_one_value_equal(entity_type: str, a: str, b: str) -> None:
    assert leak.normalise(entity_type, a) == leak.normalise(entity_type, b)


@pytest.mark.parametrize(
    ("prompt", "response", "leak"),
    [
        ("Call me on +1 (212) 555-0147.", "I will call 212.555.0147 tomorrow.", False),
        ("My office is 020 7946 0958.", "Your number is +44 20 7946 0958.", False),
        ("Card 4983 6900 6026 7730 failed", "Retry 4983-6900-6026-7730 later", False),
        ("Ticket 212-555-0147 is open", "Call 212-555-0147 for updates", False),  # prompt held it, unflagged
        ("Contact support please", "Email bob@example.com", True),
        ("Call me on (212) 555-0147.", "Call (212) 555-0199 instead.", True),
        ("My SSN is 457-97-8331", "", False),
    ],
)
def test_leak(evaluator: pii.PiiEvaluator, prompt: str, response: str, leak: bool) -> None:
    assert evaluator.score(prompt, response)["pii_leak"] is leak


# --- evaluator contract and settings ----------------------------------------------------------------------


def test_registered_evaluator_fills_evalscores_fields() -> None:
    ev = build_evaluator("pii", Settings())
    assert ev.name == "pii@1/presidio-patterns"
    [row] = ev.score_batch([EvalItem(prompt="I am ann@example.com, SSN 457-97-8331", response="Hi ann@example.com")])
    assert set(row) - {"pii_partial"} == set(ev.outputs) <= set(EvalScores.model_fields)
    assert row["pii_partial"] is False  # not a score: the scorer marks the stored event with it
    assert row["pii_prompt"] == ["EMAIL_ADDRESS", "US_SSN"] and row["pii_response"] == ["EMAIL_ADDRESS"]
    assert row["pii_leak"] is False
    assert row["redacted_prompt"] == "I am <EMAIL_ADDRESS>, SSN <US_SSN>"
    scores = EvalScores(event_id="e1", ts="2026-01-01T00:00:00Z", deployment="d", model_version="m", **row)
    assert scores.pii_prompt == ["EMAIL_ADDRESS", "US_SSN"]


# --- the phone scan budget (a digit-heavy text must not stall the score agent) --------------------------------


def test_phone_scan_stops_at_its_budget_and_the_rest_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """64 KiB of digits (one long run) cost seconds unbounded; past the budget the run is not read, the stored copy
    masks it whole, the other recognizers still scan the whole text, and later runs that fit are still read."""
    parsed: list[int] = []
    read_piece = phones.PhoneFinder._read_piece

    def counting(self: phones.PhoneFinder, text: str, start: int, end: int) -> object:
        parsed.append(end - start)
        return read_piece(self, text, start, end)

    monkeypatch.setattr(phones.PhoneFinder, "_read_piece", counting)
    budget = 4096
    digits = " ".join(str(i % 97) for i in range(24_000))  # ~64 KiB, one phone-like run
    text = f"call me at (212) 555-0147 please. {digits} mail bob.smith@example.com, ssn 536-90-4399, or 212-555-0199."
    detector = det.PiiDetector(cache_size=0, phone_scan_chars=budget)
    scan = detector.scan(text)
    assert 0 < sum(parsed) <= budget
    assert scan.partial and scan.unscanned == ((text.index(digits), text.index(digits) + len(digits)),)
    assert [e.type for e in scan.entities] == ["PHONE_NUMBER", "EMAIL_ADDRESS", "US_SSN", "PHONE_NUMBER"]

    row = pii.PiiEvaluator(detector).score(text, "ok")
    assert row["pii_partial"] is True and row["pii_prompt"] == ["EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN"]
    assert row["redacted_prompt"] == (
        "call me at <PHONE_NUMBER> please. <UNSCANNED> mail <EMAIL_ADDRESS>, ssn <US_SSN>, or <PHONE_NUMBER>."
    )
    assert pii.PiiEvaluator(detector).score("call (212) 555-0147", "")["pii_partial"] is False


def test_a_long_run_within_the_budget_costs_linear_time() -> None:
    """A run just under the scan budget (thousands of groups) is read window by window from each group: bounded by
    the digits one number can hold, not by the run's length."""
    import time

    run = " ".join(f"{i % 90 + 10}" for i in range(10_000))  # 30 KiB, one run of two-digit groups
    started = time.perf_counter()
    scan = det.PiiDetector(cache_size=0).scan(f"numbers: {run}")
    assert time.perf_counter() - started < 20.0  # ~1 s here; quadratic would be hours
    assert not scan.partial


def test_unscanned_runs_swallow_what_they_overlap() -> None:
    """A stored copy never keeps part of an unscanned run: an entity overlapping it is masked with it."""
    text = "card 4111 1111 1111 1111 0000000 end"
    run = (5, 32)  # the card and the digits after it, as one run
    card = det.Entity("CREDIT_CARD", 5, 24, "4111 1111 1111 1111", 1.0)
    spans = det.Scan((card,), (run,)).spans()
    assert [(s.type, s.start, s.end) for s in spans] == [(det.UNSCANNED, 5, 32)]
    assert Redactor().redact(text, spans) == "card <UNSCANNED> end"


def test_many_matches_cost_linear_time() -> None:
    """A long text may hold tens of thousands of matches (a pasted list of cards): resolving overlaps and redacting
    must not be quadratic (each took ~10 s on 1 MB with 50k values)."""
    import time

    from presidio_analyzer import RecognizerResult

    n = 30_000
    text = "card 4111 1111 1111 1111 " * n  # 25 characters each
    results = [RecognizerResult("CREDIT_CARD", 25 * i + 5, 25 * i + 24, 1.0) for i in range(n)]
    results += [RecognizerResult("PHONE_NUMBER", 25 * i + 10, 25 * i + 30, 0.4) for i in range(n)]  # all lose
    started = time.perf_counter()
    kept = det.resolve_overlaps(results)
    redacted = Redactor().redact(text, [det.Entity(r.entity_type, r.start, r.end, "", r.score) for r in kept])
    assert time.perf_counter() - started < 3.0
    assert kept == results[:n] and redacted == "card <CREDIT_CARD> " * n


@st.composite
def _disjoint_spans(draw: st.DrawFn) -> tuple[str, list[det.Entity]]:
    text = draw(st.text(alphabet="ab -", max_size=40))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=12)))
    types = st.sampled_from(["EMAIL_ADDRESS", "PHONE_NUMBER"])
    spans = [det.Entity(draw(types), a, b, text[a:b], 0.9) for a, b in zip(cuts[::2], cuts[1::2], strict=False)]
    return text, spans


@given(case=_disjoint_spans())
@hsettings(max_examples=300, deadline=None)
def test_one_pass_redaction_matches_presidio(case: tuple[str, list[det.Entity]]) -> None:
    """The one-pass path gives presidio's output (its merge of same-type values with only spaces between included)."""
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    text, spans = case
    results = [RecognizerResult(s.type, s.start, s.end, s.score) for s in spans]
    operators = {"DEFAULT": OperatorConfig("replace")}
    expected = AnonymizerEngine().anonymize(text=text, analyzer_results=results, operators=operators).text
    assert Redactor().redact(text, spans) == expected


def test_scan_budget_setting_matches_the_default() -> None:
    assert Settings().eval.pii_phone_scan_chars == phones.PHONE_SCAN_CHARS


def test_redaction_off_leaves_no_copies() -> None:
    ev = build_evaluator("pii", Settings(eval={"redact": False}))
    [row] = ev.score_batch([EvalItem(prompt="a@example.com", response="b@example.com")])
    assert row["redacted_prompt"] is None and row["redacted_response"] is None and row["pii_leak"] is True


def _ner_dir(tmp_path: Path, labels: bool = True) -> Path:
    import spacy

    nlp = spacy.blank("en")
    if labels:
        ruler = nlp.add_pipe("entity_ruler")
        ruler.add_patterns([{"label": "PERSON", "pattern": "Ada Lovelace"}, {"label": "GPE", "pattern": "London"}])
    nlp.to_disk(tmp_path / "ner")
    return tmp_path / "ner"


def test_local_ner_model_adds_names_and_places(tmp_path: Path) -> None:
    detector = det.PiiDetector(ner_model=_ner_dir(tmp_path), cache_size=0)
    assert detector.backend.startswith("presidio-patterns+spacy-ner")
    found = detector.detect("Ada Lovelace moved to London; mail ada@example.com")
    assert [e.type for e in found] == ["PERSON", "LOCATION", "EMAIL_ADDRESS"]
    text = "Ada Lovelace moved to London"
    assert pii.PiiEvaluator(detector).score(text, "")["redacted_prompt"] == "<PERSON> moved to <LOCATION>"


@pytest.mark.parametrize("kind", ["missing", "no-labels"])
def test_unusable_ner_model_falls_back_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    path = tmp_path / "nothing-here" if kind == "missing" else _ner_dir(tmp_path, labels=False)
    with caplog.at_level(logging.WARNING, logger="llmwatch.evaluators.pii"):
        detector = det.PiiDetector(ner_model=path, cache_size=0)
    assert detector.backend == "presidio-patterns"
    assert "names and places are not detected" in caplog.text
