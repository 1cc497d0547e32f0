"""Checks of a campaign to create, shared by the campaigns hook and operators (private, light).

Standard library and the provider's own light modules only: the operators import this at DAG parse
time. :func:`campaign_item` turns ``create_campaign``'s arguments into the one ``{"campaigns":
[item]}`` item Exotel expects, refusing bad input (an :class:`ExotelValidationError` naming the
argument) before any request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow_provider_exotel._campaign_check import normalize_status
from airflow_provider_exotel._new_contacts import check_phone_number
from airflow_provider_exotel._validation import (
    check_json_value,
    check_path_segment,
    parse_rendered_list,
    parse_timestamp,
)
from airflow_provider_exotel.exceptions import ExotelValidationError

#: Most lists of a static campaign; a dynamic campaign has exactly one.
MAX_CAMPAIGN_LISTS = 5
#: Most numbers of a campaign given as ``numbers`` (Exotel's ``from``).
MAX_CAMPAIGN_NUMBERS = 5000
CAMPAIGN_TYPES = ("static", "dynamic")
#: Every campaign status, in the hook's (lower-case, hyphenated) spelling.
STATUSES = ("created", "in-progress", "paused", "completed", "failed", "canceled", "deleted", "archived")
#: What each action needs the campaign's status to be, and the status it leads to.
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "pause": (("created", "in-progress"), "paused"),
    "resume": (("paused",), "in-progress"),
    "complete": (("paused",), "completed"),
    "archive": (("completed",), "archived"),
}
RETRY_KEYS = ("number_of_retries", "interval_mins", "mechanism", "on_status")
RETRY_MECHANISMS = ("Linear", "Exponential")
RETRY_ON_STATUS = ("busy", "no-answer", "failed")
CALLBACKS = ("call_status_callback", "call_schedule_callback", "status_callback")
#: ``extra`` may not set what a named argument sets (argument names and the fields they become).
RESERVED = frozenset(
    {
        "name",
        "caller_id",
        "list_sids",
        "lists",
        "numbers",
        "from",
        "flow_url",
        "url",
        "read_via_text",
        "flow_type",
        "campaign_type",
        "send_at",
        "end_at",
        "schedule",
        "retries",
        "custom_field",
        *CALLBACKS,
    }
)


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------
def check_text(name: str, value: Any) -> str:
    """A non-empty string that can be sent as JSON."""
    if not isinstance(value, str) or not value.strip():
        raise ExotelValidationError(f"{name} must be a non-empty string, got {value!r}")
    check_json_value(name, value)
    return value


def check_url(name: str, value: Any) -> str:
    """An ``http(s)://`` URL."""
    text = check_text(name, value).strip()
    if not re.match(r"https?://[^\s/]+", text, re.IGNORECASE) or any(c.isspace() for c in text):
        raise ExotelValidationError(f"{name} must be an http:// or https:// URL, got {value!r}")
    return text


def check_campaign_id(value: Any) -> str:
    """A campaign id, safe as one URL path segment."""
    return check_path_segment("campaign_id", value)


def check_action(value: Any) -> str:
    if not isinstance(value, str) or value.strip().lower() not in ACTIONS:
        raise ExotelValidationError(f"action must be one of {sorted(ACTIONS)}, got {value!r}")
    return value.strip().lower()


def check_status(value: Any, name: str = "status") -> str:
    """A campaign status in any spelling, returned in the hook's spelling."""
    status = normalize_status(value)
    if status not in STATUSES:
        raise ExotelValidationError(f"{name} must be one of {list(STATUSES)}, got {value!r}")
    return str(status)


def check_audience(list_sids: Any, numbers: Any, campaign_type: Any) -> dict[str, Any]:
    if campaign_type not in CAMPAIGN_TYPES:
        raise ExotelValidationError(
            f"campaign_type must be one of {list(CAMPAIGN_TYPES)}, got {campaign_type!r}"
        )
    if (list_sids is None) == (numbers is None):
        raise ExotelValidationError(
            "give exactly one of list_sids (lists to call) or numbers (numbers to call), "
            f"got {'both' if list_sids is not None else 'neither'}"
        )
    if list_sids is not None:
        sids = _sequence("list_sids", list_sids)
        checked = [check_path_segment(f"list_sids[{i}]", s) for i, s in enumerate(sids)]
        if len(set(checked)) != len(checked):
            raise ExotelValidationError(f"list_sids repeats a list sid: {checked}")
        if campaign_type == "dynamic" and len(checked) != 1:
            raise ExotelValidationError(
                f"a dynamic campaign takes exactly 1 list in list_sids, got {len(checked)}"
            )
        if not 1 <= len(checked) <= MAX_CAMPAIGN_LISTS:
            raise ExotelValidationError(
                f"list_sids must hold 1 to {MAX_CAMPAIGN_LISTS} list sids, got {len(checked)}"
            )
        return {"lists": checked}
    if campaign_type == "dynamic":
        raise ExotelValidationError("a dynamic campaign calls one list: give list_sids, not numbers")
    values = _sequence("numbers", numbers)
    if not 1 <= len(values) <= MAX_CAMPAIGN_NUMBERS:
        raise ExotelValidationError(
            f"numbers must hold 1 to {MAX_CAMPAIGN_NUMBERS} numbers, got {len(values)}"
        )
    checked = []
    for i, number in enumerate(values):
        try:
            checked.append(check_phone_number(number, f"numbers[{i}]"))
        except ExotelValidationError:
            raise ExotelValidationError(
                f"numbers[{i}] must be a phone number: 6-15 digits with an optional leading '+' "
                f"(spaces, dashes, dots and parentheses are removed), got {number!r}"
            ) from None
    return {"from": checked}


def _sequence(name: str, value: Any) -> list[Any]:
    if isinstance(value, str):  # "a,b" or a rendered list literal "['a', 'b']"
        value = [v for v in parse_rendered_list(name, value) if not isinstance(v, str) or v.strip()]
    if isinstance(value, (bytes, Mapping)) or not isinstance(value, Iterable):
        raise ExotelValidationError(f"{name} must be a list, got {type(value).__name__}")
    return list(value)


def check_flow(flow_url: Any, read_via_text: Any) -> dict[str, Any]:
    if (flow_url is None) == (read_via_text is None):
        raise ExotelValidationError(
            "give exactly one of flow_url (the call flow's URL) or read_via_text (a greeting to "
            f"read out), got {'both' if flow_url is not None else 'neither'}"
        )
    if flow_url is not None:
        return {"url": check_url("flow_url", flow_url)}
    return {"flow_type": "greeting", "read_via_text": check_text("read_via_text", read_via_text)}


def rfc3339(name: str, value: Any) -> tuple[str, datetime]:
    """A datetime or ISO 8601 string as RFC 3339 text (naive = UTC) and the UTC moment."""
    moment = parse_timestamp(value) if isinstance(value, (str, datetime)) else None
    if moment is None:
        raise ExotelValidationError(
            f"{name} must be a datetime or an ISO 8601 / RFC 3339 timestamp such as "
            f"'2024-05-01T10:00:00+05:30', got {value!r}"
        )
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        return value.isoformat(timespec="seconds"), moment
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is not None and parsed.utcoffset() is not None:
            return parsed.isoformat(timespec="seconds"), moment
    return moment.isoformat(timespec="seconds"), moment


def check_schedule(send_at: Any, end_at: Any, now: datetime | None = None) -> dict[str, Any]:
    schedule: dict[str, str] = {}
    start = None
    if send_at is not None:
        schedule["send_at"], start = rfc3339("send_at", send_at)
    if end_at is not None:
        schedule["end_at"], end = rfc3339("end_at", end_at)
        floor = start if start is not None else (now or datetime.now(UTC))
        if end <= floor:
            what = f"send_at ({schedule['send_at']})" if start is not None else "now"
            raise ExotelValidationError(f"end_at ({schedule['end_at']}) must be after {what}")
    return {"schedule": schedule} if schedule else {}


def check_retries(retries: Any) -> dict[str, Any]:
    """The campaign's own retry policy: ``number_of_retries`` 0-3, ``interval_mins`` >= 1,
    ``mechanism`` Linear/Exponential, ``on_status`` a subset of busy/no-answer/failed."""
    if not isinstance(retries, Mapping):
        raise ExotelValidationError(
            f"retries must be a mapping with keys {list(RETRY_KEYS)}, got {retries!r}"
        )
    unknown = sorted(str(k) for k in retries if k not in RETRY_KEYS)
    if unknown:
        raise ExotelValidationError(f"retries has unknown key(s) {unknown}; expected {list(RETRY_KEYS)}")
    out: dict[str, Any] = {}
    count = retries.get("number_of_retries")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 3:
        raise ExotelValidationError(f"retries['number_of_retries'] must be an integer 0-3, got {count!r}")
    out["number_of_retries"] = count
    if "interval_mins" in retries:
        interval = retries["interval_mins"]
        if isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= 1440:
            raise ExotelValidationError(
                f"retries['interval_mins'] must be an integer 1-1440, got {interval!r}"
            )
        out["interval_mins"] = interval
    if "mechanism" in retries:
        mechanism = retries["mechanism"]
        names = {m.lower(): m for m in RETRY_MECHANISMS}
        if not isinstance(mechanism, str) or mechanism.strip().lower() not in names:
            raise ExotelValidationError(
                f"retries['mechanism'] must be one of {list(RETRY_MECHANISMS)}, got {mechanism!r}"
            )
        out["mechanism"] = names[mechanism.strip().lower()]
    if "on_status" in retries:
        on_status = retries["on_status"]
        statuses = [normalize_status(s) for s in _sequence("retries['on_status']", on_status)]
        if not statuses or any(s not in RETRY_ON_STATUS for s in statuses):
            raise ExotelValidationError(
                f"retries['on_status'] must be a non-empty list of {list(RETRY_ON_STATUS)}, got {on_status!r}"
            )
        out["on_status"] = statuses
    return out


def check_extra(extra: Any) -> dict[str, Any]:
    if extra is None:
        return {}
    if not isinstance(extra, Mapping):
        raise ExotelValidationError(f"extra must be a mapping of campaign fields, got {type(extra).__name__}")
    clash = sorted(str(k) for k in extra if k in RESERVED)
    if clash:
        raise ExotelValidationError(
            f"extra sets {clash}, which the named arguments of create_campaign set; pass them as "
            "arguments (list_sids, numbers, flow_url, read_via_text, send_at, end_at, retries, ...)"
        )
    return dict(check_json_value("extra", dict(extra)))


def campaign_item(
    *,
    name: Any,
    caller_id: Any,
    list_sids: Any = None,
    numbers: Any = None,
    flow_url: Any = None,
    read_via_text: Any = None,
    campaign_type: Any = "static",
    send_at: Any = None,
    end_at: Any = None,
    retries: Any = None,
    callbacks: Mapping[str, Any] | None = None,
    custom_field: Any = None,
    extra: Any = None,
) -> dict[str, Any]:
    """The ``POST campaigns`` item for ``create_campaign``'s arguments, every rule checked first."""
    item: dict[str, Any] = {
        "name": check_text("name", name),
        "caller_id": check_text("caller_id", caller_id).strip(),
        "type": "trans",
        "campaign_type": campaign_type,
    }
    item.update(check_audience(list_sids, numbers, campaign_type))
    item.update(check_flow(flow_url, read_via_text))
    item.update(check_schedule(send_at, end_at))
    if retries is not None:
        item["retries"] = check_retries(retries)
    for key, url in (callbacks or {}).items():
        if url is not None:
            item[key] = check_url(key, url)
    if custom_field is not None:
        item["custom_field"] = check_json_value("custom_field", custom_field)
    item.update(check_extra(extra))
    return item
