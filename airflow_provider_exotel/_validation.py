"""Input checks shared by the hook, operators and sensor.

Kept free of heavy imports (no requests, tenacity or HTTP provider) so operators can check their
arguments in ``__init__`` — at DAG parse time — without slowing the parse down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_exotel.exceptions import ExotelValidationError

#: Exotel answers at most this many contacts per page.
MAX_PAGE_SIZE = 20
#: Exotel accepts at most this many contacts in one bulk update.
MAX_BULK_UPDATE = 5000
#: Fields a bulk update may set (besides ``sid``).
UPDATABLE_FIELDS = frozenset(
    {"first_name", "last_name", "company_name", "email", "tag", "custom_field", "number"}
)


def validate_contact(contact: Any, index: int, argument: str = "contacts") -> str:
    """Check one bulk-update contact; return its sid. Raises :class:`ExotelValidationError`."""
    where = f"{argument}[{index}]"
    if not isinstance(contact, Mapping):
        raise ExotelValidationError(
            f"{where} must be a mapping with a 'sid' and fields to update, got {type(contact).__name__}"
        )
    sid = contact.get("sid")
    if not isinstance(sid, str) or not sid.strip():
        raise ExotelValidationError(f"{where} needs a non-empty string 'sid', got {sid!r}")
    unknown = sorted(str(k) for k in contact if k != "sid" and k not in UPDATABLE_FIELDS)
    if unknown:
        raise ExotelValidationError(
            f"{where} (sid {sid!r}) has unknown field(s) {unknown}; "
            f"updatable fields are {sorted(UPDATABLE_FIELDS)}"
        )
    return sid


def validate_contacts(contacts: Iterable[Any], argument: str = "contacts") -> list[dict[str, Any]]:
    """Validate a whole bulk-update input (mappings, sids, fields, no duplicate sid) and copy it."""
    if isinstance(contacts, (str, bytes, Mapping)) or not isinstance(contacts, Iterable):
        raise ExotelValidationError(
            f"{argument} must be a list of contact dicts, got {type(contacts).__name__}"
        )
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, contact in enumerate(contacts):
        sid = validate_contact(contact, i, argument)
        if sid in seen:
            raise ExotelValidationError(
                f"{argument}[{i}] repeats sid {sid!r} (first at {argument}[{seen[sid]}]); "
                "each contact may appear once per bulk update"
            )
        seen[sid] = i
        out.append(dict(contact))
    return out


def check_max_records(max_records: Any) -> int | None:
    if max_records is None:
        return None
    if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 0:
        raise ExotelValidationError(f"max_records must be None or an integer >= 0, got {max_records!r}")
    return max_records


def check_list_sid(list_sid: Any, argument: str = "list_sid") -> str:
    if not isinstance(list_sid, str) or not list_sid.strip():
        raise ExotelValidationError(f"{argument} must be a non-empty string, got {list_sid!r}")
    return list_sid.strip()


def join_list_sids(list_sids: Any) -> str | None:
    if list_sids is None:
        return None
    items = list_sids.split(",") if isinstance(list_sids, str) else list_sids
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ExotelValidationError(f"list_sids must be a list of list sids, got {type(list_sids).__name__}")
    sids = [check_list_sid(s, "list_sids item") for s in items]
    if not sids:
        raise ExotelValidationError("list_sids must not be empty (use None for all contacts)")
    return ",".join(sids)


def check_number(name: str, value: Any, minimum: float, exclusive: bool = False) -> float:
    try:
        number = float(value)
        if isinstance(value, bool):
            raise TypeError
    except (TypeError, ValueError):
        raise ExotelValidationError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(number) or number < minimum or (exclusive and number == minimum):
        op = ">" if exclusive else ">="
        raise ExotelValidationError(f"{name} must be {op} {minimum:g}, got {value!r}")
    return number


def check_int(
    name: str, value: Any, minimum: int, maximum: int | None = None, *, optional: bool = False
) -> int | None:
    """``value`` as an int within bounds (``None`` allowed when ``optional``); else a named error."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExotelValidationError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ExotelValidationError(f"{name} must be {bound}, got {value!r}")
    return value
