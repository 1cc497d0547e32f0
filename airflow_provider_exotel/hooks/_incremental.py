"""Incremental (``created_from``/``created_to``) and resumed fetches (private; used by ``hooks/contacts.py``).

Exotel has no date filter. An incremental fetch reads the account newest first
(``sort_by=date_created:desc``): one single-record page learns the total and the newest contact, a
bisection on single-record pages finds the newest contact created before ``created_to``, and the
paging engine reads on from there until the first contact older than ``created_from``. Exporting k of
N contacts costs about ``k/19 + 2·log2(N) + 3`` requests instead of ``N/20``.

A resumed fetch (an export that already holds its first contacts) goes on through the pager's
resume API (``start_offset``, ``anchor``, ``seen``): the seam is the last contact written.

Like :mod:`._paging`, nothing here speaks HTTP: it is given the hook's ``fetch_page`` and pager.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_exotel._validation import parse_timestamp
from airflow_provider_exotel.exceptions import ExotelRequestError
from airflow_provider_exotel.hooks._answers import page_contacts, page_total
from airflow_provider_exotel.hooks._paging import FetchPage, Pager, closing_pages

#: The order an incremental fetch reads in (and yields in): newest first.
NEWEST_FIRST = "date_created:desc"


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted export stopped, so that the next try can go on from there.

    :param count: contacts the export already holds (the first ``count`` of the fetch, in order).
    :param last: the last contact held (its ``sid`` is the seam checked on resume; for an
        incremental fetch its ``date_created`` is where reading goes on).
    :param seen: sids of every contact held; none of them is yielded again.
    """

    count: int
    last: Mapping[str, Any]
    seen: Collection[str] = field(default_factory=frozenset)


def created_at(contact: Mapping[str, Any], endpoint: str) -> datetime:
    """A contact's ``date_created`` as an aware UTC datetime; an unreadable one is a bad answer."""
    moment = parse_timestamp(contact.get("date_created"))
    if moment is None:
        raise ExotelRequestError(
            f"Exotel GET {endpoint}: contact {contact.get('sid')!r} has no readable date_created "
            f"({contact.get('date_created')!r}); cannot select contacts by creation time"
        )
    return moment


def iter_resumed(
    pager: Pager,
    endpoint: str,
    params: dict[str, Any],
    max_records: int | None,
    resume: ResumePoint,
) -> Iterator[dict[str, Any]]:
    """The rest of a fetch whose first ``resume.count`` contacts are already held, in server order.

    Reading starts one before ``resume.count``, where the last contact held must be (the seam); when
    it is not (contacts before it were deleted or inserted since), the pager re-anchors by reading
    back, and held sids are never yielded again, so the result is still exact.
    """
    remaining = None if max_records is None else max(0, max_records - resume.count)
    anchor = resume.last.get("sid")
    return pager.paginate(
        endpoint,
        params,
        remaining,
        start_offset=resume.count,
        anchor=anchor if isinstance(anchor, str) else None,
        seen=resume.seen,
    )


def iter_created_between(
    fetch_page: FetchPage,
    pager: Pager,
    endpoint: str,
    params: Mapping[str, Any],
    created_from: datetime | None,
    created_to: datetime | None,
    max_records: int | None,
    resume: ResumePoint | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the contacts created in ``[created_from, created_to)``, newest first.

    Every contact that exists for the whole fetch and was created in the window is yielded exactly
    once: the read starts anchored on the contact just before the window, and the paging engine's
    seam checks (re-anchoring by reading back) cover any shift, before the window's start included.

    With ``resume`` (an export that holds the first ``resume.count`` contacts, newest first), the
    window's upper bound becomes the last held contact's creation time (inclusive, for contacts
    sharing it) and held sids are skipped: the result is the same as an uninterrupted fetch, however
    the account shifted in between, because the seam is found by time and not by offset.
    """
    lower, upper = created_from, created_to
    seen: Collection[str] = ()
    if resume is not None and resume.count > 0:
        resumed_upper = created_at(resume.last, endpoint) + timedelta(microseconds=1)
        upper = resumed_upper if upper is None else min(upper, resumed_upper)
        seen = resume.seen if isinstance(resume.seen, (set, frozenset)) else frozenset(resume.seen)
        if max_records is not None:
            max_records = max(0, max_records - resume.count)
    if max_records == 0 or (lower is not None and upper is not None and lower >= upper):
        return
    desc = {**params, "sort_by": NEWEST_FIRST}
    start = _window_start(fetch_page, endpoint, desc, lower, upper)
    if start is None:
        return
    offset, anchor, end = start
    # The pager reads from offset - 1, where the anchor (the newest contact at or after upper) must
    # be; if contacts above it were deleted or created meanwhile, it re-anchors (reading back), so
    # nothing in the window is missed or repeated. Contacts at or after upper are skipped. When a
    # probe saw where the window ends, the pager reads no further (no prefetched page is wasted); if
    # contacts created meanwhile pushed the window past that point, reading goes on from the last
    # contact read.
    limit = None if end is None else end - offset + 1
    held = set(seen)
    yielded = 0
    while True:
        got, last = 0, None
        pages = pager.paginate(endpoint, desc, limit, start_offset=offset, anchor=anchor, seen=held)
        with closing_pages(pages) as contacts:
            for contact in contacts:
                got, last = got + 1, contact
                held.add(contact["sid"])  # read: an anchor if reading has to go on
                moment = created_at(contact, endpoint)
                if upper is not None and moment >= upper:
                    continue
                if lower is not None and moment < lower:
                    return
                yield contact
                yielded += 1
                if max_records is not None and yielded >= max_records:
                    return
        if limit is None or got < limit or last is None:
            return  # the end of the contacts
        offset, anchor, limit = offset + got, last["sid"], None


def _window_start(
    fetch_page: FetchPage,
    endpoint: str,
    desc: Mapping[str, Any],
    lower: datetime | None,
    upper: datetime | None,
) -> tuple[int, str | None, int | None] | None:
    """Where to read from, newest first: ``(offset, anchor sid, end)``, or ``None`` if the window is empty.

    One single-record page at offset 0, then a bisection on single-record pages for the first
    contact older than ``upper`` (its offset); the anchor is the contact just before it (the newest
    one at or after ``upper``), which the pager checks is still there when it starts reading.
    ``end`` is the lowest offset a probe found older than ``lower`` (the window ends before it), if any.
    """

    def probe(offset: int) -> tuple[int, dict[str, Any] | None]:
        body = fetch_page(endpoint, desc, offset, 1)
        page = page_contacts(body, endpoint)
        return page_total(body, endpoint), (page[0] if page else None)

    total, newest = probe(0)
    if newest is None or (lower is not None and created_at(newest, endpoint) < lower):
        return None
    if upper is None or created_at(newest, endpoint) < upper:
        return 0, None, None
    lo, hi = 1, total  # the contact at lo - 1 is at or after upper; find the first one before it
    newer: dict[int, Any] = {0: newest.get("sid")}
    older: dict[int, datetime] = {}
    while lo < hi:
        mid = (lo + hi) // 2
        _, contact = probe(mid)
        moment = created_at(contact, endpoint) if contact is not None else None
        if moment is None or moment < upper:
            hi = mid
            if moment is not None:
                older[mid] = moment
        else:
            lo = mid + 1
            newer[mid] = contact.get("sid") if contact is not None else None
    if lo >= total:
        return None  # nothing was created before upper
    if lower is not None and lo in older and older[lo] < lower:
        return None  # the newest contact before upper is already older than the window
    end = min((at for at, moment in older.items() if lower is not None and moment < lower), default=None)
    anchor = newer.get(lo - 1)
    if isinstance(anchor, str):
        return lo, anchor, end
    return lo - 1, None, end  # (not expected) read from the contact before, unanchored
