"""ExotelCallsHook — the account's call records, from Exotel's Voice v1 ``Calls`` API.

Same ``exotel`` connection and transport as the contacts hook; its requests count against the voice
budget family (200/min by default at Exotel), apart from the campaign APIs' 30/min. Windows, the
``DateCreated`` filter, page checks and cursors live in ``hooks/_calls.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from airflow_provider_exotel._calls_check import DIRECTIONS, STATUSES, check_choice
from airflow_provider_exotel._validation import check_created_range, check_max_records, check_path_segment
from airflow_provider_exotel.exceptions import ExotelRequestError, ExotelValidationError
from airflow_provider_exotel.hooks._base import ExotelBaseHook
from airflow_provider_exotel.hooks._calls import (
    MAX_STALE_PAGES,
    PAGE_SIZE,
    Window,
    check_age,
    next_page_params,
    parse_calls_page,
    parse_local,
    request_windows,
)
from airflow_provider_exotel.hooks._retry import TransientError

#: Calls cannot be created in the future: windows beyond this much after now are not requested.
FUTURE_SLACK = timedelta(days=1)


class ExotelCallsHook(ExotelBaseHook):
    """Read call records (Voice v1 ``Calls``) through an ``exotel`` connection.

    Same constructor as :class:`~airflow_provider_exotel.hooks.contacts.ExotelContactsHook`. The
    connection extra ``timezone`` (an IANA name, default ``Asia/Kolkata``) is the zone of the
    account, in which Exotel writes every v1 timestamp. Requests count against the voice budget.
    """

    @property
    def timezone(self) -> tzinfo:
        """The account's time zone (connection extra ``timezone``; resolves the connection)."""
        return ZoneInfo(self.settings.timezone)

    def _clock(self) -> float:
        """Now on the server's clock, in epoch seconds (the 6-month limit is counted from it)."""
        return self._server_time()

    def call_created_at(self, call: dict[str, Any]) -> datetime | None:
        """A call's ``DateCreated`` (account zone, no offset) as an aware UTC datetime."""
        return parse_local(call.get("DateCreated"), self.timezone)

    # ---------------------------------------------------------------------------- reading
    def iter_calls(
        self,
        *,
        created_from: datetime | str,
        created_to: datetime | str,
        status: str | list[str] | None = None,
        direction: str | list[str] | None = None,
        max_records: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield the calls created in ``[created_from, created_to)``, oldest first, as Exotel sends them.

        The interval is sent in the account's time zone as ``DateCreated=gte:…;lte:…`` (``lte`` is
        ``created_to`` − 1 s), split into requests of at most 31 days; each request's cursor chain
        (``NextPageUri``) is followed, 100 calls a page. A call is never yielded twice.

        :param created_from: first moment (inclusive): a datetime or ISO-8601 string, naive = UTC;
            at most 6 months (183 days) back.
        :param created_to: end (exclusive), same types; ``created_from == created_to`` selects nothing.
        :param status: only calls of this status (``completed``, ``failed``, ``busy``,
            ``no-answer``), or of any of a list of them.
        :param direction: only ``inbound``, ``outbound-dial`` or ``outbound-api`` calls (or a list).
        :param max_records: stop after this many calls.
        """
        windows, params, limit = self._plan(created_from, created_to, status, direction, max_records)
        return self._iter_windows(windows, params, limit)

    def _plan(
        self, created_from: Any, created_to: Any, status: Any, direction: Any, max_records: Any
    ) -> tuple[list[Window], dict[str, str], int | None]:
        """Validate everything (no request yet) and return the windows, common params and limit."""
        for name, value in (("created_from", created_from), ("created_to", created_to)):
            if value is None or (isinstance(value, str) and not value.strip()):
                raise ExotelValidationError(
                    f"{name} is required: a datetime or ISO-8601 string (naive = UTC), got {value!r}"
                )
        start, end = check_created_range(created_from, created_to)
        assert start is not None and end is not None
        params = {"PageSize": str(PAGE_SIZE), "SortBy": "DateCreated:asc"}
        for name, value, allowed, key in (
            ("status", status, STATUSES, "Status"),
            ("direction", direction, DIRECTIONS, "Direction"),
        ):
            checked = check_choice(name, value, allowed)
            if checked is not None:
                params[key] = checked
        limit = check_max_records(max_records)
        now = self._clock()
        check_age(start, now)
        end = min(end, datetime.fromtimestamp(now, UTC) + FUTURE_SLACK)
        windows = request_windows(start, end, self.timezone) if start < end else []
        return windows, params, limit

    def _iter_windows(
        self, windows: list[Window], params: dict[str, str], limit: int | None
    ) -> Iterator[dict[str, Any]]:
        yielded = 0
        if limit == 0:
            return
        for window in windows:
            for call in self._iter_window(window, params):
                yield call
                yielded += 1
                if limit is not None and yielded >= limit:
                    return

    def _iter_window(self, window: Window, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """One window's cursor chain; a ``Sid`` already yielded (a repeated page) is skipped."""
        ours: dict[str, str] = {**params, "DateCreated": window.date_created}
        query = ours
        seen: set[str] = set()
        stale = 0

        def check(body: dict[str, Any]) -> None:
            parse_calls_page(body, PAGE_SIZE, window)

        while True:
            body = self._request("GET", "Calls.json", params=query, check=check, family="voice")
            calls, next_uri = parse_calls_page(body, PAGE_SIZE, window)
            fresh = 0
            for call in calls:
                if call["Sid"] not in seen:
                    seen.add(call["Sid"])
                    fresh += 1
                    yield call
            if next_uri is None:
                return
            stale = 0 if fresh else stale + 1
            if stale >= MAX_STALE_PAGES:
                raise ExotelRequestError(
                    f"Exotel GET Calls.json ({window.date_created}): {stale} pages in a row brought "
                    "no new call; the NextPageUri chain does not advance"
                )
            # the cursor (After=…) with our filters, window and page size, whatever the URI carries
            query = {**next_page_params(next_uri, self.settings.origin, self.account_sid), **ours}

    def get_call(self, call_sid: str) -> dict[str, Any]:
        """One call record (Exotel's ``Call`` object); ``ExotelRequestError(status=404)`` when unknown.

        :param call_sid: the call's ``Sid``.
        """
        sid = check_path_segment("call_sid", call_sid)

        def check(body: dict[str, Any]) -> None:
            call = body.get("Call")
            if not isinstance(call, dict) or not isinstance(call.get("Sid"), str):
                raise TransientError(
                    ExotelRequestError("Exotel GET Calls/<sid>.json: answer has no Call object")
                )

        body = self._request("GET", f"Calls/{quote(sid, safe='')}.json", check=check, family="voice")
        return body["Call"]


__all__ = ["ExotelCallsHook"]
