"""Every regex of a ruleset in one pass over the text, with Hyperscan as a prefilter in front of `re`.

Python's `re` tries patterns one after another: the injection rules are 131 patterns, and trying each on
every text was most of the light path's CPU (`llmwatch bench pipeline`). Hyperscan (Intel's multi-pattern
engine, the one Suricata uses) compiles them into one automaton and reports in a single pass which
patterns *may* match: in prefilter mode it never misses a match of the pattern it compiled, and sometimes
reports one that is not there. Only those candidates then run in `re`, which stays the judge, so results
equal running every pattern (`tests/unit/evaluators/test_multiscan.py` checks that over the corpora).

Hyperscan compiles in byte mode (2 s for the rules; its Unicode mode took minutes), so it scans an ASCII
*shadow* of the text, one character for one, built so that whatever `re` matches in the text the pattern
(rewritten the same way) matches in the shadow:
- ASCII stays, except controls that Python counts as whitespace (→ space) or that serve as codes below;
- a non-ASCII character that `re.IGNORECASE` folds onto an ASCII letter (ſ, K) becomes that letter;
- other Unicode digits → `0`, letters → `_`, spaces → space (same classes: `\\w`, `\\d`, `\\s`, `\\b`);
- a non-ASCII symbol that some pattern names (’, “, —) gets its own control code, any other one a shared
  code that no pattern names (so negated classes such as `[^’]` still behave).
Patterns Hyperscan cannot take (none of the rules today but the two that name code points by escape) run on
every text. Without the `hyperscan` package every pattern runs on every text: slower, never different.
"""

from __future__ import annotations

import logging
import re
import string
import threading
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

try:  # optional at import time so that a platform without wheels still scores (slower)
    import hyperscan as _hs
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    _hs = None

#: codes for pattern symbols (control characters no pattern uses and Hyperscan's \s does not include)
_SYMBOL_CODES = [chr(c) for c in (*range(0x01, 0x09), *range(0x0F, 0x1C))]
#: every other non-ASCII symbol, and ASCII controls that would collide with the codes
_OTHER = "\x0e"
#: ASCII controls that Python's \s matches and Hyperscan's may not
_PY_SPACES = "\x0b\x0c\x1c\x1d\x1e\x1f"
_CODE_POINT_ESCAPE = re.compile(r"\\[uUN]")
#: ASCII characters a text may hold that must not read as a pattern symbol's code: they become _OTHER
_RESERVED = frozenset([*_SYMBOL_CODES, _OTHER, "\x00", "\x7f"])


def _is(cls: str, c: str) -> bool:
    return re.fullmatch(cls, c) is not None


class _Shadow(dict[int, str]):
    """Code point → its shadow character (a `str.translate` table that fills itself on first sight)."""

    def __init__(self, symbols: dict[str, str]) -> None:
        super().__init__()
        self.symbols = symbols

    def __missing__(self, code: int) -> str:
        self[code] = out = self.shadow(chr(code))
        return out

    def shadow(self, c: str) -> str:
        if c in self.symbols:
            return self.symbols[c]
        if c.isascii():
            if c in _PY_SPACES:
                return " "
            return _OTHER if c in _RESERVED else c
        folded = next((x for x in string.ascii_lowercase if re.fullmatch(x, c, re.IGNORECASE)), None)
        if folded is not None:
            return folded
        if _is(r"\d", c):
            return "0"
        if _is(r"\w", c):
            return "_"
        if _is(r"\s", c):
            return " "
        return _OTHER


def _pattern_symbols(patterns: Sequence[re.Pattern[str]]) -> dict[str, str]:
    """A code for each non-ASCII, non-word, non-space character written literally in a pattern."""
    found = sorted({c for p in patterns for c in p.pattern if not c.isascii() and not _is(r"[\w\s]", c)})
    if len(found) > len(_SYMBOL_CODES):
        raise ValueError(f"{len(found)} distinct non-ASCII symbols in the patterns; {len(_SYMBOL_CODES)} codes")
    return dict(zip(found, _SYMBOL_CODES, strict=False))


def _rewrite(pattern: str, shadow: _Shadow) -> str:
    r"""The pattern over shadows: each literal non-ASCII character (escaped or not) as its shadow."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(_literal(shadow.shadow(nxt)) if not nxt.isascii() else c + nxt)
            i += 2
            continue
        out.append(_literal(shadow.shadow(c)) if not c.isascii() else c)
        i += 1
    return "".join(out)


def _literal(c: str) -> str:
    return c if c.isalnum() or c == "_" else f"\\x{ord(c):02x}"


def _hs_flags(flags: int) -> int:
    assert _hs is not None
    out = _hs.HS_FLAG_SINGLEMATCH | _hs.HS_FLAG_PREFILTER | _hs.HS_FLAG_ALLOWEMPTY
    if flags & re.IGNORECASE:
        out |= _hs.HS_FLAG_CASELESS
    if flags & re.MULTILINE:
        out |= _hs.HS_FLAG_MULTILINE
    if flags & re.DOTALL:
        out |= _hs.HS_FLAG_DOTALL
    return out


class PatternSet:
    """A fixed list of compiled patterns; `matching(text)` = indices of those that match, in list order.

    The Hyperscan database is compiled on first use (about 2 s for the injection rules), not at import."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        self.patterns = tuple(patterns)
        self._shadow = _Shadow(_pattern_symbols(self.patterns))
        self._db: Any = None
        self._compiled = False
        self._lock = threading.Lock()
        self._scratch = threading.local()  # Hyperscan scratch space is per scanning thread
        #: patterns Hyperscan could not take: always tried with `re`
        self._always: tuple[int, ...] = tuple(range(len(self.patterns)))

    @property
    def accelerated(self) -> int:
        """How many patterns the one-pass prefilter covers (the rest run on every text)."""
        self._ensure_compiled()
        return len(self.patterns) - len(self._always)

    def _ensure_compiled(self) -> None:
        if self._compiled:
            return
        with self._lock:
            if not self._compiled and _hs is not None and self.patterns:
                self._compile()
            self._compiled = True

    def _compile(self) -> None:
        rewritten = {i: _rewrite(p.pattern, self._shadow).encode("ascii") for i, p in enumerate(self.patterns)}
        # code points named by escape (\uXXXX) have no byte-mode form: those patterns stay on re
        ok = [i for i, p in enumerate(self.patterns) if not _CODE_POINT_ESCAPE.search(p.pattern)]
        try:
            db = self._build(rewritten, ok)
        except Exception as e:  # hyperscan.error: find the patterns it cannot take, one by one
            log.debug("one Hyperscan database for %d patterns failed (%s); trying each", len(ok), e)
            ok = [i for i in ok if self._compiles(rewritten[i], i)]
            db = self._build(rewritten, ok) if ok else None
        if db is None:
            return
        self._db = db
        self._always = tuple(sorted(set(range(len(self.patterns))) - set(ok)))

    def _build(self, rewritten: dict[int, bytes], ids: list[int]) -> Any:
        assert _hs is not None
        db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        flags = [_hs_flags(self.patterns[i].flags) for i in ids]
        db.compile(expressions=[rewritten[i] for i in ids], ids=ids, elements=len(ids), flags=flags)
        return db

    def _compiles(self, expression: bytes, i: int) -> bool:
        try:
            self._build({i: expression}, [i])
            return True
        except Exception as e:
            log.debug("pattern %d stays on re only: %s", i, e)
            return False

    def candidates(self, text: str) -> list[int]:
        """Indices of patterns that may match `text` (a superset of those that do), in list order."""
        self._ensure_compiled()
        if self._db is None:
            return list(range(len(self.patterns)))
        found: set[int] = set(self._always)

        def on_match(pattern_id: int, start: int, end: int, flags: int, context: Any) -> None:
            found.add(pattern_id)

        scratch = getattr(self._scratch, "value", None)
        if scratch is None:
            scratch = self._scratch.value = _hs.Scratch(self._db)  # type: ignore[union-attr]
        self._db.scan(text.translate(self._shadow).encode("ascii"), match_event_handler=on_match, scratch=scratch)
        return sorted(found)

    def matching(self, text: str) -> list[int]:
        """Indices of the patterns that match `text` (`re` decides), in list order."""
        return [i for i in self.candidates(text) if self.patterns[i].search(text)]
