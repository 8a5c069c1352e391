"""The texts the simulator draws from, shipped as JSONL next to this module (inference/data/).

Kept apart from the engine so scenarios, the load generator and evaluator tests all read the same
ground truth: a prompt's topic set (base or drift), a RAG item's grounded and hallucinated answers,
toxic replies, PII-leaking templates and injection prompts with their compliant replies.
PII values are fake but valid in format (Luhn-valid cards, mod-97 IBANs, SSNs outside the never-issued
ranges, reserved example domains and documentation IP ranges), so pattern recognizers find them.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import cache, cached_property
from importlib.resources import files
from typing import Any

_DATA = files("llmwatch.sim") / "data"
_TOKEN = re.compile(r"\S+\s*")


@dataclass(frozen=True)
class TopicPrompt:
    id: str
    set: str  # "base" or "drift"
    topic: str
    prompt: str
    answer: str


@dataclass(frozen=True)
class RagItem:
    id: str
    question: str
    context: tuple[str, ...]
    grounded: str
    hallucinated: str


@dataclass(frozen=True)
class InjectionItem:
    id: str
    prompt: str
    compliant: str


@dataclass(frozen=True)
class PiiTemplate:
    id: str
    template: str
    entities: tuple[str, ...]


Item = TopicPrompt | RagItem | InjectionItem


@dataclass(frozen=True)
class Corpus:
    prompts: tuple[TopicPrompt, ...]
    rag: tuple[RagItem, ...]
    injections: tuple[InjectionItem, ...]
    toxic: tuple[str, ...]
    pii: tuple[PiiTemplate, ...]
    refusals: tuple[str, ...]
    generic: tuple[str, ...]
    fillers: tuple[str, ...]
    system_prompt: str

    @cached_property
    def _sets(self) -> dict[str, tuple[TopicPrompt, ...]]:
        return {s: tuple(p for p in self.prompts if p.set == s) for s in {p.set for p in self.prompts}}

    @cached_property
    def _ids(self) -> dict[str, Item]:
        return {item.id: item for item in (*self.prompts, *self.rag, *self.injections)}

    @cached_property
    def _texts(self) -> dict[str, Item]:
        out: dict[str, Item] = {p.prompt: p for p in self.prompts}
        out.update({r.question: r for r in self.rag})
        out.update({i.prompt: i for i in self.injections})
        return out

    def topic_prompts(self, topic_set: str) -> tuple[TopicPrompt, ...]:
        return self._sets.get(topic_set, ())

    def by_id(self, item_id: str) -> Item | None:
        return self._ids.get(item_id)

    def lookup_prompt(self, text: str) -> Item | None:
        """The corpus item whose prompt is `text` (so plain HTTP clients still get matching answers)."""
        return self._texts.get(text.strip())


def _read(name: str) -> list[dict[str, Any]]:
    text = (_DATA / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@cache
def load_corpus() -> Corpus:
    """The shipped corpus (read once per process)."""
    replies = _read("replies.jsonl")

    def kind(k: str) -> tuple[str, ...]:
        return tuple(r["text"] for r in replies if r["kind"] == k)

    return Corpus(
        prompts=tuple(TopicPrompt(**r) for r in _read("prompts.jsonl")),
        rag=tuple(
            RagItem(r["id"], r["question"], tuple(r["context"]), r["grounded"], r["hallucinated"])
            for r in _read("rag.jsonl")
        ),
        injections=tuple(InjectionItem(**r) for r in _read("injection.jsonl")),
        toxic=tuple(r["text"] for r in _read("toxic.jsonl")),
        pii=tuple(PiiTemplate(r["id"], r["template"], tuple(r["entities"])) for r in _read("pii.jsonl")),
        refusals=kind("refusal"),
        generic=kind("generic"),
        fillers=kind("filler"),
        system_prompt=kind("system")[0],
    )


def tokenize(text: str) -> list[str]:
    """Word pieces with their trailing space: the simulator's tokens (joining them gives the text back)."""
    return _TOKEN.findall(text)


# --- fake PII of valid format -----------------------------------------------------------------------

_FIRST = ("Dana", "Rafael", "Ingrid", "Tomasz", "Amara", "Kenji", "Lucia", "Marcus", "Priya", "Elena", "Jonah", "Zoe")
_LAST = ("Whitfield", "Okafor", "Lindqvist", "Moreau", "Castellano", "Brennan", "Nakamura", "Haddad", "Novak", "Reyes")
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
_DOC_NETS = ("192.0.2", "198.51.100", "203.0.113")


def luhn_check_digit(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled positions, counted from the check digit's left neighbour
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def luhn_valid(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    return len(digits) > 1 and luhn_check_digit(digits[:-1]) == int(digits[-1])


def iban_valid(iban: str) -> bool:
    s = iban.replace(" ", "")
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def fake_name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def fake_email(rng: random.Random, name: str | None = None) -> str:
    first, last = (name or fake_name(rng)).lower().split(" ", 1)
    return f"{first}.{last}{rng.randrange(10, 99)}@{rng.choice(_EMAIL_DOMAINS)}"


def fake_phone(rng: random.Random) -> str:
    # NANP shape: area and exchange codes start with 2-9 and are not N11 or 555.
    def code() -> int:
        while True:
            c = rng.randrange(200, 1000)
            if c % 100 != 11 and c != 555:
                return c

    return f"({code()}) {code()}-{rng.randrange(0, 10_000):04d}"


def fake_ssn(rng: random.Random) -> str:
    # Areas 000, 666 and 900-999 are never issued; group 00 and serial 0000 neither.
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10_000):04d}"


def fake_card(rng: random.Random) -> str:
    body = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
    number = body + str(luhn_check_digit(body))
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


def fake_iban(rng: random.Random) -> str:
    bban = "".join(str(rng.randrange(10)) for _ in range(18))  # German layout: 8-digit bank code + 10-digit account
    numeric = "".join(str(int(c, 36)) for c in bban + "DE00")
    check = 98 - int(numeric) % 97
    return f"DE{check:02d}{bban}"


def fake_ip(rng: random.Random) -> str:
    return f"{rng.choice(_DOC_NETS)}.{rng.randrange(1, 255)}"


def fill_pii(template: PiiTemplate, rng: random.Random) -> str:
    name = fake_name(rng)
    values = {
        "name": name,
        "email": fake_email(rng, name),
        "phone": fake_phone(rng),
        "ssn": fake_ssn(rng),
        "card": fake_card(rng),
        "iban": fake_iban(rng),
        "ip": fake_ip(rng),
    }
    return template.template.format(**values)
