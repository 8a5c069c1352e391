"""Phone numbers in every region's international and national formats, read with libphonenumber's metadata.

Why not `phonenumbers.PhoneNumberMatcher`: it rescans the whole text once per region (seven regions cost ~40 µs
per character of digit-heavy text), and its lenient modes read decimals, dates and version numbers as numbers
while its strict mode (VALID) drops every number whose area code is unassigned, which is what generated and
redacted-elsewhere numbers look like. Here the cheap part is a regex: a text without a run of seven digits never
reaches libphonenumber. Each run is then read once:

1. Dates, time ranges, year ranges and lone decimals (`0.864594`, `48.8566`) are cut out of the run first.
2. The rest splits into chunks at whitespace ("030 1234567 / 0171 2345678" holds two numbers); windows of whole
   chunks are tried longest first, so one number written with spaces is read whole.
3. A window written internationally (`+49 …`, `(+358) …`, `0049 …`, `011 49 …`) is a phone when its country code
   exists and the national number has a possible length for it (libphonenumber), or 4-14 digits (what people
   type: `+54 9 3866 2658` is a length short). E.164 caps a number at 15 digits.
4. A national window (no country code) is a phone when its digit count is possible for one of the default regions
   (`LLMWATCH_EVAL__PII_PHONE_REGIONS`, after removing that region's trunk prefix) and it is written like one:
   grouped with spaces, dashes, slashes or parentheses, or dots in phone groups (`212.555.0147`, `06.12.34.56.78`,
   never `168.978.746` or `10.0.19041.1234`). A bare run of digits is an id more often than a phone: it counts
   only when a phone word comes just before it, or it is a valid number of a default region written the way that
   region writes it (with its trunk prefix, or as ten NANP digits or an 11-digit-plus mobile without one).
5. The leniency: no window glued to letters (`ORD-12345678`, `Chrome/97.0.5113.229`), after a currency sign or
   before a unit (`12 345 678 km`, `USD 1 234 567`), in thousands groups (`1 234 567`, `120 000 000`) or shaped
   like a US SSN (left to that recognizer).

An extension after a number (`x123`, `ext. 45`, `extension 6`, `#12`) is part of its span, so redaction takes it.

Scan budget: a digit-heavy text (a CSV of numbers) holds many runs; runs are read in text order while their
characters fit in `budget` (PHONE_SCAN_CHARS by default), and the ones past it are returned unread so that the
caller masks them whole (see the package docstring).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata

from llmwatch.settings import PII_PHONE_REGIONS

#: Phone numbers are reported from seven digits as written (shorter national numbers exist but are rare).
PHONE_MIN_DIGITS = 7
#: E.164: a country code and national number together hold at most 15 digits.
PHONE_MAX_DIGITS = 15
#: The most digits a written phone number holds: E.164's 15 and an international prefix (011).
_WINDOW_MAX_DIGITS = PHONE_MAX_DIGITS + 3
#: Characters of phone-like runs read per text (see the module docstring).
PHONE_SCAN_CHARS = 32 * 1024


#: Separators inside a written number: spaces (also no-break and thin), dashes, dots, slashes, parentheses.
_SEP = "[ \u00a0\u2009\u202f\\-\u2010-\u2015\u2212./()]"
#: A run of seven digits or more joined by up to three separators, with a leading "+", "(" or "(+".
LONG_PHONE_RUN = re.compile(rf"(?:\+ ?|\(\+?)?\d(?:{_SEP}{{0,3}}\d){{{PHONE_MIN_DIGITS - 1},}}")
#: Any run of digits as LONG_PHONE_RUN joins them (leak detection looks for a value's digits in the prompt).
PHONE_RUN = re.compile(rf"\d(?:{_SEP}{{0,3}}\d)*")

_DAY, _MONTH = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])"
#: What is cut out of a run before it is read: dates (2024-05-22, 22/05/2024, 05.22.24, 2024/5/2), time ranges
#: (09.00-17.30), year ranges (1995-2005) and lone decimals (0.864594, not a part of 212.555.0147).
_NOT_A_NUMBER = re.compile(
    rf"(?<![\d./-])(?:"
    rf"\d{{4}}([-/.]){_MONTH}\1{_DAY}"
    rf"|{_DAY}([-/.]){_DAY}\2(?:(?:19|20)\d\d|\d\d)(?!\2\d)"
    rf"|\d{{1,2}}[.:]\d\d ?[-\u2013] ?\d{{1,2}}[.:]\d\d"
    rf"|(?:19|20)\d\d ?[-\u2013/] ?(?:19|20)?\d\d"
    rf")(?![\d])"
)
#: A lone decimal (0.864594, 48.8566; not a part of 212.555.0147): cut out too, unless a phone word labels the run.
_DECIMAL = re.compile(r"(?<![\d./-])\d+\.\d+(?![.\d])")
_GROUP = re.compile(r"\d+")
#: An extension after the number: x123, ext. 45, extension 6, #12, доб. 7, poste 12, Durchwahl 3.
_EXTENSION = re.compile(
    r"\s{0,2}(?:x|ext\.?|extn\.?|extension|#|доб\.?|poste|durchwahl|dw\.?|int\.?)\s{0,2}\d{1,6}(?!\d)", re.IGNORECASE
)
_CURRENCY_BEFORE = re.compile(
    r"(?:[$€£¥₹₽₩₪₺₴₦¢]|\b(?:usd|eur|gbp|chf|jpy|cny|rmb|inr|rub|brl|pln|sek|nok|dkk|aud|cad|rs|r\$|kr|zł))\s?$",
    re.IGNORECASE,
)
# fmt: off
#: A word after a number that makes it a quantity, not a phone number.
_UNITS = frozenset({
    "%", "‰", "km", "m", "cm", "mm", "µm", "nm", "mi", "ft", "kg", "mg", "lb", "lbs", "oz",
    "ml", "m²", "km²", "m2", "km2", "m³", "ha", "°", "°c", "°f", "kb", "mb", "gb", "tb", "kib", "mib", "gib",
    "bytes", "byte", "bit", "bits", "px", "pixels", "dpi", "hz", "khz", "mhz", "ghz", "kw", "kwh", "mw",
    "mah", "rpm", "fps", "sec", "hrs", "days", "years",
    "usd", "eur", "gbp", "chf", "jpy", "cny", "inr", "rub", "brl", "pln", "sek", "nok", "dkk", "aud", "cad",
    "€", "$", "£", "¥", "₹", "zł", "kr", "dollars", "euros", "euro", "pounds", "yen", "rupees",
    "people", "persons", "inhabitants", "residents", "citizens", "users", "customers", "visitors", "views",
    "downloads", "rows", "records", "items", "units", "tokens", "words", "votes", "employees", "students",
    "copies", "requests", "events", "messages", "lines", "files", "pages",
    "einwohner", "habitants", "habitantes", "abitanti", "mieszkańców", "жителей",
})
# fmt: on
#: Words that, shortly before a number, say it is a phone number: word starts in scripts with spaces, substrings in
#: those without (CJK) and in Arabic and Hebrew, where a preposition may be glued to the word.
PHONE_WORDS = re.compile(
    r"\b(?:phone|telephon|tel\b|tel\.|call|mobile|cell\b|cellphone|fax|whats\s?app|sms|text me|contact|reach|dial"
    r"|ring\b|hotline|helpline|landline|telefon|t[ée]l[ée]phon|tel[ée]fono|telefone|portable|handy|m[óo]vil|cellulare"
    r"|celular|tlf|puhelin|appel|llam|chiam|ligue|bel\b|zadzwo|тел|звон|позвон|aray)"
    r"|電話|电话|전화|هاتف|اتصل|טלפון",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PhoneMatch:
    start: int
    end: int
    score: float
    region: str  # the region that read it ("+" for a number written with its country code)


@dataclass(frozen=True, slots=True)
class _Region:
    code: str
    trunk: str  # national prefix ("0", "1", "8"), "" where there is none
    lengths: frozenset[int]  # possible national number lengths, local-only ones included
    pattern: re.Pattern[str]  # what libphonenumber's numbers of the region match (a cheap test before parsing)


@lru_cache(maxsize=64)
def _regions(codes: tuple[str, ...]) -> tuple[_Region, ...]:
    out = []
    for code in codes:
        meta = PhoneMetadata.metadata_for_region(code.upper())
        if meta is None:
            raise ValueError(f"unknown phone region {code!r} (ISO 3166-1 alpha-2 codes, as libphonenumber knows them)")
        desc = meta.general_desc
        lengths = frozenset((desc.possible_length or ()) + (desc.possible_length_local_only or ()))
        pattern = re.compile(desc.national_number_pattern or ".*")
        out.append(_Region(code.upper(), meta.national_prefix or "", lengths, pattern))
    return tuple(out)


def digits(value: str) -> str:
    """The digits of `value`, any script's digits as ASCII (`+৮৮০` → `880`)."""
    return phonenumbers.normalize_digits_only(value)


def _latin_alnum(c: str) -> bool:
    """Letters and digits that glue to a number (Latin, Greek, Cyrillic); CJK and Arabic text writes numbers
    without spaces around them, so their letters do not."""
    return (c.isalnum() and ord(c) < 0x0590) or c == "_"


class PhoneFinder:
    """Finds phone numbers in a text (see the module docstring); built once per region list."""

    def __init__(self, regions: Sequence[str] = PII_PHONE_REGIONS, budget: int = PHONE_SCAN_CHARS) -> None:
        self.regions = _regions(tuple(r.upper() for r in regions))
        self.budget = budget

    def runs(self, text: str) -> tuple[list[re.Match[str]], list[tuple[int, int]]]:
        """The runs to read, in text order while they fit in the budget; and the (start, end) of those past it."""
        read: list[re.Match[str]] = []
        unread: list[tuple[int, int]] = []
        used = 0
        for run in LONG_PHONE_RUN.finditer(text):
            if used + len(run.group()) > self.budget:
                unread.append(run.span())
                continue
            used += len(run.group())
            read.append(run)
        return read, unread

    def find(self, text: str) -> tuple[list[PhoneMatch], list[tuple[int, int]]]:
        """The phone numbers in `text`, and the runs the budget left unread."""
        read, unread = self.runs(text)
        found: list[PhoneMatch] = []
        for run in read:
            for start, end in _pieces(run, labelled=_phone_word_before(text, run.start())):
                found.extend(self._read_piece(text, start, end))
        return found, unread

    # -- one piece of a run (dates and decimals cut out) -------------------------------------------------------

    def _read_piece(self, text: str, start: int, end: int) -> Iterable[PhoneMatch]:
        piece = text[start:end]
        if len(digits(piece)) < PHONE_MIN_DIGITS or _card_shaped(piece):
            return
        chunks = _chunks(piece)  # groups joined without whitespace
        counts = [len(digits(piece[a:b])) for a, b in chunks]
        i = 0
        while i < len(chunks):
            # the windows from chunk i that can still be one number (a long run costs linear time, not quadratic)
            last, total = i, counts[i]
            while last + 1 < len(chunks) and total + counts[last + 1] <= _WINDOW_MAX_DIGITS:
                last += 1
                total += counts[last]
            match = None
            for j in range(last, i - 1, -1):
                lo = start if i == 0 else start + chunks[i][0]  # (a leading "+" or "(" stays with the first)
                match = self._read_window(text, lo, start + chunks[j][1])
                if match is not None:
                    break
            if match is None:
                i += 1
                continue
            yield match
            i = j + 1

    def _read_window(self, text: str, start: int, end: int) -> PhoneMatch | None:
        window = text[start:end]
        number = digits(window)
        if not PHONE_MIN_DIGITS <= len(number) <= _WINDOW_MAX_DIGITS:
            return None
        if text[start] == "(" and ")" not in window:
            start, window = start + 1, window[1:]
        ext = _EXTENSION.match(text, end)
        stop = ext.end() if ext else end
        if _glued(text, start, stop) or _quantity(text, start, stop):
            return None
        body = window.lstrip("(").lstrip()
        first = digits(_GROUP.search(window).group())  # an international prefix is a group of its own or leads one
        if body.startswith("+"):
            return self._international(window, start, stop)
        for prefix in ("00", "011"):
            if (
                first.startswith(prefix)
                and len(number) >= 9
                and (found := self._idd(number[len(prefix) :], start, stop))
            ):
                return found
        return self._national(text, window, number, start, stop)

    def _idd(self, rest: str, start: int, stop: int) -> PhoneMatch | None:
        """A number dialled with an international prefix (0049 …, 011 49 …): read as +49 …"""
        return self._international("+" + rest, start, stop)

    def _international(self, window: str, start: int, stop: int) -> PhoneMatch | None:
        if _dotted(window, international=True) is False:
            return None
        try:
            parsed = phonenumbers.parse(window, None)
        except phonenumbers.NumberParseException:
            return None
        national = len(str(parsed.national_number)) + (parsed.number_of_leading_zeros or 0)
        total = len(str(parsed.country_code)) + national
        if total > PHONE_MAX_DIGITS or national < 4:
            return None
        score = 0.7 if phonenumbers.is_possible_number(parsed) else 0.55
        return PhoneMatch(start, stop, score, "+")

    def _national(self, text: str, window: str, number: str, start: int, stop: int) -> PhoneMatch | None:
        if len(number) > PHONE_MAX_DIGITS:
            return None
        groups = [len(g) for g in _GROUP.findall(window)]
        labelled = _phone_word_before(text, start)
        if len(groups) == 1:
            return self._bare(number, start, stop, labelled)
        if groups == [3, 2, 4]:
            return None  # an SSN's shape (536-90-4399, 055 43 7933): the SSN recognizer reads those
        if _isbn(window, number):
            return None
        if not labelled and (_dotted(window) is False or _thousands(window, groups)):
            return None  # decimals, versions, IPs; amounts (a phone word before says otherwise: "Tel. 93.183492")
        region = self._possible(number)
        if region is None:
            return None
        return PhoneMatch(start, stop, 0.5, region)

    def _bare(self, number: str, start: int, stop: int, labelled: bool) -> PhoneMatch | None:
        """A run of digits and nothing else. After a phone word: any possible number. Else a valid number of a
        default region written as that region writes it: with its trunk prefix (0…, 8…, 1… in the NANP), or without
        one where that is its national form (`_untrunked`). Ids, counts and timestamps are bare digits far more
        often than phones are."""
        if _looks_like_a_date(number):
            return None
        if labelled:
            region = self._possible(number)
            return PhoneMatch(start, stop, 0.5, region) if region else None
        if len(number) < 8 or (len(number) == 10 and number[0] == "1"):
            return None  # (ten digits from 1: a Unix time in seconds, 2001-2033)
        for region in self.regions:
            national = _national_part(number, region)
            if national == number and len(number) < 10:
                continue
            if len(national) not in region.lengths or not region.pattern.fullmatch(national):
                continue
            try:
                parsed = phonenumbers.parse(number, region.code)
            except phonenumbers.NumberParseException:
                continue
            if not phonenumbers.is_valid_number_for_region(parsed, region.code):
                continue
            if national != number or self._untrunked(parsed, number, region.code):
                return PhoneMatch(start, stop, 0.5, region.code)
        return None

    @staticmethod
    def _untrunked(parsed: phonenumbers.PhoneNumber, number: str, region: str) -> bool:
        """A valid number written without a trunk prefix that its region writes that way too: ten NANP digits, or an
        eleven-digit-plus mobile number (Chinese, Brazilian). Shorter ones and other regions' ten digits are left
        out: random ten-digit ids are valid Mexican or Italian numbers one time in three."""
        if digits(phonenumbers.format_number(parsed, _NATIONAL)) != number:
            return False
        if region in _NANP:
            return len(number) == 10
        return len(number) >= 11 and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE

    def _possible(self, number: str) -> str | None:
        """The first default region for which `number` (written nationally) has a possible length."""
        for region in self.regions:
            if len(_national_part(number, region)) in region.lengths:
                return region.code
        return None


_NATIONAL = phonenumbers.PhoneNumberFormat.NATIONAL
_NANP = frozenset({"US", "CA"})


def _phone_word_before(text: str, start: int) -> bool:
    return PHONE_WORDS.search(text, max(0, start - 40), start) is not None


def _national_part(number: str, region: _Region) -> str:
    if region.trunk and number.startswith(region.trunk):
        return number[len(region.trunk) :]
    return number


def _pieces(run: re.Match[str], labelled: bool) -> list[tuple[int, int]]:
    """The run with dates, time and year ranges and lone decimals cut out: (start, end) of what is left."""
    text, offset = run.group(), run.start()
    out, at = [], 0
    cuts = list(_NOT_A_NUMBER.finditer(text))
    if not labelled:
        cuts = sorted(cuts + list(_DECIMAL.finditer(text)), key=lambda m: m.start())
    for m in cuts:
        if m.start() < at:
            continue
        if m.start() > at:
            out.append((offset + at, offset + m.start()))
        at = m.end()
    if at < len(text):
        out.append((offset + at, offset + len(text)))
    return [(a, b) for a, b in (_trim(run.string, a, b) for a, b in out) if b > a]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """A piece without separators at its ends (a leading "+" or "(" stays)."""
    while start < end and not (text[start].isdigit() or text[start] in "+("):
        start += 1
    while end > start and not text[end - 1].isdigit():
        end -= 1
    return start, end


def _chunks(piece: str) -> list[tuple[int, int]]:
    """(start, end) in `piece` of its chunks: groups joined without whitespace."""
    out: list[tuple[int, int]] = []
    at = 0
    for m in re.finditer(r"\s+", piece):
        if m.start() > at:
            out.append((at, m.start()))
        at = m.end()
    out.append((at, len(piece)))
    return [(a, b) for a, b in out if any(c.isdigit() for c in piece[a:b])]


def _glued(text: str, start: int, stop: int) -> bool:
    """Whether the span is part of a word or an id: a letter or digit touching it, or one behind a "-", "_", "/",
    "#", "." or "=" that touches it (ORD-12345678, Chrome/97.0.5113.229, No.12345678); "rv:" before it (a
    version in a user agent)."""
    before = text[start - 1] if start else ""
    after = text[stop] if stop < len(text) else ""
    if _latin_alnum(before) or _latin_alnum(after):
        return True
    if before and before in "-_/#.=" and start >= 2 and _latin_alnum(text[start - 2]):
        return True
    if text[max(0, start - 3) : start].lower() == "rv:":
        return True
    return bool(after and after in "-_/." and stop + 1 < len(text) and _latin_alnum(text[stop + 1]))


def _quantity(text: str, start: int, stop: int) -> bool:
    """A currency before the number or a unit after it: an amount or a measurement."""
    if _CURRENCY_BEFORE.search(text, max(0, start - 6), start):
        return True
    after = text[stop : stop + 16].lstrip().lower()
    word = re.match(r"[^\s,.;:!?()]+", after)
    return bool(word and (word.group() in _UNITS or word.group()[:1] in "%‰°"))


def _dotted(window: str, international: bool = False) -> bool | None:
    """None when the window has no dot; else whether its dots group it like a phone number (212.555.0147,
    06.12.34.56.78, +1.212.555.0147) rather than a decimal, a version, an IP address or an amount."""
    if "." not in window:
        return None
    groups = [len(g) for g in _GROUP.findall(window)]
    if window.count(".") == 1 and len(groups) == 2:
        return False  # one dot between two groups: a decimal
    if international:
        return True  # +61.7.3497.8128: the country code says what it is
    if re.match(r"\(?1[ \-]", window):
        groups = groups[1:]  # 1-212.555.0147: the NANP trunk prefix before the dotted number
    if min(groups) < 2:
        return False  # 10.0.19041.1234, 1.9.7.20: versions and addresses
    if sum(groups) < 9 and groups[-1] < 4:
        return False  # 17.11.235: too short for a phone in dots
    return not (len(groups) == 4 and max(groups) <= 3 and "-" not in window and " " not in window)


def _thousands(window: str, groups: list[int]) -> bool:
    """1 234 567, 12 345 678, 1.234.567, 120 000 000: an amount written in groups of three."""
    rest = groups[1:]
    if len(rest) < 2 or any(g != 3 for g in rest) or "-" in window or "(" in window:
        return False
    if groups[0] <= 2 and not window.startswith("0"):
        return True
    numbers = _GROUP.findall(window)
    return groups[0] <= 3 and any(n == "000" for n in numbers[1:])


def _card_shaped(piece: str) -> bool:
    """4929 5134 6771 3004: thirteen digits or more in fours, a card's print (valid or not: cards.py decides)."""
    sizes = [len(g) for g in _GROUP.findall(piece)]
    return sum(sizes) >= 13 and len(sizes) >= 3 and all(s == 4 for s in sizes[:-1]) and sizes[-1] <= 4


def _isbn(window: str, number: str) -> bool:
    """978-1-380-58192-1, 0-01-439084-1: an ISBN in its hyphenated form (a one-digit group, its check digit)."""
    groups = window.split("-")
    if not set(window) <= set("0123456789-") or (len(number), len(groups)) not in ((10, 4), (13, 5)):
        return False
    if len(groups[-1]) != 1:
        return False  # the check digit stands alone
    if len(number) == 13:
        return (
            number[:3] in ("978", "979") and sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(number)) % 10 == 0
        )
    return sum(int(d) * (10 - i) for i, d in enumerate(number)) % 11 == 0


def _looks_like_a_date(number: str) -> bool:
    """YYYYMMDD, YYYYMMDDhhmm(ss): a date or timestamp written without separators."""
    if len(number) not in (8, 12, 14) or number[:2] not in ("19", "20"):
        return False
    month, day = int(number[4:6]), int(number[6:8])
    return 1 <= month <= 12 and 1 <= day <= 31
