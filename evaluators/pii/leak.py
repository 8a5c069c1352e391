"""Leak detection: a PII value in the response that the prompt did not hold, compared by a normalised form so
that two writings of one value (`+1 (212) 555-0147`, `212.555.0147`) count as the same."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

import phonenumbers

from .detector import Entity
from .phones import PHONE_RUN, digits
from .recognizers import DIGIT_TYPES


def normalise(entity_type: str, value: str) -> str:
    """The form in which two writings of one value compare equal (`+1 (212) 555-0147` ~ `212.555.0147`)."""
    if entity_type == "PHONE_NUMBER":
        written = value.strip().lstrip("(")
        number = digits(written)
        for idd in ("00", "011"):  # dialled with an international prefix: the same number as with "+"
            if not written.startswith("+") and number.startswith(idd) and len(number) > 8:
                written = "+" + number[len(idd) :]
        try:
            region = None if written.startswith("+") else "US"
            return str(phonenumbers.parse(written, region).national_number)
        except phonenumbers.NumberParseException:
            return digits(value).lstrip("0")
    if entity_type in DIGIT_TYPES:
        return digits(value)
    if entity_type in {"IBAN_CODE", "UK_NINO", "MAC_ADDRESS"}:
        return re.sub(r"[\W_]", "", value).upper()
    if entity_type == "IP_ADDRESS":
        try:
            return str(ipaddress.ip_interface(value).ip)
        except ValueError:
            return value.lower()
    if entity_type == "CRYPTO" and not value.lower().startswith("bc1"):
        return value  # base58 is case-sensitive
    return " ".join(value.casefold().split())


def _prompt_holds(prompt: str, entity: Entity, key: str) -> bool:
    """Whether the prompt's text holds the value although detection there missed it (e.g. negative context)."""
    if entity.type in DIGIT_TYPES:
        return any(digits(m.group()).endswith(key) for m in PHONE_RUN.finditer(prompt))
    folded = prompt.casefold()
    return entity.text.casefold() in folded or key.casefold() in folded


def leaks(prompt: str, prompt_entities: Sequence[Entity], response_entities: Sequence[Entity]) -> bool:
    """True when the response holds an entity value (normalised) that the prompt did not contain."""
    known = {normalise(e.type, e.text) for e in prompt_entities}
    for entity in response_entities:
        key = normalise(entity.type, entity.text)
        if key not in known and not _prompt_holds(prompt, entity, key):
            return True
    return False


def entity_types(entities: Sequence[Entity]) -> list[str]:
    return sorted({e.type for e in entities})
