"""Exotel's per-account request budget, as the simulator enforces it (standard library only).

A fixed window of ``window`` seconds (60 at Exotel) admits ``limit`` requests of the account; windows
are aligned to the epoch, so every client of the server (threads and processes alike) shares one
counter, as at Exotel. Every answer carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (epoch seconds of the window's end) unless ``headers`` is off; a request past
the budget is refused with 429, ``Retry-After`` (seconds to the window's end) and Exotel's
``RestException`` body. Scaled-down windows (tests, benchmarks) give ``Reset`` and ``Retry-After``
with millisecond precision; 60 s windows give whole seconds as Exotel does.

``reset_format`` switches what ``X-RateLimit-Reset`` carries (servers differ): ``"epoch"`` (default,
epoch seconds), ``"epoch_ms"`` (epoch milliseconds, an integer) or ``"delta"`` (seconds until the
reset). Time is read from ``clock`` (the simulator's clock, so advancing it starts new windows).

:class:`RateLimits` holds what the simulator enforces: the older sliding per-minute limiter (no
headers) and one :class:`AccountWindow` per budget family (``"campaign"``, ``"voice"``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

#: Budget families: the campaign APIs (v2: contacts, lists, campaigns) and voice (v1: calls).
FAMILIES = ("campaign", "voice")
#: Values of ``reset_format``: epoch seconds, epoch milliseconds, seconds until the reset.
RESET_FORMATS = ("epoch", "epoch_ms", "delta")


def _seconds(value: float, whole: bool) -> str:
    if whole:
        return str(math.ceil(value))
    return f"{value:.3f}"


def check_reset_format(value: str) -> str:
    """``value`` when it is one of :data:`RESET_FORMATS`, else ``ValueError``."""
    if value not in RESET_FORMATS:
        raise ValueError(f"reset_format must be one of {RESET_FORMATS}, got {value!r}")
    return value


@dataclass
class AccountWindow:
    """Fixed-window account limit with counters shared by every client of one simulator.

    :param limit: requests admitted per window.
    :param window: window length in seconds (60 at Exotel; scale it down in tests).
    :param headers: send the ``X-RateLimit-*`` headers (off: a server that hides them).
    :param reset_format: what ``X-RateLimit-Reset`` carries, one of :data:`RESET_FORMATS`.
    :param clock: epoch seconds now (default ``time.time``).
    """

    limit: int
    window: float = 60.0
    headers: bool = True
    reset_format: str = "epoch"
    clock: Callable[[], float] = field(default=time.time, repr=False)
    #: epoch times of admitted / refused requests (for tests and benchmarks)
    admitted_at: list[float] = field(default_factory=list)
    refused_at: list[float] = field(default_factory=list)
    _index: int = -1
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {self.limit!r}")
        if not isinstance(self.window, int | float) or not self.window > 0:
            raise ValueError(f"window must be a number > 0, got {self.window!r}")
        check_reset_format(self.reset_format)

    @property
    def admitted(self) -> int:
        return len(self.admitted_at)

    @property
    def refused(self) -> int:
        return len(self.refused_at)

    def clear(self) -> None:
        """Forget the counters and the statistics (the current window starts empty)."""
        with self._lock:
            self.admitted_at.clear()
            self.refused_at.clear()
            self._index = -1
            self._count = 0

    def admit(self) -> tuple[bool, dict[str, str], bytes | None]:
        """Count one request: ``(admitted, headers to send, 429 body or None)``."""
        with self._lock:
            now = self.clock()
            index = math.floor(now / self.window)
            if index != self._index:
                self._index, self._count = index, 0
            reset = (index + 1) * self.window
            ok = self._count < self.limit
            if ok:
                self._count += 1
                self.admitted_at.append(now)
            else:
                self.refused_at.append(now)
            remaining = self.limit - self._count
        whole = self.window >= 60
        headers: dict[str, str] = {}
        if self.headers:
            headers = {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": self._reset_header(reset, now, whole),
            }
        if ok:
            return True, headers, None
        wait = max(reset - now, 0.001)
        headers["Retry-After"] = _seconds(wait, whole)
        body = {
            "RestException": {
                "Status": 429,
                "Message": f"Rate limit exceeded. Try again in {math.ceil(wait)} seconds.",
                "Code": "RATE_LIMIT_EXCEEDED",
            }
        }
        return False, headers, json.dumps(body).encode()

    def _reset_header(self, reset: float, now: float, whole: bool) -> str:
        if self.reset_format == "epoch_ms":
            return str(round(reset * 1000))
        if self.reset_format == "delta":
            return _seconds(max(reset - now, 0.0), whole)
        return str(int(reset)) if whole else f"{reset:.3f}"

    def window_counts(self) -> dict[int, int]:
        """Admitted requests per window (keyed by window index)."""
        counts: dict[int, int] = {}
        for t in list(self.admitted_at):
            index = math.floor(t / self.window)
            counts[index] = counts.get(index, 0) + 1
        return counts

    def utilisation(self) -> float:
        """Fraction of the limit used: mean admitted per window ÷ ``limit``.

        Over the complete windows between the first and the last admission (the first and last
        windows are partial); with fewer than two such windows, over the span of the admissions.
        """
        counts = self.window_counts()
        if not counts:
            return 0.0
        first, last = min(counts), max(counts)
        inner = [counts.get(i, 0) for i in range(first + 1, last)]
        if len(inner) >= 2:
            return sum(inner) / len(inner) / self.limit
        ts = self.admitted_at
        span = ts[-1] - ts[0]
        return (len(ts) - 1) / span * self.window / self.limit if span > 0 else 0.0


class MinuteLimiter:
    """A sliding 60 s window of ``per_minute`` requests (no headers; 429 with ``Retry-After``).

    :param clock: epoch seconds now.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.per_minute: int | None = None
        self._clock = clock
        self._lock = threading.Lock()
        self._window: deque[float] = deque()

    def check(self) -> int | None:
        """``None`` when the request may proceed (it is counted), else seconds until a slot frees."""
        limit = self.per_minute
        if limit is None:
            return None
        with self._lock:
            now = self._clock()
            window = self._window
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= limit:
                return max(1, math.ceil(window[0] + 60.0 - now)) if window else 60
            window.append(now)
            return None

    def clear(self) -> None:
        with self._lock:
            self._window.clear()


class RateLimits:
    """Every limit the simulator enforces: the per-minute limiter and one account window per budget
    family (``"campaign"``: v2 paths, ``"voice"``: v1 paths).

    :param clock: epoch seconds now (the simulator's clock).
    :param reset_format: what ``X-RateLimit-Reset`` carries, one of :data:`RESET_FORMATS`.
    """

    def __init__(self, clock: Callable[[], float], reset_format: str = "epoch") -> None:
        self._clock = clock
        self._reset_format = check_reset_format(reset_format)
        self.minute = MinuteLimiter(clock)
        #: account windows by budget family
        self.windows: dict[str, AccountWindow] = {}

    @property
    def reset_format(self) -> str:
        return self._reset_format

    @reset_format.setter
    def reset_format(self, value: str) -> None:
        self._reset_format = check_reset_format(value)
        for account in list(self.windows.values()):
            account.reset_format = value

    def set_window(
        self, family: str, limit: int | None, window: float, headers: bool
    ) -> AccountWindow | None:
        """Limit ``family`` to ``limit`` requests per fixed ``window`` s (``None``: no limit)."""
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
        if limit is None:
            self.windows.pop(family, None)
            return None
        account = AccountWindow(limit, float(window), headers, self._reset_format, self._clock)
        self.windows[family] = account
        return account

    def admit(self, family: str) -> tuple[int | None, dict[str, str], bytes | None]:
        """Count one request of ``family``: ``(per-minute retry or None, account headers to send,
        the account's 429 body or None)``."""
        retry = self.minute.check()
        if retry is not None:
            return retry, {}, None
        account = self.windows.get(family)
        if account is None:
            return None, {}, None
        _ok, headers, body = account.admit()
        return None, headers, body

    def clear(self) -> None:
        self.minute.clear()
        for account in list(self.windows.values()):
            account.clear()
