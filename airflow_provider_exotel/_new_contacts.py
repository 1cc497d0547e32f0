"""Input checks for contacts to create or sync: phone numbers, fields, JSON values (private).

Light like ``_validation``: imported by the operators at DAG parse time. The normalised number
(spaces, dashes, dots and parentheses removed) is what ``create_contacts`` sends and what the sync
operator matches Exotel's contacts by.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_provider_exotel._validation import check_fields
from airflow_provider_exotel.exceptions import ExotelValidationError

#: Exotel creates at most this many contacts per ``POST contacts``.
MAX_BULK_CREATE = 5000
#: Exotel adds at most this many contacts to a list per ``POST lists/<sid>/contacts``.
MAX_LIST_ADD = 5000
#: Fields a contact may carry besides ``number`` (when created or synced).
CONTACT_FIELDS = ("first_name", "last_name", "company_name", "email", "tag", "custom_field")
CREATE_FIELDS = frozenset({"number", *CONTACT_FIELDS})

_FORMATTING = re.compile(r"[\s\-.()]")
_VALID_NUMBER = re.compile(r"\+?[0-9]{6,15}")


def normalize_number(value: Any) -> str:
    """``value`` without spaces, dashes, dots and parentheses (no validation; ``""`` for non-strings)."""
    if not isinstance(value, str):
        return ""
    return _FORMATTING.sub("", value)


def check_phone_number(value: Any, where: str) -> str:
    """The normalised number, or :class:`ExotelValidationError` naming ``where``."""
    normalised = normalize_number(value)
    if not isinstance(value, str) or not _VALID_NUMBER.fullmatch(normalised):
        raise ExotelValidationError(
            f"{where} needs a 'number': a string of 6-15 digits with an optional leading '+' "
            f"(spaces, dashes, dots and parentheses are removed), got {value!r}"
        )
    return normalised


def validate_new_contact(contact: Any, where: str) -> dict[str, Any]:
    """Check one contact to create or sync; return a copy whose ``number`` is normalised."""
    if not isinstance(contact, Mapping):
        raise ExotelValidationError(
            f"{where} must be a mapping with a 'number' and contact fields, got {type(contact).__name__}"
        )
    if "number" not in contact:
        raise ExotelValidationError(f"{where} has no 'number' (it is required)")
    number = check_phone_number(contact["number"], where)
    check_fields(contact, f"{where} (number {contact['number']!r})", "number", CREATE_FIELDS, "allowed")
    out = dict(contact)
    out["number"] = number
    return out


def number_key(number: str) -> bytes:
    """An 8-byte digest of a normalised number: sets of millions of them stay small."""
    return hashlib.blake2b(number.encode("utf-8", "surrogatepass"), digest_size=8).digest()


class DuplicateNumbers:
    """Refuses a normalised number seen before.

    Keeps an 8-byte digest and the row's ordinal per number (about 100 bytes a row, whatever the
    rows hold); ``describe(ordinal)`` names a row in the error, e.g. ``contacts[3]`` or ``line 4``.
    """

    def __init__(self, describe: Callable[[int], str]) -> None:
        self.describe = describe
        self.keys: dict[bytes, int] = {}

    def add(self, number: str, ordinal: int) -> bytes:
        key = number_key(number)
        first = self.keys.get(key)
        if first is not None:
            raise ExotelValidationError(
                f"{self.describe(ordinal)} repeats number {number!r} (first in {self.describe(first)}); "
                "each number may appear once"
            )
        self.keys[key] = ordinal
        return key


def validate_new_contacts(contacts: Iterable[Any], argument: str = "contacts") -> list[dict[str, Any]]:
    """Validate a whole input of contacts to create (no number twice); return normalised copies."""
    if isinstance(contacts, str | bytes | Mapping) or not isinstance(contacts, Iterable):
        raise ExotelValidationError(
            f"{argument} must be a list of contact dicts, got {type(contacts).__name__}"
        )
    seen = DuplicateNumbers(lambda i: f"{argument}[{i}]")
    out = []
    for i, contact in enumerate(contacts):
        item = validate_new_contact(contact, f"{argument}[{i}]")
        seen.add(item["number"], i)
        out.append(item)
    return out


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode(
        "utf-8", "surrogatepass"
    )


def field_digests(contact: Mapping[str, Any]) -> bytes:
    """8 bytes per field of :data:`CONTACT_FIELDS` (``None`` when absent): what a sync compares."""
    return b"".join(
        hashlib.blake2b(_canonical(contact.get(f)), digest_size=8).digest() for f in CONTACT_FIELDS
    )


def changed_fields(row: Mapping[str, Any], digests: bytes) -> list[str]:
    """The fields given in ``row`` whose value differs from the contact summarised by ``digests``."""
    changed = []
    for i, f in enumerate(CONTACT_FIELDS):
        if f in row:
            mine = hashlib.blake2b(_canonical(row[f]), digest_size=8).digest()
            if mine != digests[8 * i : 8 * i + 8]:
                changed.append(f)
    return changed
