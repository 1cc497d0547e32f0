"""The fetch operators (private; public names in ``operators.contacts``): contacts, all or of a list.

With ``output_path`` contacts stream to JSON Lines through :func:`~._files.write_export` (resumable on
a local filesystem, keyed by the query and the account); without, the task returns them (≤1000).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel._validation import check_created_range, check_int, check_path_segment
from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelError
from airflow_provider_exotel.operators._base import (
    ExotelBaseOperator,
    check_bool,
    check_created,
    check_list_sids,
    check_path,
    check_str,
    is_deferred,
)
from airflow_provider_exotel.operators._files import Resume, to_path, write_export
from airflow_provider_exotel.operators._lineage import add_alias_events, asset_uri, with_asset
from airflow_provider_exotel.operators._progress import Progress

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

#: Most contacts a fetch operator returns through XCom; beyond this, ``output_path`` is required.
MAX_XCOM_CONTACTS = 1000

__all__ = ["MAX_XCOM_CONTACTS", "ExotelFetchContactsOperator", "ExotelFetchListContactsOperator"]


class ExotelFetchBaseOperator(ExotelBaseOperator):
    """Fetch contacts; stream them to ``output_path`` as JSON Lines, or return them (≤1000)."""

    ui_color = "#e3f2fd"

    def __init__(self, *, output_path: Any = None, max_records: int | None = None, **kwargs: Any) -> None:
        if not is_deferred(output_path):
            check_path("output_path", output_path)
            uri = asset_uri(output_path)
            if uri is not None:
                kwargs["outlets"] = with_asset(kwargs.get("outlets"), uri)
        super().__init__(**kwargs)
        self.output_path = output_path
        self.max_records = max_records

    def _checks(self) -> list[tuple[Any, Any]]:
        return [
            *super()._checks(),
            (lambda v: check_path("output_path", v), self.output_path),
            (lambda v: check_int("max_records", v, minimum=0, optional=True), self.max_records),
        ]

    # subclasses say what they fetch
    def _describe(self) -> str:
        raise NotImplementedError

    def _count(self) -> int | None:
        raise NotImplementedError

    def _iter(self, max_records: int | None, resume: Any = None) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def _lineage_source(self) -> str | None:
        """The Exotel dataset read, for OpenLineage: ``None`` (the account's contacts) or a list sid."""
        return None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the Exotel contacts read and the file written (``output_path``), if any.

        :param task_instance: the finished task instance (unused).
        """
        from airflow_provider_exotel.operators._lineage import operator_lineage

        return operator_lineage(self, exotel_inputs=[self._lineage_source()], file_outputs=[self.output_path])

    def _total(self) -> int | None:
        """How many contacts to expect, for progress lines (one cheap request; best effort)."""
        try:
            total = self._count()
        except ExotelAuthError:
            raise
        except ExotelError as exc:
            self.log.info("Could not count contacts in advance (%s); progress shows counts only", exc)
            return None
        if total is not None and self.max_records is not None:
            total = min(total, self.max_records)
        return total

    def execute(self, context: Context) -> Any:
        self._check_arguments(at_runtime=True)
        try:
            return self._fetch(context)
        finally:
            self._close_hook()

    def _fetch(self, context: Context) -> Any:
        what = self._describe()
        total = self._total()
        self.log.info("Fetching %s%s", what, f" ({total:,} contacts)" if total is not None else "")
        progress = Progress(self.log, "fetched", total, self.hook.request_budget)
        if self.output_path is None:
            return self._to_xcom(what, progress)
        target = to_path(self.output_path)

        def fetch(resume: Resume | None) -> Iterator[dict[str, Any]]:
            if resume is None:
                return self._iter(self.max_records)
            from airflow_provider_exotel.hooks.contacts import ResumePoint

            if progress.total:  # progress lines count what this try fetches
                progress.total = max(progress.total - resume.count, 0)
            return self._iter(self.max_records, ResumePoint(resume.count, resume.last, resume.seen))

        key = {**self._fetch_identity(), "account": self._account()}
        count = write_export(target, fetch, key=key, log=self.log, on_row=progress.add)
        self.log.info(
            "Fetched %s contacts (%s) to %s in %.1f s", f"{count:,}", what, target, progress.elapsed
        )
        add_alias_events(context, self.outlets, target)
        return {"path": str(target), "count": count}

    def _to_xcom(self, what: str, progress: Progress) -> list[dict[str, Any]]:
        """The contacts themselves (at most ``MAX_XCOM_CONTACTS``)."""
        limit = MAX_XCOM_CONTACTS + 1
        if self.max_records is not None:
            limit = min(limit, self.max_records)
        result: list[dict[str, Any]] = []
        contacts = self._iter(limit)
        try:
            for contact in contacts:
                if len(result) == MAX_XCOM_CONTACTS:
                    raise ExotelError(
                        f"{self.task_id}: more than {MAX_XCOM_CONTACTS} contacts ({what}); XCom is not "
                        "a data store — set output_path to stream them to a JSON Lines file "
                        "(local path or storage URL such as s3://bucket/contacts.jsonl), "
                        "or max_records to fetch fewer"
                    )
                result.append(contact)
                progress.add()
        finally:
            close = getattr(contacts, "close", None)
            if close is not None:  # stop the hook's pager (and its prefetching threads)
                close()
        self.log.info("Fetched %s contacts (%s) in %.1f s", f"{len(result):,}", what, progress.elapsed)
        return result

    def _fetch_identity(self) -> dict[str, Any]:
        """What this task fetches (endpoint and filters): a partial export is resumed only for the same."""
        raise NotImplementedError


class ExotelFetchContactsOperator(ExotelFetchBaseOperator):
    """Fetch the account's contacts (optionally filtered) from Exotel.

    With ``output_path`` the contacts are streamed to a JSON Lines file as pages arrive (memory stays
    flat), written to a temporary sibling and moved into place only when complete; the task returns
    ``{"path": str, "count": int}``. A static ``output_path`` is also declared as an Asset outlet so
    other DAGs can be scheduled on it. Without ``output_path`` the task returns the contacts
    themselves and fails if there are more than 1000 (XCom is not a data store).

    With ``created_from``/``created_to`` only the contacts created in that half-open window are
    fetched, newest first, reading a small part of the account (e.g. one data interval:
    ``created_from="{{ data_interval_start }}", created_to="{{ data_interval_end }}"``).

    A local ``output_path`` export is resumable: when a try fails or is killed, the next try of the
    task (same ``output_path``) goes on from the last contact written instead of starting over.

    :param exotel_conn_id: id of the ``exotel`` connection. Templated.
    :param name: only contacts whose name matches. Templated.
    :param sort_by: server-side order, e.g. ``"date_created:desc"``. Templated. Not with
        ``created_from``/``created_to``.
    :param created_from: only contacts created at or after this moment (datetime or ISO-8601
        string; naive means UTC). Templated.
    :param created_to: only contacts created before this moment (exclusive). Templated.
    :param list_sids: only contacts in any of these lists: a list of sids or a comma-separated
        string. Templated; a template rendering a list (``"['l1', 'l2']"``) is read as that list.
    :param show_list: include each contact's lists (``filter=show_list``).
    :param output_path: local path or storage URL (``file://``, ``s3://``, ...) of the JSON Lines
        file to write. Templated; a templated path is not declared as an Asset automatically
        (pass ``outlets=[Asset(...)]`` yourself).
    :param max_records: stop after this many contacts.
    :param hook_params: extra :class:`ExotelContactsHook` arguments, e.g.
        ``{"concurrency": 2, "requests_per_minute": 120, "retry_limit": 3}``.
    """

    template_fields: Sequence[str] = (
        "exotel_conn_id",
        "name",
        "sort_by",
        "list_sids",
        "output_path",
        "created_from",
        "created_to",
    )

    def __init__(
        self,
        *,
        exotel_conn_id: str = "exotel_default",
        name: str | None = None,
        sort_by: str | None = None,
        list_sids: list[str] | str | None = None,
        show_list: bool = False,
        output_path: Any = None,
        max_records: int | None = None,
        created_from: Any = None,
        created_to: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            exotel_conn_id=exotel_conn_id, output_path=output_path, max_records=max_records, **kwargs
        )
        self.name = name
        self.sort_by = sort_by
        self.list_sids = list_sids
        self.show_list = show_list
        self.created_from = created_from
        self.created_to = created_to
        self._check_arguments(at_runtime=False)

    @property
    def _incremental(self) -> bool:
        return self.created_from is not None or self.created_to is not None

    def _checks(self) -> list[tuple[Any, Any]]:
        return [
            *super()._checks(),
            (lambda v: check_str("name", v, optional=True, allow_empty=True), self.name),
            (lambda v: check_str("sort_by", v, optional=True), self.sort_by),
            (check_list_sids, self.list_sids),
            (lambda v: check_bool("show_list", v), self.show_list),
            (check_created, (self.created_from, self.created_to, self.sort_by)),
        ]

    def _describe(self) -> str:
        filters = [
            f"{k}={v!r}"
            for k, v in (
                ("name", self.name),
                ("list_sids", self.list_sids),
                ("created_from", self.created_from),
                ("created_to", self.created_to),
            )
            if v is not None
        ]
        what = "all contacts" + (f" where {', '.join(filters)}" if filters else "")
        return what + (f", ordered by {self.sort_by}" if self.sort_by is not None else "")

    def _count(self) -> int | None:
        if self._incremental:  # the count of a window is not known in advance (and costs requests)
            return None
        return self.hook.count_contacts(name=self.name, list_sids=self.list_sids)

    def _fetch_identity(self) -> dict[str, Any]:
        start, end = check_created_range(self.created_from, self.created_to, self.sort_by)
        return {
            "endpoint": "contacts",
            "name": self.name,
            "sort_by": self.sort_by,
            "list_sids": self.list_sids,
            "show_list": self.show_list,
            "max_records": self.max_records,
            "created_from": start.isoformat() if start else None,
            "created_to": end.isoformat() if end else None,
        }

    def _iter(self, max_records: int | None, resume: Any = None) -> Iterator[dict[str, Any]]:
        return self.hook.iter_contacts(
            name=self.name,
            sort_by=self.sort_by,
            list_sids=self.list_sids,
            show_list=self.show_list,
            max_records=max_records,
            created_from=self.created_from,
            created_to=self.created_to,
            resume=resume,
        )


class ExotelFetchListContactsOperator(ExotelFetchBaseOperator):
    """Fetch the contacts of one Exotel list.

    Same output contract as :class:`ExotelFetchContactsOperator`: JSON Lines at ``output_path``
    (returning ``{"path", "count"}``), or the contacts themselves (at most 1000).

    :param list_sid: the list's sid (surrounding spaces are trimmed; ``..``, ``/`` and the like are
        refused). Templated (works with ``.expand(list_sid=[...])``).
    :param exotel_conn_id: id of the ``exotel`` connection. Templated.
    :param output_path: local path or storage URL of the JSON Lines file to write. Templated.
    :param max_records: stop after this many contacts.
    :param hook_params: extra :class:`ExotelContactsHook` arguments (names and bounds are checked
        when the DAG is parsed).
    """

    template_fields: Sequence[str] = ("exotel_conn_id", "list_sid", "output_path")

    def __init__(
        self,
        *,
        list_sid: str,
        exotel_conn_id: str = "exotel_default",
        output_path: Any = None,
        max_records: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            exotel_conn_id=exotel_conn_id, output_path=output_path, max_records=max_records, **kwargs
        )
        self.list_sid = list_sid
        self._check_arguments(at_runtime=False)

    def _checks(self) -> list[tuple[Any, Any]]:
        return [*super()._checks(), (lambda v: check_path_segment("list_sid", v), self.list_sid)]

    def _describe(self) -> str:
        return f"contacts of list {self.list_sid}"

    def _count(self) -> int | None:
        return self.hook.count_contacts(list_sid=self.list_sid)

    def _fetch_identity(self) -> dict[str, Any]:
        return {"endpoint": "list contacts", "list_sid": self.list_sid, "max_records": self.max_records}

    def _iter(self, max_records: int | None, resume: Any = None) -> Iterator[dict[str, Any]]:
        return self.hook.iter_list_contacts(self.list_sid, max_records=max_records, resume=resume)

    def _lineage_source(self) -> str | None:
        return str(self.list_sid)
