"""Voice v1 call records: time windows, the ``DateCreated`` filter, page checks and cursors.

Private; used by :mod:`airflow_provider_exotel.hooks.calls`. No HTTP here: pure functions over
datetimes and answer bodies, each readable alone.

- Exotel's v1 timestamps carry no offset: they are wall-clock times in the account's time zone
  (connection extra ``timezone``, an IANA name, default ``Asia/Kolkata``).
- ``DateCreated=gte:<local>;lte:<local>`` is inclusive at both ends, to the second: the half-open
  ``[created_from, created_to)`` becomes ``gte:ceil(created_from)`` and ``lte:ceil(created_to) − 1 s``.
- At most one month per request (windows of ``MAX_WINDOW``) and at most ``MAX_AGE`` back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from airflow_provider_exotel.exceptions import ExotelRequestError, ExotelValidationError
from airflow_provider_exotel.hooks._retry import TransientError

#: Longest ``DateCreated`` range of one request (Exotel: "maximum date range of 1 month").
MAX_WINDOW = timedelta(days=31)
#: Oldest ``created_from`` Exotel serves ("call records only up to 6 months old").
MAX_AGE = timedelta(days=183)
#: Calls per page (Exotel's maximum ``PageSize``).
PAGE_SIZE = 100
#: Wall-clock format of v1 timestamps (no offset: the account's time zone).
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Pages in a row that bring no new call before a cursor chain is declared stuck.
MAX_STALE_PAGES = 3


def ceil_second(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole second (v1 timestamps have whole seconds)."""
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def split_windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` as contiguous half-open windows of at most ``MAX_WINDOW``, oldest first."""
    windows: list[tuple[datetime, datetime]] = []
    low = start
    while low < end:
        high = min(low + MAX_WINDOW, end)
        windows.append((low, high))
        low = high
    return windows


def local_text(moment: datetime, zone: tzinfo) -> str:
    """An aware datetime as v1 wall-clock text in the account's zone."""
    return moment.astimezone(zone).strftime(TIME_FORMAT)


def parse_local(text: Any, zone: tzinfo) -> datetime | None:
    """A v1 timestamp (account zone, no offset) as an aware UTC datetime; ``None`` when unreadable."""
    if not isinstance(text, str):
        return None
    try:
        naive = datetime.strptime(text.strip(), TIME_FORMAT)
    except ValueError:
        return None
    return naive.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """One request window: UTC bounds ``[start, end)`` and the inclusive local ``gte``/``lte`` text."""

    start: datetime
    end: datetime
    gte: str
    lte: str

    @property
    def date_created(self) -> str:
        return f"gte:{self.gte};lte:{self.lte}"


def request_windows(start: datetime, end: datetime, zone: tzinfo) -> list[Window]:
    """The windows of ``[start, end)`` (whole seconds), each with its ``DateCreated`` filter text."""
    low, high = ceil_second(start), ceil_second(end)
    return [
        Window(a, b, local_text(a, zone), local_text(b - timedelta(seconds=1), zone))
        for a, b in split_windows(low, high)
    ]


def check_age(start: datetime, now: float) -> None:
    """``created_from`` at most ``MAX_AGE`` back from ``now`` (epoch seconds)."""
    oldest = datetime.fromtimestamp(now, UTC) - MAX_AGE
    if start < oldest:
        raise ExotelValidationError(
            f"created_from {start.isoformat()} is more than 6 months ({MAX_AGE.days} days) back: "
            f"Exotel keeps call records for 6 months; the oldest allowed now is {oldest.isoformat()}"
        )


def _transient(message: str) -> TransientError:
    return TransientError(ExotelRequestError(message))


def parse_calls_page(
    body: Mapping[str, Any], page_size: int, window: Window
) -> tuple[list[dict[str, Any]], Any]:
    """Check one ``Calls.json`` page; return ``(calls, NextPageUri)``. Raise ``TransientError`` if wrong.

    Cannot be right: no ``Calls`` list or ``Metadata`` object; a call that is not an object, has no
    string ``Sid`` or a ``DateCreated`` outside the window; a ``Sid`` twice in the page; more calls
    than ``PageSize``; a page shorter than ``PageSize`` (or empty) that still has a next page; a
    ``NextPageUri`` that is not a string or null.
    """
    calls, metadata = body.get("Calls"), body.get("Metadata")
    if not isinstance(calls, list) or not isinstance(metadata, Mapping):
        raise _transient("Exotel GET Calls.json: HTTP 200 without the Metadata/Calls envelope")
    next_uri = metadata.get("NextPageUri")
    if next_uri is not None and (not isinstance(next_uri, str) or not next_uri.strip()):
        raise _transient(f"Exotel GET Calls.json: Metadata.NextPageUri is not a URI or null: {next_uri!r}")
    if len(calls) > page_size or (next_uri and len(calls) < page_size):
        raise _transient(
            f"Exotel GET Calls.json: page of {len(calls)} calls (PageSize {page_size}) "
            f"{'with' if next_uri else 'without'} a next page"
        )
    sids: set[str] = set()
    for position, call in enumerate(calls):
        sid = call.get("Sid") if isinstance(call, Mapping) else None
        if not isinstance(sid, str) or not sid or sid in sids:
            raise _transient(
                f"Exotel GET Calls.json: call {position} of the page has no Sid, or a repeated one"
            )
        sids.add(sid)
        created = call.get("DateCreated")
        if not isinstance(created, str) or not window.gte <= created.strip() <= window.lte:
            raise _transient(
                f"Exotel GET Calls.json: call {sid} has DateCreated {created!r}, outside "
                f"the requested {window.gte} .. {window.lte}"
            )
    return calls, next_uri


def next_page_params(next_uri: str, origin: str, account_sid: str) -> dict[str, str]:
    """The query of a ``NextPageUri`` (relative, or absolute on the API's own origin), as params.

    A URI to another host or account is refused: the credentials go nowhere else.
    """
    parts = urlsplit(next_uri.strip())
    if parts.netloc and f"{parts.scheme}://{parts.netloc}".lower() != origin.lower():
        raise ExotelRequestError(
            f"Exotel GET Calls.json: NextPageUri points to another host ({parts.netloc})"
        )
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if (
        len(segments) != 4
        or segments[:2] != ["v1", "Accounts"]
        or segments[2] != account_sid
        or segments[3] not in ("Calls", "Calls.json")
    ):
        raise ExotelRequestError(f"Exotel GET Calls.json: unexpected NextPageUri path {parts.path!r}")
    return dict(parse_qsl(parts.query, keep_blank_values=True))


__all__ = [
    "MAX_AGE",
    "MAX_STALE_PAGES",
    "MAX_WINDOW",
    "PAGE_SIZE",
    "TIME_FORMAT",
    "Window",
    "check_age",
    "next_page_params",
    "parse_calls_page",
    "parse_local",
    "request_windows",
]
