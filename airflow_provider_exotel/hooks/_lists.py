"""Lists (private): list reading, creating, deleting and membership — hook methods with short
bodies over the transport (``_base``) and the batch runner (``_batches``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airflow_provider_exotel._new_contacts import MAX_LIST_ADD
from airflow_provider_exotel._validation import check_int, check_json_value, check_list_sid, check_max_records
from airflow_provider_exotel.exceptions import (
    ExotelAuthError,
    ExotelError,
    ExotelRequestError,
    ExotelValidationError,
)
from airflow_provider_exotel.hooks._answers import by_position, item_outcome
from airflow_provider_exotel.hooks._base import ExotelBaseHook
from airflow_provider_exotel.hooks._batches import (
    BulkUpdateResult,
    Outcome,
    Resend,
    batch_sender,
    run_batches,
)
from airflow_provider_exotel.hooks._contacts import path_segment
from airflow_provider_exotel.hooks._paging import closing_pages
from airflow_provider_exotel.hooks._retry import AmbiguousRequestError, backoff


def check_list_name(name: Any, tag: Any) -> dict[str, Any]:
    """A ``POST lists`` item for ``name`` (and ``tag``), checked."""
    if not isinstance(name, str) or not name.strip():
        raise ExotelValidationError(f"name must be a non-empty string, got {name!r}")
    item: dict[str, Any] = {"name": check_json_value("name", name)}
    if tag is not None:
        if not isinstance(tag, str):
            raise ExotelValidationError(f"tag must be a string or None, got {tag!r}")
        item["tag"] = check_json_value("tag", tag)
    return item


def check_sids(contact_sids: Any) -> list[str]:
    """``contact_sids`` as a list of distinct, path-safe sids."""
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


class ListsMixin(ExotelBaseHook):
    """The list methods of :class:`~airflow_provider_exotel.hooks.contacts.ExotelContactsHook`."""

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
            params["name"] = check_json_value("name", name)
        return self._pager.paginate("lists", params, check_max_records(max_records))

    def create_list(self, name: str, *, tag: str | None = None) -> dict[str, Any]:
        """Create a list; ``ExotelRequestError`` with ``status == 409`` when the name is taken.

        A lost answer is not re-sent blindly: the list is looked up by name first.

        :param name: the list's name (unique per account).
        :param tag: optional tag.
        """
        item = check_list_name(name, tag)
        settings = self.settings
        for attempt in range(settings.retry_limit + 1):
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
                if attempt == settings.retry_limit:
                    raise
                self.log.warning(
                    "Exotel POST lists: answer lost (%s) and no list %r exists; re-sending", exc, name
                )
                time.sleep(backoff(settings.retry_delay, attempt + 1))
                continue
            return _created_list(body, name)
        raise AssertionError("unreachable")  # pragma: no cover

    def ensure_list(self, name: str, *, tag: str | None = None) -> dict[str, Any]:
        """The list named exactly ``name``, created (with ``tag``) when missing; an existing list is
        returned as it is.

        :param name: the list's exact name.
        :param tag: tag for a list that has to be created.
        """
        check_list_name(name, tag)
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
        with closing_pages(self.iter_lists(name=name)) as lists:
            return next((lst for lst in lists if lst.get("name") == name), None)

    def delete_list(self, list_sid: str) -> bool:
        """Delete a list (not its contacts); ``False`` when it did not exist.

        :param list_sid: the list's sid.
        """
        return self._delete(f"lists/{path_segment('list_sid', list_sid)}")

    def add_contacts_to_list(
        self, list_sid: str, contact_sids: Iterable[str], *, batch_size: int = MAX_LIST_ADD
    ) -> BulkUpdateResult:
        """Add existing contacts to a list, ``batch_size`` (≤5000) per request, in input order.

        Returns a :class:`BulkUpdateResult` of contact sids. Adding is a set operation, so a lost
        answer is simply re-sent. Whatever ends it raises, carrying ``partial_result``.

        :param list_sid: the list's sid.
        :param contact_sids: sids of the contacts to add (each at most once).
        :param batch_size: contacts per request, 1..5000.
        """
        endpoint = f"lists/{path_segment('list_sid', list_sid)}/contacts"
        check_int("batch_size", batch_size, minimum=1, maximum=MAX_LIST_ADD)
        sids = check_sids(contact_sids)

        def send(todo: list[str]) -> dict[str, Any]:
            references = [{"contact_sid": s} for s in todo]
            return self._request(
                "POST",
                endpoint,
                json_body={"contact_references": references},
                accept_statuses=(200, 201, 207),
            )

        settings = self.settings
        spec = _spec(f"POST {endpoint}", send, settings.retry_limit, settings.retry_delay, self.log)
        sender = batch_sender(lambda _: spec, BulkUpdateResult)
        # one batch at a time: a list keeps its members in the order they were added
        return run_batches(sids, batch_size, 1, sender, BulkUpdateResult, str, "exotel-add")

    def remove_contacts_from_list(self, list_sid: str, contact_sids: Iterable[str]) -> BulkUpdateResult:
        """Remove contacts from a list: one ``DELETE`` per contact, ``concurrency`` in flight.

        A contact that is not a member (404) is in ``failed`` — unless an earlier attempt of that
        DELETE lost its answer (that attempt removed it). Whatever ends it raises, carrying
        ``partial_result`` (the removals done count as done).

        :param list_sid: the list's sid.
        :param contact_sids: sids of the contacts to remove (each at most once).
        """
        base = f"lists/{path_segment('list_sid', list_sid)}/contacts"
        sids = check_sids(contact_sids)
        for sid in sids:
            path_segment("contact_sids item", sid)

        def remove(batch: list[str]) -> BulkUpdateResult:
            try:
                outcome = self._remove_one(base, batch[0])
            except ExotelAuthError as exc:  # refused: not removed
                refused = Outcome(exc.status or 0, f"not removed: {exc}")
                exc.partial_result = BulkUpdateResult.from_outcomes(batch, {}, refused)  # type: ignore[attr-defined]
                raise
            return BulkUpdateResult.from_outcomes(batch, {}, outcome)

        return run_batches(sids, 1, self.concurrency, remove, BulkUpdateResult, str, "exotel-del")

    def _remove_one(self, base: str, sid: str) -> Outcome:
        try:
            if self._delete(f"{base}/{path_segment('contact_sid', sid)}"):
                return Outcome.done()
        except ExotelAuthError:
            raise
        except ExotelError as exc:
            return Outcome(exc.status or 0, str(exc))
        return Outcome(404, f"Exotel DELETE {base}/{sid}: not a member of the list (404)")


def _spec(label: str, send: Any, retry_limit: int, retry_delay: float, log: Any) -> Resend:
    return Resend(label, str, send, by_position, retry_limit, retry_delay, log, not_applied="not added")


def _created_list(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The list a ``POST lists`` answer created, or the error it reports."""
    items = body.get("response")
    code, message, data = item_outcome(items[0] if isinstance(items, list) and items else items)
    if code is None and isinstance(data.get("sid"), str):
        return data
    if code == 409:
        raise ExotelRequestError(
            f"Exotel POST lists: a list named {name!r} already exists (409 {message})", status=409
        )
    raise ExotelRequestError(
        f"Exotel POST lists: list {name!r} was not created ({code} {message})", status=code or None
    )
