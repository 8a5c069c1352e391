"""Fuzzing the worker's input path.

1. At volume, in process: random and adversarial payloads through `streams.decode.decode`, the exact function
   the score agent runs on every record. It must never raise; what it accepts must round-trip, and what it refuses
   must say why (the field, JSON, UTF-8, the size or the schema version) because that reason is all an operator
   sees in the DLQ.
2. End to end, bounded: a real worker on private topics gets a sample of the refused payloads interleaved with
   good events whose texts look like SQL, quotes, backslashes, NULs and unicode: every bad one is dead-lettered
   once with a reason, every good one is stored verbatim (nothing executed), and the worker never restarted.

`LLMWATCH_FUZZ_EXAMPLES` scales part 1 (default 10,000 payloads, ~4 s; the hypothesis part runs a twentieth of
it); `LLMWATCH_FUZZ_E2E_BAD` / `LLMWATCH_FUZZ_E2E_GOOD` size part 2 (default 1,000 each, ~15-25 s to land).
"""

from __future__ import annotations

import base64
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from llmwatch.db.tables import DERIVED, Table
from llmwatch.harness import WorkerProcess, produce_sync, query_scalar, wait_for
from llmwatch.schemas import InferenceEvent, utcnow
from llmwatch.schemas.registry import MAX_MESSAGE_BYTES
from llmwatch.settings import EvaluatorSettings, Settings, WorkerSettings
from llmwatch.streams.decode import MAX_REASON_CHARS, Decoded, Rejected, decode

pytestmark = [pytest.mark.reliability]

N_EXAMPLES = max(1, int(os.environ.get("LLMWATCH_FUZZ_EXAMPLES", "10000")))
#: what the score agent passes as max_bytes (the worker's default setting)
MAX_BYTES = WorkerSettings().max_event_bytes
SEED = 20240522

#: what a refusal's reason must name, per error type: the operator reads only this in the DLQ
REASON_WORDS: dict[str, tuple[str, ...]] = {
    "empty": ("empty",),
    "oversized": ("byte",),
    "encoding": ("UTF-8", "NUL"),
    "unsupported_version": ("schema major version",),
    "schema": ("JSON", "field '", "nested too deeply"),
}

SQL_STRINGS = (
    "'); DROP TABLE inference_events; --",
    '"; DROP TABLE dead_letters; --',
    "1' OR '1'='1",
    "x'); INSERT INTO alerts VALUES ('pwned'); --",
    "'; SELECT * FROM system.tables FORMAT JSON; --",
    "\\'; TRUNCATE TABLE eval_scores; --",
    "{rows:String} {{template}} ?",
    "` OR 1=1 /* */ --",
)
#: texts that redaction leaves alone (no digit runs, no '@') yet stress quoting and encoding
TRICKY_TEXTS = (
    *SQL_STRINGS,
    'She said "hi" and left',
    "back\\slash \\\\ double \\n not-a-newline \\u0000",
    "NUL inside\x00the text\x00",
    "tab\tnewline\ncarriage\rreturn",
    "emoji 😀👩‍👩‍👧 flags 🇫🇷",
    "RTL العربية עברית mixed",
    "CJK 日本語のテキスト 中文",
    "combining e\u0301 zero\u200bwidth \ufeffbom",
    "control \x01\x02\x1f\x7f chars",
    "quotes ' \" ` ´ ‘ ’ “ ”",
    "percent %s %d {0} $(whoami) ${HOME}",
)

UNKNOWN_VERSIONS = ("2.0", "0.9", "999.1", "10.0", "-1.0", "", "v1", "abc", "1e3")
STRING_FIELDS = (
    "event_id",
    "deployment",
    "model",
    "model_version",
    "variant",
    "experiment",
    "prompt_version",
    "user_id",
    "session_id",
    "prompt",
    "response",
    "error",
    "finish_reason",
    "engine",
    "source",
)
NUMERIC_FIELDS = ("input_tokens", "output_tokens", "ttft_ms", "tpot_ms", "e2e_ms", "cost_usd")
REQUIRED = ("deployment", "model")
WRONG_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -1e9,
    2**31,
    2**32,
    2**40,
    2**70,
    -(2**63),
    "",
    "x",
    "1",
    "x" * 5000,
    [],
    ["a", 1],
    {},
    {"a": {"b": [1]}},
    "NaN",
    "2024-13-45T25:61:00Z",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    10**20,
)


def base_event(i: int = 0) -> dict[str, Any]:
    """A valid event with every field set (so each one can be broken)."""
    ev = InferenceEvent(
        event_id=f"fuzz-{i}",
        deployment="fuzz",
        model="fuzz-model",
        model_version="v1",
        variant="baseline",
        experiment="exp",
        prompt_version="p1",
        user_id="6ff00a93304432b3220097de",
        session_id="1c929d962582a4ba7a8bbf4b",
        prompt="What is a good warm-up before lifting?",
        response="Light cardio, then lighter sets.",
        context=["passage one", "passage two"],
        input_tokens=12,
        output_tokens=34,
        ttft_ms=120.5,
        tpot_ms=12.25,
        e2e_ms=600.0,
        status="ok",
        finish_reason="stop",
        engine="simulated",
        source="fuzz",
        cost_usd=0.00125,
        attributes={"scenario": "fuzz", "k": "v"},
    )
    return json.loads(ev.encode())


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


class Fuzzer:
    """Seeded payload generator: each draw is (kind, raw bytes, expected outcome or None for "any")."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.base = base_event()
        self.base_raw = _dumps(self.base)
        self.ten_mb = _dumps(self.base | {"prompt": "a" * 10_000_000})
        self.deep = b"[" * 100_000
        self.kinds: list[tuple[str, Callable[[], tuple[bytes, set[str] | None]]]] = [
            ("valid", self.valid),
            ("tricky_strings", self.tricky_strings),
            ("extra_fields", self.extra_fields),
            ("truncated", self.truncated),
            ("wrong_type", self.wrong_type),
            ("nan_inf", self.nan_inf),
            ("invalid_utf8", self.invalid_utf8),
            ("nul_byte", self.nul_byte),
            ("unknown_version", self.unknown_version),
            ("missing_field", self.missing_field),
            ("missing_required", self.missing_required),
            ("deep_nesting", self.deep_nesting),
            ("huge_string", self.huge_string),
            ("ten_mb", lambda: (self.ten_mb, {"oversized"})),
            ("random_bytes", self.random_bytes),
            ("random_json", self.random_json),
            ("byte_flips", self.byte_flips),
            ("not_an_object", self.not_an_object),
            ("empty", lambda: (self.rng.choice([b"", b" ", b"\n"]), None)),
            ("token_overflow", self.token_overflow),
            ("ts_edge", self.ts_edge),
        ]

    def draws(self, n: int) -> Iterator[tuple[str, bytes, set[str] | None]]:
        """`n` payloads, kinds in turn (so each kind gets its share at any n), mutations drawn at random."""
        for i in range(n):
            kind, make = self.kinds[i % len(self.kinds)]
            raw, expect = make()
            yield kind, raw, expect

    # --- helpers ---------------------------------------------------------------------------------------
    def text(self, max_len: int = 40) -> str:
        r = self.rng.random()
        if r < 0.3:
            return self.rng.choice(TRICKY_TEXTS)
        alphabet = "abc XYZ'\"\\%_;-\x00\n\t😀é日\u202e\u200b"
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randrange(1, max_len)))

    def event(self) -> dict[str, Any]:
        return dict(self.base, event_id=uuid.UUID(int=self.rng.getrandbits(128)).hex)

    # --- kinds ------------------------------------------------------------------------------------------
    def valid(self) -> tuple[bytes, set[str] | None]:
        ev = self.event()
        ev["prompt"], ev["response"] = self.text(200), self.text(200)
        ev["context"] = [self.text() for _ in range(self.rng.randrange(0, 4))] or None
        ev["status"] = self.rng.choice(["ok", "error", "cancelled"])
        ev["input_tokens"] = self.rng.randrange(0, 2**32)
        ev["ttft_ms"] = self.rng.choice([None, 0.0, 1e-9, 1e6])
        ev["e2e_ms"] = None if ev["ttft_ms"] is None else ev["ttft_ms"] * 2
        return _dumps(ev), {"decoded"}

    def tricky_strings(self) -> tuple[bytes, set[str] | None]:
        ev = self.event()
        for field in self.rng.sample(("prompt", "response", "error", "experiment", "source"), 3):
            ev[field] = self.rng.choice(TRICKY_TEXTS)
        ev["attributes"] = {self.rng.choice(SQL_STRINGS): self.rng.choice(TRICKY_TEXTS)}
        ev["context"] = [self.rng.choice(TRICKY_TEXTS)]
        ensure_ascii = self.rng.random() < 0.5  # \uXXXX escapes or raw UTF-8: both are valid JSON
        return json.dumps(ev, ensure_ascii=ensure_ascii).encode(), {"decoded"}

    def extra_fields(self) -> tuple[bytes, set[str] | None]:
        ev = self.event()
        for _ in range(self.rng.randrange(1, 6)):
            ev[f"x_{self.text(10)}"] = self.rng.choice(WRONG_VALUES)
        return _dumps(ev), {"decoded"}  # a newer minor version's fields are ignored, never an error

    def truncated(self) -> tuple[bytes, set[str] | None]:
        raw = _dumps(self.event())
        return raw[: self.rng.randrange(1, len(raw))], {"schema"}

    def wrong_type(self) -> tuple[bytes, set[str] | None]:
        ev = self.event()
        for field in self.rng.sample(sorted(ev), self.rng.randrange(1, 3)):
            ev[field] = self.rng.choice(WRONG_VALUES)
        return _dumps(ev), None

    def nan_inf(self) -> tuple[bytes, set[str] | None]:
        ev = self.event()
        field = self.rng.choice(NUMERIC_FIELDS)
        ev[field] = self.rng.choice([float("nan"), float("inf"), float("-inf")])
        return _dumps(ev), {"schema"}  # literal NaN / Infinity / -Infinity in the JSON text

    def invalid_utf8(self) -> tuple[bytes, set[str] | None]:
        raw = _dumps(self.event())
        bad = self.rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\x80"])
        at = self.rng.randrange(0, len(raw))
        return raw[:at] + bad + raw[at:], {"encoding"}

    def nul_byte(self) -> tuple[bytes, set[str] | None]:
        raw = _dumps(self.event())
        at = self.rng.randrange(0, len(raw))
        return raw[:at] + b"\x00" + raw[at:], {"encoding"}

    def unknown_version(self) -> tuple[bytes, set[str] | None]:
        version = self.rng.choice(UNKNOWN_VERSIONS)
        major = version.partition(".")[0]
        expect = {"unsupported_version"} if major.isdigit() else {"schema"}
        return _dumps(self.event() | {"schema_version": version}), expect

    def missing_field(self) -> tuple[bytes, set[str] | None]:
        ev = self.event()
        for field in self.rng.sample(sorted(ev), self.rng.randrange(1, 5)):
            del ev[field]
        return _dumps(ev), None

    def missing_required(self) -> tuple[bytes, set[str] | None]:
        ev = self.event()
        del ev[self.rng.choice(REQUIRED)]
        return _dumps(ev), {"schema"}

    def deep_nesting(self) -> tuple[bytes, set[str] | None]:
        choice = self.rng.randrange(3)
        if choice == 0:
            return self.deep[: self.rng.randrange(1000, len(self.deep) + 1)], {"schema"}
        depth = self.rng.choice([50, 500, 5000, 50_000])
        field = self.rng.choice(("prompt", "context", "attributes", "ttft_ms"))
        nested = "[" * depth + "]" * depth if choice == 1 else '{"a":' * depth + "1" + "}" * depth
        text = self.base_raw.decode().replace(f'"{field}": ', f'"{field}": {nested}, "_was_{field}": ', 1)
        return text.encode(), {"schema", "oversized"}

    def huge_string(self) -> tuple[bytes, set[str] | None]:
        size = self.rng.choice([MAX_BYTES - 2000, MAX_BYTES - 10, MAX_BYTES + 10, 2 * MAX_BYTES])
        ev = self.event()
        field = self.rng.choice(("prompt", "response"))
        ev[field] = ""
        pad = size - len(_dumps(ev))
        ev[field] = "é" * (pad // 2)  # two bytes each in UTF-8
        raw = json.dumps(ev, ensure_ascii=False).encode()
        return raw, {"oversized"} if len(raw) > MAX_BYTES else {"decoded"}

    def random_bytes(self) -> tuple[bytes, set[str] | None]:
        return self.rng.randbytes(self.rng.randrange(1, 2000)), {"schema", "encoding"}

    def random_json(self) -> tuple[bytes, set[str] | None]:
        def value(depth: int) -> Any:
            r = self.rng.random()
            if depth > 3 or r < 0.4:
                return self.rng.choice(WRONG_VALUES)
            if r < 0.7:
                return [value(depth + 1) for _ in range(self.rng.randrange(4))]
            return {self.text(8): value(depth + 1) for _ in range(self.rng.randrange(4))}

        return _dumps(value(0)), {"schema"}

    def byte_flips(self) -> tuple[bytes, set[str] | None]:
        raw = bytearray(_dumps(self.event()))
        for _ in range(self.rng.randrange(1, 8)):
            raw[self.rng.randrange(len(raw))] = self.rng.randrange(256)
        return bytes(raw), None

    def not_an_object(self) -> tuple[bytes, set[str] | None]:
        return self.rng.choice([b"null", b"true", b"1", b'"text"', b"[]", b"[{}]", b"1e999", b"NaN"]), {"schema"}

    def token_overflow(self) -> tuple[bytes, set[str] | None]:
        # JSON allows any integer; the table's column is UInt32: a bigger count must be refused here, not by
        # the database (where it would fail the insert of the whole batch)
        field = self.rng.choice(("input_tokens", "output_tokens"))
        return _dumps(self.event() | {field: self.rng.choice([2**32, 2**40, 2**64, 10**30])}), {"schema"}

    def ts_edge(self) -> tuple[bytes, set[str] | None]:
        ts, expect = self.rng.choice(
            [
                ("0001-01-01T00:00:00+05:00", {"schema"}),  # before year 1 once converted to UTC
                ("9999-12-31T23:59:59-05:00", {"schema"}),  # after year 9999 once converted to UTC
                ("2024-02-30T00:00:00Z", {"schema"}),
                ("2024-05-22T10:00:00+14:00", {"decoded"}),
                ("2024-05-22T10:00:00", {"decoded"}),  # naive: read as UTC
                ("1716372000000", {"decoded"}),
            ]
        )
        return _dumps(self.event() | {"ts": ts}), expect


def check(raw: bytes) -> Decoded[InferenceEvent] | Rejected:
    """The invariants of one payload; returns what decode said."""
    result = decode(InferenceEvent, raw, max_bytes=MAX_BYTES)  # must not raise, whatever raw is
    if isinstance(result, Decoded):
        encoded = result.payload.encode()
        again = decode(InferenceEvent, encoded, max_bytes=MAX_MESSAGE_BYTES)
        assert isinstance(again, Decoded), f"re-encoded payload refused: {again}"
        assert again.payload == result.payload
        return result
    assert isinstance(result, Rejected), result
    assert result.error_type in REASON_WORDS, result
    assert result.reason.strip(), result
    assert any(word in result.reason for word in REASON_WORDS[result.error_type]), result
    assert len(result.reason) <= MAX_REASON_CHARS, len(result.reason)  # logged and stored with every DLQ record
    return result


def outcome(result: Decoded[InferenceEvent] | Rejected) -> str:
    return "decoded" if isinstance(result, Decoded) else result.error_type


def test_decode_fuzz_volume() -> None:
    """≥ 10,000 seeded payloads of every kind: never raises, accepted ones round-trip, refusals say why."""
    fuzzer = Fuzzer()
    by_kind: dict[str, Counter[str]] = {}
    started = time.perf_counter()
    for kind, raw, expect in fuzzer.draws(N_EXAMPLES):
        try:
            result = check(raw)
        except AssertionError as e:
            raise AssertionError(f"{kind}: {raw[:300]!r}…: {e}") from e
        got = outcome(result)
        if expect is not None:
            assert got in expect, f"{kind}: expected {expect}, got {result} for {raw[:300]!r}"
        by_kind.setdefault(kind, Counter())[got] += 1
    elapsed = time.perf_counter() - started
    total = Counter[str]()
    for c in by_kind.values():
        total.update(c)
    print(f"\n{N_EXAMPLES} payloads in {elapsed:.1f} s: {dict(total)}")
    for kind, c in by_kind.items():
        print(f"  {kind}: {dict(c)}")
    assert sum(total.values()) == N_EXAMPLES
    if N_EXAMPLES >= 1000:  # every outcome occurs
        assert set(total) == {"decoded", *REASON_WORDS}


def test_decode_reasons_name_the_field() -> None:
    """A refusal for one broken field names that field (it is what the operator looks for)."""
    base = base_event()
    for field in REQUIRED:
        result = decode(InferenceEvent, _dumps({k: v for k, v in base.items() if k != field}), max_bytes=MAX_BYTES)
        assert isinstance(result, Rejected) and f"'{field}'" in result.reason, result
    for field, value in [
        ("ttft_ms", float("nan")),
        ("e2e_ms", float("inf")),
        ("cost_usd", float("-inf")),
        ("input_tokens", 2**40),
        ("output_tokens", -1),
        ("status", "weird"),
        ("context", {"a": 1}),
        ("attributes", ["a"]),
        ("ts", "0001-01-01T00:00:00+05:00"),
        ("ts", "9999-12-31T23:59:59-05:00"),
    ]:
        result = decode(InferenceEvent, _dumps(base | {field: value}), max_bytes=MAX_BYTES)
        assert isinstance(result, Rejected) and result.error_type == "schema", (field, result)
        assert f"'{field}" in result.reason, (field, result)
    result = decode(InferenceEvent, _dumps(base | {"schema_version": "2.0"}), max_bytes=MAX_BYTES)
    assert isinstance(result, Rejected) and result.error_type == "unsupported_version", result


def test_decode_sql_strings_are_data() -> None:
    """SQL-looking text in any string field is accepted as is and comes back unchanged."""
    for field in STRING_FIELDS:
        for sql in SQL_STRINGS:
            result = check(_dumps(base_event() | {field: sql}))
            assert isinstance(result, Decoded), (field, sql, result)
            assert getattr(result.payload, field) == sql


# --- hypothesis: structured payloads --------------------------------------------------------------------
_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
_json = st.recursive(
    _json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)
_BASE = base_event()
_valid_values: dict[str, st.SearchStrategy[Any]] = {
    "prompt": st.text(max_size=200),
    "response": st.text(max_size=200),
    "context": st.none() | st.lists(st.text(max_size=40), max_size=3) | st.text(max_size=40),
    "input_tokens": st.integers(min_value=0, max_value=2**32 - 1),
    "ttft_ms": st.none() | st.floats(min_value=0, max_value=1e6),
    "status": st.sampled_from(["ok", "error", "cancelled"]),
    "attributes": st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4),
    "schema_version": st.sampled_from(["1.0", "1.7", "1.x"]),
}


@st.composite
def structured_payloads(draw: st.DrawFn) -> bytes:
    """An event whose fields are each valid, of the wrong type, or missing, plus extra fields; sometimes cut."""
    ev: dict[str, Any] = {}
    for field, good in _BASE.items():
        mode = draw(st.sampled_from(["keep", "keep", "valid", "junk", "drop"]))
        if mode == "keep":
            ev[field] = good
        elif mode == "valid":
            ev[field] = draw(_valid_values.get(field, st.just(good)))
        elif mode == "junk":
            ev[field] = draw(_json)
    ev.update(draw(st.dictionaries(st.text(max_size=8).map(lambda s: f"x_{s}"), _json, max_size=3)))
    raw = json.dumps(ev, allow_nan=True, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@hsettings(
    max_examples=max(100, N_EXAMPLES // 20),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(structured_payloads())
def test_decode_structured(raw: bytes) -> None:
    check(raw)


# --- end to end ---------------------------------------------------------------------------------------------
N_BAD_E2E = int(os.environ.get("LLMWATCH_FUZZ_E2E_BAD", "1000"))
N_GOOD_E2E = int(os.environ.get("LLMWATCH_FUZZ_E2E_GOOD", "1000"))


def bad_sample(n: int) -> list[bytes]:
    """`n` refused payloads of every refused kind, plus a 10 MB prompt and an ~7 MiB random blob (the largest
    record the topic takes uncompressed: its max.message.bytes is 8 MiB)."""
    fuzzer = Fuzzer(seed=SEED + 1)
    out: list[bytes] = [fuzzer.ten_mb, random.Random(SEED).randbytes(7 * 1024 * 1024)]
    big = 0
    for kind, raw, _ in fuzzer.draws(50 * n):
        if len(out) >= n:
            break
        if kind == "ten_mb" or isinstance(decode(InferenceEvent, raw, max_bytes=MAX_BYTES), Decoded):
            continue
        if len(raw) > 100_000:  # keep the run light: a few big ones are enough
            if big >= 4:
                continue
            big += 1
        out.append(raw)
    assert len(out) == n
    return out


def good_events(n: int) -> list[InferenceEvent]:
    """Valid events whose texts stress quoting and encoding (and hold no PII, so redaction keeps them)."""
    rng = random.Random(SEED + 2)
    start = utcnow() - timedelta(minutes=10)
    out = []
    for i in range(n):
        out.append(
            InferenceEvent(
                event_id=f"good-{i:05d}-{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}",
                ts=start + timedelta(milliseconds=300 * i),
                deployment=rng.choice(["fuzz", "'); DROP TABLE window_metrics; --"]),
                model="fuzz-model",
                model_version=rng.choice(["v1", "v2"]),
                prompt=f"{rng.choice(TRICKY_TEXTS)} / {rng.choice(TRICKY_TEXTS)}",
                response=rng.choice(TRICKY_TEXTS),
                context=[rng.choice(TRICKY_TEXTS)] if rng.random() < 0.3 else None,
                attributes={rng.choice(SQL_STRINGS): rng.choice(TRICKY_TEXTS)},
                input_tokens=rng.randrange(1, 500),
                output_tokens=rng.randrange(1, 500),
                ttft_ms=rng.uniform(10, 200),
                e2e_ms=rng.uniform(300, 900),
                source="fuzz",
            )
        )
    return out


@pytest.fixture
def fuzz_settings(isolated_topics: Settings, tmp_path: Path) -> Settings:
    return isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "eval": EvaluatorSettings(enabled=["pii"], redact=True),
            "worker": WorkerSettings(
                app_id=f"test-fuzz-{uuid.uuid4().hex[:8]}",
                window_size_s=60,
                window_lateness_s=5,
                window_idle_close_s=2,
                sink_within_s=0.3,
            ),
        }
    )


@pytest.mark.integration
@pytest.mark.slow
def test_worker_survives_fuzz(fuzz_settings: Settings, tmp_path: Path) -> None:
    s = fuzz_settings
    bad = bad_sample(N_BAD_E2E)
    good = good_events(N_GOOD_E2E)
    records: list[InferenceEvent | bytes] = list(good)
    for i, raw in enumerate(bad):  # spread the bad ones through the good ones
        records.insert((i * 7) % (len(records) + 1), raw)
    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(s, ["score", "window", "sink"], log_path).start()
    try:
        started = time.perf_counter()
        assert produce_sync(s, s.topics.events, records) == len(good) + len(bad)

        def landed() -> bool:
            return query_scalar(s, "SELECT count() FROM inference_events FINAL") == len(good) and query_scalar(
                s, "SELECT count() FROM dead_letters FINAL"
            ) == len(bad)

        wait_for(landed, 300, f"{len(good)} events and {len(bad)} dead letters", processes=[worker])
        elapsed = time.perf_counter() - started
        pid = worker.pid

        # every bad payload dead-lettered exactly once, by the score agent, with a reason and its true size
        assert query_scalar(s, "SELECT count() FROM dead_letters") == len(bad)  # not even a duplicate row
        assert query_scalar(s, "SELECT countIf(reason = '' OR stage != 'score') FROM dead_letters") == 0
        assert query_scalar(s, "SELECT sum(raw_size) FROM dead_letters") == sum(len(b) for b in bad)
        kinds = set(query_scalar(s, "SELECT groupUniqArray(error_type) FROM dead_letters"))
        assert {"schema", "encoding", "unsupported_version", "oversized", "empty"} <= kinds

        # every good event stored once, its texts verbatim (quotes, backslashes, NULs, unicode; SQL never ran)
        rows = query_scalar(
            s,
            "SELECT groupArray((event_id, deployment, prompt, response, context, attributes))"
            " FROM inference_events FINAL",
        )
        stored = {r[0]: r[1:] for r in rows}
        assert len(stored) == len(good)
        for ev in good:
            got = stored[ev.event_id]
            assert got[0] == ev.deployment and got[1] == ev.prompt and got[2] == ev.response, (ev, got)
            assert got[3] == (ev.context or []) and got[4] == ev.attributes, (ev, got)
        assert query_scalar(s, "SELECT count() FROM eval_scores FINAL") == len(good)
        tables = set(query_scalar(s, "SELECT groupArray(name) FROM system.tables WHERE database = currentDatabase()"))
        assert {str(t) for t in Table} | set(DERIVED) <= tables

        # the worker never stopped: same process, alive, no traceback in its log
        assert worker.alive() and worker.pid == pid
        log_text = log_path.read_text(errors="replace")
        tracebacks = [line for line in log_text.splitlines() if "Traceback" in line]
        assert not tracebacks, worker.log_tail(80)
        print(
            f"\nend to end: {len(good)} good + {len(bad)} bad "
            f"({sum(len(b) for b in bad) / 1e6:.1f} MB) landed in {elapsed:.1f} s; DLQ kinds {sorted(kinds)}"
        )
    finally:
        worker.stop()


def test_bad_sample_is_stable() -> None:
    """The e2e sample is deterministic (a failure can be replayed) and refused by decode."""
    a, b = bad_sample(50), bad_sample(50)
    assert [base64.b64encode(x[:64]) for x in a] == [base64.b64encode(x[:64]) for x in b]
    assert all(isinstance(decode(InferenceEvent, x, max_bytes=MAX_BYTES), Rejected) for x in a)
