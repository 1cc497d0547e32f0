"""``ExotelBaseHook`` (private module): the ``exotel`` connection, resolved once into immutable
:class:`Settings`, and the transport every Exotel hook sends its requests through.

``ExotelContactsHook``, ``ExotelCampaignsHook`` and ``ExotelCallsHook`` subclass it.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Self
from urllib.parse import quote, urlsplit

import requests
from airflow.providers.http.hooks.http import HttpHook

from airflow_provider_exotel._validation import (
    check_hook_arguments,
    check_path_segment,
    check_requests_per_minute,
    check_timeout,
)
from airflow_provider_exotel.exceptions import ExotelRequestError, ExotelValidationError
from airflow_provider_exotel.hooks._answers import Check, check_total, page_total, refusal
from airflow_provider_exotel.hooks._paging import Pager
from airflow_provider_exotel.hooks._retry import (
    AmbiguousRequestError,
    TransientError,
    error_from_response,
    gave_up,
    policy,
)
from airflow_provider_exotel.hooks._secrets import mask, redact
from airflow_provider_exotel.hooks._transport import Call, Transport, encode, log_retry

REGIONS = {"singapore": "api.exotel.com", "mumbai": "api.in.exotel.com"}
DEFAULT_HOST = REGIONS["singapore"]
DEFAULT_TIMEZONE = "Asia/Kolkata"
#: The connection form's Test button: one attempt, at most this many seconds (connect and read).
TEST_CONNECTION_TIMEOUT = 5.0
#: Where each endpoint family lives below the origin (``{sid}``: the account sid, quoted).
FAMILY_PATHS = {"campaign": "/v2/accounts/{sid}", "voice": "/v1/Accounts/{sid}"}


@dataclass(frozen=True)
class Settings:
    """Everything a hook's requests depend on, resolved once from the connection and arguments."""

    origin: str  # scheme://host[:port], no trailing slash
    account_sid: str
    authorization: str = field(repr=False)
    timeout: float = 30.0
    verify: bool | str = True
    requests_per_minute: float | None = None
    timezone: str = DEFAULT_TIMEZONE
    retry_limit: int = 5
    retry_delay: float = 1.0
    rate_limit_wait: float = 900.0

    def base(self, family: str = "campaign") -> str:
        """The URL below which ``family``'s endpoints live."""
        if family not in FAMILY_PATHS:
            raise ValueError(f"unknown endpoint family {family!r}; expected one of {sorted(FAMILY_PATHS)}")
        return self.origin + FAMILY_PATHS[family].format(sid=quote(self.account_sid, safe=""))

    def url(self, endpoint: str, family: str = "campaign") -> str:
        """``endpoint`` below ``family``'s base; one starting with ``/`` is a path on the origin."""
        if endpoint.startswith("/"):
            return self.origin + endpoint
        return f"{self.base(family)}/{endpoint}"


@dataclass(frozen=True)
class _Arguments:
    """The hook's constructor arguments that settings are resolved from."""

    timeout: float
    timeout_given: bool
    requests_per_minute: float | None
    retry_limit: int
    retry_delay: float
    rate_limit_wait: float


def resolve_settings(conn: Any, arguments: _Arguments, where: str) -> Settings:
    """Read an ``exotel`` connection into :class:`Settings`; ``where`` names it in errors."""
    extra = conn.extra_dejson or {}
    account_sid = extra.get("account_sid")
    if not isinstance(account_sid, str) or not account_sid.strip():
        raise ExotelValidationError(
            f"{where} needs extra 'account_sid' (your Exotel account SID), got {account_sid!r}"
        )
    if not conn.login or not conn.password:
        raise ExotelValidationError(f"{where} needs login (API key) and password (API token)")
    timeout = arguments.timeout
    if not arguments.timeout_given and extra.get("timeout") not in (None, ""):
        timeout = check_timeout("connection extra timeout", extra["timeout"])
    rpm = arguments.requests_per_minute
    if rpm is None and extra.get("requests_per_minute") not in (None, ""):
        rpm = check_requests_per_minute("connection extra requests_per_minute", extra["requests_per_minute"])
    return Settings(
        origin=_origin(conn, extra, where),
        account_sid=check_path_segment(f"{where} extra 'account_sid'", account_sid),
        authorization=_authorization(str(conn.login), str(conn.password)),
        timeout=timeout,
        verify=_parse_verify(extra.get("verify", True)),
        requests_per_minute=rpm,
        timezone=_timezone(extra.get("timezone"), where),
        retry_limit=arguments.retry_limit,
        retry_delay=arguments.retry_delay,
        rate_limit_wait=arguments.rate_limit_wait,
    )


def _origin(conn: Any, extra: Mapping[str, Any], where: str) -> str:
    """``scheme://host[:port]`` from host (a name or a full base URL), schema, port or region."""
    host = (conn.host or "").strip()
    region = extra.get("region")
    if not host:
        if region in (None, ""):
            host = DEFAULT_HOST
        elif isinstance(region, str) and region.strip().lower() in REGIONS:
            host = REGIONS[region.strip().lower()]
        else:
            raise ExotelValidationError(
                f"{where} has unknown extra 'region' {region!r}; expected one of {sorted(REGIONS)}"
            )
    if "://" in host:
        origin = host.rstrip("/")
    else:
        schema = (conn.schema or "https").strip().lower()
        if schema not in ("https", "http"):
            raise ExotelValidationError(
                f"{where} has schema {conn.schema!r}; expected 'https' (default) or 'http'"
            )
        origin = f"{schema}://{host}" + (f":{conn.port}" if conn.port else "")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ExotelValidationError(f"{where} has an invalid host {host!r}; expected a host name or URL")
    return origin


def _authorization(key: str, token: str) -> str:
    """The Basic ``Authorization`` value, registered with the secret masker (with its parts)."""
    authorization = "Basic " + base64.b64encode(f"{key}:{token}".encode()).decode()
    mask(token)
    mask(authorization)
    mask(authorization.split(" ", 1)[1])
    return authorization


def _timezone(value: Any, where: str) -> str:
    """Connection extra ``timezone``: an IANA name (default ``Asia/Kolkata``)."""
    if value in (None, ""):
        return DEFAULT_TIMEZONE
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(value).strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ExotelValidationError(
            f"{where} has unknown extra 'timezone' {value!r}; expected an IANA name such as 'Asia/Kolkata'"
        ) from None
    return str(value).strip()


def _parse_verify(value: Any) -> bool | str:
    """Connection extra ``verify``: a bool (or its spelling from a form), or a CA bundle path."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("", "true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        return value
    return bool(value)


class ExotelBaseHook(HttpHook):
    """The ``exotel`` connection and the transport shared by every Exotel hook.

    :param exotel_conn_id: id of the ``exotel`` connection.
    :param timeout: seconds per HTTP request (connect and read), > 0 and <= 3600; the connection
        extra ``timeout`` is used when this is left at its default.
    :param retry_limit: retries after the first attempt for 5xx, connection errors, timeouts and
        unreadable bodies, 0..50. A 429 is not counted: it is waited out under ``rate_limit_wait``.
    :param retry_delay: first backoff in seconds (0..600); doubles per retry with jitter, capped
        at 60 s. A ``Retry-After`` header wins.
    :param requests_per_minute: a fixed cap (1..60000) per endpoint family, shared by all threads
        of this hook (also the connection extra ``requests_per_minute``).
    :param concurrency: requests in flight at most, for paging and bulk calls, 1..32.
    :param rate_limit_wait: seconds one request may wait for the account's budget before
        :class:`ExotelRateLimitError` is raised, 0..86400; default 900.
    """

    conn_name_attr = "exotel_conn_id"
    default_conn_name = "exotel_default"
    conn_type = "exotel"
    hook_name = "Exotel"

    def __init__(
        self,
        exotel_conn_id: str = default_conn_name,
        *,
        timeout: float = 30.0,
        retry_limit: int = 5,
        retry_delay: float = 1.0,
        requests_per_minute: float | None = None,
        concurrency: int = 4,
        rate_limit_wait: float = 900.0,
        **kwargs: Any,
    ) -> None:
        if not isinstance(exotel_conn_id, str) or not exotel_conn_id:
            raise ExotelValidationError(f"exotel_conn_id must be a non-empty string, got {exotel_conn_id!r}")
        check_hook_arguments(
            timeout=timeout,
            retry_limit=retry_limit,
            retry_delay=retry_delay,
            requests_per_minute=requests_per_minute,
            concurrency=concurrency,
            rate_limit_wait=rate_limit_wait,
        )
        kwargs.setdefault("method", "GET")
        super().__init__(http_conn_id=exotel_conn_id, **kwargs)
        self.exotel_conn_id = exotel_conn_id
        self.retry_limit = retry_limit
        self.retry_delay = float(retry_delay)
        self.concurrency = concurrency
        self.rate_limit_wait = float(rate_limit_wait)
        self._arguments = _Arguments(
            float(timeout),
            float(timeout) != 30.0,
            requests_per_minute,
            retry_limit,
            float(retry_delay),
            float(rate_limit_wait),
        )
        self._setup_lock = threading.Lock()
        self._settings: Settings | None = None
        self._transport: Transport | None = None
        self._pager = Pager(self._fetch_page, concurrency, self.log)

    # ---------------------------------------------------------------------------- settings
    @property
    def settings(self) -> Settings:
        """The resolved settings (the connection is read on first use)."""
        return self._resolve(f"connection {self.exotel_conn_id!r}")

    def _resolve(self, where: str) -> Settings:
        with self._setup_lock:
            if self._settings is None:
                conn = self.get_connection(self.exotel_conn_id)
                self._settings = resolve_settings(conn, self._arguments, where)
            return self._settings

    @property
    def account_sid(self) -> str:
        return self.settings.account_sid

    @property
    def timeout(self) -> float:
        """Seconds per request: the argument, or the connection extra once resolved."""
        return self._settings.timeout if self._settings is not None else self._arguments.timeout

    @property
    def requests_per_minute(self) -> float | None:
        settings = self._settings
        return settings.requests_per_minute if settings is not None else self._arguments.requests_per_minute

    def single_attempt(self, timeout_cap: float) -> Self:
        """A new hook on this connection for one quick check: one attempt, no wait for the rate
        budget (a 429 is the answer), each request's timeout capped at ``timeout_cap`` seconds.

        :param timeout_cap: the most seconds a request may take (also caps a connection extra).
        """
        settings = self.settings
        probe = type(self)(
            self.exotel_conn_id,
            retry_limit=0,
            retry_delay=self.retry_delay,
            concurrency=self.concurrency,
            rate_limit_wait=0.0,
        )
        probe._settings = replace(
            settings, timeout=min(settings.timeout, timeout_cap), retry_limit=0, rate_limit_wait=0.0
        )
        return probe

    # ---------------------------------------------------------------------------- session
    def _get_transport(self) -> Transport:
        settings = self.settings
        with self._setup_lock:
            if self._transport is None:
                self._transport = Transport(settings, self.concurrency, self.log)
                # HttpHook.run() (inherited) reads these: the campaign base, a timeout, no redirects
                self.base_url = settings.base("campaign")
                self._base_url_initialized = True
                self.merged_extra = {"timeout": settings.timeout, "allow_redirects": False}
            return self._transport

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """The hook's pooled session (created once; thread-safe to share).

        No connection extra is sent as an HTTP header; the credentials travel only in the
        ``Authorization`` header, registered with the secret masker.
        """
        session = self._get_transport().session
        if headers:
            session.headers.update(headers)
        return session

    def close(self) -> None:
        """Close the pooled session (idempotent)."""
        with self._setup_lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    def check_response(self, response: requests.Response) -> None:
        """Raise on HTTP errors without logging the body (Exotel error bodies may echo headers)."""
        if response.status_code >= 400:
            raise error_from_response(response, response.request.method or "", "")

    # ---------------------------------------------------------------------------- requests
    def _request(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        accept_statuses: Sequence[int] = (200,),
        idempotent: bool = True,
        check: Check | None = None,
        family: str = "campaign",
    ) -> dict[str, Any]:
        """Send one API request under the retry policy and ``family``'s budget; return the JSON body.

        ``endpoint`` is below ``family``'s base (``campaign``: ``/v2/accounts/<sid>/``, ``voice``:
        ``/v1/Accounts/<sid>/``); one starting with ``/`` is a path on the origin. With
        ``idempotent=False`` an attempt that may have been applied (connection dropped, timeout,
        unreadable answer, 5xx) raises ``AmbiguousRequestError`` instead of being re-sent; a 429 is
        still waited out. ``check(body)`` raises ``TransientError`` for an answer that cannot be
        right, which is then retried like a garbled body.
        """
        transport = self._get_transport()
        call = Call(
            method=method,
            endpoint=endpoint,
            url=transport.settings.url(endpoint, family),
            params=params,
            data=encode(json_body),
            accept_statuses=tuple(accept_statuses),
            idempotent=idempotent,
            check=check,
            family=family,
        )
        return transport.request(call)

    def _fetch_page(
        self, endpoint: str, params: Mapping[str, Any], offset: int, limit: int, check: Check | None = None
    ) -> dict[str, Any]:
        """One page for the pager (campaign family)."""
        return self._request(
            "GET", endpoint, params={**params, "offset": offset, "limit": limit}, check=check
        )

    def _server_time(self, local: float | None = None) -> float:
        """The server's epoch time (at local epoch time ``local``, default now), estimated from the
        latest ``Date`` header; local time when none was seen yet."""
        return self._get_transport().clock.now(local)

    def _delete(self, endpoint: str, family: str = "campaign") -> bool:
        """``DELETE`` one object: ``True`` when deleted, ``False`` when it did not exist.

        Re-sent under the retry policy one attempt at a time, so a lost answer is known: an attempt
        that may have been applied followed by a 404 means that attempt deleted it (``True``).
        Otherwise a 404 (also as a 200 carrying a 404 failure item) is ``False``; a 204 is ``True``.
        """
        label = f"DELETE {endpoint}"
        lost: list[bool] = []

        def attempt() -> dict[str, Any]:
            try:
                return self._request(
                    "DELETE", endpoint, accept_statuses=(200, 202), idempotent=False, family=family
                )
            except AmbiguousRequestError as exc:  # the answer was lost: re-send, and remember it
                lost.append(True)
                raise TransientError(_lost_delete(exc, label)) from None

        settings = self.settings
        try:
            body = policy(settings.retry_limit, settings.retry_delay, self._log_retry)(attempt)
        except TransientError as exc:
            raise gave_up(exc, settings.retry_limit + 1) from None
        except ExotelRequestError as exc:
            if exc.status in (204, 404):  # 204 No Content: deleted (``_request`` reads JSON only)
                return exc.status == 204 or bool(lost)
            raise
        refused = refusal(body)
        if refused is None:
            return True
        if refused[0] == 404:
            return bool(lost)
        raise ExotelRequestError(f"Exotel {label}: {refused[0]} {refused[1]}", status=refused[0] or None)

    def _log_retry(self, retry_state: Any) -> None:
        log_retry(self.log, self.settings.retry_limit, retry_state)

    # ---------------------------------------------------------------------------- budget, test
    def request_budget(self, family: str = "campaign") -> float | None:
        """``family``'s request budget as far as the hook knows it, in requests per minute.

        The tightest of ``requests_per_minute``, the budget Exotel announced and the rate learned
        from 429s; ``None`` before anything is known.
        """
        transport = self._transport
        if transport is None:
            rpm = self.requests_per_minute
            return float(rpm) if rpm else None
        return transport.budgets[family].requests_per_minute_known()

    def test_connection(self) -> tuple[bool, str]:
        """Check credentials and account with one cheap request; never raises.

        The connection form's Test button: one attempt (no retries, no wait for the rate budget),
        within ``TEST_CONNECTION_TIMEOUT`` seconds, on settings of its own.
        """
        probe: ExotelBaseHook | None = None
        try:
            # Airflow tests a temporary connection under a random id: name it as the user sees it
            self._resolve("this connection")
            probe = self.single_attempt(TEST_CONNECTION_TIMEOUT)
            body = probe._request(
                "GET", "contacts", params={"offset": 0, "limit": 1}, check=check_total("contacts")
            )
            total = page_total(body, "contacts")
        except Exception as exc:  # the UI wants (False, reason), not a traceback
            return False, redact(str(exc))
        finally:
            if probe is not None:
                probe.close()
        return True, f"Connected to Exotel account {self.account_sid}: {total} contacts"


def _lost_delete(error: AmbiguousRequestError, label: str) -> ExotelRequestError:
    """The error of a DELETE attempt whose answer was lost, without ``ambiguous``'s "not re-sent"
    (a DELETE is re-sent: deleting twice deletes once)."""
    message = str(error).removesuffix(f"; {label} is not re-sent blindly because it may have been applied")
    return ExotelRequestError(
        message, status=error.status, error_code=error.error_code, request_id=error.request_id
    )


__all__ = ["TEST_CONNECTION_TIMEOUT", "ExotelBaseHook", "Settings", "resolve_settings"]
