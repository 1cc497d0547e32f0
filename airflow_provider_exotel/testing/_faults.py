"""Injected faults: queued (FIFO), persistent ("every request") and per-item, thread-safe.

Request fault kinds (:data:`FAULT_KINDS`): ``"429"``, ``"500"``, ``"503"``, ``"504"``, ``"401"``
or any 3-digit status (an Exotel error envelope with that status), ``"502_html"`` / ``"html_200"``
(an HTML page), ``"reset"`` (TCP RST, no answer), ``"reset_after_apply"`` (the request is applied,
then RST), ``"slow"`` (stall ``delay`` s, default 5, then answer), ``"truncated_json"`` (half a
body) and the page faults of ``testing/_drift.py``. Per-item faults answer one item of a bulk
request (keyed by sid, number or ``"<kind>:<key>"``) with a status, without applying it.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from airflow_provider_exotel.testing._drift import PAGE_FAULT_KINDS
from airflow_provider_exotel.testing._requestlog import matches

__all__ = ["AUTO", "FAULT_KINDS", "Fault", "FaultBook"]

#: ``Fault.retry_after`` default: 1 s for ``"429"``, no header for other kinds.
AUTO = "auto"

#: Named fault kinds. Any 3-digit status string (``"400"``, ``"403"``, ...) is accepted as well
#: and answered with an Exotel-style error envelope carrying that status.
FAULT_KINDS = (
    frozenset(
        {
            "429",
            "500",
            "502_html",
            "503",
            "504",
            "401",
            "reset",
            "reset_after_apply",
            "slow",
            "truncated_json",
            "html_200",
        }
    )
    | PAGE_FAULT_KINDS
)


@dataclass(frozen=True)
class Fault:
    """One injected fault.

    ``kind`` is one of :data:`FAULT_KINDS` or a 3-digit status string.
    ``retry_after``: seconds for the ``Retry-After`` header (a number is sent as an integer, rounded
    up; any other string is sent verbatim); ``"auto"`` (default) means 1 for ``"429"`` and no header
    for other kinds; ``None`` means no header.
    ``delay``: seconds to stall for ``"slow"`` (default 5).
    """

    kind: str
    retry_after: float | str | None = AUTO
    delay: float | None = None

    def __post_init__(self) -> None:
        kind = str(self.kind)
        object.__setattr__(self, "kind", kind)
        if kind not in FAULT_KINDS and not (len(kind) == 3 and kind.isdigit()):
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")

    @classmethod
    def coerce(cls, value: Fault | str | int, retry_after: float | str | None = AUTO) -> Fault:
        """``value`` as a :class:`Fault`; a ``retry_after`` other than ``"auto"`` replaces its own."""
        fault = value if isinstance(value, Fault) else cls(str(value))
        if retry_after != AUTO:
            fault = cls(fault.kind, retry_after, fault.delay)
        return fault

    def retry_after_header(self) -> str | None:
        ra = self.retry_after
        if isinstance(ra, str) and ra != AUTO:
            return ra  # sent verbatim (HTTP-date, fractional or bogus values for client tests)
        if ra == AUTO:
            ra = 1 if self.kind == "429" else None
        if ra is None:
            return None
        return str(max(0, math.ceil(float(ra))))


_Entry = tuple[Fault, str | None, str | None]  # fault, method, path suffix


class FaultBook:
    """The faults waiting for requests: a FIFO queue, one persistent fault, per-item codes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Entry] = []
        self._every: _Entry | None = None
        self._items: dict[str, deque[int]] = {}

    def add(self, faults: Iterable[Fault], method: str | None, path_endswith: str | None) -> None:
        """Queue faults; each later matching request consumes the next one."""
        with self._lock:
            for f in faults:
                self._queue.append((f, method.upper() if method else None, path_endswith))

    def fail_every(self, fault: Fault, method: str | None, path_endswith: str | None) -> None:
        """Every matching request (after the queued faults) fails with ``fault`` until cleared."""
        with self._lock:
            self._every = (fault, method.upper() if method else None, path_endswith)

    def add_items(self, faults: dict[str, Iterable[int]], prefix: str = "") -> None:
        """Queue status codes per item key (``prefix + key``)."""
        with self._lock:
            for key, codes in faults.items():
                self._items.setdefault(prefix + key, deque()).extend(int(c) for c in codes)

    def pop_item(self, key: str) -> int | None:
        """The next queued code for an item key, or ``None``."""
        with self._lock:
            codes = self._items.get(key)
            if not codes:
                return None
            code = codes.popleft()
            if not codes:
                del self._items[key]
            return code

    def next_for(self, method: str, path: str) -> Fault | None:
        """The fault a request meets: the first matching queued one (consumed), else the persistent one."""
        with self._lock:
            for i, (fault, m, suffix) in enumerate(self._queue):
                if matches(m, suffix, method, path):
                    del self._queue[i]
                    return fault
            if self._every is not None:
                fault, m, suffix = self._every
                if matches(m, suffix, method, path):
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._every = None
            self._items.clear()

    @property
    def pending(self) -> int:
        """Queued (not yet consumed) request faults."""
        with self._lock:
            return len(self._queue)
