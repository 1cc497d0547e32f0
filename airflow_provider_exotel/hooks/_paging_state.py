"""The paging engine's vocabulary (private): page arithmetic, the state of one fetch, what an
order promises (``immutable_order``, ``sort_fields``). Used by ``_paging``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_exotel._validation import MAX_PAGE_SIZE
from airflow_provider_exotel.hooks._answers import Check

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
class FetchState:
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
    if is_member_order(endpoint):
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


def is_member_order(endpoint: str) -> bool:
    parts = endpoint.split("/")
    return len(parts) == 3 and parts[0] == "lists" and parts[2] == "contacts"


def sort_fields(endpoint: str, params: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The contact fields the order depends on (``name`` = first and last name; none for a list's
    member order); None if unknown (then the whole record must be unchanged)."""
    if is_member_order(endpoint):
        return ()
    fields: list[str] = []
    for part in str(params.get("sort_by") or "").split(","):
        name = part.partition(":")[0].strip().lower()
        if name == "name":
            fields += ["first_name", "last_name"]
        elif name:
            fields.append(name)
    return tuple(fields) or None


def fingerprint(contact: Mapping[str, Any], fields: tuple[str, ...] | None) -> int:
    """What must be unchanged for a contact to anchor a page under a mutable order: its sort key."""
    if fields is None:
        return hash(json.dumps(contact, sort_keys=True, default=str))
    return hash(json.dumps([contact.get(f) for f in fields], default=str))
