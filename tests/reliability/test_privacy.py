"""Privacy: with redaction on (the default), no raw email, phone, credit-card number or SSN from a seeded PII corpus
appears in any ClickHouse table or log line; redaction is irreversible (reversibility is not offered). With
redaction at source on as well (LLMWATCH_REDACT_AT_SOURCE), none appears on any Kafka topic either, and the PII
metrics still count what the raw texts held.

The corpus puts PII everywhere an InferenceEvent carries free text: prompt, response, RAG context, error,
attribute values, and user_id (hashed by contract, raw from a careless producer). A real worker runs it
at DEBUG logging; then every row of every table (base64 columns decoded), the worker's log and the DLQ topic are
searched for every raw value. A negative control finds the same values in what was produced, so the search
can fail. Payloads that are refused carry PII too: the DLQ topic keeps their raw bytes (replay; access-controlled
infrastructure), the analysts' dead_letters table only a redacted copy.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import re
import urllib.parse
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
import pytest

from llmwatch.evaluators import pii, redaction
from llmwatch.evaluators.pii import sinks
from llmwatch.evaluators.pii.detector import PiiDetector
from llmwatch.harness import GatewayProcess, WorkerProcess, produce_sync, query_scalar, read_partitions, wait_for
from llmwatch.inference.sdk import LlmwatchClient
from llmwatch.schemas import DeadLetter, Feedback, InferenceEvent, utcnow
from llmwatch.settings import EvaluatorSettings, Settings, TopicNames, WorkerSettings

pytestmark = [pytest.mark.reliability]

SEED = 1337
N_EVENTS = 200
FIRST = ("alice", "bob", "carol", "dmitri", "eve", "farah", "gunnar", "hana", "ivan", "jun", "kemal", "lucia")
LAST = ("smith", "ng", "okafor", "muller", "garcia", "kowalski", "tanaka", "silva", "dubois", "rossi")
DOMAINS = ("example.com", "mail.example.org", "corp-mail.net", "uni.ac.uk", "post.de", "web.fr")
PHONE_REGIONS = ("US", "US", "GB", "DE", "FR", "IN", "BR")


@dataclass(frozen=True)
class Value:
    type: str  # EMAIL_ADDRESS | PHONE_NUMBER | CREDIT_CARD | US_SSN
    text: str  # as written in the corpus

    def needles(self) -> set[str]:
        """What must not be found: the value as written, and its bare digits for the digit formats."""
        out = {self.text, self.text.lower()}
        digits = re.sub(r"\D", "", self.text)
        if self.type != "EMAIL_ADDRESS" and len(digits) >= 9:
            out.add(digits)
        return out


class Corpus:
    """Seeded fake PII: emails, phones (US and international, several formats), Luhn-valid cards with spaces and
    dashes, SSNs; each value used once."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.used: set[str] = set()
        self.values: list[Value] = []

    def _new(self, type_: str, make: Any) -> str:
        while True:
            text = make()
            if text not in self.used and re.sub(r"\D", "", text) not in self.used:
                self.used.update({text, re.sub(r"\D", "", text)})
                self.values.append(Value(type_, text))
                return text

    def email(self) -> str:
        r = self.rng
        return self._new(
            "EMAIL_ADDRESS",
            lambda: f"{r.choice(FIRST)}.{r.choice(LAST)}{r.randrange(1000)}@{r.choice(DOMAINS)}",
        )

    def card(self) -> str:
        def make() -> str:
            prefix, length = self.rng.choice([("4", 16), ("51", 16), ("55", 16), ("34", 15), ("37", 15), ("6011", 16)])
            body = [int(c) for c in prefix] + [self.rng.randrange(10) for _ in range(length - len(prefix) - 1)]
            total = sum(d if i % 2 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(body)))
            number = "".join(map(str, body)) + str((10 - total % 10) % 10)
            groups = (4, 6, 5) if length == 15 else (4, 4, 4, 4)
            parts, at = [], 0
            for g in groups:
                parts.append(number[at : at + g])
                at += g
            return self.rng.choice([number, " ".join(parts), "-".join(parts)])

        return self._new("CREDIT_CARD", make)

    def ssn(self) -> str:
        def make() -> str:
            area = self.rng.choice([a for a in range(1, 900) if a != 666])
            s = f"{area:03d}-{self.rng.randrange(1, 100):02d}-{self.rng.randrange(1, 10000):04d}"
            return self.rng.choice([s, s.replace("-", " ")])

        return self._new("US_SSN", make)

    def phone(self) -> str:
        def make() -> str:
            while True:
                region = self.rng.choice(PHONE_REGIONS)
                kind = self.rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
                national = str(phonenumbers.example_number_for_type(region, kind).national_number)
                candidate = national[:-4] + "".join(str(self.rng.randrange(10)) for _ in range(4))
                number = phonenumbers.parse(candidate, region)
                if phonenumbers.is_valid_number(number):
                    break
            fmt = phonenumbers.PhoneNumberFormat
            if region == "US":
                d = str(number.national_number)
                return self.rng.choice(
                    [
                        phonenumbers.format_number(number, fmt.NATIONAL),  # (201) 555-0123
                        phonenumbers.format_number(number, fmt.INTERNATIONAL),  # +1 201-555-0123
                        f"{d[:3]}-{d[3:6]}-{d[6:]}",
                        f"{d[:3]}.{d[3:6]}.{d[6:]}",
                    ]
                )
            return phonenumbers.format_number(number, self.rng.choice([fmt.INTERNATIONAL, fmt.E164]))

        return self._new("PHONE_NUMBER", make)


def corpus_events(corpus: Corpus, n: int) -> list[InferenceEvent]:
    """`n` events with PII in every free-text field (and in user_id for some)."""
    rng = corpus.rng
    start = utcnow() - timedelta(minutes=10)
    out = []
    for i in range(n):
        error = status = None
        if i % 5 == 0:
            status = "error"
            error = f"upstream refused the request for {corpus.email()}: card {corpus.card()} declined"
        out.append(
            InferenceEvent(
                event_id=f"pii-{i:04d}-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
                ts=start + timedelta(seconds=2 * i),
                deployment="privacy",
                model="pii-model",
                model_version=rng.choice(["v1", "v2"]),
                user_id=corpus.email() if i % 4 == 0 else uuid.UUID(int=rng.getrandbits(128)).hex[:24],
                prompt=(
                    f"Hi, I'm writing about my account. My email is {corpus.email()}, my card number is "
                    f"{corpus.card()} and you can call me at {corpus.phone()}."
                ),
                response=f"Thanks! We will call {corpus.phone()} to confirm. Your SSN on file is {corpus.ssn()}.",
                context=[
                    f"Customer record: phone {corpus.phone()}, SSN: {corpus.ssn()}",
                    f"Notes: escalate to {corpus.email()}; backup card {corpus.card()}",
                ],
                status=status or "ok",
                error=error,
                attributes={"customer_email": corpus.email(), "callback": corpus.phone(), "tier": "gold"},
                input_tokens=rng.randrange(10, 500),
                output_tokens=rng.randrange(10, 500),
                ttft_ms=round(rng.uniform(10, 200), 3),
                e2e_ms=round(rng.uniform(300, 900), 3),
                source="privacy-test",
            )
        )
    return out


def bad_payloads(corpus: Corpus) -> list[bytes]:
    """Refused payloads holding fresh PII, including two whose refusal reason would echo it."""
    base = json.loads(InferenceEvent(deployment="privacy", model="pii-model", prompt="hello").encode())
    with_pii = base | {"event_id": "pii-bad", "prompt": f"email {corpus.email()} card {corpus.card()}"}
    raw = json.dumps(with_pii).encode()
    return [
        raw[: len(raw) - 40],  # truncated JSON
        raw.replace(b"email ", b"email \xff", 1),  # invalid UTF-8
        raw.replace(b"email ", b"email \x00", 1),  # NUL byte
        json.dumps(with_pii | {"ttft_ms": f"call {corpus.phone()}"}).encode(),  # wrong type
        json.dumps(with_pii | {"schema_version": "2.0", "response": f"SSN {corpus.ssn()}"}).encode(),
        json.dumps(base | {"attributes": {corpus.email(): 5}}).encode(),  # the field name (a key) is PII
        json.dumps(base | {"schema_version": f"x {corpus.email()}"}).encode(),  # the validator echoes the value
        json.dumps(base | {"status": f"card {corpus.card()}"}).encode(),
    ]


def find(values: Iterable[Value], haystack: str) -> list[Value]:
    """The values any of whose needles occur in `haystack` (case-insensitive for the text forms)."""
    lowered = haystack.lower()
    return [v for v in values if any(n in haystack or n in lowered for n in v.needles())]


_B64_TOKEN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def _b64_text(value: str | None) -> str:
    if not value:
        return ""
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


def dump_tables(settings: Settings) -> dict[str, str]:
    """table → every row as text (TSVRaw), with each base64 column decoded too."""
    tables = query_scalar(
        settings,
        "SELECT groupArray((name, engine)) FROM system.tables WHERE database = currentDatabase()",
    )
    out: dict[str, str] = {}
    for name, engine in tables:
        if engine == "MaterializedView":
            continue  # it writes into a table dumped on its own
        rows = query_scalar(settings, f"SELECT groupArray(formatRow('TSVRaw', *)) FROM `{name}`") or []
        parts = list(rows)
        columns = query_scalar(
            settings,
            f"SELECT groupArray(name) FROM system.columns WHERE database = currentDatabase() AND table = '{name}'",
        )
        for column in columns:
            if column.endswith("_b64"):
                parts.extend(_b64_text(v) for v in query_scalar(settings, f"SELECT groupArray({column}) FROM `{name}`"))
        out[name] = "\n".join(parts)
    return out


def read_topic(settings: Settings, role: str) -> list[tuple[bytes | None, bytes]]:
    """Every (key, value) in the topic of `role`, from the beginning."""
    return [record for records in read_partitions(settings, role).values() for record in records]


@pytest.fixture
def privacy_settings(isolated_topics: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    return isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            # redact is left at its default: the default is what must hold
            "eval": EvaluatorSettings(enabled=list(request.param)),
            "worker": WorkerSettings(
                app_id=f"test-privacy-{uuid.uuid4().hex[:8]}",
                window_size_s=60,
                window_lateness_s=5,
                window_idle_close_s=2,
                sink_within_s=0.3,
            ),
        }
    )


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize(
    "privacy_settings",
    [pytest.param(["pii"], id="pii-evaluator"), pytest.param([], id="no-evaluator")],
    indirect=True,
)
def test_no_raw_pii_in_tables_logs_or_dlq(privacy_settings: Settings, tmp_path: Path) -> None:
    s = privacy_settings
    assert EvaluatorSettings().redact is True  # redaction is on by default
    corpus = Corpus()
    events = corpus_events(corpus, N_EVENTS)
    good_values = list(corpus.values)
    bad = bad_payloads(corpus)
    bad_values = corpus.values[len(good_values) :]
    assert len(good_values) >= 10 * N_EVENTS and len(bad_values) == 7
    assert {v.type for v in good_values} == {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN"}

    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(s, ["score", "window", "sink", "judge", "alerter"], log_path, loglevel="debug").start()
    try:
        assert produce_sync(s, s.topics.events, [*events[:100], *bad, *events[100:]]) == len(events) + len(bad)

        want = (len(events), len(events), len(bad), len(events))

        def landed() -> bool:
            got = query_scalar(
                s,
                "SELECT ((SELECT count() FROM inference_events FINAL), (SELECT count() FROM eval_scores FINAL),"
                " (SELECT count() FROM dead_letters FINAL), (SELECT sum(count) FROM window_metrics FINAL))",
            )
            if tuple(got) != want:
                raise AssertionError(f"events, scores, dead letters, windowed: {got}, want {want}")
            return True

        wait_for(landed, 240, "the corpus, its scores, windows and dead letters", processes=[worker])
        tables = dump_tables(s)
        # the stored texts are the redacted ones: placeholders where the values were
        stored = query_scalar(
            s, "SELECT groupArray(prompt || response || arrayStringConcat(context)) FROM inference_events"
        )
        assert all("<EMAIL_ADDRESS>" in t and "<CREDIT_CARD>" in t and "<PHONE_NUMBER>" in t for t in stored)
        assert worker.alive()
    finally:
        worker.stop()

    # negative control: the same search finds every value in what was produced (and the events topic holds it)
    produced = "\n".join(v.decode("utf-8", "replace") for _, v in read_topic(s, "events"))
    assert find(corpus.values, produced) == corpus.values

    leaks = {name: [v.text for v in find(corpus.values, text)] for name, text in tables.items()}
    assert not any(leaks.values()), {k: (len(v), v[:3]) for k, v in leaks.items() if v}
    assert {"inference_events", "eval_scores", "dead_letters", "window_metrics"} <= set(tables)

    # what analysts see of a refused payload: a redacted excerpt and a redacted reason, never nothing
    assert "<EMAIL_ADDRESS>" in tables["dead_letters"] and "<CREDIT_CARD>" in tables["dead_letters"]

    log_text = log_path.read_text(errors="replace")
    assert "DEBUG" in log_text  # the log really ran at the most verbose level
    log_text += "\n".join(_b64_text(t) for t in _B64_TOKEN.findall(log_text))  # base64 is no redaction
    logged = find(corpus.values, log_text)
    assert not logged, [
        line for line in log_text.splitlines() if any(n in line for v in logged[:3] for n in v.needles())
    ][:5]

    # the DLQ topic: only the refused payloads, each with its raw bytes intact (for replay)
    dead = [DeadLetter.decode(v) for _, v in read_topic(s, "dlq")]
    assert sorted(d.raw() for d in dead) == sorted(bad)
    assert not find(good_values, "\n".join(d.raw().decode("utf-8", "replace") for d in dead))
    assert find(bad_values, "\n".join(d.raw().decode("utf-8", "replace") for d in dead)) == bad_values


@pytest.mark.integration
@pytest.mark.slow
def test_feedback_comments_are_stored_redacted(isolated_topics: Settings, tmp_path: Path) -> None:
    """Feedback comments are free text a user typed (and user_id may be an email): the feedback table stores them
    redacted, the llm.feedback topic keeps the originals."""
    s = isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "eval": EvaluatorSettings(enabled=[]),  # redact at its default
            "worker": WorkerSettings(app_id=f"test-privacy-fb-{uuid.uuid4().hex[:8]}", sink_within_s=0.3),
        }
    )
    corpus = Corpus(seed=SEED + 3)
    feedback = [
        Feedback(
            event_id=f"pii-{i:04d}",
            deployment="privacy",
            thumbs=-1 if i % 2 else 1,
            user_id=corpus.email() if i % 3 == 0 else None,
            comment=f"Wrong! My email is {corpus.email()}, card {corpus.card()}; call {corpus.phone()}",
        )
        for i in range(20)
    ]
    worker = WorkerProcess(s, ["sink"], tmp_path / "worker.log").start()
    try:
        assert produce_sync(s, s.topics.feedback, feedback) == len(feedback)
        count = "SELECT count() FROM feedback FINAL"
        wait_for(lambda: query_scalar(s, count) == len(feedback), 120, "the feedback rows", processes=[worker])
        stored = dump_tables(s)["feedback"]
    finally:
        worker.stop()

    produced = "\n".join(v.decode() for _, v in read_topic(s, "feedback"))
    assert find(corpus.values, produced) == corpus.values  # negative control: the search can fail
    assert not find(corpus.values, stored), [v.text for v in find(corpus.values, stored)][:5]
    assert stored.count("<EMAIL_ADDRESS>") >= len(feedback) and stored.count("<CREDIT_CARD>") >= len(feedback)


def test_redaction_is_irreversible() -> None:
    """Redaction replaces each value by its type's placeholder and nothing else: the output does not depend on the
    value (two texts that differ only in it redact alike), holds no encoding of it, and no setting turns on a
    reversible mode (none is offered)."""
    corpus = Corpus(seed=SEED + 1)
    makers = {"EMAIL_ADDRESS": corpus.email, "PHONE_NUMBER": corpus.phone, "CREDIT_CARD": corpus.card}
    makers["US_SSN"] = corpus.ssn
    templates = ("Please contact {} today.", "on file: {}", "{}")
    for type_, make in makers.items():
        for template in templates:
            a, b = make(), make()
            ra, rb = pii.redact(template.format(a)), pii.redact(template.format(b))
            assert ra == rb == template.format(redaction.placeholder(type_)), (type_, a, ra, rb)
            for value in (a, b):
                assert not _encodings(value) & _substrings(ra), (value, ra)

    # no reversible mode: the only operator is "replace" (no key, no encrypt / hash / mask operator to configure)
    r = redaction.Redactor()
    assert {name: op.operator_name for name, op in r._operators.items()} == {"DEFAULT": "replace"}
    assert not {"key", "encrypt", "reversible", "pseudonym", "token"} & {
        word for field in EvaluatorSettings.model_fields for word in field.split("_")
    }


def _encodings(value: str) -> set[str]:
    """Reversible encodings a careless redactor could leave: base64 (both alphabets), hex, URL-quoting, reversal."""
    forms = {value, re.sub(r"\D", "", value)} - {""}
    out = set()
    for f in forms:
        raw = f.encode()
        out |= {
            base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
            raw.hex(),
            urllib.parse.quote(f),
            f[::-1],
        }
    return {e for e in out if len(e) >= 6}


def _substrings(text: str) -> set[str]:
    """Every substring of `text` (short texts only): a set to intersect with the encodings."""
    return {text[i:j] for i in range(len(text)) for j in range(i + 6, len(text) + 1)}


def test_dead_letter_copy_for_tables_is_redacted() -> None:
    """What the sink stores of a dead letter: value, key and reason redacted, a value cut at the excerpt's end not
    left half-written, the true size kept; the record on the DLQ topic is untouched (raw bytes, for replay)."""
    corpus = Corpus(seed=SEED + 2)
    email, card, phone = corpus.email(), corpus.card(), corpus.phone()
    pad = "x" * (sinks.DEAD_LETTER_KEEP_CHARS - 19)  # '{"prompt": "' + pad + " ": the cut is 6 digits into the card
    raw = f'{{"prompt": "{pad} {card} \xff mail {email}'.encode("utf-8", "surrogateescape") + b"\xff\xfe"
    record = DeadLetter.of(
        raw=raw,
        key=f"call {phone}".encode(),
        topic="events",
        partition=1,
        offset=2,
        reason=f"InferenceEvent: field 'attributes.{email}': Input should be a valid string",
        error_type="schema",
        stage="score",
    )
    stored = sinks.redact_dead_letter(record)
    text = stored.raw().decode()
    assert stored.raw_size == len(raw) and record.raw() == raw  # the topic's copy keeps every byte
    assert len(text) <= sinks.DEAD_LETTER_KEEP_CHARS + 1 and text.endswith("…")
    assert card[:6] not in text  # not even the first digits of the card the cut split
    assert raw.decode("utf-8", "replace")[: sinks.DEAD_LETTER_KEEP_CHARS].endswith(card[:6])  # (the cut is there)
    assert email not in stored.reason and "<EMAIL_ADDRESS>" in stored.reason
    assert stored.key_b64 is not None and phone not in _b64_text(stored.key_b64)

    short = DeadLetter.of(
        raw=f"card {card} \xff".encode("latin-1", "replace") + email.encode(),
        key=None,
        topic="events",
        partition=0,
        offset=0,
        reason="not valid UTF-8 at byte 25",
        error_type="encoding",
        stage="score",
    )
    text = sinks.redact_dead_letter(short).raw().decode()
    assert email not in text and re.sub(r"\D", "", card) not in re.sub(r"\D", "", text), text
    assert "<EMAIL_ADDRESS>" in text and "<CREDIT_CARD>" in text


def test_kafka_payload_debug_lines_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG the Kafka clients would log every record; the filters drop those lines and keep the others."""
    from llmwatch.logfilters import PAYLOAD_LINES, install_payload_filters

    install_payload_filters()
    install_payload_filters()  # idempotent
    secret = "dmitri.ng1@example.com"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("aiokafka.producer.producer").debug("Sending (key=%s value=%s) to %s", b"k", secret, "tp")
        logging.getLogger("aiokafka.conn").debug("Response from %s:%d %d: %s", "h", 1, 2, f"message_set={secret}")
        logging.getLogger("aiokafka.conn").debug("Request to %s:%d %d: %s", "h", 1, 2, f"records={secret}")
        logging.getLogger("faust.topics").debug(
            "send: topic=%r k=%r v=%r timestamp=%r partition=%r", "t", 1, secret, 0, 0
        )
        logging.getLogger("aiokafka.conn").debug("Closing connection at %s:%s", "h", 1)
        logging.getLogger("aiokafka.conn").warning("Response from %s: %s", "h", "kept: not DEBUG")
    assert secret not in caplog.text
    assert "Closing connection" in caplog.text and "kept: not DEBUG" in caplog.text
    assert all(
        len([f for f in logging.getLogger(n).filters if type(f).__name__ == "DropPayloadLines"]) == 1
        for n in PAYLOAD_LINES
    )


# ------------------------------------------------------------------------------------ redaction at source
def _source_feedback(corpus: Corpus, n: int) -> list[Feedback]:
    return [
        Feedback(
            event_id=f"src-{i:04d}",
            deployment="privacy",
            thumbs=1 if i % 2 else -1,
            user_id=corpus.email() if i % 2 == 0 else None,
            comment=f"Call me back on {corpus.phone()} or write to {corpus.email()}",
        )
        for i in range(n)
    ]


def _gateway_chat(gateway: GatewayProcess, text: str) -> None:
    body = {"model": "demo", "messages": [{"role": "user", "content": text}], "max_tokens": 16}
    r = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=60, trust_env=False)
    assert r.status_code == 200, r.text


@pytest.mark.integration
@pytest.mark.slow
def test_redaction_at_source_keeps_raw_pii_off_every_topic_and_still_counts_it(
    isolated_topics: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """LLMWATCH_REDACT_AT_SOURCE=true: the SDK and the gateway redact before they publish, so no raw value of the
    corpus is on any topic (events, scores, windows, verdicts, alerts, feedback, the DLQ, …), in any table, in the
    worker's and the gateway's DEBUG logs or the SDK's; and the PII metrics count what the raw texts held: the
    stored scores equal the PII evaluator's on the raw texts, and the windows' leak rate follows."""
    s = isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "redact_at_source": True,
            "eval": EvaluatorSettings(enabled=["pii"]),
            "worker": WorkerSettings(
                app_id=f"test-privacy-src-{uuid.uuid4().hex[:8]}",
                window_size_s=60,
                window_lateness_s=5,
                window_idle_close_s=2,
                sink_within_s=0.3,
            ),
        }
    )
    corpus = Corpus(seed=SEED + 4)
    events = corpus_events(corpus, 120)
    feedback = _source_feedback(corpus, 20)
    chats = [f"I am {corpus.email()}, my card is {corpus.card()}, call {corpus.phone()}" for _ in range(4)]
    # what the PII evaluator says of the raw texts: what the scores must say although no raw text reaches them
    scorer = pii.PiiEvaluator(PiiDetector(), redact=False)
    want = {e.event_id: scorer.score(e.prompt, e.response) for e in events}
    assert sum(bool(w["pii_leak"]) for w in want.values()) > 0

    worker = WorkerProcess(
        s, ["score", "window", "sink", "judge", "alerter"], tmp_path / "worker.log", loglevel="debug"
    )
    gateway = GatewayProcess(s, tmp_path / "gateway.log")
    worker.start()
    gateway.start()
    caplog.set_level(logging.DEBUG)
    try:
        wait_for(gateway.ready, 120, "the gateway to be ready", processes=[gateway])
        with LlmwatchClient(s) as client:
            assert all(client.emit(e) for e in events) and all(client.emit(f) for f in feedback)
            assert client.flush(60)
            assert client.stats.sent == len(events) + len(feedback)
        for text in chats:
            _gateway_chat(gateway, text)
        want_rows = (len(events) + len(chats), len(events) + len(chats), len(feedback))

        def landed() -> bool:
            got = query_scalar(
                s,
                "SELECT ((SELECT count() FROM inference_events FINAL), (SELECT count() FROM eval_scores FINAL),"
                " (SELECT count() FROM feedback FINAL))",
            )
            if tuple(got) != want_rows:
                raise AssertionError(f"events, scores, feedback: {got}, want {want_rows}")
            return True

        wait_for(landed, 240, "the events, their scores and the feedback", processes=[worker, gateway])
        windowed = "SELECT sum(count) FROM window_metrics FINAL WHERE final"
        wait_for(lambda: query_scalar(s, windowed) == want_rows[0], 240, "final windows", processes=[worker])
        tables = dump_tables(s)
        scores = query_scalar(
            s,
            "SELECT groupArray((event_id, pii_prompt, pii_response, pii_leak)) FROM eval_scores FINAL "
            "WHERE event_id LIKE 'pii-%'",
        )
        window_leaks = query_scalar(s, "SELECT sum(round(pii_leak_rate * count)) FROM window_metrics FINAL WHERE final")
        stored = query_scalar(
            s, "SELECT groupArray((prompt, attributes['llmwatch.redaction'])) FROM inference_events FINAL"
        )
    finally:
        gateway.stop()
        worker.stop()

    # negative control: the search finds every value in what the producers were handed
    handed = "\n".join([*(e.encode().decode() for e in events), *(f.encode().decode() for f in feedback), *chats])
    assert find(corpus.values, handed) == corpus.values

    for role in TopicNames.model_fields:
        on_topic = "\n".join(
            v.decode("utf-8", "replace") + (k or b"").decode("utf-8", "replace") for k, v in read_topic(s, role)
        )
        assert not find(corpus.values, on_topic), (role, [v.text for v in find(corpus.values, on_topic)][:3])
    published = [InferenceEvent.decode(v) for _, v in read_topic(s, "events")]
    assert len(published) == want_rows[0] and all(e.redacted_at_source is not None for e in published)
    assert all("<EMAIL_ADDRESS>" in e.prompt for e in published), [e.prompt for e in published][:3]
    assert not [v for _, v in read_topic(s, "dlq")]  # nothing refused: the redacted events are valid

    leaks = {name: [v.text for v in find(corpus.values, text)] for name, text in tables.items()}
    assert not any(leaks.values()), {k: (len(v), v[:3]) for k, v in leaks.items() if v}
    assert all(source == "source" for _, source in stored), "every stored event says where it was redacted"

    for name, text in (
        ("worker", (tmp_path / "worker.log").read_text(errors="replace")),
        ("gateway", (tmp_path / "gateway.log").read_text(errors="replace")),
        ("sdk", caplog.text),
    ):
        text += "\n".join(_b64_text(t) for t in _B64_TOKEN.findall(text))
        assert not find(corpus.values, text), (name, [v.text for v in find(corpus.values, text)][:3])

    # PII still counted: the same types and leaks as the evaluator finds in the raw texts
    assert len(scores) == len(events)
    for event_id, in_prompt, in_response, leak in scores:
        w = want[event_id]
        assert (sorted(in_prompt), sorted(in_response), leak) == (w["pii_prompt"], w["pii_response"], w["pii_leak"])
    assert window_leaks >= sum(bool(w["pii_leak"]) for w in want.values())
