"""The one paging engine, shared by every endpoint that pages (private; used by ``hooks/contacts.py``).

The pager does not speak HTTP: it is given
``fetch_page(endpoint, params, offset, limit, check) -> body`` (the hook's request under its retry
policy and rate budget; ``check(body)`` runs inside the retry loop and raises
:class:`~airflow_provider_exotel.hooks._retry.TransientError` for an answer that cannot be right, so
such an answer is retried like a garbled body) and turns pages into a lazy iterator of contacts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from airflow_provider_exotel._validation import MAX_PAGE_SIZE
from airflow_provider_exotel.exceptions import ExotelRequestError
from airflow_provider_exotel.hooks._answers import Check, Page, parse_page, transient
from airflow_provider_exotel.hooks._paging_state import (
    MAX_EXTRA_READS,
    MAX_RESCANS,
    STEP,
    FetchPage,
    FetchState,
    PagingProgress,
    fingerprint,
    immutable_order,
    sort_fields,
)
from airflow_provider_exotel.hooks._retry import TransientError

T = TypeVar("T")


class Pager:
    """Offset pages of at most 20 overlapping by one contact, up to ``concurrency`` in flight.

    :param fetch_page: ``fetch_page(endpoint, params, offset, limit, check) -> body``.
    :param concurrency: pages in flight at once (1 = strictly sequential).
    :param log: where drift and re-reads are reported.
    """

    def __init__(self, fetch_page: FetchPage, concurrency: int, log: logging.Logger | Any) -> None:
        self.fetch_page = fetch_page
        self.concurrency = concurrency
        self.log = log
        #: counts of the fetch started last (see :class:`PagingProgress`)
        self.progress: PagingProgress | None = None

    def paginate(
        self,
        endpoint: str,
        params: dict[str, Any],
        max_records: int | None,
        *,
        start_offset: int = 0,
        anchor: str | None = None,
        seen: Iterable[str] = (),
        on_page: Callable[[PagingProgress], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield the contacts of ``endpoint``, in server order, each exactly once.

        A generator: nothing is requested until iterated; closing it stops the page threads. Page
        ``k`` is read at offset ``19·k`` (limit 20) and is used only when it holds an *anchor* (a
        contact known to lie at or before everything still to be yielded); a page that lost its
        seam is followed by reads further back. Under other ``sort_by`` orders pages that contacts
        moved onto are read again (``MAX_RESCANS``). The guarantee and its limits: README,
        "Reliability" (Exact paging). Answers that cannot be right (:func:`parse_page`) are retried
        and raise :class:`ExotelRequestError` if they persist — never a silent partial result.

        :param endpoint: path below the account, e.g. ``"contacts"``.
        :param params: query parameters (filters, ``sort_by``); offset and limit are added.
        :param max_records: stop after this many contacts (``None``: all).
        :param start_offset: resume: the offset of the first contact not yet written.
        :param anchor: resume: the sid of the last contact already written; the first read is at
            ``start_offset - 1`` and must contain it (re-anchored like a broken seam if not).
        :param seen: resume: sids already written; never yielded again.
        :param on_page: called with the fetch's :class:`PagingProgress` after each page.
        """
        progress = PagingProgress(endpoint)
        self.progress = progress
        fetch = FetchState(
            endpoint=endpoint,
            params=dict(params),
            immutable=immutable_order(endpoint, params),
            max_records=max_records,
            wanted=None if max_records is None else start_offset + max_records,
            progress=progress,
            sort_fields=sort_fields(endpoint, params),
            on_page=on_page,
        )
        fetch.seen.update(hash(s) for s in seen)
        return self._paginate(fetch, start_offset, anchor)

    # ------------------------------------------------------------------------------------ passes
    def _paginate(self, fetch: FetchState, start_offset: int, anchor: str | None) -> Iterator[dict[str, Any]]:
        if fetch.max_records == 0:
            return
        if anchor is not None:
            fetch.seen.add(hash(anchor))
            first = max(0, start_offset - 1)
            recent: dict[int, tuple[int | None, int]] = {hash(anchor): (None, first)}
        else:
            first = start_offset
            recent = {}
        trusted = anchor is None  # the first page is taken as it is
        stop_at: int | None = None
        while True:
            full = yield from self._pass(fetch, first, trusted, recent, stop_at)
            if full or fetch.rescan_to < 0:
                return
            fetch.progress.rescans += 1
            if fetch.progress.rescans > MAX_RESCANS:
                raise ExotelRequestError(
                    f"Exotel GET {fetch.endpoint}: contacts kept moving onto pages already read "
                    f"(sort_by={fetch.params.get('sort_by')!r}) during {MAX_RESCANS} re-reads; the "
                    "fetch cannot promise every contact, try again when the account is quieter"
                )
            self.log.warning(
                "Exotel GET %s: contacts moved onto pages already read (sort_by=%r); reading "
                "offsets 0..%d again",
                fetch.endpoint,
                fetch.params.get("sort_by"),
                fetch.rescan_to,
            )
            stop_at, fetch.rescan_to = fetch.rescan_to + STEP, -1
            first, trusted, recent = 0, True, {}

    def _pass(
        self,
        fetch: FetchState,
        start: int,
        trusted: bool,
        recent: dict[int, tuple[int | None, int]],
        stop_at: int | None,
    ) -> Generator[dict[str, Any], None, bool]:
        """One pass from ``start`` to the end (or past ``stop_at``); True when max_records is reached."""
        return (yield from _Pass(self, fetch, start, trusted, recent, stop_at).run())

    # ------------------------------------------------------------------------------------ helpers
    @staticmethod
    def _horizon(fetch: FetchState, total: int, stop_at: int | None) -> int:
        # the page at offset o is needed while position o + 1 exists (o itself is the seam)
        horizon = total - 1
        if fetch.wanted is not None:
            horizon = min(horizon, fetch.wanted - 1)
        if stop_at is not None:
            horizon = min(horizon, stop_at + 1)
        return horizon

    def _count_extra(self, fetch: FetchState) -> None:
        fetch.extra_reads += 1
        fetch.progress.rereads += 1
        if fetch.extra_reads > MAX_EXTRA_READS + fetch.pages_in_pass:
            raise ExotelRequestError(
                f"Exotel GET {fetch.endpoint}: contacts kept moving between pages "
                f"({fetch.extra_reads} pages read again); the fetch cannot promise every contact, "
                "try again when the account is quieter"
            )

    @staticmethod
    def _anchor(fetch: FetchState, page: Page, recent: Mapping[int, tuple[int | None, int]]) -> int | None:
        """Index of the rightmost anchor in ``page``, or None."""
        contacts = page.contacts
        for i in range(len(contacts) - 1, -1, -1):
            key = hash(contacts[i]["sid"])
            if fetch.immutable:
                if key in fetch.seen:
                    return i
            else:
                entry = recent.get(key)
                if entry is not None and (
                    entry[0] is None or entry[0] == fingerprint(contacts[i], fetch.sort_fields)
                ):
                    return i
        return None

    @staticmethod
    def _moved_onto_read_pages(
        fetch: FetchState, page: Page, index: int, recent: Mapping[int, tuple[int | None, int]]
    ) -> bool:
        """Mutable order: a seam that moved right by more than the new contacts it shows means
        contacts may have moved onto pages already read (the prefix needs another pass)."""
        entry = recent.get(hash(page.contacts[index]["sid"]))
        if entry is None:
            return False
        shift = page.offset + index - entry[1]
        if shift <= 0:
            return False
        unseen = sum(1 for c in page.contacts[:index] if hash(c["sid"]) not in fetch.seen)
        return shift > unseen

    def _read(self, fetch: FetchState, offset: int) -> Page:
        limit = MAX_PAGE_SIZE
        if fetch.wanted is not None:
            limit = min(limit, max(2 if offset else 1, fetch.wanted - offset))
        holder: list[Page] = []
        with fetch.lock:
            fetch.clock += 1
            sent = fetch.clock  # before the first attempt: never later than what the answer shows

        def check(body: dict[str, Any]) -> None:
            page = parse_page(body, fetch.endpoint, offset, limit)
            self._check_repeat(fetch, page)
            holder[:] = [page]

        body = self.fetch_page(fetch.endpoint, fetch.params, offset, limit, check)
        if not holder:  # a fetch_page that does not run checks
            try:
                check(body)
            except TransientError as exc:
                raise exc.error from None
        with fetch.lock:
            fetch.progress.pages += 1
            fetch.clock += 1
            holder[0].sent, holder[0].seq = sent, fetch.clock
        return holder[0]

    def _check_repeat(self, fetch: FetchState, page: Page) -> None:
        """A non-empty page equal to one read at another offset, with the same total, is either a
        server answering the wrong page or data that moved by exactly that many positions (as many
        contacts created before them as deleted after). The other offset is read again to tell:
        if it still holds the same contacts, they cannot be at both offsets — the answer is wrong."""
        if not page.contacts:
            return
        sids = tuple(c["sid"] for c in page.contacts)
        key = hash(sids)
        with fetch.lock:
            other = fetch.fingerprints.setdefault(key, (page.offset, page.total))
        if other[0] == page.offset or other[1] != page.total:
            return
        limit = len(sids)

        def parse_only(body: dict[str, Any]) -> None:
            parse_page(body, fetch.endpoint, other[0], limit)

        body = self.fetch_page(fetch.endpoint, fetch.params, other[0], limit, parse_only)
        with fetch.lock:
            fetch.progress.pages += 1
            fetch.progress.rereads += 1
        again = parse_page(body, fetch.endpoint, other[0], limit)
        if tuple(c["sid"] for c in again.contacts) == sids and again.total == page.total:
            raise transient(
                f"Exotel GET {fetch.endpoint}: the page at offset {page.offset} repeats the page at "
                f"offset {other[0]}"
            )
        with fetch.lock:  # the data moved: this is where these contacts are now
            fetch.fingerprints[key] = (page.offset, page.total)


class _Pass:
    """The loop state of one pass over the pages (``Pager._pass``): the page at ``n`` is taken
    (from the pages in hand or read now), located (anchored, or read again when stale), then either
    stepped back from (seam lost) or emitted and advanced from, prefetching ahead."""

    def __init__(
        self,
        pager: Pager,
        fetch: FetchState,
        start: int,
        trusted: bool,
        recent: dict[int, tuple[int | None, int]],
        stop_at: int | None,
    ) -> None:
        self.pager, self.fetch, self.start, self.stop_at = pager, fetch, start, stop_at
        self.trusted = trusted  # the next page is taken as it is
        self.recent = recent  # mutable orders: the last page's contacts (fingerprint, position)
        fetch.pages_in_pass = 0
        self.read: set[int] = set()
        self.put_back: set[int] = set()
        self.buffer: dict[int, Future[Page]] = {}
        concurrency = pager.concurrency
        self.pool = (
            ThreadPoolExecutor(concurrency, thread_name_prefix="exotel-page") if concurrency > 1 else None
        )
        self.n = start
        self.cursor = start + STEP  # next offset to prefetch
        self.back_origin: int | None = None
        self.back_step = STEP
        self.last_seq = 0
        self.recent_seq = 0  # when the answer ``recent`` comes from arrived

    def run(self) -> Generator[dict[str, Any], None, bool]:
        try:
            while True:
                page, index = self._located(self._take())
                if index is None:
                    self._step_back(page)
                    continue
                if (yield from self._emit(page, index)):
                    return True
                count = len(page.contacts)
                if self.n + count >= page.total or (
                    self.stop_at is not None and self.n + count - 1 >= self.stop_at
                ):
                    return False
                self._advance(page)
        finally:
            for pending in self.buffer.values():
                pending.cancel()
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)

    def _read_now(self, offset: int) -> Page:
        if self.pool is None:
            return self.pager._read(self.fetch, offset)
        return self.pool.submit(self.pager._read, self.fetch, offset).result()  # never more than concurrency

    def _take(self) -> Page:
        """The page at ``n``: from the pages in hand, or read now."""
        n, fetch = self.n, self.fetch
        future = self.buffer.pop(n, None)
        if future is not None:
            page = future.result()
        else:
            if n in self.read or n < self.start:
                self.pager._count_extra(fetch)
            else:
                fetch.pages_in_pass += 1
            page = self._read_now(n)
        self.read.add(n)
        fetch.progress.total = page.total
        fetch.progress.offset = n
        return page

    def _located(self, page: Page) -> tuple[Page, int | None]:
        """The page (read again when stale) and its anchor's index: -1 when taken as it is,
        ``None`` when it has no anchor."""
        fetch, pager = self.fetch, self.pager
        index: int | None = -1 if (self.trusted or self.n == 0) else pager._anchor(fetch, page, self.recent)
        stale_shift = (
            index is not None
            and index >= 0
            and not fetch.immutable
            and page.sent < self.recent_seq
            and pager._moved_onto_read_pages(fetch, page, index, self.recent)
        )
        if stale_shift or (index is None and (page.sent < self.last_seq or self.n in self.put_back)):
            # read before the page that precedes it (or still no anchor after re-reading what
            # precedes it): it shows the data before the change, and positions of two moments
            # cannot be compared; read it again
            self.put_back.discard(self.n)
            pager._count_extra(fetch)
            page = self._read_now(self.n)
            index = pager._anchor(fetch, page, self.recent)
        return page, index

    def _step_back(self, page: Page) -> None:
        """The seam is lost: contacts moved left past this page (deletes before it, or its anchor
        moved). Keep the page, read further back until one has an anchor."""
        n = self.n
        self.buffer[n] = _done(page)
        self.put_back.add(n)
        if self.back_origin is None:
            self.back_origin, self.back_step = n, STEP
            self.pager.log.info(
                "Exotel GET %s: page at offset %d lost its seam; re-reading before it", self.fetch.endpoint, n
            )
        self.n = max(0, self.back_origin - self.back_step)
        self.back_step *= 2

    def _emit(self, page: Page, index: int) -> Generator[dict[str, Any], None, bool]:
        """Yield the anchored page's contacts not yielded yet; True when max_records is reached."""
        fetch = self.fetch
        progress = fetch.progress
        self.back_origin = None
        self.trusted = False
        self.last_seq = max(self.last_seq, page.seq)
        if (
            not fetch.immutable
            and index >= 0
            and self.pager._moved_onto_read_pages(fetch, page, index, self.recent)
        ):
            fetch.rescan_to = max(fetch.rescan_to, page.offset + index)
        for contact in page.contacts:
            key = hash(contact["sid"])
            if key in fetch.seen:
                continue
            fetch.seen.add(key)
            yield contact
            progress.yielded += 1
            if fetch.max_records is not None and progress.yielded >= fetch.max_records:
                return True
        if not fetch.immutable:
            self.recent = {
                hash(c["sid"]): (fingerprint(c, fetch.sort_fields), self.n + i)
                for i, c in enumerate(page.contacts)
            }
            self.recent_seq = page.seq
        if fetch.on_page is not None:
            fetch.on_page(progress)
        return False

    def _advance(self, page: Page) -> None:
        """On to the next page (a page in hand before it first), prefetching ahead."""
        nxt = self.n + max(1, len(page.contacts) - 1)
        later = [o for o in self.buffer if o > self.n]
        self.n = min(nxt, min(later)) if later else nxt
        if self.pool is None:
            return
        self.cursor = max(self.cursor, self.n)
        horizon = self.pager._horizon(self.fetch, page.total, self.stop_at)
        while self.cursor < horizon and len(self.buffer) < 2 * self.pager.concurrency:
            if self.cursor not in self.buffer:
                self.buffer[self.cursor] = self.pool.submit(self.pager._read, self.fetch, self.cursor)
                self.read.add(self.cursor)
                self.fetch.pages_in_pass += 1
            self.cursor += STEP


@contextlib.contextmanager
def closing_pages(pages: Iterator[T]) -> Iterator[Iterator[T]]:
    """Close a paging iterator (and its prefetching threads) when reading stops early."""
    try:
        yield pages
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def _done(page: Page) -> Future[Page]:
    future: Future[Page] = Future()
    future.set_result(page)
    return future


__all__ = ["Check", "FetchPage", "Pager", "PagingProgress", "closing_pages", "immutable_order", "parse_page"]
