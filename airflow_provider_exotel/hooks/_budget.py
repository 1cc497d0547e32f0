"""The request budget shared by every thread of one hook (private; used by ``hooks/contacts.py``)."""

from __future__ import annotations

import threading
import time

#: Requests are paced at this fraction of a configured ``requests_per_minute``.
RATE_HEADROOM = 0.97


class RateLimiter:
    """Spaces requests evenly across all threads: no bursts, at most ``requests_per_minute``.

    Requests are paced at ``RATE_HEADROOM`` (97 %) of the budget: Exotel counts requests when
    they arrive, and network jitter can bring two evenly spaced requests closer together, so pacing
    at exactly the limit draws occasional 429s (measured: 2 per 600 requests at 1,200/min; none at
    97 %). A 429 still happens if something else spends the account's budget; it pauses every
    thread of the hook (``pause``), not just the one that got it.
    """

    def __init__(self, requests_per_minute: float | None) -> None:
        self.interval = 60.0 / (requests_per_minute * RATE_HEADROOM) if requests_per_minute else 0.0
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._paused_until = 0.0

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot, self._paused_until)
            self._next_slot = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)
