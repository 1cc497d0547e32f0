"""Progress lines in the task log (private): ``fetched 4,000 / 100,000 contacts (4%), 9.8/s, ETA …``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_provider_exotel._validation import MAX_PAGE_SIZE

#: Seconds between progress lines in the task log.
PROGRESS_INTERVAL = 5.0
#: Seconds of work after which the pace since the start counts as known even before a second line.
PACE_KNOWN_AFTER = 60.0

__all__ = ["PROGRESS_INTERVAL", "Progress", "duration"]


class Progress:
    """Logs ``<verb> 4,000 / 100,000 contacts (4%), 9.8/s, ETA 2h 43m (budget 30/min)``.

    At most every ``PROGRESS_INTERVAL`` s. The ETA appears once the pace is known — measured from
    the first line to the current one (or over a minute of work) — never on the first line, whose
    pace is mostly start-up. It is the slower of that pace and the request budget (``budget()``:
    requests per minute or None) over the remaining pages.

    :param log: the task's logger.
    :param verb: ``fetched``, ``updated``, ...
    :param total: rows expected, if known.
    :param budget: callable giving the hook's request budget per minute (or None).
    :param clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        log: Any,
        verb: str,
        total: int | None = None,
        budget: Callable[[], float | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.verb = verb
        self.total = total
        self.budget = budget
        self.clock = clock
        self.count = 0
        self.started = clock()
        self._last = self.started
        self._first_line: tuple[float, int] | None = None  # (time, count) of the first line

    def _pace(self, now: float) -> float | None:
        """Rows per second since the first line (None until the pace is known)."""
        if self._first_line is None:
            if now - self.started < PACE_KNOWN_AFTER:
                return None
            since, done = self.started, 0
        else:
            since, done = self._first_line
        if now <= since:
            return None
        return (self.count - done) / (now - since)

    def _eta(self, now: float) -> tuple[str, float | None]:
        """``(", ETA 4m 10s", rpm)`` for the remaining rows (no ETA while the pace is unknown)."""
        rpm = self.budget() if self.budget is not None else None
        if not self.total or self.count >= self.total:
            return "", rpm
        pace = self._pace(now)
        if pace is None:
            return "", rpm
        left = self.total - self.count
        eta = left / pace if pace > 0 else None
        if rpm:
            # the remaining pages (19 new rows each: pages overlap by one) at the budget
            by_budget = -(-left // (MAX_PAGE_SIZE - 1)) * 60.0 / rpm
            eta = by_budget if eta is None else max(eta, by_budget)
        return ("" if eta is None else f", ETA {duration(eta)}"), rpm

    def _line(self, extra: str = "") -> str:
        now = self.clock()
        rate = self.count / max(now - self.started, 1e-9)
        done = f"{self.count:,}"
        if self.total:
            done += f" / {self.total:,} contacts ({min(100, 100 * self.count // self.total)}%)"
        else:
            done += " contacts"
        line = f"{self.verb} {done}, {rate:,.1f}/s" if rate < 100 else f"{self.verb} {done}, {rate:,.0f}/s"
        eta, rpm = self._eta(now)
        line += eta
        if rpm and self.total and self.count < self.total:
            line += f" (budget {rpm:,.0f}/min)"
        return line + extra

    def add(self, n: int = 1, extra: str = "") -> None:
        """Count ``n`` more rows; log a line when ``PROGRESS_INTERVAL`` has passed since the last."""
        self.count += n
        now = self.clock()
        if now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self._emit(self._line(extra))
            if self._first_line is None:
                self._first_line = (now, self.count)

    def _emit(self, line: str) -> None:
        self.log.info(line)

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started


def duration(seconds: float) -> str:
    """``2h 43m``, ``4m 10s``, ``12s``."""
    s = max(round(seconds), 0)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"
