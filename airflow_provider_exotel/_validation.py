"""Input checks shared by the hook, operators and sensor.

Kept free of heavy imports (no requests, tenacity or HTTP provider) so operators can check their
arguments in ``__init__`` — at DAG parse time — without slowing the parse down.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, date, datetime
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


#: Deepest nesting accepted inside a field value (e.g. ``custom_field``).
MAX_JSON_DEPTH = 32


def _json_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be sent as JSON exactly as given (``None`` when it can).

    JSON means: ``None``, ``bool``, ``int``, finite ``float``, ``str`` encodable as UTF-8 (no lone
    surrogate), lists/tuples of these, and dicts with string keys. Anything else (a ``datetime``,
    a ``set``, ``bytes``, ``Decimal``, NaN or infinity) would be refused by ``json.dumps``,
    changed by it (``default=str``) or sent as invalid JSON.
    """
    if depth > MAX_JSON_DEPTH:
        return f"is nested deeper than {MAX_JSON_DEPTH} levels"
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"is {value!r}, which JSON cannot represent"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is a string with a lone surrogate (not valid Unicode)"
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = _json_problem(item, depth + 1)
            if problem:
                return f"[{i}] {problem}"
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"has a non-string key {key!r} ({type(key).__name__})"
            problem = _json_problem(key, depth + 1) or _json_problem(item, depth + 1)
            if problem:
                return f"[{key!r}] {problem}"
        return None
    return (
        f"is a {type(value).__name__} ({value!r:.60}), not a JSON value "
        "(convert it first, e.g. a datetime to an ISO 8601 string)"
    )


def check_json_value(name: str, value: Any) -> Any:
    """``value`` unchanged when it is JSON (see above); else an error naming ``name``.

    :param name: where the value is, e.g. ``"contacts[3] (sid 'c1') field 'tag'"``.
    :param value: the value to check.
    """
    problem = _json_problem(value)
    if problem:
        raise ExotelValidationError(f"{name} {problem}")
    return value


def validate_contact(contact: Any, index: int, argument: str = "contacts") -> str:
    """Check one bulk-update contact; return its sid (trimmed). Raises :class:`ExotelValidationError`.

    The sid must be a valid sid (:func:`check_path_segment`; surrounding whitespace is trimmed),
    every field an updatable one and every value JSON (:func:`check_json_value`).
    """
    where = f"{argument}[{index}]"
    if not isinstance(contact, Mapping):
        raise ExotelValidationError(
            f"{where} must be a mapping with a 'sid' and fields to update, got {type(contact).__name__}"
        )
    raw_sid = contact.get("sid")
    if not isinstance(raw_sid, str) or not raw_sid.strip():
        raise ExotelValidationError(f"{where} needs a non-empty string 'sid', got {raw_sid!r}")
    sid = check_path_segment(f"{where} 'sid'", raw_sid)
    check_fields(contact, f"{where} (sid {sid!r})", "sid", UPDATABLE_FIELDS, "updatable")
    return sid


def check_fields(
    contact: Mapping[Any, Any], label: str, key: str, allowed: Collection[str], kind: str
) -> None:
    """Refuse a field outside ``allowed`` and a value that is not JSON (``key`` itself is checked apart).

    :param contact: the row.
    :param label: names the row in a message, e.g. ``contacts[3] (sid 'abc')``.
    :param key: the identifying field (``sid``, ``number``), not checked here.
    :param allowed: the fields a row may have.
    :param kind: how the message calls them (``updatable``, ``allowed``).
    """
    unknown = sorted(
        repr(k) if not isinstance(k, str) else k for k in contact if k != key and k not in allowed
    )
    if unknown:
        raise ExotelValidationError(
            f"{label} has unknown field(s) {unknown}; {kind} fields are {sorted(allowed)}"
        )
    for name, value in contact.items():
        if name != key:
            check_json_value(f"{label} field {name!r}", value)


def normalized_contact(contact: Mapping[str, Any], sid: str) -> dict[str, Any]:
    """A copy of a validated contact carrying its trimmed ``sid`` (what is sent)."""
    out = dict(contact)
    out["sid"] = sid
    return out


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
        out.append(normalized_contact(contact, sid))
    return out


def check_max_records(max_records: Any) -> int | None:
    if max_records is None:
        return None
    if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 0:
        raise ExotelValidationError(f"max_records must be None or an integer >= 0, got {max_records!r}")
    return max_records


#: Characters refused in a sid that becomes part of a URL path (``lists/<sid>/contacts``): they
#: would change the path (``/``, ``\\``), start a query or fragment (``?``, ``#``), or smuggle an
#: escape (``%``). Commas are refused too: ``list_sids`` is sent as one comma-separated value.
_SEGMENT_FORBIDDEN = frozenset("/\\?#%,")


def check_path_segment(name: str, value: Any) -> str:
    """``value`` (a sid from user input) as a safe URL path segment; else a named error.

    Surrounding whitespace is trimmed and the trimmed sid is what is sent (and compared, e.g. for
    duplicates). Refused: a non-string, an empty value, ``.`` or ``..`` (or any all-dots value,
    which a server or proxy may collapse: ``lists/../contacts`` is the all-contacts endpoint),
    ``/ \\ ? # % ,``, whitespace inside the sid and control characters. Nothing is requested
    before this check passes.

    :param name: the argument's name, used in the error message (e.g. ``"list_sid"``).
    :param value: the value to check.
    """
    if not isinstance(value, str):
        raise ExotelValidationError(f"{name} must be a non-empty string (a sid), got {value!r}")
    sid = value.strip()
    if not sid:
        raise ExotelValidationError(f"{name} must be a non-empty string (a sid), got {value!r}")
    bad = sorted(
        {c for c in sid if c in _SEGMENT_FORBIDDEN or c.isspace() or unicodedata.category(c)[0] == "C"}
    )
    if bad or set(sid) == {"."}:
        what = f"contains {''.join(bad)!r}" if bad else "is only dots"
        raise ExotelValidationError(
            f"{name} must be a sid (no '/', '\\', '?', '#', '%', ',', whitespace or control "
            f"characters, and not '.' or '..'); {value!r} {what}"
        )
    return sid


def check_list_sid(list_sid: Any, argument: str = "list_sid") -> str:
    """``list_sid`` as a trimmed, path-safe sid (see :func:`check_path_segment`)."""
    return check_path_segment(argument, list_sid)


def join_list_sids(list_sids: Any) -> str | None:
    """``list_sids`` (a list of sids) as one comma-separated value; ``None`` stays ``None``.

    A string is taken as comma-separated sids; a string that looks like a rendered list
    (``"['l1', 'l2']"`` or ``'["l1", "l2"]'``, what a Jinja template renders) is parsed as one.
    Every sid is checked with :func:`check_path_segment` and duplicates (after trimming) are refused.

    :param list_sids: the value to check.
    """
    if list_sids is None:
        return None
    items: Any = list_sids
    if isinstance(list_sids, str):
        items = parse_rendered_list("list_sids", list_sids)
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ExotelValidationError(f"list_sids must be a list of list sids, got {type(list_sids).__name__}")
    sids: list[str] = []
    for i, item in enumerate(items):
        sid = check_path_segment(f"list_sids[{i}]", item)
        if sid in sids:
            raise ExotelValidationError(f"list_sids[{i}] repeats list sid {sid!r}")
        sids.append(sid)
    if not sids:
        raise ExotelValidationError("list_sids must not be empty (use None for all contacts)")
    return ",".join(sids)


def parse_rendered_list(name: str, value: str) -> list[Any]:
    """A string given for a list: ``"a,b"``, or a rendered list literal ``"['a', 'b']"``.

    A rendered template is a string even when it was meant as a list; rather than silently
    sending ``['l1', 'l2']`` as a sid, a JSON or Python list literal is parsed (only literals,
    never code). Anything else starting with ``[`` is refused.

    :param name: the argument's name, for the error message.
    :param value: the string to parse.
    """
    text = value.strip()
    if not text.startswith("["):
        return text.split(",")
    import ast

    try:
        parsed = json.loads(text)
    except ValueError:
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            parsed = None
    if not isinstance(parsed, list):
        raise ExotelValidationError(
            f"{name} must be a list of sids (or a comma-separated string); {value!r} looks like a "
            "list but is not a JSON or Python list literal"
        )
    return parsed


def check_number(
    name: str, value: Any, minimum: float, exclusive: bool = False, maximum: float | None = None
) -> float:
    """``value`` as a finite float within bounds; else an error naming ``name`` and the bounds."""
    try:
        number = float(value)
        if isinstance(value, bool):
            raise TypeError
    except (TypeError, ValueError, OverflowError):
        raise ExotelValidationError(f"{name} must be a number, got {value!r}") from None
    too_small = number < minimum or (exclusive and number == minimum)
    if not math.isfinite(number) or too_small or (maximum is not None and number > maximum):
        op = ">" if exclusive else ">="
        bound = f"{op} {minimum:g}" + (f" and <= {maximum:g}" if maximum is not None else "")
        raise ExotelValidationError(f"{name} must be a number {bound}, got {value!r}")
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


# --------------------------------------------------------------------------------------------------
# The hook's arguments (checked by the hook, and by operators/sensors for ``hook_params`` at parse time)
# --------------------------------------------------------------------------------------------------
#: Longest per-request timeout accepted, in seconds.
MAX_TIMEOUT = 3600.0
#: Most retries after the first attempt.
MAX_RETRY_LIMIT = 50
#: Longest first backoff, in seconds.
MAX_RETRY_DELAY = 600.0
#: Slowest request budget accepted (one request a minute); below it a fetch would sleep for days.
MIN_REQUESTS_PER_MINUTE = 1.0
#: Fastest request budget accepted (1000 requests a second; use ``None`` for no budget).
MAX_REQUESTS_PER_MINUTE = 60_000.0
#: Most requests in flight at once.
MAX_CONCURRENCY = 32
#: Longest wait for the rate budget of one request, in seconds (a day).
MAX_RATE_LIMIT_WAIT = 86_400.0
#: Keyword arguments of ``ExotelContactsHook`` that ``hook_params`` may set.
HOOK_ARGUMENTS = frozenset(
    {"timeout", "retry_limit", "retry_delay", "requests_per_minute", "concurrency", "rate_limit_wait"}
)


def check_timeout(name: str, value: Any) -> float:
    """A request timeout: seconds, > 0 and <= :data:`MAX_TIMEOUT`."""
    return check_number(name, value, 0, exclusive=True, maximum=MAX_TIMEOUT)


def check_requests_per_minute(name: str, value: Any) -> float:
    """A request budget: between :data:`MIN_REQUESTS_PER_MINUTE` and :data:`MAX_REQUESTS_PER_MINUTE`."""
    return check_number(name, value, MIN_REQUESTS_PER_MINUTE, maximum=MAX_REQUESTS_PER_MINUTE)


def check_hook_arguments(
    *,
    timeout: Any = 30.0,
    retry_limit: Any = 5,
    retry_delay: Any = 1.0,
    requests_per_minute: Any = None,
    concurrency: Any = 4,
    rate_limit_wait: Any = 900.0,
) -> None:
    """Check the hook's arguments against their documented bounds (nothing is requested).

    :param timeout: seconds per request, > 0 and <= 3600.
    :param retry_limit: retries after the first attempt, 0..50.
    :param retry_delay: first backoff in seconds, 0..600.
    :param requests_per_minute: ``None`` or 1..60000.
    :param concurrency: requests in flight at most, 1..32.
    :param rate_limit_wait: seconds to wait for the rate budget of one request, 0..86400.
    """
    check_timeout("timeout", timeout)
    check_int("retry_limit", retry_limit, minimum=0, maximum=MAX_RETRY_LIMIT)
    check_number("retry_delay", retry_delay, minimum=0, maximum=MAX_RETRY_DELAY)
    if requests_per_minute is not None:
        check_requests_per_minute("requests_per_minute", requests_per_minute)
    check_int("concurrency", concurrency, minimum=1, maximum=MAX_CONCURRENCY)
    check_number("rate_limit_wait", rate_limit_wait, minimum=0, maximum=MAX_RATE_LIMIT_WAIT)


def check_hook_params(value: Any, argument: str = "hook_params") -> dict[str, Any]:
    """``hook_params`` (of an operator, sensor or trigger) as a dict of valid hook arguments.

    Unknown names are refused here, at DAG parse time, instead of failing at run time with a
    ``TypeError``; known ones are checked against their bounds (:func:`check_hook_arguments`).

    :param value: ``None`` or a mapping of :data:`HOOK_ARGUMENTS` names to values.
    :param argument: the argument's name, for error messages.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ExotelValidationError(f"{argument} must be a dict of hook arguments, got {value!r}")
    unknown = sorted(repr(k) if not isinstance(k, str) else k for k in value if k not in HOOK_ARGUMENTS)
    if unknown:
        raise ExotelValidationError(
            f"{argument} has unknown hook argument(s) {unknown}; "
            f"ExotelContactsHook accepts {sorted(HOOK_ARGUMENTS)}"
        )
    params = dict(value)
    try:
        check_hook_arguments(**params)
    except ExotelValidationError as exc:
        raise ExotelValidationError(f"{argument}: {exc}") from None
    return params


def parse_timestamp(value: Any) -> datetime | None:
    """``value`` (a ``datetime``, ``date`` or ISO-8601 string) as an aware UTC datetime; naive means UTC.

    Returns ``None`` when ``value`` is not a date at all, cannot be parsed, or lies outside what a
    UTC datetime can hold. Accepts Exotel's ``2021-05-02T14:36:31Z`` and what Airflow renders for
    ``{{ data_interval_start }}``.
    """
    moment = _read_timestamp(value)
    if moment is None:
        return None
    try:
        return to_utc(moment)
    except ExotelValidationError:
        return None


def _read_timestamp(value: Any) -> datetime | None:
    """``value`` as a datetime in its own time zone (naive stays naive), or None."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def to_utc(moment: datetime, argument: str = "timestamp") -> datetime:
    """``moment`` as an aware UTC datetime (naive means UTC) — the one bound check of every timestamp.

    A moment that UTC cannot hold (``0001-01-01T00:00:00+05:30``, ``9999-12-31T23:59:59-05:00``) is
    an :class:`ExotelValidationError` naming ``argument``, never a bare ``OverflowError``.

    :param moment: the datetime.
    :param argument: the argument's name, for the error message.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ExotelValidationError(
            f"{argument} {moment.isoformat()} is outside the range of a UTC timestamp "
            "(0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z)"
        ) from None


def check_created_range(
    created_from: Any, created_to: Any, sort_by: Any = None
) -> tuple[datetime | None, datetime | None]:
    """Validate an incremental fetch's ``[created_from, created_to)`` window; return it as UTC datetimes.

    Each bound is ``None``, a ``datetime``/``date`` (naive = UTC) or an ISO-8601 string.
    ``created_from > created_to`` and combining a bound with ``sort_by`` are errors.
    """
    bounds: list[datetime | None] = []
    for name, value in (("created_from", created_from), ("created_to", created_to)):
        if value is None:
            bounds.append(None)
            continue
        moment = _read_timestamp(value)
        if moment is None:
            raise ExotelValidationError(
                f"{name} must be a datetime or an ISO-8601 date/time string such as "
                f"'2024-05-01T00:00:00+00:00' (naive means UTC), got {value!r}"
            )
        bounds.append(to_utc(moment, name))
    start, end = bounds
    if start is not None and end is not None and start > end:
        raise ExotelValidationError(
            f"created_from ({start.isoformat()}) must not be later than created_to ({end.isoformat()})"
        )
    if (start is not None or end is not None) and sort_by is not None:
        raise ExotelValidationError(
            "sort_by cannot be combined with created_from/created_to: an incremental fetch reads "
            f"newest first (date_created:desc) by itself; got sort_by={sort_by!r}"
        )
    return start, end
