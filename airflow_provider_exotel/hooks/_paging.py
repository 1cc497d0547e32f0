"""The one paging engine, shared by every endpoint that pages (private; used by ``hooks/contacts.py``).

The pager does not speak HTTP: it is given ``fetch_page(endpoint, params, offset, limit) -> body``
(the hook's request under its retry policy and rate budget) and turns pages into a lazy iterator
of contacts.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from airflow_provider_exotel._validation import MAX_PAGE_SIZE
from airflow_provider_exotel.exceptions import ExotelRequestError

MAX_SWEEPS = 4

FetchPage = Callable[[str, Mapping[str, Any], int, int], dict[str, Any]]


class Pager:
    """Offset pages of at most 20, up to ``concurrency`` in flight, yielded in server order."""

    def __init__(self, fetch_page: FetchPage, concurrency: int, log: logging.Logger | Any) -> None:
        self.fetch_page = fetch_page
        self.concurrency = concurrency
        self.log = log

    def paginate(
        self, endpoint: str, params: dict[str, Any], max_records: int | None
    ) -> Iterator[dict[str, Any]]:
        """The one paging engine, shared by every endpoint that pages.

        A generator: nothing is requested until the caller starts iterating. Each sweep reads the
        first page, learns ``metadata.total``, then reads the remaining pages with up to
        ``concurrency`` requests in flight, yielding contacts in server order.

        Offset paging drifts when contacts are inserted or deleted mid-fetch (a deletion shifts a
        contact onto a page already read; an insertion repeats one). Every contact already yielded is
        remembered by a 64-bit hash of its sid (a few MB per 100k contacts), so repeats are dropped;
        and when any page reports a different ``metadata.total`` than the sweep started with, another
        sweep picks up the contacts that shifted. Hence every contact that existed for the whole
        fetch is yielded exactly once (after drift, the shifted ones come at the end).
        """
        if max_records == 0:
            return
        seen: set[int] = set()
        yielded = 0
        first_total = None
        for sweep in range(1, MAX_SWEEPS + 1):
            start_total: int | None = None
            last_total: int | None = None
            drift = False
            for page_total, contacts in self._sweep(endpoint, params, max_records):
                if start_total is None:
                    start_total = page_total
                    first_total = page_total if first_total is None else first_total
                elif page_total != start_total:
                    drift = True
                last_total = page_total
                for contact in contacts:
                    sid = contact.get("sid")
                    if sid is not None:
                        key = hash(sid)
                        if key in seen:
                            continue
                        seen.add(key)
                    yield contact
                    yielded += 1
                    if max_records is not None and yielded >= max_records:
                        return
            if not drift:
                return
            self.log.warning(
                "Exotel GET %s: contacts changed during the fetch (total %s -> %s); "
                "sweep %d of %d to pick up contacts that shifted between pages",
                endpoint,
                start_total,
                last_total,
                sweep + 1,
                MAX_SWEEPS,
            )
        raise ExotelRequestError(
            f"Exotel GET {endpoint}: contacts kept changing during {MAX_SWEEPS} sweeps "
            f"(total {first_total} -> {last_total}); the fetch cannot promise every contact, try again "
            "when the account is quieter"
        )

    def _sweep(
        self, endpoint: str, params: dict[str, Any], max_records: int | None
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """One pass over the pages: yield ``(metadata.total, contacts)`` per page, in offset order.

        The first page is read alone; the rest go out with ``concurrency`` requests in flight and a
        window of ``2 × concurrency`` pages, so memory stays flat whatever the total.
        """
        first_limit = MAX_PAGE_SIZE if max_records is None else min(MAX_PAGE_SIZE, max_records)
        body = self.fetch_page(endpoint, params, 0, first_limit)
        page = page_contacts(body, endpoint)
        total = page_total(body, endpoint)
        yield total, page
        wanted = total if max_records is None else min(total, max_records)
        if len(page) >= wanted or len(page) < first_limit:
            return
        offsets = range(first_limit, wanted, MAX_PAGE_SIZE)

        def fetch(offset: int) -> tuple[int, list[dict[str, Any]]]:
            body = self.fetch_page(endpoint, params, offset, min(MAX_PAGE_SIZE, wanted - offset))
            return page_total(body, endpoint), page_contacts(body, endpoint)

        if self.concurrency == 1 or len(offsets) == 1:
            for offset in offsets:
                yield fetch(offset)
            return

        window = 2 * self.concurrency
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="exotel-page") as pool:
            pending: deque[Future[tuple[int, list[dict[str, Any]]]]] = deque()
            todo = iter(offsets)
            try:
                for offset in todo:
                    pending.append(pool.submit(fetch, offset))
                    if len(pending) >= window:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()


def page_contacts(body: Mapping[str, Any], endpoint: str) -> list[dict[str, Any]]:
    items = body.get("response")
    if not isinstance(items, list):
        raise ExotelRequestError(f"Exotel GET {endpoint}: answer has no 'response' list")
    contacts = []
    for item in items:
        data = item.get("data") if isinstance(item, Mapping) else None
        if isinstance(data, dict):
            contacts.append(data)
    return contacts


def page_total(body: Mapping[str, Any], endpoint: str) -> int:
    metadata = body.get("metadata")
    total = metadata.get("total") if isinstance(metadata, Mapping) else None
    if isinstance(total, bool) or not isinstance(total, int):
        raise ExotelRequestError(f"Exotel GET {endpoint}: answer has no integer metadata.total")
    return total
