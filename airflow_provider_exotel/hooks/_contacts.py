"""Contacts (private): reading, counting, bulk update, create, one contact — hook methods with
short bodies over the transport (``_base``), the pager (``_paging``), the incremental reader
(``_incremental``) and the batch runner (``_batches``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from airflow_provider_exotel._new_contacts import MAX_BULK_CREATE, normalize_number, validate_new_contacts
from airflow_provider_exotel._validation import (
    MAX_BULK_UPDATE,
    check_created_range,
    check_int,
    check_list_sid,
    check_max_records,
    check_path_segment,
    join_list_sids,
    parse_timestamp,
    validate_contacts,
)
from airflow_provider_exotel.exceptions import ExotelValidationError
from airflow_provider_exotel.hooks._answers import (
    by_position,
    by_sid,
    check_total,
    one_object,
    page_contacts,
    page_total,
)
from airflow_provider_exotel.hooks._base import ExotelBaseHook
from airflow_provider_exotel.hooks._batches import (
    BulkCreateResult,
    BulkUpdateResult,
    R,
    Resend,
    batch_sender,
    run_batches,
)
from airflow_provider_exotel.hooks._incremental import ResumePoint, iter_created_between, iter_resumed
from airflow_provider_exotel.hooks._paging import closing_pages


def path_segment(name: str, value: Any) -> str:
    """``value`` checked and quoted as one URL path segment."""
    return quote(check_path_segment(name, value), safe="")


def check_text(argument: str, value: Any) -> str:
    """A query parameter: a string that can be sent as UTF-8 (a lone surrogate cannot)."""
    if not isinstance(value, str):
        raise ExotelValidationError(f"{argument} must be a string, got {type(value).__name__} {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ExotelValidationError(
            f"{argument} must be text that can be sent as UTF-8; {value!r} holds a lone surrogate"
        ) from None
    return value


def contact_filters(name: Any, sort_by: Any, list_sids: Any, show_list: Any) -> dict[str, Any]:
    """The query parameters of ``GET contacts`` for these filters, checked."""
    params: dict[str, Any] = {}
    if name is not None:
        params["name"] = check_text("name", name)
    if sort_by is not None:
        if not isinstance(sort_by, str) or not sort_by.strip():
            raise ExotelValidationError(
                f"sort_by must be a non-empty string such as 'date_created:asc', got {sort_by!r}"
            )
        params["sort_by"] = check_text("sort_by", sort_by)
    joined = join_list_sids(list_sids)
    if joined:
        params["list_sids"] = joined
    if not isinstance(show_list, bool):
        raise ExotelValidationError(f"show_list must be True or False, got {show_list!r}")
    if show_list:
        params["filter"] = "show_list"
    return params


class ContactsMixin(ExotelBaseHook):
    """The contact methods of :class:`~airflow_provider_exotel.hooks.contacts.ExotelContactsHook`."""

    # ---------------------------------------------------------------------------- reading
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

        With ``created_from``/``created_to``: only contacts created in ``[created_from,
        created_to)``, newest first, for about ``k/19 + 2·log2(N) + 3`` requests for k of N
        contacts (see the README, "Incremental fetch").

        :param name: only contacts whose name matches.
        :param sort_by: server-side order, e.g. ``"date_created:desc"``. Not with ``created_*``.
        :param list_sids: only contacts in any of these lists: a list of sids, a comma-separated
            string, or a rendered list literal (``"['l1', 'l2']"``).
        :param show_list: include each contact's lists (``filter=show_list``).
        :param max_records: stop after this many contacts.
        :param created_from: only contacts created at or after this moment (datetime or ISO-8601;
            naive means UTC).
        :param created_to: only contacts created before this moment (exclusive; same types).
        :param resume: go on with an export that already holds the first ``resume.count`` contacts
            of this same fetch (used by the fetch operators).
        """
        start, end = check_created_range(created_from, created_to, sort_by)
        params = contact_filters(name, sort_by, list_sids, show_list)
        limit = check_max_records(max_records)
        if start is not None or end is not None:
            return iter_created_between(
                self._fetch_page, self._pager, "contacts", params, start, end, limit, resume
            )
        return self._paginate("contacts", params, limit, resume)

    def iter_list_contacts(
        self, list_sid: str, *, max_records: int | None = None, resume: ResumePoint | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the contacts of one list, in server order.

        :param list_sid: the list's sid.
        :param max_records: stop after this many contacts.
        :param resume: go on with an export (see :meth:`iter_contacts`).
        """
        sid = check_list_sid(list_sid)
        endpoint = f"lists/{quote(sid, safe='')}/contacts"
        return self._paginate(endpoint, {}, check_max_records(max_records), resume)

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
        if list_sid is not None:
            sid = check_list_sid(list_sid)
            if name is not None or list_sids is not None:
                raise ExotelValidationError("list_sid cannot be combined with name or list_sids")
            endpoint, filters = f"lists/{quote(sid, safe='')}/contacts", {}
        else:
            endpoint, filters = "contacts", contact_filters(name, None, list_sids, False)
        params = {"offset": 0, "limit": 1, **filters}
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

    # ---------------------------------------------------------------------------- one contact
    def get_contact(self, sid: str) -> dict[str, Any]:
        """One contact by sid; ``ExotelRequestError`` with ``status == 404`` when it does not exist.

        :param sid: the contact's sid.
        """
        endpoint = f"contacts/{path_segment('sid', sid)}"
        return one_object(self._request("GET", endpoint), f"GET {endpoint}")

    def delete_contact(self, sid: str) -> bool:
        """Delete one contact; ``False`` when it did not exist (a lost answer then a 404: ``True``).

        :param sid: the contact's sid.
        """
        return self._delete(f"contacts/{path_segment('sid', sid)}")

    # ---------------------------------------------------------------------------- bulk update
    def bulk_update_contacts(
        self, contacts: Iterable[Mapping[str, Any]], *, batch_size: int = MAX_BULK_UPDATE
    ) -> BulkUpdateResult:
        """Update many contacts with ``PUT contacts``, ``batch_size`` (≤5000) per request.

        The whole input is validated first; up to ``concurrency`` batches are in flight; results
        are matched by the ``data.sid`` Exotel returns (by position when it returns none). Contacts
        Exotel rejects are in ``failed``; transient per-item failures are re-sent. Whatever ends the
        update raises, carrying ``partial_result`` (see :func:`~._batches.run_batches`).

        :param contacts: dicts with ``sid`` and any of ``first_name, last_name, company_name,
            email, tag, custom_field, number``.
        :param batch_size: contacts per request, 1..5000.
        """
        check_int("batch_size", batch_size, minimum=1, maximum=MAX_BULK_UPDATE)
        items = validate_contacts(contacts)
        return self._run_bulk(items, batch_size, self._update_spec, BulkUpdateResult, _sid, "exotel-put")

    def _update_spec(self) -> Resend:
        return self._resend_spec(
            "PUT contacts",
            _sid,
            lambda todo: self._request(
                "PUT", "contacts", json_body={"contacts": todo}, accept_statuses=(200, 207)
            ),
            by_sid,
            not_applied="not updated",
        )

    def _run_bulk(
        self,
        items: list[dict[str, Any]],
        batch_size: int,
        spec: Callable[[], Resend],
        result_type: type[R],
        key: Callable[[Any], str],
        thread_name: str,
    ) -> R:
        """``items`` in batches through the one resend loop and batch runner."""
        sender = batch_sender(lambda _: spec(), result_type)
        return run_batches(items, batch_size, self.concurrency, sender, result_type, key, thread_name)

    def _resend_spec(self, label: str, key: Any, send: Any, pair: Any, **options: Any) -> Resend:
        settings = self.settings
        return Resend(label, key, send, pair, settings.retry_limit, settings.retry_delay, self.log, **options)

    # ---------------------------------------------------------------------------- create
    def create_contacts(
        self, contacts: Iterable[Mapping[str, Any]], *, batch_size: int = MAX_BULK_CREATE
    ) -> BulkCreateResult:
        """Create contacts with ``POST contacts``, ``batch_size`` (≤5000) per request.

        The whole input is validated first: each contact needs a ``number`` (spaces, dashes, dots
        and parentheses removed; then 6-15 digits with an optional ``+``), may carry the contact
        fields, and no number may appear twice. Up to ``concurrency`` batches are in flight.

        A create is never re-sent blindly: when an answer is lost the batch's numbers are looked up
        among the contacts created since the batch was first sent, on the server's clock, and only
        those not found are re-sent. Whatever ends the create raises, carrying ``partial_result``
        (a :class:`BulkCreateResult`: what was created counts as created).

        :param contacts: dicts with a ``number`` and any of the contact fields.
        :param batch_size: contacts per request, 1..5000.
        """
        check_int("batch_size", batch_size, minimum=1, maximum=MAX_BULK_CREATE)
        items = validate_new_contacts(contacts)
        return self._run_bulk(items, batch_size, self._create_spec, BulkCreateResult, _number, "exotel-post")

    def _create_spec(self) -> Resend:
        def send(todo: list[dict[str, Any]]) -> dict[str, Any]:
            return self._request(
                "POST",
                "contacts",
                json_body={"contacts": todo},
                accept_statuses=(200, 201, 207),
                idempotent=False,
            )

        def recover(todo: list[dict[str, Any]], first_sent: float) -> dict[str, str]:
            return self._find_new_contacts({c["number"] for c in todo}, first_sent)

        return self._resend_spec(
            "POST contacts",
            _number,
            send,
            by_position,
            not_applied="not created",
            needs_sid=True,
            recover=recover,
        )

    def _find_new_contacts(self, numbers: set[str], first_sent: float) -> dict[str, str]:
        """Sids of contacts with these (normalised) numbers created since ``first_sent`` (local
        epoch time), compared on the server's clock (``Date`` headers): reads the newest contacts
        first and stops at the first one created before it, or once all are found. A contact
        without a readable ``date_created`` cannot be shown to be new and is not matched."""
        found: dict[str, str] = {}
        oldest: float | None = None
        with closing_pages(self.iter_contacts(sort_by="date_created:desc")) as contacts:
            for contact in contacts:
                if oldest is None:  # after the first page: its Date header is known
                    oldest = math.floor(self._server_time(first_sent))
                created = parse_timestamp(contact.get("date_created"))
                if created is not None and math.floor(created.timestamp()) < oldest:
                    break
                number = normalize_number(contact.get("number"))
                sid = contact.get("sid")
                if created is not None and number in numbers and number not in found and isinstance(sid, str):
                    found[number] = sid
                    if len(found) == len(numbers):
                        break
        return found


def _sid(contact: Mapping[str, Any]) -> str:
    return str(contact["sid"])


def _number(contact: Mapping[str, Any]) -> str:
    return str(contact["number"])
