"""The retry policy, declared once (private; used by ``hooks/contacts.py``).

What is retryable (:class:`TransientError`: 5xx, 408/425, connection errors, timeouts, unreadable
bodies), how long to wait (exponential backoff from ``retry_delay``, jittered, capped; ``Retry-After``
wins) and when to stop (``retry_limit`` retries after the first attempt). Also turns an HTTP error
answer into an :class:`ExotelError` using only Exotel's error fields (``response.error_data`` or a
``RestException``'s ``Code`` and ``Message``), never the raw body. A 429 is not retried here: the
hook waits it out under the request budget (``_budget``) without spending ``retry_limit``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

import requests
import tenacity

from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelError, ExotelRequestError
from airflow_provider_exotel.hooks._secrets import redact

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF = 60.0
#: Longest ``Retry-After`` honoured when retrying a 5xx (a 429 is bounded by ``rate_limit_wait``).
MAX_RETRY_AFTER = 300.0


class TransientError(Exception):
    """A failure worth retrying (5xx, connection error, timeout, unreadable body)."""

    def __init__(self, error: ExotelRequestError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def parse_retry_after(value: str | None, date: str | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds, or an HTTP date (a past one is 0).

    An HTTP date is measured from the answer's ``Date`` header when it has one (the server's clock),
    else from ours. Anything else — not a finite number of seconds >= 0, not a date (``1e400``,
    ``nan``, ``-5``, garbage) — is ignored: ``None``, as if the header were absent. The value is not
    capped here: the caller decides what a long one means.

    :param value: the ``Retry-After`` header, or None.
    :param date: the answer's ``Date`` header, or None.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        moment = _http_date(text)
        if moment is None:
            return None
        now = _http_date(date) if date else None
        seconds = max(moment - (now if now is not None else time.time()), 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _http_date(text: str) -> float | None:
    """Epoch seconds of an HTTP date, or None."""
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def backoff(retry_delay: float, attempt_number: int) -> float:
    """Seconds to wait after failed attempt ``attempt_number`` (1-based): exponential, jittered, capped."""
    base = min(retry_delay * 2 ** (attempt_number - 1), MAX_BACKOFF)
    return base / 2 + random.uniform(0, base / 2)


class Wait(tenacity.wait.wait_base):
    """Exponential backoff from ``retry_delay`` with jitter, capped; ``Retry-After`` wins."""

    def __init__(self, retry_delay: float) -> None:
        self.retry_delay = retry_delay

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER)
        return backoff(self.retry_delay, retry_state.attempt_number)


def policy(
    retry_limit: int, retry_delay: float, before_sleep: Callable[[tenacity.RetryCallState], Any]
) -> tenacity.Retrying:
    """The one retry policy: retry :class:`TransientError` up to ``retry_limit`` times."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TransientError),
        stop=tenacity.stop_after_attempt(retry_limit + 1),
        wait=Wait(retry_delay),
        before_sleep=before_sleep,
        reraise=True,
    )


def error_from_response(response: requests.Response, method: str, endpoint: str) -> ExotelError:
    """Build an error from an HTTP answer using only Exotel's error fields — never the raw body."""
    status = response.status_code
    request_id = None
    code: int | str | None = None
    detail = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    rest = body.get("RestException") if isinstance(body, dict) else None
    if isinstance(rest, dict):  # {"RestException": {"Status", "Message", "Code"}}, e.g. a 429
        raw_code = rest.get("Code")
        code = raw_code if isinstance(raw_code, int | str) and not isinstance(raw_code, bool) else None
        if isinstance(code, str):
            code = redact(code)[:80]
        message_text = rest.get("Message")
        detail = redact(str(message_text))[:300] if message_text else ""
    elif isinstance(body, dict):
        request_id = body.get("request_id") if isinstance(body.get("request_id"), str) else None
        resp = body.get("response")
        error_data = resp.get("error_data") if isinstance(resp, dict) else body.get("error_data")
        if isinstance(error_data, dict):
            code = error_data.get("code") if isinstance(error_data.get("code"), int) else None
            parts = [str(error_data[k]) for k in ("message", "description") if error_data.get(k)]
            detail = redact(": ".join(parts))[:300]
    elif status >= 400:
        content_type = response.headers.get("Content-Type", "")
        detail = f"non-JSON body ({content_type or 'no content type'}, {len(response.content)} bytes)"
    reason = response.reason or ""
    message = f"Exotel {method} {endpoint}: HTTP {status} {reason}".rstrip()
    if code is not None or detail:
        message += " —" + (f" error {code}" if code is not None else "") + (f" {detail}" if detail else "")
    if request_id:
        message += f" (request_id {request_id})"
    if status in (401, 403):
        hint = "check the API key and token" if status == 401 else "the account has no access"
        return ExotelAuthError(f"{message}; {hint}", status=status, error_code=code, request_id=request_id)
    return ExotelRequestError(message, status=status, error_code=code, request_id=request_id)


class AmbiguousRequestError(ExotelRequestError):
    """A request that must not be re-sent blindly (a create) got no usable answer.

    The connection dropped, timed out or returned garbage after the request went out, or the
    server answered 5xx: Exotel may or may not have applied it. The caller finds out what was
    applied (e.g. looks the new contacts up) before sending anything again.
    """


def gave_up(error: TransientError, attempts: int) -> ExotelError:
    """The error to raise once the retry policy stopped: the last one, saying how many attempts."""
    err = error.error
    return type(err)(
        f"{err} (gave up after {attempts} attempt{'' if attempts == 1 else 's'})",
        status=err.status,
        error_code=err.error_code,
        request_id=err.request_id,
    )


def ambiguous(error: TransientError, label: str) -> AmbiguousRequestError:
    """The :class:`AmbiguousRequestError` for a failed attempt of a non-idempotent request."""
    err = error.error
    return AmbiguousRequestError(
        f"{err}; {label} is not re-sent blindly because it may have been applied",
        status=err.status,
        error_code=err.error_code,
        request_id=err.request_id,
    )
