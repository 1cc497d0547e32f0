"""Incremental (``created_from``/``created_to``) and resumed fetches (private; used by ``hooks/contacts.py``).

Exotel has no date filter. An incremental fetch reads the account newest first
(``sort_by=date_created:desc``): one single-record page learns the total and the newest contact, a
bisection on single-record pages finds the newest contact created before ``created_to``, and the
paging engine reads on from there until the first contact older than ``created_from``. Exporting k of
N contacts costs about ``k/19 + log2(N) + 2`` requests instead of ``N/20``.

A resumed fetch (an export that already holds its first contacts) reads on from where the last try
stopped through a *shifted view* of the endpoint (offset ``o`` of the view is offset ``start + o`` of
the server), so the paging engine and its seam checks serve it unchanged.

Like :mod:`._paging`, nothing here speaks HTTP: it is given the hook's ``fetch_page`` and a way to
make a pager over any ``fetch_page``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_exotel._validation import parse_timestamp
from airflow_provider_exotel.exceptions import ExotelRequestError
from airflow_provider_exotel.hooks._paging import Check, FetchPage, Pager, page_contacts, page_total

#: The order an incremental fetch reads in (and yields in): newest first.
NEWEST_FIRST = "date_created:desc"
#: How often the start of the window is looked for again when the account shifts under the fetch.
MAX_RELOCATIONS = 4

#: ``make_pager(fetch_page) -> Pager``: the hook's pager settings over another ``fetch_page``.
MakePager = Callable[[FetchPage], Pager]


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


def shifted(fetch_page: FetchPage, start: int) -> FetchPage:
    """``fetch_page`` over the server's contacts from offset ``start`` on (total reduced to match)."""
    if start <= 0:
        return fetch_page

    def view(body: dict[str, Any]) -> dict[str, Any]:
        metadata = body.get("metadata")
        total = metadata.get("total") if isinstance(metadata, Mapping) else None
        if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
            body = {**body, "metadata": {**metadata, "total": max(0, total - start)}}  # type: ignore[dict-item]
        return body

    def fetch(
        endpoint: str, params: Mapping[str, Any], offset: int, limit: int, check: Check | None = None, /
    ) -> dict[str, Any]:
        shifted_check = None if check is None else (lambda body: check(view(body)))
        return view(fetch_page(endpoint, params, offset + start, limit, shifted_check))

    return fetch


def iter_resumed(
    fetch_page: FetchPage,
    make_pager: MakePager,
    log: logging.Logger | Any,
    endpoint: str,
    params: dict[str, Any],
    max_records: int | None,
    resume: ResumePoint,
) -> Iterator[dict[str, Any]]:
    """The rest of a fetch whose first ``resume.count`` contacts are already held, in server order.

    Reading starts one before ``resume.count``: that contact must be ``resume.last`` (the seam). When
    it is not (contacts before it were deleted or inserted since), the fetch is read from the start
    instead, skipping every held sid, so the result is still exact.
    """
    seen = resume.seen if isinstance(resume.seen, (set, frozenset)) else frozenset(resume.seen)
    remaining = None if max_records is None else max(0, max_records - resume.count)
    if remaining == 0:
        return
    anchor = resume.last.get("sid")
    start = resume.count - 1
    pages = make_pager(shifted(fetch_page, start)).paginate(
        endpoint, params, None if remaining is None else remaining + 1
    )
    yielded = 0
    with _closing(pages) as contacts:
        for index, contact in enumerate(contacts):
            if index == 0:
                if contact.get("sid") == anchor:
                    continue
                log.warning(
                    "Exotel GET %s: the contacts changed since the last try (the contact at the resume "
                    "point is not the last one written); reading from the start, skipping the %s "
                    "contacts already written",
                    endpoint,
                    f"{resume.count:,}",
                )
                break
            if contact.get("sid") in seen:
                continue
            yield contact
            yielded += 1
            if remaining is not None and yielded >= remaining:
                return
        else:
            return
    yield from _skipping(make_pager(fetch_page).paginate(endpoint, params, None), seen, remaining)


def _skipping(
    contacts: Iterator[dict[str, Any]], seen: Collection[str], limit: int | None
) -> Iterator[dict[str, Any]]:
    yielded = 0
    if limit == 0:
        return
    with _closing(contacts):
        for contact in contacts:
            if contact.get("sid") in seen:
                continue
            yield contact
            yielded += 1
            if limit is not None and yielded >= limit:
                return


def iter_created_between(
    fetch_page: FetchPage,
    make_pager: MakePager,
    log: logging.Logger | Any,
    endpoint: str,
    params: Mapping[str, Any],
    created_from: datetime | None,
    created_to: datetime | None,
    max_records: int | None,
    resume: ResumePoint | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the contacts created in ``[created_from, created_to)``, newest first.

    Every contact that exists for the whole fetch and was created in the window is yielded exactly
    once (the paging engine's seam checks cover the read; a shift before the window's start is
    detected on its first page and the start is looked for again).

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
    yielded = 0
    for attempt in range(MAX_RELOCATIONS):
        start = _window_start(fetch_page, endpoint, desc, lower, upper)
        if start is None:
            return
        moved = False
        pages = make_pager(shifted(fetch_page, start)).paginate(endpoint, desc, None)
        with _closing(pages) as contacts:
            for index, contact in enumerate(contacts):
                moment = created_at(contact, endpoint)
                if upper is not None and moment >= upper:
                    continue
                if index == 0 and start > 0:  # contacts before the window were deleted meanwhile
                    moved = True
                    break
                if lower is not None and moment < lower:
                    return
                if seen and contact.get("sid") in seen:
                    continue
                yield contact
                yielded += 1
                if max_records is not None and yielded >= max_records:
                    return
        if not moved:
            return
        log.warning(
            "Exotel GET %s: contacts newer than the window were deleted while it was located; "
            "locating it again (%d of %d)",
            endpoint,
            attempt + 2,
            MAX_RELOCATIONS,
        )
    raise ExotelRequestError(
        f"Exotel GET {endpoint}: contacts kept changing while locating the created_to boundary "
        f"({MAX_RELOCATIONS} tries); try again when the account is quieter"
    )


@contextlib.contextmanager
def _closing(iterator: Iterator[dict[str, Any]]) -> Iterator[Iterator[dict[str, Any]]]:
    """Close the pager (and its prefetching threads) when reading stops early."""
    try:
        yield iterator
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def _window_start(
    fetch_page: FetchPage,
    endpoint: str,
    desc: Mapping[str, Any],
    lower: datetime | None,
    upper: datetime | None,
) -> int | None:
    """Offset to read from (newest first) so that nothing in the window is missed; ``None`` if empty.

    One single-record page at offset 0, then a bisection for the first contact older than ``upper``.
    The offset returned is one before it (the newest contact at or after ``upper``), so the first page
    read shows whether the account shifted in between.
    """

    def probe(offset: int) -> tuple[int, datetime | None]:
        body = fetch_page(endpoint, desc, offset, 1)
        page = page_contacts(body, endpoint)
        return page_total(body, endpoint), (created_at(page[0], endpoint) if page else None)

    total, newest = probe(0)
    if newest is None or (lower is not None and newest < lower):
        return None
    if upper is None or newest < upper:
        return 0
    lo, hi = 1, total  # the contact at lo - 1 is at or after upper; find the first one before it
    older: dict[int, datetime] = {}
    while lo < hi:
        mid = (lo + hi) // 2
        _, moment = probe(mid)
        if moment is None or moment < upper:
            hi = mid
            if moment is not None:
                older[mid] = moment
        else:
            lo = mid + 1
    if lo >= total:
        return None  # nothing was created before upper
    if lower is not None and lo in older and older[lo] < lower:
        return None  # the newest contact before upper is already older than the window
    return lo - 1
