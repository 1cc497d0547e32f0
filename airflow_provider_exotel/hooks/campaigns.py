"""ExotelCampaignsHook — launch, read, control and delete Exotel calling campaigns.

Same connection and transport as :class:`~airflow_provider_exotel.hooks.contacts.ExotelContactsHook`
(campaigns belong to the campaign APIs' request budget, 30/min by default). Requests are built and
checked in :mod:`._campaigns`; paging is the one exact pager of :mod:`._paging`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from airflow_provider_exotel._campaign_check import normalize_status
from airflow_provider_exotel._campaign_input import (
    ACTIONS,
    STATUSES,
    campaign_item,
    check_action,
    check_campaign_id,
    check_status,
    check_text,
)
from airflow_provider_exotel._validation import check_max_records, parse_timestamp
from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelRequestError
from airflow_provider_exotel.hooks._base import ExotelBaseHook
from airflow_provider_exotel.hooks._campaigns import (
    created_since,
    first_item,
    item_outcome,
    keyed_check,
    normalize_campaign,
    rekey,
    unkey,
)
from airflow_provider_exotel.hooks._incremental import ResumePoint, iter_resumed
from airflow_provider_exotel.hooks._paging import Check, Pager
from airflow_provider_exotel.hooks._retry import AmbiguousRequestError, backoff

#: How far before its first send (on the server's clock, known to the second from ``Date``
#: headers) a lost create may have been stamped ``date_created``.
CREATE_LOOKUP_MARGIN = 2.0
#: Look-ups for a campaign whose create answer was lost (a slow server may still be creating it).
CREATE_LOOKUPS = 2

__all__ = ["ACTIONS", "STATUSES", "ExotelCampaignsHook"]


class ExotelCampaignsHook(ExotelBaseHook):
    """Exotel calling campaigns: create, read, find, page, pause/resume/complete/archive, delete,
    and page each campaign's call details.

    Same constructor, ``exotel`` connection and transport as ``ExotelContactsHook`` (campaign
    APIs' request budget). Campaign dicts are
    Exotel's ``data`` with ``status`` normalised to the lower-case hyphenated spelling
    (``InProgress`` → ``in-progress``).
    """

    hook_name = "Exotel campaigns"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._campaign_pager = Pager(self._keyed_fetch("id"), self.concurrency, self.log)
        self._details_pager = Pager(self._keyed_fetch("call_sid"), self.concurrency, self.log)

    # ---------------------------------------------------------------------------- create
    def create_campaign(
        self,
        *,
        name: str,
        caller_id: str,
        list_sids: Sequence[str] | None = None,
        numbers: Sequence[str] | None = None,
        flow_url: str | None = None,
        read_via_text: str | None = None,
        campaign_type: str = "static",
        send_at: datetime | str | None = None,
        end_at: datetime | str | None = None,
        retries: Mapping[str, Any] | None = None,
        call_status_callback: str | None = None,
        call_schedule_callback: str | None = None,
        status_callback: str | None = None,
        custom_field: Any = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a campaign (``POST campaigns``) and return it.

        The POST is **never sent twice**: when its answer is lost (timeout, reset, 5xx after
        sending) the campaign of that exact name created since the first send is looked up and
        returned; when there is none, :class:`ExotelRequestError` is raised and nothing is re-sent.
        A 429 (the request was not accepted) is waited out as usual.

        :param name: the campaign's name.
        :param caller_id: the ExoPhone the calls come from.
        :param list_sids: lists to call (1-5 for ``static``, exactly 1 for ``dynamic``).
        :param numbers: numbers to call instead (1-5000; Exotel's ``from``).
        :param flow_url: the call flow, ``http://my.exotel.com/<sid>/exoml/start_voice/<app_id>``.
        :param read_via_text: a greeting read out instead of a flow.
        :param campaign_type: ``static`` (default) or ``dynamic``.
        :param send_at: start (datetime or RFC 3339; naive = UTC).
        :param end_at: end, after ``send_at`` (or now).
        :param retries: ``{"number_of_retries": 0-3, "interval_mins", "mechanism", "on_status"}``.
        :param call_status_callback: URL called after each call.
        :param call_schedule_callback: URL called when calls are scheduled.
        :param status_callback: URL called when the campaign's status changes.
        :param custom_field: any JSON value, returned in callbacks.
        :param extra: more campaign fields, sent as given (may not repeat a named argument).
        """
        callbacks = {
            "call_status_callback": call_status_callback,
            "call_schedule_callback": call_schedule_callback,
            "status_callback": status_callback,
        }
        item = campaign_item(
            name=name,
            caller_id=caller_id,
            list_sids=list_sids,
            numbers=numbers,
            flow_url=flow_url,
            read_via_text=read_via_text,
            campaign_type=campaign_type,
            send_at=send_at,
            end_at=end_at,
            retries=retries,
            callbacks=callbacks,
            custom_field=custom_field,
            extra=extra,
        )
        first_send = time.time()  # local; turned into the server's clock when it is needed
        try:
            body = self._request(
                "POST",
                "campaigns",
                json_body={"campaigns": [item]},
                accept_statuses=(200, 201, 207),
                idempotent=False,
            )
        except AmbiguousRequestError as exc:
            return self._recover_lost_create(name, first_send, exc)
        code, message, data = item_outcome(first_item(body))
        if code is not None:
            raise ExotelRequestError(
                f"Exotel POST campaigns: campaign {name!r} was not created ({code} {message})",
                status=code or None,
            )
        campaign = normalize_campaign(data)
        self.log.info("Exotel campaign %s (%r) created: %s", campaign.get("id"), name, campaign.get("status"))
        return campaign

    def _recover_lost_create(self, name: str, first_send: float, exc: ExotelRequestError) -> dict[str, Any]:
        """The campaign a create whose answer was lost made, or the error (nothing is re-sent)."""
        self.log.warning(
            "Exotel POST campaigns: the answer was lost (%s); looking for campaign %r created since "
            "the first send instead of sending it again",
            exc,
            name,
        )
        for look in range(CREATE_LOOKUPS):
            if look:
                time.sleep(backoff(self.retry_delay, look))
            try:
                found = self._newest_named(name, first_send)
            except ExotelAuthError:
                raise
            except ExotelRequestError as lookup_exc:
                raise ExotelRequestError(
                    f"{exc}; looking campaign {name!r} up failed too ({lookup_exc}): it may or may not "
                    "exist — check Exotel before creating it again (nothing was re-sent)",
                    status=exc.status,
                ) from None
            if found is not None:
                self.log.info(
                    "Exotel campaign %s (%r) was created by the lost request", found.get("id"), name
                )
                return found
        raise ExotelRequestError(
            f"{exc}; no campaign named {name!r} was created since the request was sent, and it is not "
            "re-sent (a campaign calls people): check Exotel, then create it again",
            status=exc.status,
            error_code=exc.error_code,
            request_id=exc.request_id,
        )

    # ---------------------------------------------------------------------------- read
    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        """One campaign; :class:`ExotelRequestError` with ``status == 404`` when it is unknown.

        :param campaign_id: the campaign's id.
        """
        endpoint = f"campaigns/{quote(check_campaign_id(campaign_id), safe='')}"
        code, message, data = item_outcome(first_item(self._request("GET", endpoint)))
        if code is not None:
            raise ExotelRequestError(f"Exotel GET {endpoint}: {code} {message}", status=code or None)
        return normalize_campaign(data)

    def find_campaign(self, name: str) -> dict[str, Any] | None:
        """The campaign named exactly ``name`` (the newest when several), or ``None``.

        Exotel's ``name`` filter matches substrings: the names are compared here.

        :param name: the exact name.
        """
        return self._newest_named(check_text("name", name), None)

    def _newest_named(self, name: str, sent: float | None) -> dict[str, Any] | None:
        """The newest campaign named exactly ``name`` (with ``sent``, a local time: only those
        created since then, compared on the server's clock)."""
        newest: dict[str, Any] | None = None
        newest_at = None
        since: float | None = None
        campaigns = self.iter_campaigns(name=name)
        try:
            for campaign in campaigns:
                if sent is not None and since is None:  # after the first page: its Date is known
                    since = math.floor(self._server_time(sent)) - CREATE_LOOKUP_MARGIN
                if campaign.get("name") != name or (since is not None and not created_since(campaign, since)):
                    continue
                moment = parse_timestamp(campaign.get("date_created"))
                if newest is None or (moment is not None and (newest_at is None or moment >= newest_at)):
                    newest, newest_at = campaign, moment
        finally:
            campaigns.close()  # type: ignore[attr-defined]
        return newest

    def iter_campaigns(
        self, *, name: str | None = None, status: str | None = None, max_records: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the account's campaigns, paged like contacts (20 a page, exact).

        :param name: only campaigns whose name contains this (Exotel matches substrings).
        :param status: only campaigns in this status (any spelling).
        :param max_records: stop after this many.
        """
        params: dict[str, Any] = {}
        if name is not None:
            params["name"] = check_text("name", name)
        wanted = None if status is None else check_status(status)
        if wanted is not None:
            params["status"] = wanted
        rows = self._campaign_pager.paginate("campaigns", params, check_max_records(max_records))
        return _unkeyed(rows, wanted)

    # ---------------------------------------------------------------------------- control
    def campaign_action(self, campaign_id: str, action: str) -> dict[str, Any]:
        """Pause, resume, complete or archive a campaign; return it after the action.

        ``pause`` needs ``created``/``in-progress``, ``resume`` and ``complete`` need ``paused``
        (``complete`` marks the calls left as failed), ``archive`` needs ``completed``. A refused
        action raises :class:`ExotelRequestError` saying the campaign's current status.

        :param campaign_id: the campaign's id.
        :param action: ``pause``, ``resume``, ``complete`` or ``archive``.
        """
        verb = check_action(action)
        endpoint = f"campaigns/{quote(check_campaign_id(campaign_id), safe='')}"
        needs, leads_to = ACTIONS[verb]
        for attempt in range(self.retry_limit + 1):
            try:
                body = self._request(
                    "PUT",
                    endpoint,
                    json_body={"campaigns": [{"action": verb}]},
                    accept_statuses=(200, 207),
                    idempotent=False,
                )
            except AmbiguousRequestError as exc:  # applied or not? the campaign's status says
                current = self.get_campaign(campaign_id)
                if current.get("status") == leads_to:
                    return current
                if attempt == self.retry_limit:
                    raise
                self.log.warning(
                    "Exotel PUT %s: answer lost (%s); %s not applied, re-sending", endpoint, exc, verb
                )
                continue
            except ExotelRequestError as exc:
                if exc.status is None or not 400 <= exc.status < 500 or exc.status in (401, 403, 429):
                    raise
                raise self._refused(campaign_id, verb, needs, str(exc), exc.status) from None
            code, message, data = item_outcome(first_item(body))
            if code is not None:
                raise self._refused(campaign_id, verb, needs, f"{code} {message}", code or None)
            campaign = normalize_campaign(data)
            if campaign.get("status") is None or "name" not in campaign:
                campaign = self.get_campaign(campaign_id)
            self.log.info("Exotel campaign %s: %s → %s", campaign_id, verb, campaign.get("status"))
            return campaign
        raise AssertionError("unreachable")  # pragma: no cover

    def _refused(
        self, campaign_id: str, verb: str, needs: tuple[str, ...], said: str, status: int | None
    ) -> ExotelRequestError:
        """The error for a refused action, naming the campaign's current status."""
        try:
            current = self.get_campaign(campaign_id).get("status")
        except ExotelRequestError as exc:
            current = f"unknown ({exc})" if exc.status != 404 else "unknown: no such campaign"
        return ExotelRequestError(
            f"Exotel refused to {verb} campaign {campaign_id}: its status is {current} ({verb} needs "
            f"{' or '.join(needs)}); Exotel said: {said}",
            status=status,
        )

    def delete_campaign(self, campaign_id: str) -> bool:
        """Delete a campaign that has not started; ``False`` when it did not exist.

        A lost answer is resolved by reading the campaign (a deleted one answers with status
        ``deleted``), never by guessing. A campaign that has started cannot be deleted
        (:class:`ExotelRequestError` saying its status; pause or complete it instead).

        :param campaign_id: the campaign's id.
        """
        endpoint = f"campaigns/{quote(check_campaign_id(campaign_id), safe='')}"
        for attempt in range(self.retry_limit + 1):
            try:
                body = self._request("DELETE", endpoint, accept_statuses=(200, 202), idempotent=False)
            except AmbiguousRequestError:
                try:
                    status = self.get_campaign(campaign_id).get("status")
                except ExotelRequestError as exc:
                    if exc.status == 404:
                        return False
                    raise
                if status == "deleted":
                    return True
                if attempt == self.retry_limit:
                    raise
                continue
            except ExotelRequestError as exc:
                if exc.status == 204:
                    return True
                if exc.status == 404:
                    return False
                if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403, 429):
                    raise self._refused(campaign_id, "delete", ("created",), str(exc), exc.status) from None
                raise
            code, message, _ = item_outcome(first_item(body)) if body.get("response") else (None, "", {})
            if code == 404:
                return False
            if code is not None:
                raise self._refused(campaign_id, "delete", ("created",), f"{code} {message}", code or None)
            return True
        raise AssertionError("unreachable")  # pragma: no cover

    # ---------------------------------------------------------------------------- call details
    def iter_campaign_call_details(
        self,
        campaign_id: str,
        *,
        status: str | None = None,
        max_records: int | None = None,
        resume: ResumePoint | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield one row per call attempt of a campaign, oldest first, each exactly once.

        Rows are appended while the campaign runs; the exact pager reads each once.

        :param campaign_id: the campaign's id.
        :param status: only calls with this outcome (``completed``, ``failed``, ``busy``, ``no-answer``).
        :param max_records: stop after this many rows.
        :param resume: go on with an export that holds the first ``resume.count`` rows (by ``call_sid``).
        """
        endpoint = f"campaigns/{quote(check_campaign_id(campaign_id), safe='')}/call-details"
        params: dict[str, Any] = {}
        wanted = None if status is None else normalize_status(check_text("status", status))
        if wanted is not None:
            params["status"] = wanted
        limit = check_max_records(max_records)
        if resume is None or resume.count <= 0:
            rows = self._details_pager.paginate(endpoint, params, limit)
        else:
            anchor = ResumePoint(resume.count, {"sid": resume.last.get("call_sid")}, resume.seen)
            rows = iter_resumed(self._details_pager, endpoint, params, limit, anchor)
        return _unkeyed(rows, wanted)

    def _keyed_fetch(self, key: str) -> Any:
        """The pager's ``fetch_page`` for rows keyed by ``key`` instead of ``sid``."""

        def fetch(
            endpoint: str, params: Mapping[str, Any], offset: int, limit: int, check: Check | None = None
        ) -> dict[str, Any]:
            body = self._request(
                "GET",
                endpoint,
                params={**params, "offset": offset, "limit": limit},
                check=keyed_check(check, key),
            )
            return rekey(body, key)

        return fetch


def _unkeyed(rows: Iterator[dict[str, Any]], status: str | None) -> Iterator[dict[str, Any]]:
    """The pager's rows as Exotel sent them (status normalised); ``status`` filters again locally."""
    try:
        for row in rows:
            out = unkey(row)
            if status is None or out.get("status") == status:
                yield out
    finally:
        rows.close()  # type: ignore[attr-defined]
