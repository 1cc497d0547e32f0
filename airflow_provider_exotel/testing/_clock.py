"""The simulator's clock: real time plus an offset that tests and the control endpoint advance.

Everything time-dependent in the simulator reads it — the ``Date`` header of every answer,
``date_created`` / ``date_updated`` of new and changed objects, the account window and the
per-minute limiter, and whatever an endpoint family computes from time (a campaign's progress) —
so a test moves the server an hour ahead with ``sim.clock.advance(3600)`` instead of waiting.
Time never goes back: ``advance`` takes a non-negative number of seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate

__all__ = ["TIMESTAMP_FORMAT", "SimClock"]

#: How the simulator writes timestamps in JSON (``date_created``, ``date_updated``).
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class SimClock:
    """Real time plus an offset.

    :param time_source: the real clock (``time.time``); a test may hand in its own.
    """

    def __init__(self, time_source: Callable[[], float] = time.time) -> None:
        self._time_source = time_source
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        """Seconds the clock is ahead of the real clock."""
        return self._offset

    def now(self) -> float:
        """The simulator's current time in epoch seconds."""
        return self._time_source() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` ahead (a finite number >= 0); return the new :meth:`now`."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"seconds must be a number, not {type(seconds).__name__}")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        with self._lock:
            self._offset += float(seconds)
        return self.now()

    def iso(self) -> str:
        """:meth:`now` as ``YYYY-MM-DDTHH:MM:SSZ`` (the simulator's JSON timestamps)."""
        return datetime.fromtimestamp(self.now(), UTC).strftime(TIMESTAMP_FORMAT)

    def http_date(self, timestamp: float | None = None) -> str:
        """``timestamp`` (default :meth:`now`) as an RFC 7231 date (``Sun, 06 Dec 2026 14:00:00 GMT``)."""
        return formatdate(self.now() if timestamp is None else timestamp, usegmt=True)
