"""The one paging engine, shared by every endpoint that pages (private; used by ``hooks/contacts.py``).

The pager does not speak HTTP: it is given
``fetch_page(endpoint, params, offset, limit, check) -> body`` (the hook's request under its retry
policy and rate budget; ``check(body)`` runs inside the retry loop and raises
:class:`~airflow_provider_exotel.hooks._retry.TransientError` for an answer that cannot be right, so
such an answer is retried like a garbled body) and turns pages into a lazy iterator of contacts.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_exotel._validation import MAX_PAGE_SIZE
from airflow_provider_exotel.exceptions import ExotelRequestError
from airflow_provider_exotel.hooks._answers import Check, Page, parse_page, transient
from airflow_provider_exotel.hooks._retry import TransientError

#: Consecutive pages overlap by one contact: page ``k`` starts at ``k * STEP``.
STEP = MAX_PAGE_SIZE - 1
#: Passes over the prefix a fetch under a mutable order (``sort_by=name`` …) may make again after
#: seeing contacts move onto pages it has already read.
MAX_RESCANS = 3
#: Pages read again because of drift, beyond this many plus the pages of one pass, fail the fetch.
MAX_EXTRA_READS = 50


class FetchPage(Protocol):
    """``fetch_page(endpoint, params, offset, limit, check=None) -> body``: one page request under
    the hook's retry policy and rate budget; ``check(body)`` runs inside the retry loop."""

    def __call__(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        offset: int,
        limit: int,
        check: Check | None = None,
        /,
    ) -> dict[str, Any]: ...


@dataclass
class PagingProgress:
    """Counts of one fetch, for progress lines and ETAs (``Pager.progress``, ``on_page``).

    ``total``: the latest ``metadata.total`` seen (``None`` before the first page); ``pages``: page
    answers received (re-reads included); ``rereads``: pages read again because the data moved;
    ``yielded``: contacts yielded so far; ``offset``: the offset of the last page processed;
    ``rescans``: passes made again over already-read pages (mutable sort orders only).
    """

    endpoint: str
    total: int | None = None
    pages: int = 0
    rereads: int = 0
    yielded: int = 0
    offset: int = 0
    rescans: int = 0

    @property
    def pages_left(self) -> int | None:
        """Pages still to read if nothing moves (``None`` until the total is known)."""
        if self.total is None:
            return None
        # the page at ``offset`` covers positions offset..offset+19; the next starts at offset+19
        return max(0, -(-(self.total - self.offset - MAX_PAGE_SIZE) // STEP))


@dataclass
class _Fetch:
    """State shared by the passes of one ``paginate`` call."""

    endpoint: str
    params: dict[str, Any]
    immutable: bool
    max_records: int | None
    wanted: int | None  # positions to read from offset 0 when max_records is set
    progress: PagingProgress
    sort_fields: tuple[str, ...] | None
    on_page: Callable[[PagingProgress], None] | None
    seen: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fingerprints: dict[int, tuple[int, int]] = field(default_factory=dict)
    rescan_to: int = -1
    extra_reads: int = 0
    pages_in_pass: int = 0
    clock: int = 0  # ticks at every page request sent and every answer received


def immutable_order(endpoint: str, params: Mapping[str, Any]) -> bool:
    """Whether contacts keep their relative order while they exist (any contact yielded anchors).

    True for ``date_created`` order (the default, asc or desc, filters included). False for any
    other ``sort_by`` (a field an update can change) and for a list's own member order (a member
    that leaves and joins again moves to the end, past members not read yet).
    """
    if _is_member_order(endpoint):
        return False
    sort_by = params.get("sort_by")
    if sort_by is None or not str(sort_by).strip():
        return True
    field_name, _, direction = str(sort_by).strip().partition(":")
    return (
        "," not in sort_by
        and field_name.strip().lower() == "date_created"
        and direction.strip().lower() in ("", "asc", "desc")
    )


def _is_member_order(endpoint: str) -> bool:
    parts = endpoint.split("/")
    return len(parts) == 3 and parts[0] == "lists" and parts[2] == "contacts"


def sort_fields(endpoint: str, params: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The contact fields the order depends on (``name`` = first and last name; none for a list's
    member order); None if unknown (then the whole record must be unchanged)."""
    if _is_member_order(endpoint):
        return ()
    fields: list[str] = []
    for part in str(params.get("sort_by") or "").split(","):
        name = part.partition(":")[0].strip().lower()
        if name == "name":
            fields += ["first_name", "last_name"]
        elif name:
            fields.append(name)
    return tuple(fields) or None


def _fingerprint(contact: Mapping[str, Any], fields: tuple[str, ...] | None) -> int:
    """What must be unchanged for a contact to anchor a page under a mutable order: its sort key."""
    if fields is None:
        return hash(json.dumps(contact, sort_keys=True, default=str))
    return hash(json.dumps([contact.get(f) for f in fields], default=str))


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

        A generator: nothing is requested until the caller starts iterating; closing it (or
        dropping it) stops the page threads. Up to ``concurrency`` pages are in flight and at most
        ``2 × concurrency`` are held, so memory stays flat whatever the total (the only thing that
        grows is the set of 64-bit hashes of the sids yielded: a few MB per 100k contacts).

        **Guarantee.** Page ``k`` is read at offset ``19·k`` with limit 20, so it should begin with
        the contact page ``k-1`` ended with (the *seam*). A page is used only when it contains an
        *anchor*, a contact known to lie at or before everything still to be yielded; all its
        contacts not yielded yet are then yielded. Under ``date_created`` order (the default, asc
        or desc, with or without filters) contacts never overtake each other, so any contact already
        yielded is an anchor: insertions cost nothing, and a page that lost its seam (deletes
        before it) is followed by reads at lower offsets (19, 38, 76, … back) until one holds an
        anchor, then forward again to the pages already in hand (a page in hand whose request went
        out before the answer of the page now preceding it arrived is read again instead; under a
        mutable order below, likewise before its seam's move is believed). Hence every contact
        that exists for the whole fetch is yielded exactly once, and contacts created or deleted
        during it appear at most once; appends never cost a re-read, and a growing total just means
        more pages.

        Under any other ``sort_by`` (a field an update can change) and a list's member order (a
        member that leaves and joins again moves to the end), an anchor must be one of the last
        page's contacts with its sort key unchanged, and a seam that moved right by more than the new
        contacts it shows means something may have moved onto pages already read: those are read
        again (at most ``MAX_RESCANS`` times, then :class:`ExotelRequestError`). A list's member
        order is exact (nothing can move onto read pages). Under another ``sort_by`` it is exact
        **except** when changes between two reads cancel out at every seam — e.g. one contact
        renamed onto a read page while another on a read page is deleted or renamed past the reading
        position: offset paging cannot see those.

        An answer that cannot be right (see :func:`parse_page`) is retried like a garbled body and
        raises :class:`ExotelRequestError` if it persists; data that keeps moving so that more than
        ``MAX_EXTRA_READS`` + one pass of pages are read again raises too. Never a silent partial
        result.

        :param endpoint: path below the account, e.g. ``"contacts"``.
        :param params: query parameters (filters, ``sort_by``); offset and limit are added.
        :param max_records: stop after this many contacts (``None``: all).
        :param start_offset: resume: the offset of the first contact not yet written.
        :param anchor: resume: the sid of the last contact already written; the first read is at
            ``start_offset - 1`` and must contain it (re-anchored like a broken seam if not).
            Without it, reading simply starts at ``start_offset``.
        :param seen: resume: sids already written; never yielded again.
        :param on_page: called with the fetch's :class:`PagingProgress` after each page.
        """
        progress = PagingProgress(endpoint)
        self.progress = progress
        fetch = _Fetch(
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
    def _paginate(self, fetch: _Fetch, start_offset: int, anchor: str | None) -> Iterator[dict[str, Any]]:
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
        fetch: _Fetch,
        start: int,
        trusted: bool,
        recent: dict[int, tuple[int | None, int]],
        stop_at: int | None,
    ) -> Generator[dict[str, Any], None, bool]:
        """One pass from ``start`` to the end (or past ``stop_at``); True when max_records is reached."""
        fetch.pages_in_pass = 0
        read: set[int] = set()
        put_back: set[int] = set()
        buffer: dict[int, Future[Page]] = {}
        pool = (
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="exotel-page")
            if self.concurrency > 1
            else None
        )

        def read_now(offset: int) -> Page:
            if pool is None:
                return self._read(fetch, offset)
            return pool.submit(self._read, fetch, offset).result()  # never more than concurrency

        try:
            n = start
            cursor = start + STEP  # next offset to prefetch
            back_origin: int | None = None
            last_seq = 0
            recent_seq = 0  # when the answer ``recent`` comes from arrived
            back_step = STEP
            while True:
                future = buffer.pop(n, None)
                if future is not None:
                    page = future.result()
                else:
                    if n in read or n < start:
                        self._count_extra(fetch)
                    else:
                        fetch.pages_in_pass += 1
                    page = read_now(n)
                read.add(n)
                progress = fetch.progress
                progress.total = page.total
                progress.offset = n
                anchored = trusted or n == 0
                index = -1
                if not anchored:
                    found = self._anchor(fetch, page, recent)
                    if found is not None:
                        anchored, index = True, found
                stale_shift = (
                    anchored
                    and index >= 0
                    and not fetch.immutable
                    and page.sent < recent_seq
                    and self._moved_onto_read_pages(fetch, page, index, recent)
                )
                if stale_shift or (not anchored and (page.sent < last_seq or n in put_back)):
                    # read before the page that precedes it (or still no anchor after re-reading
                    # what precedes it): it shows the data before the change, and positions of
                    # two moments cannot be compared; read it again
                    put_back.discard(n)
                    anchored, index = False, -1
                    self._count_extra(fetch)
                    page = read_now(n)
                    found = self._anchor(fetch, page, recent)
                    if found is not None:
                        anchored, index = True, found
                if not anchored:
                    # the seam is lost: contacts moved left past this page (deletes before it, or
                    # its anchor moved). Keep the page, read further back until one has an anchor.
                    buffer[n] = _done(page)
                    put_back.add(n)
                    if back_origin is None:
                        back_origin, back_step = n, STEP
                        self.log.info(
                            "Exotel GET %s: page at offset %d lost its seam; re-reading before it",
                            fetch.endpoint,
                            n,
                        )
                    n = max(0, back_origin - back_step)
                    back_step *= 2
                    continue
                back_origin = None
                trusted = False
                last_seq = max(last_seq, page.seq)
                if (
                    not fetch.immutable
                    and index >= 0
                    and self._moved_onto_read_pages(fetch, page, index, recent)
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
                    recent = {
                        hash(c["sid"]): (_fingerprint(c, fetch.sort_fields), n + i)
                        for i, c in enumerate(page.contacts)
                    }
                    recent_seq = page.seq
                if fetch.on_page is not None:
                    fetch.on_page(progress)
                count = len(page.contacts)
                if n + count >= page.total or (stop_at is not None and n + count - 1 >= stop_at):
                    return False
                nxt = n + max(1, count - 1)
                later = [o for o in buffer if o > n]
                if later:
                    nxt = min(nxt, min(later))
                n = nxt
                if pool is not None:
                    cursor = max(cursor, n)
                    horizon = self._horizon(fetch, page.total, stop_at)
                    while cursor < horizon and len(buffer) < 2 * self.concurrency:
                        if cursor not in buffer:
                            buffer[cursor] = pool.submit(self._read, fetch, cursor)
                            read.add(cursor)
                            fetch.pages_in_pass += 1
                        cursor += STEP
        finally:
            for pending in buffer.values():
                pending.cancel()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------------------------ helpers
    @staticmethod
    def _horizon(fetch: _Fetch, total: int, stop_at: int | None) -> int:
        # the page at offset o is needed while position o + 1 exists (o itself is the seam)
        horizon = total - 1
        if fetch.wanted is not None:
            horizon = min(horizon, fetch.wanted - 1)
        if stop_at is not None:
            horizon = min(horizon, stop_at + 1)
        return horizon

    def _count_extra(self, fetch: _Fetch) -> None:
        fetch.extra_reads += 1
        fetch.progress.rereads += 1
        if fetch.extra_reads > MAX_EXTRA_READS + fetch.pages_in_pass:
            raise ExotelRequestError(
                f"Exotel GET {fetch.endpoint}: contacts kept moving between pages "
                f"({fetch.extra_reads} pages read again); the fetch cannot promise every contact, "
                "try again when the account is quieter"
            )

    @staticmethod
    def _anchor(fetch: _Fetch, page: Page, recent: Mapping[int, tuple[int | None, int]]) -> int | None:
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
                    entry[0] is None or entry[0] == _fingerprint(contacts[i], fetch.sort_fields)
                ):
                    return i
        return None

    @staticmethod
    def _moved_onto_read_pages(
        fetch: _Fetch, page: Page, index: int, recent: Mapping[int, tuple[int | None, int]]
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

    def _read(self, fetch: _Fetch, offset: int) -> Page:
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

    def _check_repeat(self, fetch: _Fetch, page: Page) -> None:
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


def _done(page: Page) -> Future[Page]:
    future: Future[Page] = Future()
    future.set_result(page)
    return future


__all__ = ["Check", "Pager", "PagingProgress", "immutable_order", "parse_page"]
