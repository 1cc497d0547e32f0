"""The transport (private): the only code of this provider that speaks HTTP.

One request is a chain of small steps: wait for the family's request budget → send → wait out a
429 (not a retry) → decode → check → retry under the one retry policy (``_retry``). Each endpoint
family (``campaign``: contacts, lists, campaigns; ``voice``: v1 calls) has its own
:class:`~airflow_provider_exotel.hooks._budget.RequestBudget`, paced only by its own answers. The
``Date`` header of every answer keeps an estimate of the server's clock (:class:`ServerClock`).
"""

from __future__ import annotations

import errno
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

import requests
import tenacity
from requests.adapters import HTTPAdapter

from airflow_provider_exotel.exceptions import ExotelError, ExotelRateLimitError, ExotelRequestError
from airflow_provider_exotel.hooks._answers import Check
from airflow_provider_exotel.hooks._budget import BudgetWaitTooLong, RateLimitWait, RequestBudget
from airflow_provider_exotel.hooks._retry import (
    RETRYABLE_STATUS,
    TransientError,
    ambiguous,
    error_from_response,
    gave_up,
    parse_retry_after,
    policy,
)

#: Endpoint families: each has its own request budget.
FAMILIES = ("campaign", "voice")
#: Exotel's ``RestException`` code for an exceeded request budget.
RATE_LIMIT_CODE = "RATE_LIMIT_EXCEEDED"


class ServerClock:
    """The server's current time, estimated from the latest ``Date`` header (thread-safe).

    :param wall: the local clock (epoch seconds).
    """

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._offset: float | None = None
        self._lock = threading.Lock()

    def observe(self, date: str | None) -> None:
        """Learn from one answer's ``Date`` header (ignored when absent or unreadable)."""
        if not date:
            return
        try:
            server = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        with self._lock:
            self._offset = server - self._wall()

    @property
    def known(self) -> bool:
        """True once an answer carried a readable ``Date``."""
        return self._offset is not None

    def now(self, local: float | None = None) -> float:
        """The server's epoch time at local time ``local`` (default: now); local time when no
        ``Date`` was seen yet."""
        moment = self._wall() if local is None else local
        return moment + (self._offset or 0.0)


@dataclass(frozen=True)
class Call:
    """One API request as the hook asked for it (see ``ExotelBaseHook._request``)."""

    method: str
    endpoint: str
    url: str
    params: Mapping[str, Any] | None = None
    data: bytes | None = None
    accept_statuses: Sequence[int] = (200,)
    idempotent: bool = True
    check: Check | None = None
    family: str = "campaign"

    @property
    def label(self) -> str:
        return f"{self.method} {self.endpoint}"


def encode(json_body: Any) -> bytes | None:
    """A request body as compact JSON bytes (``None`` stays ``None``)."""
    return None if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()


@dataclass
class _Waiting:
    """One request's wait for its family's budget over all its attempts (``RateLimitWait``, the
    429 policy of ``_budget``), and the last 429 it met."""

    wait: RateLimitWait
    last_429: ExotelError | None = None


class Transport:
    """A pooled session, one budget per family and the server clock, for one hook's settings.

    :param settings: the hook's resolved settings (``_base.Settings``).
    :param pool_size: connections kept per host.
    :param log: where waits and retries are reported.
    """

    def __init__(self, settings: Any, pool_size: int, log: logging.Logger | Any) -> None:
        self.settings = settings
        self.log = log
        self.session = _session(settings, pool_size)
        self.budgets = {family: RequestBudget(settings.requests_per_minute) for family in FAMILIES}
        self.clock = ServerClock()

    def request(self, call: Call) -> dict[str, Any]:
        """Send ``call`` under the retry policy and its family's budget; return the JSON body."""
        settings = self.settings
        before_sleep = partial(log_retry, self.log, settings.retry_limit)
        retrying = policy(settings.retry_limit, settings.retry_delay, before_sleep)
        waiting = _Waiting(RateLimitWait(self.budgets[call.family], settings.rate_limit_wait))
        try:
            return retrying(self._attempt, call, waiting)
        except TransientError as exc:
            raise gave_up(exc, settings.retry_limit + 1) from None

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------------------ the steps
    def _attempt(self, call: Call, waiting: _Waiting) -> dict[str, Any]:
        """One attempt: a failure that may have been applied is not retried unless idempotent."""
        try:
            return _checked_body(call, self._send_paced(call, waiting))
        except TransientError as exc:
            if call.idempotent or exc.error.status == 429:
                raise
            raise ambiguous(exc, call.label) from None

    def _send_paced(self, call: Call, waiting: _Waiting) -> requests.Response:
        """Budget wait → send, until the answer is not a 429."""
        budget = self.budgets[call.family]
        while True:
            seq = self._wait_for_budget(call, waiting)
            response = self._send(call)
            budget.observe(seq, response.status_code, response.headers)
            self.clock.observe(response.headers.get("Date"))
            if response.status_code != 429:
                return response
            self._on_429(call, seq, response, waiting)

    def _wait_for_budget(self, call: Call, waiting: _Waiting) -> int:
        try:
            return waiting.wait.acquire()
        except BudgetWaitTooLong as exc:
            raise rate_limit_error(call.label, exc, waiting, self.log) from None

    def _send(self, call: Call) -> requests.Response:
        timeout = self.settings.timeout
        try:
            return self.session.request(
                call.method,
                call.url,
                params=call.params,
                data=call.data,
                headers={"Content-Type": "application/json"} if call.data is not None else None,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise TransientError(
                ExotelRequestError(f"Exotel {call.label}: no answer within {timeout:g} s")
            ) from exc
        except requests.RequestException as exc:
            raise TransientError(
                ExotelRequestError(f"Exotel {call.label}: {connection_failure(exc)}")
            ) from exc

    def _on_429(self, call: Call, seq: int, response: requests.Response, waiting: _Waiting) -> None:
        """The family's budget is spent: the 429 policy (``RateLimitWait``) says how long to pause
        before the re-send (not a retry), or that ``rate_limit_wait`` is used up."""
        error = error_from_response(response, call.method, call.endpoint)
        waiting.last_429 = error
        try:
            pause = waiting.wait.on_429(seq, response.headers)
        except BudgetWaitTooLong as exc:
            raise rate_limit_error(call.label, exc, waiting, self.log) from None
        self.log.warning(
            "%s; waiting %.1f s for the account's request budget (429s do not count against "
            "retry_limit; waited %.1f of rate_limit_wait=%g s)",
            error,
            pause,
            waiting.wait.waited,
            waiting.wait.rate_limit_wait,
        )


def _session(settings: Any, pool_size: int) -> requests.Session:
    """A pooled session sending only the ``Authorization``, ``Accept`` and ``User-Agent`` headers."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(pool_size, 4), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update(
        {
            "Authorization": settings.authorization,
            "Accept": "application/json",
            "User-Agent": "airflow-provider-exotel",
        }
    )
    session.verify = settings.verify
    return session


def _checked_body(call: Call, response: requests.Response) -> dict[str, Any]:
    """Decode → check: the JSON object of an accepted answer, else the error (transient or not)."""
    status = response.status_code
    if status not in call.accept_statuses:
        error = error_from_response(response, call.method, call.endpoint)
        if status in RETRYABLE_STATUS:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientError(error, retry_after)  # type: ignore[arg-type]
        raise error
    try:
        body = response.json()
    except ValueError:
        raise TransientError(
            ExotelRequestError(
                f"Exotel {call.label}: HTTP {status} with an unreadable body "
                f"({response.headers.get('Content-Type', 'no content type')}, "
                f"{len(response.content)} bytes)",
                status=status,
            )
        ) from None
    if not isinstance(body, dict):
        raise TransientError(
            ExotelRequestError(f"Exotel {call.label}: HTTP {status} with a non-object JSON body")
        )
    if call.check is not None:
        call.check(body)
    return body


def connection_failure(exc: BaseException) -> str:
    """Why a request got no answer, in words (never the URL or headers)."""
    causes = _causes(exc)
    if any(
        isinstance(c, ConnectionRefusedError) or getattr(c, "errno", None) == errno.ECONNREFUSED
        for c in causes
    ):
        return "connection refused (nothing listens at the host and port; is the host right?)"
    if any(isinstance(c, ConnectionResetError) for c in causes):
        return "connection reset by the server before it answered"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS/SSL handshake failed (check the host, or the connection extra 'verify')"
    if any(type(c).__name__ in ("NameResolutionError", "gaierror") for c in causes):
        return "host name not found (check the connection's host or region)"
    if any(type(c).__name__ in ("RemoteDisconnected", "ProtocolError") for c in causes):
        return "the server closed the connection without answering"
    return f"connection failed ({type(exc).__name__})"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: causes, contexts, urllib3's ``reason`` and wrapped args."""
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])
    return seen


def rate_limit_error(
    label: str, exc: BudgetWaitTooLong, waiting: _Waiting, log: logging.Logger | Any
) -> ExotelRateLimitError:
    """The budget stays spent past ``rate_limit_wait``: the error (logged, then raised)."""
    cause = waiting.last_429
    # without a 429 of its own (the headers said the window is spent), say what Exotel would
    what = (
        str(cause)
        if cause is not None
        else f"Exotel {label}: RATE_LIMIT_EXCEEDED: Rate limit exceeded (avoided: {exc.reason})"
    )
    wait = waiting.wait
    message = (
        f"{what}; {exc.explain(wait.rate_limit_wait, wait.waited)}. Other tasks may "
        "be using the account's budget; raise rate_limit_wait or schedule them apart"
    )
    log.error("%s", message)
    return ExotelRateLimitError(
        message,
        status=429,
        error_code=cause.error_code if cause is not None else RATE_LIMIT_CODE,
        request_id=cause.request_id if cause is not None else None,
    )


def log_retry(log: logging.Logger | Any, retry_limit: int, retry_state: tenacity.RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    log.warning(
        "%s; retrying in %.1f s (attempt %d of %d)",
        exc,
        wait,
        retry_state.attempt_number + 1,
        retry_limit + 1,
    )
