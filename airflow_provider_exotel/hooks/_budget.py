"""The request budget shared by every thread of one hook (private; used by ``hooks/contacts.py``).

It decides WHEN a request may go out; concurrency (the pager's, the bulk update's) only bounds how
many are in flight. Three sources, the tightest wins:

- **The account's own counters.** Exotel announces its budget on every answer:
  ``X-RateLimit-Limit`` (requests per window), ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``
  (epoch seconds when the window ends). The budget never sends while the window is spent, and
  spreads what remains over the time left. Other clients of the account (other processes, mapped
  tasks, other DAGs) show up as the server's ``Remaining`` falling faster than our own requests
  explain; each client measures its *share* of that consumption and paces at
  ``share × remaining ÷ time left``, so together they spend what remains evenly over the window and
  converge on the account's budget with no shared store and no configuration.
- **``requests_per_minute``** (argument or connection extra): a fixed cap, paced at 97 % of it.
- **What 429s teach** when the server sends no headers: after the first 429 the budget estimates
  the server's rate from what got through between two refusals (plus their ``Retry-After``) and
  paces just under it, creeping up slowly and backing off at the next 429 (AIMD).

Consecutive 429s (no success between them) pause the hook for at least ``BACKOFF_FLOOR`` seconds,
doubling up to ``BACKOFF_CAP``, whatever ``Retry-After`` says: a server answering 429 with
``Retry-After: 0`` forever gets a handful of requests, not a hot loop. One request's wait is bounded
by :class:`RateLimitWait` (``rate_limit_wait``, the elapsed time since the request's first 429).

``X-RateLimit-Reset`` is read as epoch seconds, epoch milliseconds (above ``RESET_MS_ABOVE``) or
seconds until the reset (below ``RESET_DELTA_BELOW``). Clock handling: ``Reset`` is converted to a
local monotonic deadline at the moment the answer arrives; a server clock that differs from ours is
corrected with the ``Date`` header when they differ by more than 2 s, and a ``Reset`` that still
looks wrong (past, or more than an hour away) is replaced by the window length learned from
successive windows (a minute before that, Exotel's window).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

from airflow_provider_exotel.hooks._retry import parse_retry_after

#: Requests are paced at this fraction of a configured ``requests_per_minute`` / a learned rate.
RATE_HEADROOM = 0.97
#: Exotel's window when nothing better is known.
DEFAULT_WINDOW = 60.0
#: Shortest window assumed before two windows were seen (a first answer may come just before a reset).
MIN_WINDOW = 1.0
#: A ``Reset`` further away than this is not believed.
MAX_RESET = 3600.0
#: Below this share of the account's consumption, other clients are about.
SHARED = 0.9
#: Longest single sleep while waiting for a slot (threads re-check the budget at least this often).
POLL = 0.25
#: Learned rate: multiplicative decrease at a 429, additive increase per successful request.
DECREASE = 0.9
INCREASE_PER_REQUEST = 0.0005
#: Consecutive 429s: the first pauses at least this long, each next one twice as long, up to the cap.
BACKOFF_FLOOR = 0.25
BACKOFF_CAP = 60.0
#: ``X-RateLimit-Reset`` above this is epoch milliseconds; below ``RESET_DELTA_BELOW``, seconds until it.
RESET_MS_ABOVE = 1e11
RESET_DELTA_BELOW = 1e8


class BudgetWaitTooLong(Exception):
    """The budget is spent for longer than the caller may wait (``rate_limit_wait``).

    :param wait: seconds until the budget frees up (as far as known).
    :param reason: why it is spent.
    :param exhausted: ``rate_limit_wait`` has passed (the server still refuses), as opposed to a
        pause longer than what is left of it.
    """

    def __init__(self, wait: float, reason: str, *, exhausted: bool = False) -> None:
        super().__init__(reason)
        self.wait = wait
        self.reason = reason
        self.exhausted = exhausted

    def explain(self, rate_limit_wait: float, waited: float) -> str:
        """What happened, for the error message: ``"…, past rate_limit_wait=… s (waited … s)"``."""
        limit = f"rate_limit_wait={rate_limit_wait:g} s (waited {waited:.1f} s)"
        if self.exhausted:
            return f"still refused after {limit}"
        return f"the account's request budget frees up in {self.wait:.1f} s, past {limit}"


def parse_rate_headers(headers: Mapping[str, str]) -> tuple[int | None, float, float] | None:
    """``(limit, remaining, reset)`` from ``X-RateLimit-*`` headers, or None when absent/garbled.

    ``reset`` is the header's number as sent (see :func:`read_reset` for its three forms).
    """
    remaining = _number(headers.get("X-RateLimit-Remaining"))
    reset = _number(headers.get("X-RateLimit-Reset"))
    if remaining is None or reset is None or remaining < 0:
        return None
    limit = _number(headers.get("X-RateLimit-Limit"))
    return (int(limit) if limit is not None and limit >= 1 else None), remaining, reset


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def read_reset(reset: float, wall: float, skew: float, raw: str) -> tuple[float, float, float]:
    """``(window id, seconds until the reset, tolerance)`` from an ``X-RateLimit-Reset`` value.

    Epoch milliseconds (above ``RESET_MS_ABOVE``) and epoch seconds are exact window ids, measured
    on the server's clock (``wall + skew``). Seconds until the reset (below ``RESET_DELTA_BELOW``)
    give an id estimated on our clock: answers of one window differ by their latency and rounding,
    so ids within ``tolerance`` (half a window at least, see ``RequestBudget``) are one window.

    :param reset: the header's number.
    :param wall: our epoch time now.
    :param skew: the server's clock minus ours.
    :param raw: the header as sent (its precision decides the tolerance of a delta).
    """
    if reset > RESET_MS_ABOVE:
        reset /= 1000.0
    elif reset < RESET_DELTA_BELOW:
        whole = "." not in raw and "e" not in raw.lower()
        return wall + reset, max(reset, 0.001), 1.5 if whole else 0.25
    return reset, reset - (wall + skew), 1e-6


class RequestBudget:
    """When the next request of a hook may go out (thread-safe; one per hook).

    :param requests_per_minute: fixed cap (None: none), paced at ``RATE_HEADROOM`` of it.
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.requests_per_minute = requests_per_minute
        self._cap_interval = 60.0 / (requests_per_minute * RATE_HEADROOM) if requests_per_minute else 0.0
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent = 0  # requests sent (sequence numbers)
        self._responses = 0
        self._last_sent = -math.inf
        self._paused_until = -math.inf
        self._paused_reason = ""
        # the account's window, from headers
        self.limit: int | None = None
        self._remaining: float | None = None  # server's remaining now, estimated
        self._reset_at: float | None = None  # monotonic time the window ends
        self._window_id: float | None = None  # Reset value of the known window
        self._stale_upto = -math.inf  # answers of windows up to this Reset are stale
        self._window_len: float | None = None  # from two successive windows
        self._window_guess = 0.0  # the longest time-to-reset seen
        self._skew = 0.0
        self._share = 1.0
        self._ours_in_window = 0  # our answers counted in the current window
        self._others_rate = 0.0  # other clients' requests per second, measured
        self._observed_at = 0.0  # when _remaining was last set from an answer
        # learned without headers
        self._learned: float | None = None  # requests per second
        self._started: float | None = None
        self._ok_since_event = 0
        self._last_event: float | None = None  # time the last 429 said the server frees up
        # consecutive 429s (back-off)
        self._strikes = 0
        self._strike_seq = 0  # requests sent when the last strike counted: later ones are new

    def now(self) -> float:
        """The budget's clock (monotonic seconds; injected in tests)."""
        return self._clock()

    # ------------------------------------------------------------------ what is known
    @property
    def window(self) -> float:
        """The account's window length in seconds, as far as it is known."""
        if self._window_len:
            return self._window_len
        return max(self._window_guess, MIN_WINDOW) if self._window_guess > 0 else DEFAULT_WINDOW

    def requests_per_minute_known(self) -> float | None:
        """The tightest known budget in requests per minute (cap, announced or learned), or None."""
        with self._lock:
            candidates = []
            if self.requests_per_minute:
                candidates.append(float(self.requests_per_minute))
            if self.limit is not None:
                candidates.append(self.limit * 60.0 / self.window)
            if self._learned is not None:
                candidates.append(self._learned * 60.0)
            return min(candidates) if candidates else None

    @property
    def share(self) -> float:
        """Our measured share of the account's consumption in the current window (1.0 = alone)."""
        return self._share

    # ------------------------------------------------------------------ sending
    def acquire(self, max_wait: float = math.inf) -> tuple[int, float]:
        """Block until a request may go out; return ``(sequence number, seconds waited for a spent budget)``.

        Waiting for a spent budget (the window's ``Remaining`` is 0, or a 429 paused the hook) is
        bounded by ``max_wait``: past it :class:`BudgetWaitTooLong` is raised without sleeping.
        Ordinary pacing (spreading what remains) is not counted.
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._roll(now)
                slot, spent_until, reason = self._next_slot(now)
                if slot <= now:
                    self._sent += 1
                    self._last_sent = now
                    if self._remaining is not None:
                        self._remaining -= 1
                    if self._started is None:
                        self._started = now
                    return self._sent, waited
            if spent_until > now and waited + (spent_until - now) > max_wait:
                raise BudgetWaitTooLong(spent_until - now, reason)
            nap = min(slot - now, POLL)
            self._sleep(nap)
            if spent_until > now:
                waited += nap

    def _margin(self) -> float:
        return min(1.0, 0.02 * self.window)

    def _roll(self, now: float) -> None:
        """The known window has ended: assume a fresh one until an answer says otherwise."""
        if self._reset_at is None or now < self._reset_at + self._margin():
            return
        if self._window_id is not None:
            self._stale_upto = max(self._stale_upto, self._window_id)
        self._remaining = float(self.limit) if self.limit is not None else None
        self._observed_at = now
        if self._reset_at <= now:
            self._reset_at += math.ceil((now - self._reset_at) / self.window + 1e-9) * self.window
        self._ours_in_window = 0

    def _next_slot(self, now: float) -> tuple[float, float, str]:
        """(earliest send time, end of a spent-budget wait or -inf, why)."""
        slot = max(now, self._last_sent + self._cap_interval)
        spent_until = -math.inf
        reason = ""
        if self._paused_until > now:
            spent_until, reason = self._paused_until, self._paused_reason
        if self._remaining is not None and self._reset_at is not None:
            # what other clients spent since the last answer, at the rate they were measured at
            remaining = self._remaining - self._others_rate * max(now - self._observed_at, 0.0)
            # with other clients about, leave the window's last request to them: our view of the
            # counter is one answer old, and two clients spending the same last request means a 429
            reserve = 1.0 if self._share < SHARED else 0.0
            if remaining < 1 + reserve:
                end = self._reset_at + self._margin()
                if end > spent_until:
                    spent_until = end
                    reason = "X-RateLimit-Remaining is 0"
            else:
                usable = max(remaining * self._share, 1.0)
                pace = max(self._reset_at - self._last_sent, 0.0) / (usable + 1.0)
                slot = max(slot, self._last_sent + pace)
        elif self._learned is not None:
            slot = max(slot, self._last_sent + 1.0 / self._learned)
        if self._strikes:  # refused and not yet answered otherwise: one request at a time
            slot = max(slot, self._last_sent + BACKOFF_FLOOR)
        return max(slot, spent_until), spent_until, reason

    # ------------------------------------------------------------------ answers
    def observe(self, seq: int, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one answer (any status) to request number ``seq``."""
        parsed = parse_rate_headers(headers)
        with self._lock:
            self._responses += 1
            if status < 400 and seq > self._strike_seq:
                self._strikes = 0  # a success sent after the last 429: the back-off starts over
            if parsed is None:
                if status < 400 and self._learned is not None:
                    self._ok_since_event += 1
                    self._learned *= 1.0 + INCREASE_PER_REQUEST
                elif status < 400:
                    self._ok_since_event += 1
                return
            self._observe_window(seq, parsed, headers.get("Date"), headers.get("X-RateLimit-Reset", ""))

    def _observe_window(
        self, seq: int, parsed: tuple[int | None, float, float], date: str | None, raw_reset: str
    ) -> None:
        limit, remaining, reset = parsed
        now = self._clock()
        wall = self._wall()
        if date:
            try:
                server_now = parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError, IndexError):
                server_now = None
            if server_now is not None:
                skew = server_now - wall
                self._skew = skew if abs(skew) > 2.0 else 0.0
        reset_epoch, reset_in, tolerance = read_reset(reset, wall, self._skew, raw_reset)
        if tolerance > 1e-6:  # an estimated id: one window is anything within half of one
            tolerance = max(tolerance, 0.5 * self.window)
        if not 0.0 < reset_in <= MAX_RESET:
            reset_in = self.window  # Reset looks off: trust Remaining and a window from now
        if reset_epoch <= self._stale_upto + tolerance:
            return  # an answer from a window we already left
        if limit is not None:
            self.limit = limit
        self._window_guess = max(self._window_guess, reset_in)
        later_sends = self._sent - seq  # ours, sent after this one: not in this answer's count
        estimate = remaining - later_sends
        if self._window_id is None or reset_epoch > self._window_id + tolerance:
            if self._window_id is not None:
                gap = reset_epoch - self._window_id
                self._window_len = gap if self._window_len is None else min(self._window_len, gap)
                self._stale_upto = max(self._stale_upto, self._window_id)
            self._window_id = reset_epoch
            self._remaining = estimate
            self._ours_in_window = 0
        elif reset_epoch < self._window_id - tolerance:
            return
        else:
            self._remaining = estimate if self._remaining is None else min(self._remaining, estimate)
        self._observed_at = now
        self._reset_at = now + reset_in
        self._ours_in_window += 1
        self._measure_others(remaining, now)

    def _measure_others(self, remaining: float, now: float) -> None:
        """Our share of the window's spending so far, and the other clients' rate, from the counter."""
        if self.limit is None or self._reset_at is None:
            return
        spent = self.limit - remaining  # by everyone, this window
        if spent < 1:
            return
        ours = min(self._ours_in_window, spent)
        weight = 0.7 if spent >= 3 else 0.3
        measured = min(1.0, max(0.05, ours / spent))
        self._share = (1 - weight) * self._share + weight * measured
        if self._window_len is None:
            return  # where the window started is a guess until two windows were seen
        elapsed = max(now - (self._reset_at - self._window_len), 0.1 * self._window_len)
        # others cannot sustain more than the budget; a burst at the window's start is no rate
        others = min((spent - ours) / elapsed, 2.0 * self.limit / self._window_len)
        self._others_rate = (1 - weight) * self._others_rate + weight * others

    def on_429(
        self,
        seq: int,
        retry_after: float | None,
        headers: Mapping[str, str],
        deadline: float = math.inf,
    ) -> float:
        """A 429 to request ``seq``: pause every thread; returns the pause in seconds.

        With headers the pause lasts until the window resets (or ``Retry-After``, if longer); else
        ``Retry-After`` (1 s when absent) and the rate learned so far is lowered (see the module
        docstring). Either way consecutive 429s pause at least the back-off (``BACKOFF_FLOOR``,
        doubling, capped at ``BACKOFF_CAP`` and by ``deadline``, a time on the budget's clock).
        """
        with self._lock:
            now = self._clock()
            if self._reset_at is not None and parse_rate_headers(headers) is not None:
                wait = max(self._reset_at + self._margin() - now, retry_after or 0.0, 0.0)
                self._remaining = 0.0
            else:
                self._learn_from_429(now, retry_after if retry_after is not None else 1.0)
                wait = retry_after or 0.0
            if seq > self._strike_seq:  # sent after the last 429 counted: a new refusal
                self._strikes += 1
                self._strike_seq = self._sent
            # our own pause (the server named none, or a short one) never outlasts the deadline
            backoff = BACKOFF_FLOOR * 2.0 ** min(self._strikes - 1, 16)
            if retry_after is None:
                backoff = max(backoff, 1.0)
            wait = max(wait, min(backoff, BACKOFF_CAP, max(deadline - now, 0.0)))
            self._paused_until = max(self._paused_until, now + wait)
            self._paused_reason = "the account's request budget is spent (HTTP 429)"
            return wait

    def _learn_from_429(self, now: float, wait: float) -> None:
        frees_at = now + wait
        if self._last_event is not None and now < self._last_event:
            return  # another 429 of the same refusal (requests that were in flight together)
        if self._last_event is None:
            span = frees_at - (self._started if self._started is not None else now)
        else:
            span = frees_at - self._last_event
        if span > 0 and self._ok_since_event > 0:
            estimate = RATE_HEADROOM * self._ok_since_event / span
            if self._learned is None:
                self._learned = estimate
            else:
                self._learned = min(self._learned * DECREASE, max(estimate, self._learned * 0.25))
        elif self._learned is not None:
            self._learned *= DECREASE
        self._last_event = frees_at
        self._ok_since_event = 0


class RateLimitWait:
    """One request's wait for the account's budget, bounded by ``rate_limit_wait``.

    Counted: the time waited for a spent budget before the request's first 429, then all the time
    since that 429 (re-sends, pauses, pacing), whatever each ``Retry-After`` said. Past
    ``rate_limit_wait`` — or at once, when a pause is longer than what is left of it —
    :class:`BudgetWaitTooLong` is raised. Create one per request (not per attempt).

    :param budget: the hook's (family's) :class:`RequestBudget`; its clock measures the wait.
    :param rate_limit_wait: seconds, >= 0 (0: give up at the first 429).
    """

    def __init__(self, budget: RequestBudget, rate_limit_wait: float) -> None:
        self._budget = budget
        self.rate_limit_wait = rate_limit_wait
        self._before = 0.0  # waited for a spent budget before the first 429
        self._first: float | None = None  # budget clock at the first 429

    @property
    def waited(self) -> float:
        """Seconds of ``rate_limit_wait`` used so far."""
        if self._first is None:
            return self._before
        return self._before + max(self._budget.now() - self._first, 0.0)

    def left(self) -> float:
        """Seconds of ``rate_limit_wait`` left."""
        return max(self.rate_limit_wait - self.waited, 0.0)

    def acquire(self) -> int:
        """Wait for the budget (:meth:`RequestBudget.acquire`); return the request's sequence number."""
        seq, spent = self._budget.acquire(self.left() + 1e-6)  # a pause up to the deadline fits
        if self._first is None:
            self._before += spent
        return seq

    def on_429(self, seq: int, headers: Mapping[str, str]) -> float:
        """A 429 answered request ``seq``: the pause before the re-send, or :class:`BudgetWaitTooLong`.

        :param seq: the sequence number :meth:`acquire` returned.
        :param headers: the answer's headers (``Retry-After``, ``Date``, ``X-RateLimit-*``).
        """
        now = self._budget.now()
        if self._first is None:
            self._first = now
        retry_after = parse_retry_after(headers.get("Retry-After"), headers.get("Date"))
        deadline = self._first + self.rate_limit_wait - self._before
        pause = self._budget.on_429(seq, retry_after, headers, deadline=deadline)
        if now >= deadline:  # exhausted: it had some wait to spend, and spent it
            raise BudgetWaitTooLong(pause, "HTTP 429", exhausted=deadline > self._first)
        if now + pause > deadline:
            why = "Retry-After" if retry_after is not None and retry_after >= pause else "HTTP 429"
            raise BudgetWaitTooLong(pause, f"the account's request budget is spent ({why})")
        return pause
