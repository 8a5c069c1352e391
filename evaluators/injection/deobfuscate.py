"""De-obfuscated views of a text: what an attacker hid with NFKC tricks, zero-width or tag characters, leetspeak,
spaced letters, reversal, rot13 or base64, so the rules can read it."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata

_LEET = str.maketrans("013457@$!|", "oieastasil")
_LEET_WORD = re.compile(r"\b(?=\w*[a-z])(?=\w*[0-9@$|])[\w@$|!]{3,}\b", re.IGNORECASE)
_SPACED = re.compile(r"\b(?:[A-Za-z][ .\-_*]){2,}[A-Za-z]\b")
_SPACES = re.compile(r"\s{2,}")
_REVERSED = re.compile(r"revers|backwards", re.IGNORECASE)
_ROT13 = re.compile(r"\brot[\s-]?13\b|\bcaesar\b", re.IGNORECASE)
_ZERO_WIDTH = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_TAGS = re.compile(r"[\U000E0000-\U000E007F]+")
_B64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{20,}={0,2}(?![A-Za-z0-9+/=])")


def _printable_ratio(s: str) -> float:
    return sum(c.isprintable() or c in "\n\t" for c in s) / max(len(s), 1)


def decode_base64_blobs(text: str) -> list[str]:
    """Texts hidden in base64 blobs (only those that decode to mostly printable UTF-8 with letters)."""
    out: list[str] = []
    for m in _B64.finditer(text):
        blob = m.group(0)
        if blob.isalpha() and (blob.islower() or blob.isupper()):
            continue  # a long plain word or identifier, not base64
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        letters = sum(c.isalpha() for c in decoded)
        if _printable_ratio(decoded) > 0.95 and letters >= 0.5 * len(decoded) and " " in decoded.strip():
            out.append(decoded)
    return out


def _join_spaced(m: re.Match[str]) -> str:
    """'i-g-n-o-r-e a-l-l' → 'ignore all'; 'r e v e a l' → 'reveal' (a space separates words only when letters
    are joined by something else)."""
    s = m.group(0)
    if re.search(r"[.\-_*]", s):
        return " ".join(re.sub(r"[.\-_*]", "", w) for w in s.split())
    return s.replace(" ", "")


def deobfuscated_views(text: str) -> list[str]:
    """Alternative readings of `text` that undo common obfuscations (empty when there is nothing to undo)."""
    views: list[str] = []
    norm = unicodedata.normalize("NFKC", _ZERO_WIDTH.sub("", text))
    tags = _TAGS.findall(norm)
    if tags:
        views.append("".join(chr(ord(c) - 0xE0000) for c in "".join(tags)))
        norm = _TAGS.sub("", norm)
    if norm != text:
        views.append(norm)
    if _LEET_WORD.search(norm):
        leet = _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), norm)
        if leet != norm:
            views.append(leet)
    if _SPACED.search(norm):
        views.append(_SPACES.sub(" ", _SPACED.sub(_join_spaced, norm)))
    if _REVERSED.search(norm):
        views.append(norm[::-1])
    if _ROT13.search(norm):
        views.append(codecs.encode(norm, "rot_13"))
    return views
