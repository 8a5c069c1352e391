"""Rebuild the PII evaluation set (evaluators/data/pii/) from the pinned generator packages.

Values come from packages that generate them, never from text written here: Faker (phone numbers in every
locale that has a phone provider, card numbers per network with Luhn check digits, e-mail addresses, IBANs,
SSNs, IP addresses, and the non-PII numbers of the clean texts: prices, decimals, dates, times, versions, ids,
coordinates) and phonenumbers (libphonenumber's example number per region and number type, with its last digits
varied and each variant kept only where libphonenumber calls it valid, written in its international, national
and E.164 formats). The short frames that place a value in a sentence ("Call me at {v}.") are this project's, a
small supplement in a dozen languages; most texts put the value inside a Faker sentence, a JSON record or a CSV
line instead.

Deterministic: a fixed seed, and the package versions pinned below (a different version generates other values,
so the script refuses to run with one unless --force). Rows are split train/validation/test by a hash of the
value, so one value never sits in two splits. Usage (from the repository root):

    python3 scripts/build_pii_set.py [--out evaluators/data/pii]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

PINNED = {"Faker": "40.63.0", "phonenumbers": "9.0.43"}
SEED = 20261207
_FIRST, _LAST = datetime(1990, 1, 1, tzinfo=UTC), datetime(2030, 12, 31, tzinfo=UTC)
SPLITS = (("train", 0.6), ("validation", 0.2), ("test", 0.2))
OUT = Path(__file__).resolve().parents[1] / "evaluators" / "data" / "pii"
#: Phone numbers are reported from seven digits (evaluators/pii/phones.py): shorter values are left out, counted.
PHONE_MIN_DIGITS = 7

# --- the frames: where a value sits (a small authored supplement; most rows use Faker's own text) ------------

PHONE_FRAMES = {
    "en": [
        "Call me at {v}.",
        "My phone number is {v}",
        "You can reach the office on {v} during the week.",
        "Mobile: {v}",
        "Tel. {v}",
        "Fax {v}",
        "Please text {v} when you arrive.",
        "Phone {v} (after 6 pm)",
        "Our support line {v} is open 24/7.",
        "reach me at {v} or by mail",
    ],
    "de": ["Rufen Sie mich unter {v} an.", "Telefon: {v}", "Tel.: {v}", "Meine Handynummer ist {v}."],
    "fr": ["Appelez-moi au {v}.", "Tél. : {v}", "Mon numéro de portable est le {v}."],
    "es": ["Llámame al {v}.", "Teléfono: {v}", "Mi número de móvil es {v}."],
    "it": ["Chiamami al {v}.", "Telefono: {v}", "Il mio cellulare è {v}."],
    "pt": ["Ligue para {v}.", "Telefone: {v}", "O meu número é {v}."],
    "nl": ["Bel mij op {v}.", "Telefoon: {v}"],
    "pl": ["Zadzwoń pod numer {v}.", "Tel. {v}"],
    "ru": ["Позвоните мне по номеру {v}.", "Тел.: {v}"],
    "uk": ["Зателефонуйте мені за номером {v}.", "Тел.: {v}"],
    "tr": ["Beni {v} numarasından arayın.", "Telefon: {v}"],
    "ja": ["電話番号は{v}です。", "TEL {v}"],
    "zh": ["我的电话是{v}。", "电话：{v}"],
    "ko": ["제 전화번호는 {v}입니다.", "전화: {v}"],
    "sv": ["Ring mig på {v}.", "Telefon: {v}"],
    "he": ["התקשרו אליי למספר {v}.", "טלפון: {v}"],
    "ar": ["اتصل بي على {v}.", "هاتف: {v}"],
}
CARD_FRAMES = {
    "en": [
        "Charge it to my card {v}, please.",
        "Card number: {v}",
        "I paid with {v} yesterday.",
        "The Visa ending in that number is {v}",
        "use {v} for the renewal",
        "credit card {v} exp 09/27",
    ],
    "de": ["Bitte buchen Sie von meiner Karte {v} ab.", "Kartennummer: {v}"],
    "fr": ["Débitez ma carte {v}.", "Numéro de carte : {v}"],
    "es": ["Cárguelo a mi tarjeta {v}.", "Número de tarjeta: {v}"],
}
OTHER_FRAMES = {
    "EMAIL_ADDRESS": ["Write to {v}.", "Email: {v}", "cc {v} on the thread", "My address is {v}"],
    "IBAN_CODE": ["IBAN: {v}", "Please transfer the deposit to {v}.", "account {v}"],
    "US_SSN": ["SSN: {v}", "My social security number is {v}."],
    "IP_ADDRESS": ["The request came from {v}.", "client ip {v}", "Blocked {v} after five failed logins."],
}
#: What the clean texts hold: numbers that are no one's personal data.
CLEAN_FRAMES = {
    "price": ["The total comes to {v}.", "Price: {v}", "It costs {v} including VAT.", "{v} per month"],
    "decimal": ["The coefficient was {v}.", "p = {v}", "mean {v}, sd {v2}", "ratio {v}"],
    "exchange_rate": ["EUR/USD closed at {v}.", "1 GBP = {v} EUR", "rate {v}", "USD/JPY {v} (+{v2})"],
    "date": ["The meeting is on {v}.", "Due date: {v}", "Signed {v} in Berlin", "from {v} to {v2}"],
    "time": ["The train leaves at {v}.", "Opening hours {v}-{v2}", "Logged at {v}"],
    "datetime": ["Created {v}", "last_login: {v}", "Timestamp {v}"],
    "version": ["Upgrade to {v} first.", "Tested on version {v}", "released in {v} last week", "{v}"],
    "id": [
        "Your order {v} has shipped.",
        "Ticket {v}",
        "ISBN {v}",
        "EAN: {v}",
        "reference {v}",
        "Tracking number: {v}",
        "{v}",
        "id={v}",
    ],
    "coordinates": ["The site is at {v}.", "lat/lon {v}", "GPS: {v}"],
    "measurement": ["The panel measures {v}.", "Distance: {v}", "It weighs {v}.", "{v} in total"],
    "count": ["The city has {v} inhabitants.", "{v} downloads so far", "We processed {v} rows."],
}


@dataclass
class Row:
    text: str
    kind: str  # "pii" or "clean"
    source: str  # package:locale-or-region:generator
    entities: list[dict] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)  # clean rows: what kind of numbers they hold
    group: str = ""  # what the split hashes (the value, so a value sits in one split only)

    def as_json(self, split: str, i: int) -> dict:
        out = {"id": f"{split}-{i:05d}", "kind": self.kind, "text": self.text, "source": self.source}
        if self.kind == "pii":
            out["entities"] = self.entities
        else:
            out["numbers"] = self.numbers
        return out


def _split(group: str) -> str:
    x = int(hashlib.sha256(f"{SEED}:{group}".encode()).hexdigest()[:8], 16) / 16**8
    for name, share in SPLITS:
        if x < share:
            return name
        x -= share
    return SPLITS[-1][0]


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


class Builder:
    def __init__(self) -> None:
        from faker import Faker

        self.rng = random.Random(SEED)
        self.Faker = Faker
        self.en = self._faker("en_US")
        self.skipped: Counter[str] = Counter()

    def _faker(self, locale: str) -> Any:  # a faker.Faker
        fake = self.Faker(locale)
        fake.seed_instance(f"{SEED}:{locale}")
        return fake

    # -- placing a value ------------------------------------------------------------------------------------

    def place(self, value: str, entity_type: str, source: str, frames: list[str], fake: Any) -> Row:
        """The value in one of four containers: a frame, a Faker sentence, a JSON record, a CSV line."""
        how = self.rng.choice(["frame", "frame", "sentence", "json", "csv"])
        if how == "frame":
            frame = self.rng.choice(frames)
            head, tail = frame.split("{v}", 1)
        elif how == "sentence":
            words = fake.sentence(nb_words=self.rng.randint(6, 14)).rstrip(".").split()
            cut = self.rng.randint(0, len(words))
            head, tail = (
                " ".join(words[:cut]) + (" " if cut else ""),
                (" " if cut < len(words) else "") + " ".join(words[cut:]) + ".",
            )
        elif how == "json":
            key = {"PHONE_NUMBER": "phone", "CREDIT_CARD": "card_number"}.get(entity_type, entity_type.lower())
            record = json.dumps({"name": fake.name(), key: "<<V>>"}, ensure_ascii=False)
            head, tail = record.split("<<V>>")
        else:
            head, tail = f"{fake.first_name()},{fake.last_name()},", f",{self._moment(fake).date().isoformat()}"
            tail = tail.replace("-", "/") if self.rng.random() < 0.5 else tail
        text = head + value + tail
        entity = {"type": entity_type, "value": value, "start": len(head), "end": len(head) + len(value)}
        return Row(text, "pii", f"{source}:{how}", [entity], group=f"{entity_type}:{_digits(value) or value}")

    # -- phones -----------------------------------------------------------------------------------------------

    def faker_phones(self, per_locale: int) -> Iterator[Row]:
        import pkgutil

        import faker.providers.phone_number as phone_pkg

        for module in sorted(m.name for m in pkgutil.iter_modules(phone_pkg.__path__)):
            try:
                fake = self._faker(module)
                fake.phone_number()
            except (AttributeError, ValueError):
                self.skipped[f"faker locale without a usable phone provider: {module}"] += 1
                continue
            frames = PHONE_FRAMES.get(module.split("_")[0], PHONE_FRAMES["en"])
            seen: set[str] = set()
            for _ in range(per_locale * 3):
                if len(seen) == per_locale:
                    break
                value = fake.phone_number()
                if value in seen:
                    continue
                if len(_digits(value)) < PHONE_MIN_DIGITS:
                    self.skipped["faker phone numbers under seven digits"] += 1
                    continue
                seen.add(value)
                yield self.place(value, "PHONE_NUMBER", f"faker:{module}:phone_number", frames, fake)

    def libphonenumber_phones(self, per_region: int) -> Iterator[Row]:
        import phonenumbers
        from phonenumbers import PhoneNumberFormat as F
        from phonenumbers import PhoneNumberType as T

        types = [T.FIXED_LINE, T.MOBILE, T.FIXED_LINE_OR_MOBILE, T.TOLL_FREE, T.VOIP, T.PERSONAL_NUMBER, T.UAN]
        for region in sorted(phonenumbers.SUPPORTED_REGIONS):
            examples = []
            for t in types:
                ex = phonenumbers.example_number_for_type(region, t)
                if ex is not None and ex not in examples:
                    examples.append(ex)
            lang = _LANG_OF_REGION.get(region, "en")
            fake = self.en
            frames = PHONE_FRAMES.get(lang, PHONE_FRAMES["en"])
            made = 0
            for _ in range(per_region * 6):
                if made == per_region or not examples:
                    break
                ex = self.rng.choice(examples)
                nsn = str(ex.national_number)
                keep = max(1, len(nsn) - 4)
                varied = nsn[:keep] + "".join(self.rng.choice("0123456789") for _ in nsn[keep:])
                number = phonenumbers.parse(f"+{ex.country_code}{varied}", None)
                if ex.italian_leading_zero:
                    number = phonenumbers.parse(f"+{ex.country_code}0{varied.lstrip('0')}", None)
                if not phonenumbers.is_valid_number(number):
                    continue
                style = self.rng.choice([F.INTERNATIONAL, F.INTERNATIONAL, F.NATIONAL, F.NATIONAL, F.E164])
                value = phonenumbers.format_number(number, style)
                if len(_digits(value)) < PHONE_MIN_DIGITS:
                    self.skipped["libphonenumber national numbers under seven digits"] += 1
                    continue
                made += 1
                name = {F.INTERNATIONAL: "international", F.NATIONAL: "national", F.E164: "e164"}[style]
                yield self.place(value, "PHONE_NUMBER", f"phonenumbers:{region}:{name}", frames, fake)

    # -- cards ------------------------------------------------------------------------------------------------

    def cards(self, per_network: int) -> Iterator[Row]:
        from faker.providers.credit_card import CreditCard
        from faker.providers.credit_card import Provider as CardProvider

        # Faker's networks, and those it lacks or issues at one length only, through the same Luhn generator.
        extra = {
            "maestro": CreditCard("Maestro", ["5018", "5020", "5038", "5893", "6304", "6759", "676770", "0604"], 12),
            "unionpay": CreditCard("UnionPay", ["62"], 16),
            "mir": CreditCard("Mir", ["2200", "2201", "2202", "2203", "2204"], 16),
            "rupay": CreditCard("RuPay", ["60", "6521", "6522", "508"], 16),
            "jcb": CreditCard("JCB", [str(p) for p in range(3528, 3590)], 16),
            "discover": CreditCard("Discover", ["6011", "644", "645", "646", "647", "648", "649", "65"], 16),
            "diners": CreditCard(
                "Diners Club", ["300", "301", "302", "303", "304", "305", "3095", "36", "38", "39"], 14
            ),
        }
        lengths = {
            "maestro": range(12, 20),
            "unionpay": range(16, 20),
            "mir": range(16, 20),
            "jcb": range(16, 20),
            "discover": range(16, 20),
            "diners": range(14, 20),
        }
        provider = CardProvider(self.en)
        names = [n for n in CardProvider.credit_card_types if n not in {"visa", "jcb"}] + sorted(extra)
        for name in names:
            frames = CARD_FRAMES[self.rng.choice(["en", "en", "de", "fr", "es"])]
            for _ in range(per_network):
                if name in extra:
                    card = extra[name]
                    length = self.rng.choice(list(lengths.get(name, [card.length])))
                    number = provider._generate_number(provider.numerify(self.rng.choice(card.prefixes)), length)
                    source = f"faker:{name}{length}"
                else:
                    number = self.en.credit_card_number(name)
                    source = f"faker:{name}"
                value = self._card_format(number)
                yield self.place(value, "CREDIT_CARD", source, frames + CARD_FRAMES["en"][:2], self.en)

    def _card_format(self, number: str) -> str:
        style = self.rng.choice(["plain", "spaces", "dashes", "spaces"])
        if style == "plain":
            return number
        sep = " " if style == "spaces" else "-"
        if (len(number) == 15 and number[:2] in {"34", "37"}) or len(number) == 14:
            groups = [number[:4], number[4:10], number[10:]]
        else:
            groups = [number[i : i + 4] for i in range(0, len(number), 4)]
        return sep.join(groups)

    # -- the other types (reported, not the focus) -------------------------------------------------------------

    def others(self, per_type: int) -> Iterator[Row]:
        locales = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "pt_PT", "sv_SE"]
        fakes = [self._faker(loc) for loc in locales]
        makers: dict[str, Callable] = {
            "EMAIL_ADDRESS": self._email,
            "IBAN_CODE": lambda f: f.iban(),
            "US_SSN": lambda f: self.en.ssn(),
            "IP_ADDRESS": lambda f: f.ipv4_public() if self.rng.random() < 0.7 else f.ipv6(),
        }
        for entity_type, make in makers.items():
            for _ in range(per_type):
                fake = self.rng.choice(fakes)
                value = make(fake)
                yield self.place(value, entity_type, f"faker:{entity_type.lower()}", OTHER_FRAMES[entity_type], fake)

    def _email(self, fake: Any) -> str:
        """Faker's addresses; one in five at a reserved or private top-level name (RFC 2606/6761: .example, .test,
        .invalid, .localhost; .internal, .corp, .lan), which are addresses all the same."""
        if self.rng.random() < 0.2:
            tld = self.rng.choice(["example", "test", "invalid", "localhost", "internal", "corp", "lan", "local"])
            return f"{fake.user_name()}@{fake.domain_word()}.{tld}"
        return self.rng.choice([fake.email, fake.free_email, fake.company_email, fake.safe_email])()

    # -- clean texts: numbers that are no PII -----------------------------------------------------------------

    def clean(self, n: int) -> Iterator[Row]:
        locales = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "pt_BR", "ja_JP", "ru_RU"]
        fakes = [self._faker(loc) for loc in locales]
        kinds = list(CLEAN_FRAMES)
        for i in range(n):
            fake = self.rng.choice(fakes)
            kind = kinds[i % len(kinds)]
            v, v2 = self._clean_value(kind, fake), self._clean_value(kind, fake)
            frame = self.rng.choice(CLEAN_FRAMES[kind])
            text = frame.format(v=v, v2=v2)
            if self.rng.random() < 0.5:
                text = f"{fake.sentence()} {text}" if self.rng.random() < 0.5 else f"{text} {fake.sentence()}"
            yield Row(text, "clean", f"faker:{fake._locales[0]}:{kind}", numbers=[kind], group=f"clean:{text}")

    def _moment(self, fake: Any) -> datetime:
        """A moment between fixed bounds in UTC: Faker's own date helpers end at "now", which would change the set
        with the day it is rebuilt."""
        return fake.date_time_between(start_date=_FIRST, end_date=_LAST, tzinfo=UTC)

    def _user_agent(self) -> str:
        r = self.rng
        chrome = f"{r.randint(90, 130)}.0.{r.randint(4000, 6999)}.{r.randint(10, 250)}"
        return (
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{r.randint(60, 130)}.0) AppleWebKit/537.36 "
            f"(KHTML, like Gecko) Chrome/{chrome} Safari/537.36"
        )

    def _clean_value(self, kind: str, fake: Any) -> str:  # one branch per kind, read as a table
        r = self.rng
        if kind == "price":
            amount = fake.pydecimal(left_digits=r.randint(1, 7), right_digits=2, positive=True)
            style = r.choice(["pricetag", "us", "eu", "space", "code"])
            if style == "pricetag":
                return fake.pricetag()
            if style == "us":
                return f"${amount:,.2f}"
            if style == "eu":
                return f"{amount:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".") + " €"
            if style == "space":
                return f"{amount:,.2f}".replace(",", "\u00a0").replace(".", ",") + " zł"
            return f"{r.choice(['USD', 'EUR', 'GBP', 'CHF', 'JPY'])} {amount:,.2f}"
        if kind == "decimal":
            return str(fake.pyfloat(left_digits=r.randint(1, 4), right_digits=r.randint(2, 8)))
        if kind == "exchange_rate":
            return f"{r.uniform(0.005, 160):.{r.randint(4, 6)}f}"
        if kind == "date":
            pattern = r.choice(
                [
                    "%Y-%m-%d",
                    "%d/%m/%Y",
                    "%m/%d/%Y",
                    "%d.%m.%Y",
                    "%Y/%m/%d",
                    "%d-%m-%Y",
                    "%Y%m%d",
                    "%d %B %Y",
                    "%B %d, %Y",
                    "%d.%m.%y",
                    "%m/%d/%y",
                ]
            )
            return self._moment(fake).strftime(pattern)
        if kind == "time":
            return self._moment(fake).strftime(r.choice(["%H:%M", "%H:%M:%S", "%I:%M %p", "%H.%M", "%Hh%M"]))
        if kind == "datetime":
            moment = self._moment(fake)
            return r.choice(
                [
                    moment.isoformat(),
                    str(moment.replace(tzinfo=None)),
                    moment.strftime("%d.%m.%Y %H:%M"),
                    str(int(moment.timestamp())),
                    moment.strftime("%Y%m%d%H%M%S"),
                ]
            )
        if kind == "version":
            return r.choice(
                [
                    f"{r.randint(0, 20)}.{r.randint(0, 40)}.{r.randint(0, 300)}",
                    f"v{r.randint(1, 9)}.{r.randint(0, 99)}.{r.randint(0, 9)}",
                    f"{r.randint(6, 11)}.0.{r.randint(10000, 22999)}.{r.randint(1, 4000)}",
                    f"{r.randint(1, 130)}.0.{r.randint(1000, 6999)}.{r.randint(10, 250)}",
                    self._user_agent(),
                    f"build {r.randint(1000000, 99999999)}",
                ]
            )
        if kind == "id":
            return r.choice(
                [
                    fake.ean13(),
                    fake.ean8(),
                    fake.isbn13(),
                    fake.isbn10(),
                    fake.uuid4(),
                    fake.bothify("ORD-########"),
                    fake.bothify("INV-20##-######"),
                    fake.bothify("#########"),
                    fake.bothify("1Z###??##########").upper(),
                    fake.numerify("##########"),
                    fake.numerify("###-#######-#######"),
                    fake.bothify("??-####-####").upper(),
                    fake.sha1()[:12],
                    fake.numerify("#" * r.randint(7, 12)),
                ]
            )
        if kind == "coordinates":
            lat, lon = fake.latitude(), fake.longitude()
            return r.choice(
                [
                    f"{lat}, {lon}",
                    f"{abs(lat):.4f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.4f}° {'E' if lon >= 0 else 'W'}",
                    f"({lat:.6f}, {lon:.6f})",
                    f"{lat:.5f} {lon:.5f}",
                ]
            )
        if kind == "measurement":
            return r.choice(
                [
                    f"{r.randint(100, 4000)} x {r.randint(100, 4000)} mm",
                    f"{r.randint(640, 7680)}x{r.randint(480, 4320)}",
                    f"{r.uniform(0.1, 9999):.2f} kg",
                    f"{r.randint(1000, 9_999_999):,} km",
                    f"{r.uniform(1, 500):.1f} cm",
                    f"{r.randint(1000, 999_999):,}".replace(",", " ") + " m²",
                    f"{r.uniform(-40, 45):.1f} °C",
                    f"{r.randint(10_000, 99_999_999)} bytes",
                ]
            )
        if kind == "count":
            n = r.randint(10_000, 500_000_000)
            return r.choice([f"{n:,}", f"{n:,}".replace(",", "."), f"{n:,}".replace(",", " "), str(n)])
        raise ValueError(kind)


_LANG_OF_REGION = {
    "DE": "de",
    "AT": "de",
    "CH": "de",
    "LI": "de",
    "FR": "fr",
    "BE": "fr",
    "LU": "fr",
    "MC": "fr",
    "ES": "es",
    "MX": "es",
    "AR": "es",
    "CO": "es",
    "CL": "es",
    "PE": "es",
    "IT": "it",
    "PT": "pt",
    "BR": "pt",
    "NL": "nl",
    "PL": "pl",
    "RU": "ru",
    "UA": "uk",
    "TR": "tr",
    "JP": "ja",
    "CN": "zh",
    "TW": "zh",
    "HK": "zh",
    "KR": "ko",
    "SE": "sv",
    "IL": "he",
    "SA": "ar",
    "AE": "ar",
    "EG": "ar",
    "JO": "ar",
    "MA": "ar",
    "DZ": "ar",
}


def _check_versions(force: bool) -> dict[str, str]:
    found = {name: version(name) for name in PINNED}
    wrong = {n: v for n, v in found.items() if v != PINNED[n]}
    if wrong and not force:
        sys.exit(f"pinned {PINNED}, installed {found}: install the pinned versions (or --force for a different set)")
    return found


def build(out: Path, force: bool = False) -> dict[str, object]:
    versions = _check_versions(force)
    b = Builder()
    rows = [
        *b.faker_phones(per_locale=40),
        *b.libphonenumber_phones(per_region=8),
        *b.cards(per_network=60),
        *b.others(per_type=150),
        *b.clean(n=3300),
    ]
    splits: dict[str, list[dict]] = {name: [] for name, _ in SPLITS}
    for row in rows:
        split = _split(row.group)
        splits[split].append(row.as_json(split, len(splits[split])))
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    for name, items in splits.items():
        (out / f"{name}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8"
        )
        c: Counter[str] = Counter()
        for r in items:
            c["clean" if r["kind"] == "clean" else r["entities"][0]["type"]] += 1
        counts[name] = dict(sorted(c.items()))
    manifest = {"seed": SEED, "packages": versions, "counts": counts, "skipped": dict(sorted(b.skipped.items()))}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--force", action="store_true", help="run with other package versions than the pinned ones")
    args = parser.parse_args()
    manifest = build(args.out, args.force)
    print(json.dumps(manifest, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
