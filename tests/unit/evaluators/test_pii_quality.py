"""PII redaction on the generated evaluation set (evaluators/data/pii/, rebuilt by scripts/build_pii_set.py from Faker
and phonenumbers): the documented figures guard CI, the set is what its script builds, and the formats the figures
stand for are each checked by name (networks and lengths, regions' formats, the leniency's refusals)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from llmwatch.evaluators.pii import cards, quality
from llmwatch.evaluators.pii.detector import PiiDetector, Scan
from llmwatch.settings import EvaluatorSettings, Settings

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector(cache_size=0)


@pytest.fixture(scope="module")
def report(detector: PiiDetector) -> dict:
    return quality.redaction_report("test", detector, examples=20)


# --- the guard ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entity_type", sorted(quality.DOCUMENTED_RECALL))
def test_redaction_recall_holds_its_documented_figure(report: dict, entity_type: str) -> None:
    row = report["recall"][entity_type]
    assert row["n"] >= 200
    misses = [m for m in report["misses"] if m["type"] == entity_type]
    assert row["recall"] >= quality.DOCUMENTED_RECALL[entity_type], misses


def test_clean_texts_flagged_stay_under_the_documented_rate(report: dict) -> None:
    assert report["clean"]["n"] >= 500
    assert report["clean"]["flag_rate"] <= quality.DOCUMENTED_CLEAN_FLAG_RATE, report["false_alarms"]


def test_the_report_is_json_and_says_what_it_measured(report: dict) -> None:
    again = json.loads(json.dumps(report))
    assert again["split"] == "test" and again["backend"] == "presidio-patterns"
    assert set(again["recall"]) == {"CREDIT_CARD", "EMAIL_ADDRESS", "IBAN_CODE", "IP_ADDRESS", "PHONE_NUMBER", "US_SSN"}
    assert {"price", "decimal", "exchange_rate", "date", "time", "version", "id", "coordinates", "measurement"} <= set(
        again["clean"]["by_kind"]
    )


def test_the_documented_figures_are_the_ones_in_the_docs() -> None:
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert f"{quality.DOCUMENTED_RECALL['CREDIT_CARD']:.3f}" in text
    assert f"{quality.DOCUMENTED_RECALL['PHONE_NUMBER']:.3f}" in text
    assert f"{quality.DOCUMENTED_CLEAN_FLAG_RATE:.2%}".replace("%", " %") in text


def test_a_missed_value_counts_as_a_miss() -> None:
    """The report can fail: a detector that finds nothing redacts nothing."""

    class Blind(PiiDetector):
        def _scan(self, text: str) -> Scan:
            return Scan(())

    blind = quality.redaction_report("validation", Blind(cache_size=0), examples=1)
    assert blind["recall"]["PHONE_NUMBER"]["recall"] == 0.0 and blind["clean"]["flag_rate"] == 0.0
    assert quality.value_gone("PHONE_NUMBER", "+1 212 555 0147", "call <PHONE_NUMBER>")
    assert not quality.value_gone("PHONE_NUMBER", "+1 212 555 0147", "call +1 <PHONE_NUMBER> 212-555-0147")


# --- the set is what its script builds ---------------------------------------------------------------------------


def test_the_shipped_set_is_what_the_build_script_makes(
    tmp_path: Path, load_script: Callable[[str], ModuleType]
) -> None:
    """Rebuilt from the pinned Faker and phonenumbers, byte for byte (the script refuses other versions)."""
    load_script("build_pii_set").build(tmp_path)
    for name in ("train.jsonl", "validation.jsonl", "test.jsonl", "manifest.json"):
        assert (tmp_path / name).read_bytes() == (quality.DATA_DIR / name).read_bytes(), name


def test_splits_share_no_value_and_the_datasheet_counts_match() -> None:
    values = {s: {e["value"] for r in quality.load_split(s) for e in r.get("entities", [])} for s in quality.SPLITS}
    assert not values["train"] & values["test"] and not values["validation"] & values["test"]
    manifest = json.loads((quality.DATA_DIR / "manifest.json").read_text())
    sheet = (quality.DATA_DIR / "DATASHEET.md").read_text(encoding="utf-8")
    for split, counts in manifest["counts"].items():
        assert sum(counts.values()) == len(quality.load_split(split))
        assert f"| {split} | " + " | ".join(f"{counts[k]:,}" for k in sorted(counts)) in sheet, split
    for package, version in manifest["packages"].items():
        assert f"| {package} | {version} |" in sheet
    assert sum(p.stat().st_size for p in quality.DATA_DIR.iterdir()) < 4 * 2**20  # "a few MB at most"


# --- formats by name ---------------------------------------------------------------------------------------------

# Luhn-valid numbers built for each network and length (the check digit computed here, the prefixes from the IIN
# table's sources, not from cards.py).
_CARD_PREFIXES = {
    "visa": ("4", range(13, 20)),
    "mastercard 51": ("51", [16]),
    "mastercard 2-series": ("2221", [16]),
    "mastercard 2720": ("2720", [16]),
    "maestro": ("6759", range(12, 20)),
    "maestro 50": ("5018", range(12, 20)),
    "amex": ("37", [15]),
    "discover": ("6011", range(16, 20)),
    "jcb": ("3530", range(16, 20)),
    "jcb 2131": ("2131", [15]),
    "jcb 1800": ("1800", [15]),
    "unionpay": ("62", range(16, 20)),
    "diners": ("36", range(14, 20)),
    "diners 300": ("300", [14]),
    "mir": ("2200", range(16, 20)),
}


def _with_check_digit(body: str) -> str:
    for d in "0123456789":
        digits = [int(c) for c in body + d][::-1]
        total = sum(x if i % 2 == 0 else (x * 2 - 9 if x > 4 else x * 2) for i, x in enumerate(digits))
        if total % 10 == 0:
            return body + d
    raise AssertionError(body)


_CARDS = [
    (name, length, _with_check_digit((prefix + "73910482650193847261")[: length - 1]))
    for name, (prefix, lengths) in _CARD_PREFIXES.items()
    for length in lengths
]


@pytest.mark.parametrize(("name", "length", "number"), _CARDS, ids=[f"{n}-{ln}" for n, ln, _ in _CARDS])
def test_every_network_and_length_is_a_card(detector: PiiDetector, name: str, length: int, number: str) -> None:
    assert cards.is_card(number), (name, length)
    grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    for written in (number, grouped, grouped.replace(" ", "-")):
        found = [(e.type, e.text) for e in detector.detect(f"Card: {written}, thanks")]
        assert found == [("CREDIT_CARD", written)], (name, written, found)


@pytest.mark.parametrize(
    "text",
    [
        "card 4929 5134 6771 3004",  # bad check digit
        "EAN 4006381333931",  # passes Luhn, labelled an EAN
        "order 123-4567890-1234567",  # an order id, not a card's grouping
        "account 41111111111111111111111",  # too long for any network
    ],
)
def test_numbers_that_are_no_card(detector: PiiDetector, text: str) -> None:
    assert not [e for e in detector.detect(text) if e.type == "CREDIT_CARD"], text


@pytest.mark.parametrize(
    "text",
    [
        "Call +44 20 7946 0958 today",
        "Tel.: 030 12345678",
        "Téléphone : 06 12 34 56 78",
        "Tel 06.12.34.56.78",
        "call 0049 30 1234567",
        "from the US dial 011 44 20 7946 0958",
        "ring (0350) 653 604",
        "cell 883-237-8876x232",  # unassigned area code, extension
        "phone 555-0147 ext. 12",
        "+1-537-640-6812x41586",
        "Call 1-800-555-0199",
        "My number is +54 9 3866 2658",
        "電話番号は080-9825-9791です。",
        "Позвоните мне по номеру +7 (982) 597-9190.",
        "Mobile: 96.855845",  # a decimal's shape, labelled a phone
        "mobile 07797/15349845",
        '{"name": "Jan", "phone": "0612345678"}',  # bare, after a phone word
        "reach me at 0612345678 after six",
    ],
)
def test_phones_in_national_and_international_formats(detector: PiiDetector, text: str) -> None:
    found = [e for e in detector.detect(text) if e.type == "PHONE_NUMBER"]
    assert len(found) == 1, (text, found)
    digits_left = re.sub(r"\D", "", text[: found[0].start] + text[found[0].end :])
    assert len(digits_left) <= 3, (text, found)  # only a leading 1, 00 or the like may stay beside it


@pytest.mark.parametrize(
    "text",
    [
        "EUR/USD closed at 0.864594.",
        "1 GBP = 1.164523 EUR",
        "coordinates 48.856613, 2.352222",
        "The meeting is on 2024-05-22, the next on 22/06/2024.",
        "Opening hours 09.00-17.30",
        "between 1995-2005 and 2010/2015",
        "Upgrade to 10.0.19045.3570 first.",
        "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0.6099.109 Safari/537.36 rv:1.9.7.20",
        "The city has 12 345 678 inhabitants.",
        "It costs 1.234.567 € or USD 1 234 567.",
        "We processed 120 000 000 rows.",
        "The panel measures 1200 x 2400 mm, 3840x2160 pixels.",
        "Your order ORD-48392017 has shipped.",
        "ISBN 978-1-380-58192-1 and 0-01-439084-1",
        "Created 20240522143005, epoch 1716388205",
        "invoice INV-2023-000123, ticket 4839201746",
        "version 17.11.235, build 22631",
        "p = 0.0000123456, mean 1234.567890",
    ],
)
def test_numbers_that_are_no_phone(detector: PiiDetector, text: str) -> None:
    assert detector.detect(text) == (), text


@pytest.mark.parametrize(
    "address", ["jane.doe@corp.example", "ops@build.test", "x@mail.invalid", "root@db.internal", "a.b@printer.lan"]
)
def test_addresses_at_reserved_and_private_domains_are_emails(detector: PiiDetector, address: str) -> None:
    """Issue 21: jane.doe@corp.example in a response was left in the stored text."""
    found = detector.detect(f"Forward it to {address} please")
    assert [(e.type, e.text) for e in found] == [("EMAIL_ADDRESS", address)]


def test_phone_regions_setting_is_read_and_checked() -> None:
    us_only = PiiDetector(cache_size=0, phone_regions=("US",))
    assert us_only.detect("Telefon 030 12345678") == ()  # no US number has that length
    assert [e.type for e in PiiDetector(cache_size=0).detect("Telefon 030 12345678")] == ["PHONE_NUMBER"]
    assert Settings(eval={"pii_phone_regions": ["de", " fr"]}).eval.pii_phone_regions == ["DE", "FR"]
    with pytest.raises(ValueError, match="two-letter"):
        EvaluatorSettings(pii_phone_regions=["Germany"])
    with pytest.raises(ValueError, match="unknown phone region"):
        PiiDetector(cache_size=0, phone_regions=("XX",))
