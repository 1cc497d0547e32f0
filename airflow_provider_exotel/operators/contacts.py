"""Operators for Exotel's v2 Contacts API: fetch contacts (all, or of one list) and bulk-update them.

They are thin: they check their arguments, call :class:`~airflow_provider_exotel.hooks.contacts.
ExotelContactsHook` (which does all HTTP), stream JSON Lines to and from files, and log progress.

This module is imported on every DAG parse, so it keeps its top level cheap: the hook (and with it
``requests``, ``tenacity`` and the HTTP provider) is imported only when a task runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_exotel._compat import is_os_path, iter_lines
from airflow_provider_exotel._run_dates import RunDatesRendering
from airflow_provider_exotel._validation import (
    MAX_BULK_UPDATE,
    MAX_PAGE_SIZE,
    check_created_range,
    check_hook_params,
    check_int,
    check_path_segment,
    join_list_sids,
    normalized_contact,
    validate_contact,
    validate_contacts,
)
from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelError, ExotelValidationError
from airflow_provider_exotel.operators._export import (
    ResumableExport,
    atomic_jsonl_writer,
    jsonl_line,
    local_path,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_exotel.hooks.contacts import BulkUpdateResult, ExotelContactsHook
    from airflow_provider_exotel.operators._audience import (
        ExotelCreateContactsOperator,
        ExotelSyncContactsOperator,
    )

#: Most contacts a fetch operator returns through XCom; beyond this, ``output_path`` is required.
MAX_XCOM_CONTACTS = 1000
#: Seconds between progress lines in the task log.
PROGRESS_INTERVAL = 5.0

__all__ = [
    "MAX_XCOM_CONTACTS",
    "ExotelBulkUpdateContactsOperator",
    "ExotelBulkUpdateFailedError",
    "ExotelCreateContactsOperator",
    "ExotelFetchContactsOperator",
    "ExotelFetchListContactsOperator",
    "ExotelSyncContactsOperator",
]


# --------------------------------------------------------------------------------------------------
# Argument checks (run in __init__ on static values, and again in execute on rendered ones)
# --------------------------------------------------------------------------------------------------
def _is_deferred(value: Any) -> bool:
    """True for a value only known at run time: a Jinja string, or an XComArg."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    return hasattr(value, "resolve") and not isinstance(value, os.PathLike)


def _check_str(name: str, value: Any, *, optional: bool = False, allow_empty: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ExotelValidationError(f"{name} must be a non-empty string, got {value!r}")


def _check_path(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, str):
        if not value.strip():
            raise ExotelValidationError(f"{name} must be a local path or storage URL, got {value!r}")
        return
    if not isinstance(value, os.PathLike) and not hasattr(value, "protocol"):
        raise ExotelValidationError(
            f"{name} must be a local path or storage URL (str or ObjectStoragePath), "
            f"got {type(value).__name__}"
        )


def _check_list_sids(value: Any) -> None:
    if isinstance(value, (list, tuple)) and value and any(_is_deferred(v) for v in value):
        value = [v for v in value if not _is_deferred(v)] or None  # the rest is checked once rendered
    join_list_sids(value)


def _check_created(bounds: tuple[Any, Any, Any]) -> None:
    """``created_from``/``created_to``/``sort_by``; values still templated are checked when rendered."""
    check_created_range(*(None if _is_deferred(v) else v for v in bounds))


def _check_hook_params(value: Any) -> None:
    check_hook_params(value)


def _check(checks: Iterable[tuple[Any, Any]], *, at_runtime: bool) -> None:
    """Run ``(check, value)`` pairs; before run time, values still templated are left for execute."""
    for check, value in checks:
        if at_runtime or not _is_deferred(value):
            check(value)


# --------------------------------------------------------------------------------------------------
# Files: local paths or ObjectStoragePath URLs, written atomically
# --------------------------------------------------------------------------------------------------
def _to_path(value: Any) -> Any:
    """A local :class:`~pathlib.Path`, or an ``ObjectStoragePath`` for URLs (``s3://``, ``file://``...)."""
    if isinstance(value, str) and "://" in value:
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        return ObjectStoragePath(value)
    if isinstance(value, (str, os.PathLike)) and not hasattr(value, "protocol"):
        return Path(os.path.expanduser(os.fspath(value)))
    return value  # already an ObjectStoragePath


def _is_local(path: Any) -> bool:
    return is_os_path(path) or getattr(path, "protocol", None) in ("file", "local", "")


def _asset_uri(value: Any) -> str | None:
    """The Asset URI for a statically known output path (``None`` when it is templated)."""
    if value is None or _is_deferred(value):
        return None
    if isinstance(value, str) and "://" in value:
        return value
    path = _to_path(value)
    if is_os_path(path):
        return path.resolve().as_uri()
    return str(path)


_atomic_jsonl_writer = atomic_jsonl_writer


@contextlib.contextmanager
def _closing(iterator: Iterator[Any]) -> Iterator[Iterator[Any]]:
    """Stop the hook's pager (and its prefetching threads) when we leave early."""
    try:
        yield iterator
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def _jsonl(obj: Any) -> str:
    return jsonl_line(obj)


# --------------------------------------------------------------------------------------------------
# Progress lines
# --------------------------------------------------------------------------------------------------
class _Progress:
    """Logs ``<verb> 4,000 / 100,000 contacts (4%), 9.8/s, ETA 2h 43m (budget 30/min)``.

    At most every ``PROGRESS_INTERVAL`` s. The ETA comes from the remaining pages and the current
    pace, bounded by the account's request budget when the hook knows it (``budget()``: requests
    per minute or None).
    """

    def __init__(
        self, log: Any, verb: str, total: int | None = None, budget: Callable[[], float | None] | None = None
    ) -> None:
        self.log = log
        self.verb = verb
        self.total = total
        self.budget = budget
        self.count = 0
        self.started = time.monotonic()
        self._last = self.started

    def _line(self, extra: str = "") -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.count / elapsed
        done = f"{self.count:,}"
        if self.total:
            done += f" / {self.total:,} contacts ({min(100, 100 * self.count // self.total)}%)"
        else:
            done += " contacts"
        line = f"{self.verb} {done}, {rate:,.1f}/s" if rate < 100 else f"{self.verb} {done}, {rate:,.0f}/s"
        if self.total and self.count < self.total:
            rpm = self.budget() if self.budget is not None else None
            left = self.total - self.count
            eta = left / rate if rate > 0 else None
            if rpm:
                # the remaining pages (19 new contacts each: pages overlap by one) at the budget
                by_budget = -(-left // (MAX_PAGE_SIZE - 1)) * 60.0 / rpm
                eta = by_budget if eta is None else max(eta, by_budget)
            if eta is not None:
                line += f", ETA {_duration(eta)}"
            if rpm:
                line += f" (budget {rpm:,.0f}/min)"
        return line + extra

    def add(self, n: int = 1, extra: str = "") -> None:
        self.count += n
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self._emit(self._line(extra))

    def _emit(self, line: str) -> None:
        self.log.info(line)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _duration(seconds: float) -> str:
    """``2h 43m``, ``4m 10s``, ``12s``."""
    s = max(round(seconds), 0)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


# --------------------------------------------------------------------------------------------------
# Shared base: connection and hook
# --------------------------------------------------------------------------------------------------
class _ExotelBaseOperator(RunDatesRendering, BaseOperator):
    """Connection id, optional hook arguments and the lazily created hook.

    A template naming a run date the run lacks fails at once (``RunDatesRendering``).
    """

    def __init__(
        self,
        *,
        exotel_conn_id: str = "exotel_default",
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.exotel_conn_id = exotel_conn_id
        self.hook_params = hook_params

    def _checks(self) -> list[tuple[Any, Any]]:
        return [
            (lambda v: _check_str("exotel_conn_id", v), self.exotel_conn_id),
            (_check_hook_params, self.hook_params),
        ]

    def _check_arguments(self, *, at_runtime: bool) -> None:
        _check(self._checks(), at_runtime=at_runtime)

    @cached_property
    def hook(self) -> ExotelContactsHook:
        """The :class:`ExotelContactsHook`, created on first use (never at DAG parse time)."""
        from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

        return ExotelContactsHook(self.exotel_conn_id, **dict(self.hook_params or {}))

    def _close_hook(self) -> None:
        """Release the hook's pooled HTTP session, if the hook was ever created."""
        hook = self.__dict__.pop("hook", None)
        if hook is not None:
            hook.close()


# --------------------------------------------------------------------------------------------------
# Fetch
# --------------------------------------------------------------------------------------------------
class _ExotelFetchBaseOperator(_ExotelBaseOperator):
    """Fetch contacts; stream them to ``output_path`` as JSON Lines, or return them (≤1000)."""

    ui_color = "#e3f2fd"

    def __init__(self, *, output_path: Any = None, max_records: int | None = None, **kwargs: Any) -> None:
        if not _is_deferred(output_path):
            _check_path("output_path", output_path)
            uri = _asset_uri(output_path)
            if uri is not None:
                kwargs["outlets"] = _with_asset(kwargs.get("outlets"), uri)
        super().__init__(**kwargs)
        self.output_path = output_path
        self.max_records = max_records

    def _checks(self) -> list[tuple[Any, Any]]:
        return [
            *super()._checks(),
            (lambda v: _check_path("output_path", v), self.output_path),
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
        progress = _Progress(self.log, "fetched", total, self.hook.request_budget)
        if self.output_path is not None:
            target = _to_path(self.output_path)
            on_disk = local_path(target)
            if on_disk is not None:  # a local or mounted filesystem (also file:// URLs): resumable
                count = self._export_resumable(on_disk, progress)
            else:  # object storage: written whole to a temporary sibling, restarted on a new try
                with _closing(self._iter(self.max_records)) as contacts:
                    with _atomic_jsonl_writer(target) as fh:
                        for contact in contacts:
                            fh.write(_jsonl(contact))
                            progress.add()
                count = progress.count
            self.log.info(
                "Fetched %s contacts (%s) to %s in %.1f s",
                f"{count:,}",
                what,
                target,
                progress.elapsed,
            )
            _add_alias_events(context, self.outlets, target)
            return {"path": str(target), "count": count}

        limit = MAX_XCOM_CONTACTS + 1
        if self.max_records is not None:
            limit = min(limit, self.max_records)
        result: list[dict[str, Any]] = []
        with _closing(self._iter(limit)) as contacts:
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
        self.log.info("Fetched %s contacts (%s) in %.1f s", f"{len(result):,}", what, progress.elapsed)
        return result

    def _fetch_identity(self) -> dict[str, Any]:
        """What this task fetches (endpoint and filters): a partial export is resumed only for the same."""
        raise NotImplementedError

    def _export_resumable(self, target: Path, progress: _Progress) -> int:
        """Stream to a local ``target`` through a partial file that the next try resumes.

        A try that fails or is killed leaves ``.exotel-<hash>.partial.jsonl`` beside ``target``; the
        next try of the same ``output_path`` (and fetch) keeps its complete lines and asks the hook
        to go on after the last one (the seam is checked). Once complete, the file is moved into
        place, so the next run starts over. Returns the number of contacts in the file.
        """
        from airflow_provider_exotel.hooks.contacts import ResumePoint

        export = ResumableExport(target, self._fetch_identity())
        held = export.open()
        if held is None:
            self.log.warning(
                "Another try is writing %s right now; this one writes its own copy (not resumable)",
                target,
            )
            with _closing(self._iter(self.max_records)) as contacts:
                with _atomic_jsonl_writer(target) as fh:
                    for contact in contacts:
                        fh.write(_jsonl(contact))
                        progress.add()
            return progress.count
        count, last, seen = held
        resume = None
        if count and last is not None:
            resume = ResumePoint(count=count, last=last, seen=seen)
            if progress.total:  # progress lines count what this try fetches
                progress.total = max(progress.total - count, 0)
            self.log.info(
                "Resuming the export to %s: %s contacts were written by an earlier try (last sid %s); "
                "fetching the rest",
                target,
                f"{count:,}",
                last.get("sid"),
            )
        try:
            with _closing(self._iter(self.max_records, resume)) as contacts:
                for contact in contacts:
                    export.write(contact)
                    progress.add()
            export.commit()
            return export.count
        except BaseException:
            export.close()
            if export.count:
                self.log.warning(
                    "Export to %s stopped after %s contacts; they are kept in %s and the next try "
                    "of this task goes on from there",
                    target,
                    f"{export.count:,}",
                    export.partial.name,
                )
            raise


def _add_alias_events(context: Context, outlets: Any, target: Any) -> None:
    """Attach the written file, as an Asset, to every ``AssetAlias`` outlet of the task.

    This is how a *templated* ``output_path`` (one file per run) becomes an Asset event: declare
    ``outlets=[AssetAlias("exotel-export")]`` and schedule downstream DAGs on that alias.
    """
    aliases = [o for o in (outlets or []) if type(o).__name__ in ("AssetAlias", "DatasetAlias")]
    if not aliases:
        return
    from airflow.providers.common.compat.sdk import Asset

    uri = _asset_uri(str(target) if is_os_path(target) else target)
    events = context.get("outlet_events") if hasattr(context, "get") else None
    if uri is None or events is None:
        return
    for alias in aliases:
        events[alias].add(Asset(uri))


def _with_asset(outlets: Any, uri: str) -> list[Any]:
    from airflow.providers.common.compat.sdk import Asset

    current = list(outlets) if isinstance(outlets, (list, tuple)) else ([outlets] if outlets else [])
    if not any(getattr(o, "uri", None) == uri for o in current):
        current.append(Asset(uri))
    return current


class ExotelFetchContactsOperator(_ExotelFetchBaseOperator):
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
            (lambda v: _check_str("name", v, optional=True, allow_empty=True), self.name),
            (lambda v: _check_str("sort_by", v, optional=True), self.sort_by),
            (_check_list_sids, self.list_sids),
            (lambda v: _check_bool("show_list", v), self.show_list),
            (_check_created, (self.created_from, self.created_to, self.sort_by)),
        ]

    def _describe(self) -> str:
        filters = [
            f"{k}={v!r}"
            for k, v in (
                ("name", self.name),
                ("sort_by", self.sort_by),
                ("list_sids", self.list_sids),
                ("created_from", self.created_from),
                ("created_to", self.created_to),
            )
            if v is not None
        ]
        return "all contacts" + (f" where {', '.join(filters)}" if filters else "")

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


class ExotelFetchListContactsOperator(_ExotelFetchBaseOperator):
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


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ExotelValidationError(f"{name} must be True or False, got {value!r}")


# --------------------------------------------------------------------------------------------------
# Bulk update
# --------------------------------------------------------------------------------------------------
class ExotelBulkUpdateFailedError(ExotelError):
    """More contacts failed to update than ``max_failures`` allows."""


class ExotelBulkUpdateContactsOperator(_ExotelBaseOperator):
    """Update many contacts with Exotel's bulk ``PUT contacts``.

    The input is either ``contacts`` (a list of dicts, or an XComArg from an upstream task) or
    ``input_path`` (a JSON Lines file, one contact per line, never loaded whole: a first streaming
    pass validates every line, a second sends them ``batch_size`` at a time). Each contact has a
    ``sid`` plus any of ``first_name, last_name, company_name, email, tag, custom_field, number``.

    Returns ``BulkUpdateResult.to_dict()``: ``{"total", "succeeded", "failed", "failed_sids"}``.
    Contacts Exotel rejected are written to ``failed_output_path`` (JSON Lines: the contact as sent
    plus ``"error": {"code", "message"}``) — before the task fails when more than ``max_failures``
    of them failed — so they can be replayed with ``input_path=<that file>``.

    :param contacts: list of contact dicts to update. Templated.
    :param input_path: local path or storage URL of a JSON Lines file of contacts. Templated.
    :param exotel_conn_id: id of the ``exotel`` connection. Templated.
    :param batch_size: contacts per request, 1..5000.
    :param max_failures: how many contacts may fail before the task fails (default 0).
    :param failed_output_path: local path or storage URL for the failed contacts (JSON Lines; an
        empty file when none failed). Templated.
    :param dry_run: validate and report what would be sent (count, batches) without sending.
    :param hook_params: extra :class:`ExotelContactsHook` arguments, e.g. ``{"concurrency": 2}``.
    """

    template_fields: Sequence[str] = ("exotel_conn_id", "contacts", "input_path", "failed_output_path")
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        contacts: Any = None,
        input_path: Any = None,
        exotel_conn_id: str = "exotel_default",
        batch_size: int = MAX_BULK_UPDATE,
        max_failures: int = 0,
        failed_output_path: Any = None,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(exotel_conn_id=exotel_conn_id, **kwargs)
        self.contacts = contacts
        self.input_path = input_path
        self.batch_size = batch_size
        self.max_failures = max_failures
        self.failed_output_path = failed_output_path
        # not ``self.dry_run``: that name is BaseOperator's dry_run() method, which Airflow calls
        self.validate_only = dry_run
        self._check_arguments(at_runtime=False)

    def _checks(self) -> list[tuple[Any, Any]]:
        return [
            *super()._checks(),
            (self._check_source, (self.contacts, self.input_path)),
            (lambda v: check_int("batch_size", v, minimum=1, maximum=MAX_BULK_UPDATE), self.batch_size),
            (lambda v: check_int("max_failures", v, minimum=0), self.max_failures),
            (lambda v: _check_path("failed_output_path", v), self.failed_output_path),
            (lambda v: _check_bool("dry_run", v), self.validate_only),
        ]

    @staticmethod
    def _check_source(pair: tuple[Any, Any]) -> None:
        contacts, input_path = pair
        has_contacts = contacts is not None
        has_path = input_path is not None and input_path != ""
        if has_contacts == has_path:
            raise ExotelValidationError(
                "give exactly one of contacts (a list of contact dicts) or input_path (a JSON Lines "
                f"file); got {'both' if has_contacts else 'neither'}"
            )
        if (
            has_contacts
            and not _is_deferred(contacts)
            and (isinstance(contacts, (str, bytes, Mapping)) or not isinstance(contacts, Iterable))
        ):
            raise ExotelValidationError(
                f"contacts must be a list of contact dicts, got {type(contacts).__name__} "
                "(to pass an upstream task's list, use its XComArg, e.g. contacts=make_updates(), "
                "or render_template_as_native_obj=True on the DAG)"
            )
        if has_contacts and not _is_deferred(contacts):
            # a sid still templated (before rendering) stands in as a unique placeholder sid
            validate_contacts(
                [
                    {**c, "sid": f"templated-{i}"}
                    if isinstance(c, Mapping) and _is_deferred(c.get("sid"))
                    else c
                    for i, c in enumerate(contacts)
                ],
                "contacts",
            )
        if has_path and not _is_deferred(input_path):
            _check_path("input_path", input_path)

    # ------------------------------------------------------------------ input
    def _validated_input(self) -> tuple[int, Any]:
        """Validate the whole input before anything is sent.

        Returns ``(count, chunks)`` where ``chunks(size)`` yields lists of at most ``size``
        contacts: slices of the validated list, or a fresh streaming pass over ``input_path``.
        """
        if self.contacts is not None:
            items = validate_contacts(self.contacts, "contacts")

            def list_chunks(size: int) -> Iterator[list[dict[str, Any]]]:
                for i in range(0, len(items), size):
                    yield items[i : i + size]

            return len(items), list_chunks

        path = _to_path(self.input_path)
        count = self._validate_file(path)

        def file_chunks(size: int) -> Iterator[list[dict[str, Any]]]:
            chunk: list[dict[str, Any]] = []
            for _, contact in _read_jsonl(path):
                chunk.append(normalized_contact(contact, contact["sid"].strip()))
                if len(chunk) == size:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

        return count, file_chunks

    def _validate_file(self, path: Any) -> int:
        """First streaming pass over ``input_path``: JSON, fields, sids, no duplicate sid."""
        seen: set[bytes] = set()  # 8-byte digests keep memory small for millions of sids
        count = 0
        for line_no, contact in _read_jsonl(path):
            try:
                sid = validate_contact(contact, line_no, "input_path")
            except ExotelValidationError as exc:
                message = str(exc).replace(f"input_path[{line_no}]", f"line {line_no}")
                raise ExotelValidationError(f"input_path {path}: {message}") from None
            digest = hashlib.blake2b(sid.encode(), digest_size=8).digest()
            if digest in seen:
                first = next(n for n, c in _read_jsonl(path) if _sid_of(c) == sid)
                if first != line_no:
                    raise ExotelValidationError(
                        f"input_path {path}: line {line_no} repeats sid {sid!r} (first on line {first}); "
                        "each contact may appear once per bulk update"
                    )
            seen.add(digest)
            count += 1
        return count

    # ------------------------------------------------------------------ run
    def execute(self, context: Context) -> dict[str, Any]:
        self._check_arguments(at_runtime=True)
        total, chunks = self._validated_input()
        batches = -(-total // self.batch_size)
        source = "contacts" if self.contacts is not None else f"input_path {self.input_path}"
        if self.validate_only:
            self.log.info(
                "Dry run: %s valid contact(s) from %s would be sent in %d batch(es) of up to %d; "
                "nothing was sent",
                f"{total:,}",
                source,
                batches,
                self.batch_size,
            )
            return {
                "total": total,
                "succeeded": 0,
                "failed": 0,
                "failed_sids": [],
                "dry_run": True,
                "batches": batches,
                "batch_size": self.batch_size,
            }

        self.log.info(
            "Updating %s contact(s) from %s in %d batch(es) of up to %d",
            f"{total:,}",
            source,
            batches,
            self.batch_size,
        )
        try:
            result = self._send(chunks, total)
        finally:
            self._close_hook()
        summary = result.to_dict()
        self.log.info(
            "Bulk update done: %s submitted, %s updated, %s failed in %d batch(es)",
            f"{result.total:,}",
            f"{len(result.succeeded):,}",
            f"{len(result.failed):,}",
            batches,
        )
        if len(result.failed) > self.max_failures:
            examples = "; ".join(f"{f['sid']} ({f['code']} {f['message']})" for f in result.failed[:5])
            where = (
                f"; failed contacts written to {_to_path(self.failed_output_path)}"
                if self.failed_output_path is not None
                else "; set failed_output_path to keep them for a replay"
            )
            raise ExotelBulkUpdateFailedError(
                f"{len(result.failed):,} of {result.total:,} contacts failed to update "
                f"(max_failures={self.max_failures}){where}. First failures: {examples}"
            )
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the input file read (``input_path``) and the Exotel contacts written (none
        for a dry run).

        :param task_instance: the finished task instance (unused).
        """
        from airflow_provider_exotel.operators._lineage import operator_lineage

        return operator_lineage(
            self,
            exotel_outputs=[] if self.validate_only else [None],
            file_inputs=[self.input_path],
        )

    def _send(self, chunks: Any, total: int) -> BulkUpdateResult:
        """Second pass: send chunk by chunk, merging results and dead-lettering failed contacts.

        Whatever ends the update mid-way (an :class:`ExotelError` such as revoked credentials, the
        task's ``execution_timeout``, a SIGTERM, any other exception), nothing more is sent and
        ``failed_output_path`` still receives, and keeps, every contact not known to be updated:
        those Exotel rejected, those of batches in flight (outcome unknown) and those never sent.
        Then the exception propagates.
        """
        from airflow_provider_exotel.hooks.contacts import BulkUpdateResult, _unknown_batch

        hook = self.hook
        # one hook call per `concurrency` batches keeps the hook's parallelism and bounds memory
        per_call = self.batch_size * max(1, int(getattr(hook, "concurrency", 1) or 1))
        result = BulkUpdateResult()
        progress = _Progress(self.log, "updated", total)
        ended: BaseException | None = None
        with contextlib.ExitStack() as stack:
            failed_fh = None
            if self.failed_output_path is not None:
                failed_fh = stack.enter_context(_dead_letter_writer(_to_path(self.failed_output_path)))
            try:
                for chunk in chunks(per_call):
                    if ended is None:
                        try:
                            part = hook.bulk_update_contacts(chunk, batch_size=self.batch_size)
                        except BaseException as exc:  # stop sending; keep what is known
                            ended = exc
                            known = getattr(exc, "partial_result", None)
                            if isinstance(known, BulkUpdateResult) and known.total == len(chunk):
                                part = known
                            else:
                                was_sent = not isinstance(exc, ExotelValidationError)
                                part = _unknown_batch(chunk, exc, sent=was_sent)
                    else:
                        # dead-letter every later contact too, so a replay loses nothing
                        part = _unknown_batch(chunk, ended, sent=False)
                    result.merge(part)
                    if failed_fh is not None and part.failed:
                        by_sid = {c["sid"]: c for c in chunk}
                        for failure in part.failed:
                            sent = dict(by_sid.get(failure["sid"], {"sid": failure["sid"]}))
                            sent["error"] = {"code": failure["code"], "message": failure["message"]}
                            failed_fh.write(_dead_letter_line(sent))
                    progress.add(len(chunk), extra=f", {len(result.failed):,} failed")
            except BaseException as exc:  # reading the input or writing the file failed
                self.log.error("Bulk update stopped (%r); the dead-letter file may be incomplete", exc)
                ended = ended or exc
        if ended is not None:
            self.log.error(
                "Bulk update stopped: %s; %s updated, %s not updated (failed, not sent or outcome unknown)%s",
                str(ended) or type(ended).__name__,
                f"{len(result.succeeded):,}",
                f"{len(result.failed):,}",
                f" were written to {_to_path(self.failed_output_path)}"
                if self.failed_output_path is not None
                else "; set failed_output_path to keep them for a replay",
            )
            raise ended
        return result


@contextlib.contextmanager
def _dead_letter_writer(target: Any) -> Iterator[Any]:
    """Like the atomic JSON Lines writer, but what was written is moved into place *whatever* ends
    the block (the exception still propagates): dead letters are never thrown away."""
    pending: BaseException | None = None
    with _atomic_jsonl_writer(target) as fh:
        try:
            yield fh
        except BaseException as exc:
            pending = exc
    if pending is not None:
        raise pending


def _dead_letter_line(row: dict[str, Any]) -> str:
    """One JSON Lines row that can always be written as UTF-8 (odd text is \\u-escaped)."""
    line = _jsonl(row)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(row, ensure_ascii=True, separators=(",", ":"), default=str) + "\n"
    return line


def _sid_of(contact: Any) -> str | None:
    """The trimmed sid of a raw input row (``None`` when it has none)."""
    sid = contact.get("sid") if isinstance(contact, Mapping) else None
    return sid.strip() if isinstance(sid, str) else None


def _read_jsonl(path: Any, *, keep_errors: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, object)`` for each non-blank line; malformed JSON names its line.

    An ``error`` object (what the dead-letter file adds to each contact) is dropped, so a
    ``failed_output_path`` file can be replayed as ``input_path`` as it is — unless
    ``keep_errors`` (a sync's replay must know which rows are dead letters, and of which stage).
    """
    with path.open("r", encoding="utf-8") as fh:
        for line_no, line in enumerate(iter_lines(fh), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise ExotelValidationError(
                    f"input_path {path}: line {line_no} is not valid JSON ({exc})"
                ) from None
            if not keep_errors and isinstance(obj, dict) and isinstance(obj.get("error"), dict):
                del obj["error"]
            yield line_no, obj


def __getattr__(name: str) -> Any:
    """The create and sync operators live in ``operators/_audience.py`` (imported on first use)."""
    if name in ("ExotelCreateContactsOperator", "ExotelSyncContactsOperator"):
        from airflow_provider_exotel.operators import _audience

        return getattr(_audience, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
