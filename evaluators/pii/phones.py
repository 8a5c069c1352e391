"""Where a phone number can be in a text: the digit runs long enough to be one, and the windows around them that
libphonenumber parses within a per-text budget (its parser is the slow part of PII detection)."""

from __future__ import annotations

import re

from phonenumbers.phonenumberutil import _VALID_PUNCTUATION

#: Phone numbers are reported from seven digits as written (shorter national numbers exist but are rare).
PHONE_MIN_DIGITS = 7
#: Characters libphonenumber may parse per text, over the windows around digit runs (see the package docstring).
PHONE_SCAN_CHARS = 32 * 1024

# libphonenumber's own separators (a character-class body; it holds ranges and escapes).
_PHONE_PUNCT = f"[{_VALID_PUNCTUATION}]"
#: A maximal digit run the phone matcher could read as one number: digits joined by up to 4 separators.
PHONE_RUN = re.compile(rf"\d(?:{_PHONE_PUNCT}{{0,4}}\d)*", re.IGNORECASE)
#: The same runs when they hold PHONE_MIN_DIGITS digits or more: the regex skips the short ones itself, which
#: took phone_runs from 7.3 to 4.1 µs per text against counting each run's digits (same spans, tests check it).
LONG_PHONE_RUN = re.compile(rf"\d(?:{_PHONE_PUNCT}{{0,4}}\d){{{PHONE_MIN_DIGITS - 1},}}", re.IGNORECASE)
_PHONE_MARGIN = 24  # room around a run for "+", "(" and an extension ("ext. 1234")

_DAY, _MONTH = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])"
#: Runs that are a date (2024-05-22, 22/05/2024, 05.22.24): libphonenumber rejects most of them, slowly.
_DATE_RUN = re.compile(rf"(?:19|20)\d\d([-/.]){_MONTH}\1{_DAY}|{_DAY}([-/.]){_DAY}\2(?:(?:19|20)\d\d|\d\d)")


def digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def phone_runs(text: str) -> list[re.Match[str]]:
    """Digit runs that may hold a phone number: seven digits or more, not a date."""
    return [m for m in LONG_PHONE_RUN.finditer(text) if not _DATE_RUN.fullmatch(m.group())]


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
