"""The condition shared by :class:`ExotelContactsSensor` and :class:`ExotelContactsTrigger`.

One place decides "are the contacts there yet?", so poke, reschedule and deferrable modes can never
disagree. Also holds the argument checks both classes apply. Cheap to import: no HTTP, no hook.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel.exceptions import (
    ExotelAuthError,
    ExotelError,
    ExotelRequestError,
    ExotelValidationError,
)

if TYPE_CHECKING:
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

#: HTTP statuses of a failed request that may succeed later (besides 5xx). 404 is here because a
#: list that does not exist yet may be created while the sensor waits.
_RETRYABLE_4XX = frozenset({404, 408, 425, 429})


@dataclass(frozen=True)
class ContactsCheck:
    """Outcome of one :func:`check_contacts`: ``done`` and the contact ``count`` seen."""

    done: bool
    count: int


def check_contacts(
    hook: ExotelContactsHook,
    *,
    list_sid: str | None,
    min_count: int,
    created_after: dt.datetime | None,
) -> ContactsCheck:
    """Check once whether the contacts are there: one request, two with ``created_after``.

    Done when the contacts (of ``list_sid``, or all) number at least ``min_count`` and, with
    ``created_after``, the newest of them was created strictly after it.
    """
    count = hook.count_contacts(list_sid=list_sid)
    if count < min_count:
        return ContactsCheck(False, count)
    if created_after is None:
        return ContactsCheck(True, count)
    newest = hook.newest_contact(list_sid=list_sid)
    if newest is None:
        return ContactsCheck(False, count)
    raw = newest.get("date_created")
    try:
        created = parse_created_after(raw, "date_created")
    except ExotelValidationError:
        raise ExotelRequestError(
            f"Exotel returned contact {newest.get('sid')!r} with an unreadable date_created {raw!r}"
        ) from None
    return ContactsCheck(created > created_after, count)


def describe_check(
    check: ContactsCheck, *, list_sid: str | None, min_count: int, created_after: dt.datetime | None
) -> str:
    """One log line for a check, e.g. ``Exotel contacts of list L1: 3 (need 5) — waiting``."""
    scope = f" of list {list_sid}" if list_sid else ""
    newer = f", one created after {created_after.isoformat()}" if created_after else ""
    state = "done" if check.done else "waiting"
    return f"Exotel contacts{scope}: {check.count} (need {min_count}{newer}) — {state}"


def is_permanent(exc: ExotelError) -> bool:
    """True for errors that waiting will not fix: auth, bad input or configuration, most 4xx."""
    if isinstance(exc, (ExotelAuthError, ExotelValidationError)):
        return True
    status = exc.status
    return status is not None and 400 <= status < 500 and status not in _RETRYABLE_4XX


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------
def is_template(value: Any) -> bool:
    """True for a string Airflow has not rendered yet (it still holds Jinja markup)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def check_min_count(value: Any, *, rendered: bool) -> int:
    """``min_count`` as an int >= 0. After rendering, a string of digits (Jinja's output) is accepted."""
    if rendered and isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ExotelValidationError(f"min_count must be an integer >= 0, got {value!r}")
    return value


def check_list_sid(value: Any) -> str | None:
    """``list_sid`` as None (all contacts) or checked by the one list-sid rule
    (:func:`airflow_provider_exotel._validation.check_list_sid`)."""
    if value is None:
        return None
    from airflow_provider_exotel._validation import check_list_sid as check_required

    return check_required(value)


def parse_created_after(value: Any, argument: str = "created_after") -> dt.datetime:
    """A datetime or ISO 8601 string as an aware datetime; naive values are taken as UTC."""
    import pendulum

    parsed: Any = None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        try:
            # exact: "10:00" stays a time (rejected) instead of becoming today 10:00
            parsed = pendulum.parse(value.strip(), exact=True)
        except (ValueError, TypeError, OverflowError):  # pendulum's ParserError is a ValueError
            parsed = None
        if isinstance(parsed, dt.date) and not isinstance(parsed, dt.datetime):
            parsed = dt.datetime(parsed.year, parsed.month, parsed.day)  # a date: its midnight
    if not isinstance(parsed, dt.datetime):  # also a bare time or a duration: not a moment
        raise ExotelValidationError(
            f"{argument} must be a datetime or an ISO 8601 timestamp such as "
            f"'2024-05-01T10:00:00Z', got {value!r}"
        )
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    from airflow_provider_exotel._validation import to_utc

    to_utc(parsed, argument)  # one UTC cannot hold is an error naming the argument
    return parsed


def check_created_after(value: Any) -> dt.datetime | None:
    """``created_after`` as None or an aware datetime."""
    return None if value is None else parse_created_after(value)
