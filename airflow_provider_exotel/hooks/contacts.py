"""ExotelContactsHook — the only module of this provider that speaks HTTP.

It owns the ``exotel`` connection and one pooled ``requests`` session, and sends every request
through the mechanisms beneath it, each a private module of its own:

- ``_retry``: the retry policy (declared once, with tenacity) and error classification;
- ``_budget``: the request budget shared by every thread of the hook;
- ``_paging``: the paging engine shared by every endpoint that pages;
- ``_secrets``: masking and redaction.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook
from requests.adapters import HTTPAdapter

from airflow_provider_exotel._new_contacts import (
    MAX_BULK_CREATE,
    MAX_LIST_ADD,
    check_json_value,
    normalize_number,
    validate_new_contacts,
)
from airflow_provider_exotel._validation import (
    MAX_BULK_UPDATE,
    MAX_PAGE_SIZE,
    UPDATABLE_FIELDS,
    check_created_range,
    check_hook_arguments,
    check_int,
    check_list_sid,
    check_max_records,
    check_path_segment,
    check_requests_per_minute,
    check_timeout,
    join_list_sids,
    validate_contact,
    validate_contacts,
)
from airflow_provider_exotel.exceptions import (
    ExotelAuthError,
    ExotelError,
    ExotelRateLimitError,
    ExotelRequestError,
    ExotelValidationError,
)
from airflow_provider_exotel.hooks._budget import BudgetWaitTooLong, RequestBudget
from airflow_provider_exotel.hooks._incremental import ResumePoint, iter_created_between, iter_resumed
from airflow_provider_exotel.hooks._paging import (
    Check,
    Pager,
    check_total,
    page_contacts,
    page_total,
)
from airflow_provider_exotel.hooks._retry import (
    RETRYABLE_STATUS,
    AmbiguousRequestError,
    TransientError,
    ambiguous,
    backoff,
    error_from_response,
    gave_up,
    parse_retry_after,
    policy,
)
from airflow_provider_exotel.hooks._secrets import mask, redact

REGIONS = {"singapore": "api.exotel.com", "mumbai": "api.in.exotel.com"}
DEFAULT_HOST = REGIONS["singapore"]
#: The connection form's Test button: one attempt, at most this many seconds (connect and read).
TEST_CONNECTION_TIMEOUT = 5.0


log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
@dataclass
class BulkUpdateResult:
    """Outcome of :meth:`ExotelContactsHook.bulk_update_contacts`.

    :param total: number of contacts submitted.
    :param succeeded: sids Exotel reported as updated, in input order.
    :param failed: one ``{"sid", "code", "message"}`` dict per contact that was not updated.
    """

    total: int = 0
    succeeded: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no contact failed."""
        return not self.failed

    @property
    def failed_sids(self) -> list[str]:
        return [f["sid"] for f in self.failed]

    def merge(self, other: BulkUpdateResult) -> BulkUpdateResult:
        """Append ``other`` (a later batch) to this result, in place; returns ``self``."""
        self.total += other.total
        self.succeeded.extend(other.succeeded)
        self.failed.extend(other.failed)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: counts for ``total``/``succeeded``/``failed`` plus ``failed_sids``."""
        return {
            "total": self.total,
            "succeeded": len(self.succeeded),
            "failed": len(self.failed),
            "failed_sids": self.failed_sids,
        }


@dataclass
class BulkCreateResult:
    """Outcome of :meth:`ExotelContactsHook.create_contacts`.

    :param total: number of contacts submitted.
    :param created: one ``{"number", "sid"}`` per created contact, in input order (``number`` is
        the normalised number that was sent).
    :param failed: one ``{"number", "code", "message"}`` per contact that was not created.
    """

    total: int = 0
    created: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no contact failed."""
        return not self.failed

    @property
    def failed_numbers(self) -> list[str]:
        return [f["number"] for f in self.failed]

    def merge(self, other: BulkCreateResult) -> BulkCreateResult:
        """Append ``other`` (a later batch) to this result, in place; returns ``self``."""
        self.total += other.total
        self.created.extend(other.created)
        self.failed.extend(other.failed)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: counts for ``total``/``created``/``failed`` plus ``failed_numbers``."""
        return {
            "total": self.total,
            "created": len(self.created),
            "failed": len(self.failed),
            "failed_numbers": self.failed_numbers,
        }


# --------------------------------------------------------------------------------------------------
# The hook
# --------------------------------------------------------------------------------------------------
#: Exotel's ``RestException`` code for an exceeded request budget.
RATE_LIMIT_CODE = "RATE_LIMIT_EXCEEDED"


class ExotelContactsHook(HttpHook):
    """Talk to Exotel's v2 Contacts API through an ``exotel`` Airflow connection.

    Connection: login = API key, password = API token, host = API host (empty for
    ``api.exotel.com``; a full base URL such as ``http://127.0.0.1:8089`` is accepted), schema
    ``https`` by default, extra ``account_sid`` (required) and optionally ``region``
    (``singapore``/``mumbai``), ``timeout``, ``requests_per_minute`` and ``verify``.

    :param exotel_conn_id: id of the ``exotel`` connection.
    :param timeout: seconds to wait for each HTTP request (connect and read), > 0 and <= 3600. The
        connection extra ``timeout`` is used when this is left at its default.
    :param retry_limit: retries after the first attempt for 5xx, connection errors, timeouts and
        unreadable bodies (so ``retry_limit + 1`` attempts at most), 0..50. A 429 is not counted:
        it is waited out under ``rate_limit_wait``.
    :param retry_delay: first backoff in seconds (0..600); doubles per retry with jitter, capped at
        60 s. A ``Retry-After`` header wins.
    :param requests_per_minute: a fixed cap (1..60000) shared by all threads of this hook (also the
        connection extra ``requests_per_minute``). Not needed for Exotel's own limit: the hook paces itself
        from the ``X-RateLimit-*`` headers (shared fairly with other clients of the account) and,
        without them, from the 429s it meets. The tighter of the cap and the account's budget applies.
    :param concurrency: requests in flight at most, for paging and bulk updates, 1..32
        (1 = sequential); the request budget decides when each goes out.
    :param rate_limit_wait: seconds one request may wait for the account's budget (after 429s, or
        while ``X-RateLimit-Remaining`` is 0) before :class:`ExotelRateLimitError` is raised,
        0..86400 (0: raise at the first 429); default 900 (15 windows of a minute).
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
        self._timeout_arg = float(timeout)
        self.retry_limit = retry_limit
        self.retry_delay = float(retry_delay)
        self._rpm_arg = requests_per_minute
        self.concurrency = concurrency
        self.rate_limit_wait = float(rate_limit_wait)
        self._setup_lock = threading.Lock()
        self._session: requests.Session | None = None
        self._budget: RequestBudget | None = None
        self._pager = Pager(self._fetch_page, concurrency, self.log)
        self._api_base: str = ""
        self.account_sid: str = ""
        self.timeout: float = self._timeout_arg
        self.requests_per_minute: float | None = requests_per_minute
        self._testing = False

    # ---------------------------------------------------------------------------- connection form
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel the standard connection fields (Airflow 2.x form; 3.2+ reads provider info).

        Same content as the provider info's ``ui-field-behaviour``, with the 2.x key spelling.
        """
        from airflow_provider_exotel.get_provider_info import UI_FIELD_BEHAVIOUR

        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow 2.x; 3.2+ reads the provider info's conn-fields)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        from airflow_provider_exotel.get_provider_info import CONN_FIELDS

        # Not InputRequired: Airflow 2.x puts every provider's extra fields in one form, so a required
        # field here would block saving connections of every other type. The hook names a missing
        # account_sid clearly instead. A default shows on Add and on Edit of an extra without the key.
        return {
            name: StringField(
                lazy_gettext(field["label"]),
                widget=BS3TextFieldWidget(),
                description=field["description"],
                default=field["schema"].get("default"),
            )
            for name, field in CONN_FIELDS.items()
        }

    # ---------------------------------------------------------------------------- session set-up
    def _resolve_connection(self) -> tuple[str, str, str, str]:
        """Read the connection; return (api_base, api_key, api_token, account_sid)."""
        conn = self.get_connection(self.exotel_conn_id)
        extra = conn.extra_dejson or {}
        # the Test button tests a temporary connection under a random id: name it as the user sees it
        where = "this connection" if self._testing else f"connection {self.exotel_conn_id!r}"

        account_sid = extra.get("account_sid")
        if not isinstance(account_sid, str) or not account_sid.strip():
            raise ExotelValidationError(
                f"{where} needs extra 'account_sid' (your Exotel account SID), got {account_sid!r}"
            )
        if not conn.login or not conn.password:
            raise ExotelValidationError(f"{where} needs login (API key) and password (API token)")

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
            base = host.rstrip("/")
        else:
            schema = (conn.schema or "https").strip().lower()
            if schema not in ("https", "http"):
                raise ExotelValidationError(
                    f"{where} has schema {conn.schema!r}; expected 'https' (default) or 'http'"
                )
            base = f"{schema}://{host}"
            if conn.port:
                base = f"{base}:{conn.port}"
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ExotelValidationError(f"{where} has an invalid host {host!r}; expected a host name or URL")

        if self._timeout_arg == 30.0 and extra.get("timeout") not in (None, ""):
            self.timeout = check_timeout("connection extra timeout", extra["timeout"])
        if self._rpm_arg is None and extra.get("requests_per_minute") not in (None, ""):
            self.requests_per_minute = check_requests_per_minute(
                "connection extra requests_per_minute", extra["requests_per_minute"]
            )
        self._verify = _parse_verify(extra.get("verify", True))
        account_sid = check_path_segment(f"{where} extra 'account_sid'", account_sid)
        api_base = f"{base}/v2/accounts/{quote(account_sid, safe='')}"
        return api_base, str(conn.login), str(conn.password), account_sid

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return the hook's pooled session (created once; thread-safe to share).

        Unlike ``HttpHook.get_conn`` no connection extra is sent as an HTTP header, and the
        credentials travel only in the ``Authorization`` header, registered with the secret masker.
        """
        with self._setup_lock:
            if self._session is None:
                api_base, key, token, account_sid = self._resolve_connection()
                authorization = "Basic " + base64.b64encode(f"{key}:{token}".encode()).decode()
                mask(token)
                mask(authorization)
                mask(authorization.split(" ", 1)[1])
                session = requests.Session()
                adapter = HTTPAdapter(
                    pool_connections=1, pool_maxsize=max(self.concurrency, 4), max_retries=0
                )
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                session.headers.update(
                    {
                        "Authorization": authorization,
                        "Accept": "application/json",
                        "User-Agent": "airflow-provider-exotel",
                    }
                )
                session.verify = self._verify
                self._api_base = api_base
                self.base_url = api_base
                self._base_url_initialized = True
                self.account_sid = account_sid
                self._budget = RequestBudget(self.requests_per_minute)
                # used by the inherited HttpHook.run(): keep a timeout there too, and no redirects
                self.merged_extra = {"timeout": self.timeout, "allow_redirects": False}
                self._session = session
        if headers:
            self._session.headers.update(headers)
        return self._session

    def close(self) -> None:
        """Close the pooled session (idempotent)."""
        with self._setup_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def check_response(self, response: requests.Response) -> None:
        """Raise on HTTP errors without logging the body (Exotel error bodies may echo headers)."""
        if response.status_code >= 400:
            raise error_from_response(response, response.request.method or "", "")

    # ---------------------------------------------------------------------------- one request
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
    ) -> dict[str, Any]:
        """Send one API request under the retry policy and the rate budget; return the JSON body.

        ``idempotent=False`` (creates): a failure after the request may have been applied
        (connection dropped, timeout, unreadable answer, 5xx) raises ``AmbiguousRequestError``
        at once instead of re-sending; a 429 is still waited out and re-sent (nothing applied).

        ``check(body)``, if given, runs inside the retry loop and raises ``TransientError`` for an
        answer that cannot be right, so it is retried like a garbled body.
        """
        session = self.get_conn()
        url = f"{self._api_base}/{endpoint}"
        data = None
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":")).encode()
        label = f"{method} {endpoint}"
        budget = self._budget
        assert budget is not None
        waited = 0.0  # for the account's budget, over every attempt of this request
        last_429: list[ExotelError] = []

        def attempt() -> dict[str, Any]:
            nonlocal waited
            while True:
                try:
                    seq, spent_wait = budget.acquire(self.rate_limit_wait - waited)
                except BudgetWaitTooLong as exc:
                    raise self._rate_limit_error(label, exc, waited, last_429) from None
                waited += spent_wait
                try:
                    response = session.request(
                        method,
                        url,
                        params=params,
                        data=data,
                        headers={"Content-Type": "application/json"} if data is not None else None,
                        timeout=self.timeout,
                        allow_redirects=False,
                    )
                except requests.Timeout as exc:
                    raise TransientError(
                        ExotelRequestError(f"Exotel {label}: no answer within {self.timeout:g} s")
                    ) from exc
                except requests.RequestException as exc:
                    raise TransientError(
                        ExotelRequestError(f"Exotel {label}: connection failed ({type(exc).__name__})")
                    ) from exc
                status = response.status_code
                budget.observe(seq, status, response.headers)
                if status != 429:
                    break
                # the account's budget is spent: wait (not a retry), bounded by rate_limit_wait
                error = error_from_response(response, method, endpoint)
                last_429[:] = [error]
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                pause = budget.on_429(seq, retry_after, response.headers)
                self.log.warning(
                    "%s; waiting %.1f s for the account's request budget (429s do not count "
                    "against retry_limit; waited %.1f of rate_limit_wait=%g s)",
                    error,
                    pause,
                    waited,
                    self.rate_limit_wait,
                )
            if status in accept_statuses:
                try:
                    body = response.json()
                except ValueError:
                    raise TransientError(
                        ExotelRequestError(
                            f"Exotel {label}: HTTP {status} with an unreadable body "
                            f"({response.headers.get('Content-Type', 'no content type')}, "
                            f"{len(response.content)} bytes)",
                            status=status,
                        )
                    ) from None
                if not isinstance(body, dict):
                    raise TransientError(
                        ExotelRequestError(f"Exotel {label}: HTTP {status} with a non-object JSON body")
                    )
                if check is not None:
                    check(body)
                return body
            error = error_from_response(response, method, endpoint)
            if status in RETRYABLE_STATUS:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise TransientError(error, retry_after)  # type: ignore[arg-type]
            raise error

        def once() -> dict[str, Any]:
            try:
                return attempt()
            except TransientError as exc:
                if idempotent or exc.error.status == 429:
                    raise
                raise ambiguous(exc, label) from None

        retrying = policy(self.retry_limit, self.retry_delay, self._log_retry)
        try:
            return retrying(once)
        except TransientError as exc:
            raise gave_up(exc, self.retry_limit + 1) from None

    def _rate_limit_error(
        self, label: str, exc: BudgetWaitTooLong, waited: float, last_429: list[ExotelError]
    ) -> ExotelRateLimitError:
        """The budget stays spent past ``rate_limit_wait``: the error (logged, then raised)."""
        cause = last_429[0] if last_429 else None
        # without a 429 of its own (the headers said the window is spent), say what Exotel would
        what = (
            str(cause)
            if cause is not None
            else f"Exotel {label}: RATE_LIMIT_EXCEEDED: Rate limit exceeded (avoided: {exc.reason})"
        )
        message = (
            f"{what}; the account's request budget frees up in {exc.wait:.1f} s, past "
            f"rate_limit_wait={self.rate_limit_wait:g} s (waited {waited:.1f} s). Other tasks may "
            "be using the account's budget; raise rate_limit_wait or schedule them apart"
        )
        self.log.error("%s", message)
        return ExotelRateLimitError(
            message,
            status=429,
            error_code=cause.error_code if cause is not None else RATE_LIMIT_CODE,
            request_id=cause.request_id if cause is not None else None,
        )

    def request_budget(self) -> float | None:
        """The account's request budget as far as the hook knows it, in requests per minute.

        The tightest of ``requests_per_minute``, the budget Exotel announced (``X-RateLimit-Limit``
        per window) and the rate learned from 429s; ``None`` before anything is known.
        """
        budget = self._budget
        if budget is None:
            return float(self.requests_per_minute) if self.requests_per_minute else None
        return budget.requests_per_minute_known()

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        self.log.warning(
            "%s; retrying in %.1f s (attempt %d of %d)",
            exc,
            wait,
            retry_state.attempt_number + 1,
            self.retry_limit + 1,
        )

    # ---------------------------------------------------------------------------- paging
    def iter_contacts(
        self,
        *,
        name: str | None = None,
        sort_by: str | None = None,
        list_sids: Sequence[str] | str | None = None,
        show_list: bool = False,
        max_records: int | None = None,
        created_from: datetime | str | None = None,
        created_to: datetime | str | None = None,
        resume: ResumePoint | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield every contact of the account (optionally filtered), in server order.

        With ``created_from``/``created_to`` only the contacts created in ``[created_from,
        created_to)`` are yielded, newest first, for about ``k/19 + log2(N) + 2`` requests for k of N
        contacts (read ``date_created:desc``, a bisection on single-record pages finds
        ``created_to``, reading stops at the first contact older than ``created_from``).

        :param name: only contacts whose name matches.
        :param sort_by: server-side order, e.g. ``"date_created:desc"``. Not with ``created_*``.
        :param list_sids: only contacts in any of these lists (sent as one comma-separated value): a
            list of sids, or a comma-separated string; a string that looks like a list literal
            (``"['l1', 'l2']"``, what a template renders) is read as that list.
        :param show_list: include each contact's lists (``filter=show_list``).
        :param max_records: stop after this many contacts.
        :param created_from: only contacts created at or after this moment (datetime or ISO-8601
            string; naive means UTC).
        :param created_to: only contacts created before this moment (exclusive; same types).
            ``created_from == created_to`` selects nothing.
        :param resume: go on with an export that already holds the first ``resume.count`` contacts of
            this same fetch (used by the fetch operators); ``max_records`` counts those too.
        """
        created_start, created_end = check_created_range(created_from, created_to, sort_by)
        params: dict[str, Any] = {}
        if name is not None:
            params["name"] = _check_name(name)
        if sort_by is not None:
            if not isinstance(sort_by, str) or not sort_by.strip():
                raise ExotelValidationError(
                    f"sort_by must be a non-empty string such as 'date_created:asc', got {sort_by!r}"
                )
            _check_encodable("sort_by", sort_by)
            params["sort_by"] = sort_by
        joined = join_list_sids(list_sids)
        if joined:
            params["list_sids"] = joined
        if not isinstance(show_list, bool):
            raise ExotelValidationError(f"show_list must be True or False, got {show_list!r}")
        if show_list:
            params["filter"] = "show_list"
        limit = check_max_records(max_records)
        if created_start is not None or created_end is not None:
            return iter_created_between(
                self._fetch_page,
                self._pager,
                "contacts",
                params,
                created_start,
                created_end,
                limit,
                resume,
            )
        return self._paginate("contacts", params, limit, resume)

    def iter_list_contacts(
        self, list_sid: str, *, max_records: int | None = None, resume: ResumePoint | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the contacts of one list, in server order.

        :param list_sid: the list's sid.
        :param max_records: stop after this many contacts.
        :param resume: go on with an export that already holds the first ``resume.count`` contacts
            (see :meth:`iter_contacts`).
        """
        sid = check_list_sid(list_sid)
        return self._paginate(
            f"lists/{quote(sid, safe='')}/contacts", {}, check_max_records(max_records), resume
        )

    def _paginate(
        self, endpoint: str, params: dict[str, Any], max_records: int | None, resume: ResumePoint | None
    ) -> Iterator[dict[str, Any]]:
        """The pager, from the start or (``resume``) from where an earlier try stopped, seam checked."""
        if resume is None or resume.count <= 0:
            return self._pager.paginate(endpoint, params, max_records)
        return iter_resumed(self._pager, endpoint, params, max_records, resume)

    def count_contacts(
        self,
        *,
        list_sid: str | None = None,
        name: str | None = None,
        list_sids: Sequence[str] | str | None = None,
    ) -> int:
        """Number of contacts (of ``list_sid``, or matching the filters), in one request."""
        params: dict[str, Any] = {"offset": 0, "limit": 1}
        if list_sid is not None:
            sid = check_list_sid(list_sid)
            if name is not None or list_sids is not None:
                raise ExotelValidationError("list_sid cannot be combined with name or list_sids")
            endpoint = f"lists/{quote(sid, safe='')}/contacts"
        else:
            endpoint = "contacts"
            if name is not None:
                params["name"] = _check_name(name)
            joined = join_list_sids(list_sids)
            if joined:
                params["list_sids"] = joined
        body = self._request("GET", endpoint, params=params, check=check_total(endpoint))
        return page_total(body, endpoint)

    def newest_contact(self, *, list_sid: str | None = None) -> dict[str, Any] | None:
        """The most recently created contact (of ``list_sid``, or of the account), in one request."""
        params: dict[str, Any] = {"offset": 0, "limit": 1, "sort_by": "date_created:desc"}
        if list_sid is not None:
            params["list_sids"] = check_list_sid(list_sid)
        body = self._request("GET", "contacts", params=params, check=check_total("contacts"))
        contacts = page_contacts(body, "contacts")
        return contacts[0] if contacts else None

    def _fetch_page(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        offset: int,
        limit: int,
        check: Check | None = None,
    ) -> dict[str, Any]:
        return self._request(
            "GET", endpoint, params={**params, "offset": offset, "limit": limit}, check=check
        )

    # ---------------------------------------------------------------------------- bulk update
    def bulk_update_contacts(
        self, contacts: Iterable[Mapping[str, Any]], *, batch_size: int = MAX_BULK_UPDATE
    ) -> BulkUpdateResult:
        """Update many contacts with ``PUT contacts``, ``batch_size`` (≤5000) per request.

        The whole input is validated before the first request. Batches go out with up to
        ``concurrency`` in flight; results are merged in input order. Contacts Exotel rejects
        (e.g. 404) are reported in ``failed``; a batch whose request still fails after the retry
        budget is reported as failed contact by contact. Results are matched to contacts by the
        ``data.sid`` Exotel returns (by position only when the answer carries no sids).

        Authentication errors raise, and so does anything else that ends the update (e.g. the
        task's ``execution_timeout``): no further batch is sent, and the exception carries
        ``partial_result``, a :class:`BulkUpdateResult` of the whole input in which the batches that
        completed count as they did and every other contact is failed, as "not updated" (refused),
        "not sent" or "outcome unknown" (in flight when the update ended).

        :param contacts: dicts with ``sid`` and any of ``first_name, last_name, company_name, email,
            tag, custom_field, number``.
        :param batch_size: contacts per request, 1..5000.
        """
        check_int("batch_size", batch_size, minimum=1, maximum=MAX_BULK_UPDATE)
        items = validate_contacts(contacts)
        if not items:
            return BulkUpdateResult()
        batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
        done: list[BulkUpdateResult | None] = [None] * len(batches)
        started = [False] * len(batches)
        stop = threading.Event()
        gate = threading.Lock()  # a batch is either marked started or never sent, never in between
        errors: list[BaseException] = []

        def halt() -> None:
            with gate:
                stop.set()

        def run(i: int) -> None:
            with gate:
                if stop.is_set():
                    return  # an earlier batch ended the update: this one is never sent
                started[i] = True
            try:
                done[i] = self._update_batch(batches[i])
            except BaseException as exc:
                halt()
                errors.append(exc)
                known = getattr(exc, "partial_result", None)  # e.g. a 401: this batch was refused
                if isinstance(known, BulkUpdateResult) and known.total == len(batches[i]):
                    done[i] = known

        workers = min(self.concurrency, len(batches))
        try:
            if workers == 1:
                for i in range(len(batches)):
                    run(i)
            else:
                pool = ThreadPoolExecutor(workers, thread_name_prefix="exotel-put")
                try:
                    for future in [pool.submit(run, i) for i in range(len(batches))]:
                        future.result()
                except BaseException:
                    # e.g. the task's execution_timeout, raised in this thread: send nothing more
                    # and do not wait; batches in flight end in the background, outcome unknown
                    halt()
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                pool.shutdown(wait=True)
        except BaseException as exc:
            halt()
            errors.insert(0, exc)
        result = BulkUpdateResult()
        error = errors[0] if errors else None
        for i, batch in enumerate(batches):
            part = done[i]
            if part is None:
                assert error is not None
                part = _unknown_batch(batch, error, sent=started[i])
            result.merge(part)
        if error is not None:
            # what is known (batches that completed count) travels with the error
            error.partial_result = result  # type: ignore[attr-defined]
            raise error
        return result

    def _update_batch(self, batch: list[dict[str, Any]]) -> BulkUpdateResult:
        """Send one batch; re-send the contacts whose per-item result is a transient (5xx) failure."""
        outcome: dict[str, tuple[int, str] | None] = {}  # sid -> None (ok) | (code, message)
        todo = batch
        for attempt in range(self.retry_limit + 1):
            try:
                body = self._request(
                    "PUT", "contacts", json_body={"contacts": todo}, accept_statuses=(200, 207)
                )
            except ExotelAuthError as exc:
                # refused as a whole: what is known of this batch travels with the error
                for contact in todo:
                    outcome[contact["sid"]] = (exc.status or 0, f"not updated: {exc}")
                exc.partial_result = _sid_result([c["sid"] for c in batch], outcome)  # type: ignore[attr-defined]
                raise
            except ExotelError as exc:
                for contact in todo:
                    outcome[contact["sid"]] = (exc.status or 0, str(exc))
                break
            retry: list[dict[str, Any]] = []
            for contact, item in _match_items(todo, body):
                code, message = _item_outcome(item)
                if code is None:
                    outcome[contact["sid"]] = None
                else:
                    outcome[contact["sid"]] = (code, message)
                    if code >= 500 or code == 429:
                        retry.append(contact)
            if not retry or attempt == self.retry_limit:
                break
            self.log.warning(
                "Exotel PUT contacts: %d contact(s) failed transiently; re-sending them", len(retry)
            )
            time.sleep(backoff(self.retry_delay, attempt + 1))
            todo = retry
        return _sid_result([c["sid"] for c in batch], outcome)

    # ---------------------------------------------------------------------------- contacts and lists
    def create_contacts(
        self, contacts: Iterable[Mapping[str, Any]], *, batch_size: int = MAX_BULK_CREATE
    ) -> BulkCreateResult:
        """Create contacts with ``POST contacts``, ``batch_size`` (≤5000) per request.

        The whole input is validated first: each contact needs a ``number`` (spaces, dashes, dots
        and parentheses are removed; then 6-15 digits with an optional leading ``+``), may carry
        ``first_name, last_name, company_name, email, tag, custom_field`` (JSON values), and no
        number may appear twice. Batches go out with up to ``concurrency`` in flight.

        A create is never re-sent blindly: when the answer is lost (connection dropped, timeout,
        unreadable body, 5xx) the hook looks the batch's numbers up among the newest contacts
        (``sort_by=date_created:desc``, back to a few minutes before the batch was first sent: only
        contacts created since then can match) and re-sends only the contacts it did not find, so a
        create Exotel applied is not applied twice.

        :param contacts: dicts with a ``number`` and any of the contact fields.
        :param batch_size: contacts per request, 1..5000.
        """
        check_int("batch_size", batch_size, minimum=1, maximum=MAX_BULK_CREATE)
        items = validate_new_contacts(contacts)
        result = BulkCreateResult()
        batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
        if self.concurrency == 1 or len(batches) <= 1:
            for batch in batches:
                result.merge(self._create_batch(batch))
            return result
        with ThreadPoolExecutor(
            min(self.concurrency, len(batches)), thread_name_prefix="exotel-post"
        ) as pool:
            for partial in pool.map(self._create_batch, batches):
                result.merge(partial)
        return result

    def _create_batch(self, batch: list[dict[str, Any]]) -> BulkCreateResult:
        """Send one create batch; on a lost answer, find what was created before re-sending the rest."""
        outcome: dict[str, tuple[str, str] | tuple[int, str]] = {}  # number -> ("ok", sid) | (code, msg)
        todo = batch
        started = time.time()  # contacts created before this cannot be this batch's
        for attempt in range(self.retry_limit + 1):
            try:
                body = self._request(
                    "POST",
                    "contacts",
                    json_body={"contacts": todo},
                    accept_statuses=(200, 201, 207),
                    idempotent=False,
                )
            except AmbiguousRequestError as exc:
                try:
                    found = self._find_new_contacts({c["number"] for c in todo}, started)
                except ExotelAuthError:
                    raise
                except ExotelError as lookup_exc:
                    for contact in todo:
                        outcome[contact["number"]] = (
                            exc.status or 0,
                            f"{exc}; looking the numbers up failed too ({lookup_exc}), so the contact "
                            "may or may not exist: check before creating it again",
                        )
                    break
                for number, sid in found.items():
                    outcome[number] = ("ok", sid)
                todo = [c for c in todo if c["number"] not in found]
                self.log.warning(
                    "Exotel POST contacts: answer lost (%s); %d of the batch exist(s), re-sending %d",
                    exc,
                    len(found),
                    len(todo),
                )
                if not todo:
                    break
                if attempt == self.retry_limit:
                    for contact in todo:
                        outcome[contact["number"]] = (exc.status or 0, str(exc))
                    break
                time.sleep(backoff(self.retry_delay, attempt + 1))
                continue
            except ExotelAuthError:
                raise
            except ExotelError as exc:
                for contact in todo:
                    outcome[contact["number"]] = (exc.status or 0, str(exc))
                break
            retry: list[dict[str, Any]] = []
            for contact, item in _zip_items(todo, body):
                code, message, data = _bulk_item(item)
                if code is None and isinstance(data.get("sid"), str):
                    outcome[contact["number"]] = ("ok", data["sid"])
                    continue
                if code is None:
                    code, message = 0, "Exotel reported success without the new contact's sid"
                outcome[contact["number"]] = (code, message)
                if code >= 500 or code == 429:
                    retry.append(contact)
            if not retry or attempt == self.retry_limit:
                break
            self.log.warning(
                "Exotel POST contacts: %d contact(s) failed transiently; re-sending them", len(retry)
            )
            time.sleep(backoff(self.retry_delay, attempt + 1))
            todo = retry
        result = BulkCreateResult(total=len(batch))
        for contact in batch:
            number = contact["number"]
            got = outcome.get(number, (0, "no result returned by Exotel for this contact"))
            if got[0] == "ok":
                result.created.append({"number": number, "sid": got[1]})
            else:
                result.failed.append({"number": number, "code": got[0], "message": got[1]})
        return result

    def _find_new_contacts(self, numbers: set[str], since: float) -> dict[str, str]:
        """Sids of contacts with these (normalised) numbers created since about ``since`` (epoch s).

        Reads the newest contacts first and stops once all are found or at the first contact older
        than ``since`` minus :data:`LOOKUP_MARGIN` (room for clock differences). Only a contact
        created in that window can match: an older contact with the same number is someone else's,
        and one without a readable ``date_created`` cannot be shown to be new.
        """
        found: dict[str, str] = {}
        oldest = since - LOOKUP_MARGIN
        contacts = self.iter_contacts(sort_by="date_created:desc")
        try:
            for contact in contacts:
                created = _epoch(contact.get("date_created"))
                if created is not None and created < oldest:
                    break
                number = normalize_number(contact.get("number"))
                if (
                    created is not None
                    and number in numbers
                    and number not in found
                    and isinstance(contact.get("sid"), str)
                ):
                    found[number] = contact["sid"]
                    if len(found) == len(numbers):
                        break
        finally:
            close = getattr(contacts, "close", None)
            if close is not None:
                close()
        return found

    def get_contact(self, sid: str) -> dict[str, Any]:
        """One contact by sid; ``ExotelRequestError`` with ``status == 404`` when it does not exist.

        :param sid: the contact's sid.
        """
        endpoint = f"contacts/{_path_segment('sid', sid)}"
        return _one_object(self._request("GET", endpoint), f"GET {endpoint}")

    def delete_contact(self, sid: str) -> bool:
        """Delete one contact; ``False`` when it did not exist.

        A DELETE whose answer is lost is re-sent; a 404 then means the lost attempt deleted it, so
        the answer is ``True`` (a lost answer cannot tell "applied" from "never arrived", so after
        one a contact that never existed also gives ``True``).

        :param sid: the contact's sid.
        """
        return self._delete(f"contacts/{_path_segment('sid', sid)}")

    def iter_lists(
        self, *, name: str | None = None, max_records: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the account's lists (``{"sid", "name", "tag", ...}``), paged like contacts.

        :param name: only lists whose name contains this (Exotel matches substrings).
        :param max_records: stop after this many lists.
        """
        params: dict[str, Any] = {}
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ExotelValidationError(f"name must be a non-empty string, got {name!r}")
            check_json_value(name, "name")
            params["name"] = name
        return self._pager.paginate("lists", params, check_max_records(max_records))

    def create_list(self, name: str, *, tag: str | None = None) -> dict[str, Any]:
        """Create a list; ``ExotelRequestError`` with ``status == 409`` when the name is taken.

        A lost answer is not re-sent blindly: the list is looked up by name first.

        :param name: the list's name (unique per account).
        :param tag: optional tag.
        """
        item = _check_list_name(name, tag)
        for attempt in range(self.retry_limit + 1):
            try:
                body = self._request(
                    "POST",
                    "lists",
                    json_body={"lists": [item]},
                    accept_statuses=(200, 201, 207),
                    idempotent=False,
                )
            except AmbiguousRequestError as exc:
                existing = self._find_list(name)
                if existing is not None:
                    return existing
                if attempt == self.retry_limit:
                    raise
                self.log.warning(
                    "Exotel POST lists: answer lost (%s) and no list %r exists; re-sending", exc, name
                )
                time.sleep(backoff(self.retry_delay, attempt + 1))
                continue
            items = body.get("response")
            first = items[0] if isinstance(items, list) and items else items
            code, message, data = _bulk_item(first)
            if code is None and isinstance(data.get("sid"), str):
                return data
            if code == 409:
                raise ExotelRequestError(
                    f"Exotel POST lists: a list named {name!r} already exists (409 {message})", status=409
                )
            raise ExotelRequestError(
                f"Exotel POST lists: list {name!r} was not created ({code} {message})", status=code or None
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def ensure_list(self, name: str, *, tag: str | None = None) -> dict[str, Any]:
        """The list named exactly ``name``, created (with ``tag``) when missing.

        An existing list is returned as it is (its tag is not changed).

        :param name: the list's exact name.
        :param tag: tag for a list that has to be created.
        """
        _check_list_name(name, tag)
        existing = self._find_list(name)
        if existing is not None:
            return existing
        try:
            return self.create_list(name, tag=tag)
        except ExotelRequestError as exc:
            if exc.status != 409:
                raise
            existing = self._find_list(name)  # created by someone else meanwhile
            if existing is None:
                raise
            return existing

    def _find_list(self, name: str) -> dict[str, Any] | None:
        """The list whose name is exactly ``name`` (Exotel's ``name`` filter matches substrings)."""
        lists = self.iter_lists(name=name)
        try:
            for lst in lists:
                if lst.get("name") == name:
                    return lst
        finally:
            close = getattr(lists, "close", None)
            if close is not None:
                close()
        return None

    def delete_list(self, list_sid: str) -> bool:
        """Delete a list (not its contacts); ``False`` when it did not exist.

        :param list_sid: the list's sid.
        """
        return self._delete(f"lists/{_path_segment('list_sid', list_sid)}")

    def _delete(self, endpoint: str) -> bool:
        """``DELETE`` one object (every DELETE goes through here): ``True`` when it was deleted,
        ``False`` when it did not exist.

        The request is re-sent under the retry policy, one attempt at a time, so that a lost answer
        is known: an attempt that may have been applied (sent, then the connection dropped, the
        answer timed out or was unreadable, or a 5xx) followed by a 404 means that attempt deleted
        it — ``True``. Otherwise a 404, also as a 200 answer whose ``response`` item (an object or a
        one-item list) is a 404 failure, is ``False``; a 204 (no body) is ``True``.
        """
        label = f"DELETE {endpoint}"
        lost = False

        def attempt() -> dict[str, Any]:
            nonlocal lost
            try:
                return self._request("DELETE", endpoint, accept_statuses=(200, 202), idempotent=False)
            except AmbiguousRequestError as exc:  # the answer was lost: re-send, and remember it
                lost = True
                raise TransientError(_lost_delete(exc, label)) from None

        try:
            body = policy(self.retry_limit, self.retry_delay, self._log_retry)(attempt)
        except TransientError as exc:
            raise gave_up(exc, self.retry_limit + 1) from None
        except ExotelRequestError as exc:
            if exc.status == 204:  # No Content: deleted (``_request`` reads JSON answers only)
                return True
            if exc.status == 404:
                return lost
            raise
        refused = _delete_refusal(body)
        if refused is None:
            return True
        code, message = refused
        if code == 404:
            return lost
        raise ExotelRequestError(f"Exotel {label}: {code} {message}", status=code or None)

    def add_contacts_to_list(
        self, list_sid: str, contact_sids: Iterable[str], *, batch_size: int = MAX_LIST_ADD
    ) -> BulkUpdateResult:
        """Add existing contacts to a list, ``batch_size`` (≤5000) per request.

        Returns a :class:`BulkUpdateResult` of contact sids (``failed`` items carry Exotel's code).
        Adding is a set operation, so a lost answer is simply re-sent.

        :param list_sid: the list's sid.
        :param contact_sids: sids of the contacts to add (each at most once).
        :param batch_size: contacts per request, 1..5000.
        """
        endpoint = f"lists/{_path_segment('list_sid', list_sid)}/contacts"
        check_int("batch_size", batch_size, minimum=1, maximum=MAX_LIST_ADD)
        sids = _check_sids(contact_sids)
        result = BulkUpdateResult()
        for i in range(0, len(sids), batch_size):
            result.merge(self._list_add_batch(endpoint, sids[i : i + batch_size]))
        return result

    def _list_add_batch(self, endpoint: str, batch: list[str]) -> BulkUpdateResult:
        outcome: dict[str, tuple[int, str] | None] = {}
        todo = batch
        for attempt in range(self.retry_limit + 1):
            try:
                body = self._request(
                    "POST",
                    endpoint,
                    json_body={"contact_references": [{"contact_sid": s} for s in todo]},
                    accept_statuses=(200, 201, 207),
                )
            except ExotelAuthError:
                raise
            except ExotelError as exc:
                for sid in todo:
                    outcome[sid] = (exc.status or 0, str(exc))
                break
            retry = []
            items = body.get("response")
            items = items if isinstance(items, list) else []
            for i, sid in enumerate(todo):
                code, message, _ = _bulk_item(items[i] if i < len(items) else None)
                outcome[sid] = None if code is None else (code, message)
                if code is not None and (code >= 500 or code == 429):
                    retry.append(sid)
            if not retry or attempt == self.retry_limit:
                break
            time.sleep(backoff(self.retry_delay, attempt + 1))
            todo = retry
        return _sid_result(batch, outcome)

    def remove_contacts_from_list(self, list_sid: str, contact_sids: Iterable[str]) -> BulkUpdateResult:
        """Remove contacts from a list: one ``DELETE`` per contact, ``concurrency`` in flight.

        Every request goes through the retry policy and the request budget. A contact that is not
        a member (404) is reported in ``failed`` — unless an earlier attempt of that DELETE lost its
        answer, in which case that attempt removed it (see :meth:`delete_contact`).

        :param list_sid: the list's sid.
        :param contact_sids: sids of the contacts to remove (each at most once).
        """
        base = f"lists/{_path_segment('list_sid', list_sid)}/contacts"
        sids = _check_sids(contact_sids)
        for sid in sids:
            _path_segment("contact_sids item", sid)

        def remove(sid: str) -> tuple[int, str] | None:
            try:
                if self._delete(f"{base}/{_path_segment('contact_sid', sid)}"):
                    return None
            except ExotelAuthError:
                raise
            except ExotelError as exc:
                return (exc.status or 0, str(exc))
            return (404, f"Exotel DELETE {base}/{sid}: not a member of the list (404)")

        if self.concurrency == 1 or len(sids) <= 1:
            outcomes = [remove(s) for s in sids]
        else:
            with ThreadPoolExecutor(
                min(self.concurrency, len(sids)), thread_name_prefix="exotel-del"
            ) as pool:
                outcomes = list(pool.map(remove, sids))
        return _sid_result(sids, dict(zip(sids, outcomes, strict=True)))

    # ---------------------------------------------------------------------------- test connection
    def test_connection(self) -> tuple[bool, str]:
        """Check credentials and account with one cheap request; never raises.

        This is the connection form's Test button, so it answers within seconds: one attempt (no
        retries, no wait for the rate budget), with a timeout of at most ``TEST_CONNECTION_TIMEOUT``
        seconds.
        """
        saved: dict[str, Any] = {"retry_limit": self.retry_limit, "rate_limit_wait": self.rate_limit_wait}
        self._testing = True
        self.retry_limit = 0
        self.rate_limit_wait = 0.0  # a 429 answers the test; it is not waited out
        try:
            self.get_conn()
            saved["timeout"] = self.timeout
            self.timeout = min(self.timeout, TEST_CONNECTION_TIMEOUT)  # also caps a connection extra
            total = self.count_contacts()
        except Exception as exc:  # the UI wants (False, reason), not a traceback
            return False, redact(str(exc))
        finally:
            for name, value in saved.items():
                setattr(self, name, value)
            self._testing = False
        return True, f"Connected to Exotel account {self.account_sid}: {total} contacts"


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
#: How far before a lost create the hook looks for the contacts it may have created (clock skew).
LOOKUP_MARGIN = 600.0


def _path_segment(name: str, value: Any) -> str:
    """``value`` checked and quoted as one URL path segment."""
    return quote(check_path_segment(name, value), safe="")


def _check_sids(contact_sids: Any) -> list[str]:
    if isinstance(contact_sids, str | bytes | Mapping) or not isinstance(contact_sids, Iterable):
        raise ExotelValidationError(
            f"contact_sids must be a list of contact sids, got {type(contact_sids).__name__}"
        )
    sids: list[str] = []
    seen: set[str] = set()
    for i, sid in enumerate(contact_sids):
        checked = check_list_sid(sid, f"contact_sids[{i}]")
        if checked in seen:
            raise ExotelValidationError(f"contact_sids[{i}] repeats sid {checked!r}; give each sid once")
        seen.add(checked)
        sids.append(checked)
    return sids


def _check_list_name(name: Any, tag: Any) -> dict[str, Any]:
    if not isinstance(name, str) or not name.strip():
        raise ExotelValidationError(f"name must be a non-empty string, got {name!r}")
    check_json_value(name, "name")
    item: dict[str, Any] = {"name": name}
    if tag is not None:
        if not isinstance(tag, str):
            raise ExotelValidationError(f"tag must be a string or None, got {tag!r}")
        check_json_value(tag, "tag")
        item["tag"] = tag
    return item


def _bulk_item(item: Any) -> tuple[int | None, str, dict[str, Any]]:
    """``(None, "", data)`` for a successful bulk-answer item, else ``(code, message, {})``."""
    if not isinstance(item, Mapping):
        return 0, "no result returned by Exotel for this item", {}
    code = item.get("code")
    status = item.get("status")
    if status == "success" or (status is None and code in (200, 201)):
        data = item.get("data")
        return None, "", data if isinstance(data, dict) else {}
    failure, message = _item_outcome(item)
    return (failure if failure is not None else 0), message, {}


def _one_object(body: Mapping[str, Any], label: str) -> dict[str, Any]:
    """``data`` of a one-object answer whose ``response`` is an object or a one-item list."""
    response = body.get("response")
    if isinstance(response, list):
        response = response[0] if len(response) == 1 else None
    code, message, data = _bulk_item(response)
    if code is not None:
        raise ExotelRequestError(f"Exotel {label}: {code} {message}", status=code or None)
    if not data:
        raise ExotelRequestError(f"Exotel {label}: answer has no object in 'response'")
    return data


def _lost_delete(error: AmbiguousRequestError, label: str) -> ExotelRequestError:
    """The error of a DELETE attempt whose answer was lost, without ``ambiguous``'s "not re-sent"
    (a DELETE is re-sent: deleting twice deletes once)."""
    message = str(error).removesuffix(f"; {label} is not re-sent blindly because it may have been applied")
    return ExotelRequestError(
        message, status=error.status, error_code=error.error_code, request_id=error.request_id
    )


def _delete_refusal(body: Mapping[str, Any]) -> tuple[int, str] | None:
    """``(code, message)`` when a DELETE's 2xx answer carries a failure item in ``response`` (an
    object or a one-item list), else ``None`` (done)."""
    response = body.get("response")
    if isinstance(response, list):
        response = response[0] if len(response) == 1 else None
    if not isinstance(response, Mapping):
        return None
    code = response.get("code")
    if response.get("status") != "failure" and not (isinstance(code, int) and code >= 400):
        return None
    failure, message = _item_outcome(response)
    return (failure or 0), message


def _sid_result(sids: list[str], outcome: Mapping[str, tuple[int, str] | None]) -> BulkUpdateResult:
    result = BulkUpdateResult(total=len(sids))
    for sid in sids:
        failure = outcome.get(sid, (0, "no result returned by Exotel for this contact"))
        if failure is None:
            result.succeeded.append(sid)
        else:
            result.failed.append({"sid": sid, "code": failure[0], "message": failure[1]})
    return result


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


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


def _check_name(name: Any, argument: str = "name") -> str:
    if not isinstance(name, str):
        raise ExotelValidationError(f"{argument} must be a string, got {type(name).__name__} {name!r}")
    _check_encodable(argument, name)
    return name


def _check_encodable(argument: str, value: str) -> None:
    """A query parameter must be sendable as UTF-8 (a lone surrogate is not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ExotelValidationError(
            f"{argument} must be text that can be sent as UTF-8; {value!r} holds a lone surrogate"
        ) from None


def _zip_items(batch: list[dict[str, Any]], body: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], Any]]:
    items = body.get("response")
    if not isinstance(items, list):
        items = []
    for i, contact in enumerate(batch):
        yield contact, items[i] if i < len(items) else None


def _item_sid(item: Any) -> str | None:
    """The ``data.sid`` a bulk-answer item carries, if any."""
    data = item.get("data") if isinstance(item, Mapping) else None
    sid = data.get("sid") if isinstance(data, Mapping) else None
    return sid if isinstance(sid, str) else None


def _match_items(batch: list[dict[str, Any]], body: Mapping[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """Pair each contact sent with its result item (``None`` when it has none).

    Items that carry ``data.sid`` are matched by it, whatever their order. Only when no item carries
    a sid is the answer matched by position (Exotel answers in input order). In a mixed answer the
    items without a sid go, in order, to the contacts still unmatched — but such an item is taken as
    a *success* only at its own position, so a contact is never reported updated because results
    came back reordered.
    """
    items = body.get("response")
    if not isinstance(items, list):
        items = []
    if not any(_item_sid(item) for item in items):
        return [(contact, items[i] if i < len(items) else None) for i, contact in enumerate(batch)]
    index = {contact["sid"]: i for i, contact in enumerate(batch)}
    matched: dict[int, Any] = {}
    loose: list[tuple[int, Any]] = []  # (position, item) of items without a (known) sid
    for position, item in enumerate(items):
        sid = _item_sid(item)
        if sid is None:
            loose.append((position, item))
        elif sid in index and index[sid] not in matched:
            matched[index[sid]] = item
    unmatched = [i for i in range(len(batch)) if i not in matched]
    for i, (position, item) in zip(unmatched, loose, strict=False):
        if _item_outcome(item)[0] is None and position != i:
            continue  # a success we cannot attribute: the contact stays without a result
        matched[i] = item
    return [(contact, matched.get(i)) for i, contact in enumerate(batch)]


def _unknown_batch(batch: list[dict[str, Any]], error: BaseException, *, sent: bool) -> BulkUpdateResult:
    """A batch whose outcome is not known (``sent``) or that was never sent, all failed."""
    reason = str(error) or type(error).__name__
    if sent:
        message = f"outcome unknown, the update ended while this batch was in flight: {reason}"
    else:
        message = f"not sent, the update ended before this batch: {reason}"
    code = error.status if isinstance(error, ExotelError) and error.status else 0
    return BulkUpdateResult(
        total=len(batch),
        failed=[{"sid": c["sid"], "code": code, "message": message} for c in batch],
    )


def _item_outcome(item: Any) -> tuple[int | None, str]:
    """(None, "") for a success, else (code, message) for one PUT result item."""
    if not isinstance(item, Mapping):
        return 0, "no result returned by Exotel for this contact"
    code = item.get("code")
    status = item.get("status")
    if code == 200 or (code is None and status == "success"):
        return None, ""
    raw = item.get("error_data")
    error_data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    parts = [str(error_data[k]) for k in ("message", "description") if error_data.get(k)]
    return (code if isinstance(code, int) else 0), (": ".join(parts) or str(status or "failure"))


__all__ = [
    "MAX_BULK_CREATE",
    "MAX_BULK_UPDATE",
    "MAX_LIST_ADD",
    "MAX_PAGE_SIZE",
    "UPDATABLE_FIELDS",
    "BulkCreateResult",
    "BulkUpdateResult",
    "ExotelContactsHook",
    "ResumePoint",
    "validate_contact",
    "validate_contacts",
]
