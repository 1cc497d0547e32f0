"""Operator exporting the account's call records (Exotel Voice v1 ``Calls``), one interval per run.

Imported on every DAG parse: the top level stays cheap (the hook is imported when a task runs).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, conf

from airflow_provider_exotel._calls_check import DIRECTIONS, STATUSES, check_choice, check_settle
from airflow_provider_exotel._validation import check_created_range, check_int
from airflow_provider_exotel.exceptions import ExotelError, ExotelValidationError
from airflow_provider_exotel.operators._base import ExotelBaseOperator, check_path, is_deferred
from airflow_provider_exotel.operators._calls import CallsProgress, calls_lineage, skip_seen
from airflow_provider_exotel.operators._files import Resume, to_path, write_export
from airflow_provider_exotel.operators._lineage import add_alias_events, asset_uri, with_asset

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_exotel.hooks.calls import ExotelCallsHook

#: Most calls the operator returns through XCom; beyond this, ``output_path`` is required.
MAX_XCOM_CALLS = 1000


class NoDataIntervalError(ExotelValidationError, AirflowFailException):
    """The run has no usable data interval: no retry can heal that, so the task fails at once."""


DEFAULT_FROM = "{{ data_interval_start }}"
DEFAULT_TO = "{{ data_interval_end }}"
#: Longest nap while waiting in the worker for the interval to settle.
MAX_NAP = 60.0

__all__ = ["MAX_XCOM_CALLS", "ExotelFetchCallsOperator"]


class ExotelFetchCallsOperator(ExotelBaseOperator):
    """Export the calls created in ``[created_from, created_to)`` — by default the run's data interval.

    Exotel fills in ``Duration``, ``Price`` and ``EndTime`` only minutes after a call ends, so the
    task reads only once ``created_to + settle`` has passed: before that it defers to the triggerer
    (``deferrable=True``, no worker held) or waits in the worker. With ``output_path`` the calls are
    streamed, oldest first, to a JSON Lines file exactly like the contacts fetch (written atomically;
    a local export is resumed by the next try of the task; object storage URLs work) and the task
    returns ``{"path", "count"}``; without it the task returns the calls (at most 1000).

    :param created_from: first moment (inclusive): datetime or ISO-8601 string, naive = UTC; at most
        6 months back. Templated; default ``{{ data_interval_start }}``.
    :param created_to: end (exclusive). Templated; default ``{{ data_interval_end }}``.
    :param status: only calls of this status (``completed``, ``failed``, ``busy``, ``no-answer``) or
        a list of them. Templated.
    :param direction: only ``inbound``, ``outbound-dial`` or ``outbound-api`` calls (or a list).
        Templated.
    :param output_path: local path or storage URL of the JSON Lines file. Templated.
    :param max_records: stop after this many calls.
    :param settle: how long after ``created_to`` to wait before reading (``timedelta`` or seconds,
        0 to 1 day; default 5 minutes). A call is listed only once it has ended: to catch calls that
        start before ``created_to`` and last longer, raise it (calls last at most 4 hours).
    :param deferrable: wait for the settle time in the triggerer instead of a worker slot.
        Defaults to Airflow's ``[operators] default_deferrable``.
    :param exotel_conn_id: id of the ``exotel`` connection (extra ``timezone``: the account's
        IANA time zone, default ``Asia/Kolkata``). Templated.
    :param hook_params: extra :class:`~airflow_provider_exotel.hooks.calls.ExotelCallsHook` arguments.
    """

    template_fields: Sequence[str] = (
        "exotel_conn_id",
        "created_from",
        "created_to",
        "status",
        "direction",
        "output_path",
    )
    ui_color = "#e8f5e9"

    def __init__(
        self,
        *,
        created_from: Any = DEFAULT_FROM,
        created_to: Any = DEFAULT_TO,
        status: Any = None,
        direction: Any = None,
        output_path: Any = None,
        max_records: int | None = None,
        settle: timedelta | float = timedelta(minutes=5),
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        exotel_conn_id: str = "exotel_default",
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not is_deferred(output_path):
            check_path("output_path", output_path)
            uri = asset_uri(output_path)
            if uri is not None:
                kwargs["outlets"] = with_asset(kwargs.get("outlets"), uri)
        super().__init__(exotel_conn_id=exotel_conn_id, hook_params=hook_params, **kwargs)
        self.created_from = created_from
        self.created_to = created_to
        self._from_run = (created_from, created_to) == (DEFAULT_FROM, DEFAULT_TO)
        self.status = status
        self.direction = direction
        self.output_path = output_path
        self.max_records = check_int("max_records", max_records, minimum=0, optional=True)
        self.settle = check_settle(settle)
        self.deferrable = deferrable
        self._check_arguments(at_runtime=False)
        self._check_filters(at_runtime=False)
        if not (is_deferred(created_from) or is_deferred(created_to)):
            self._interval()

    # ---------------------------------------------------------------------------- arguments
    def _check_filters(self, *, at_runtime: bool) -> tuple[str | None, str | None]:
        checked = []
        for name, value, allowed in (
            ("status", self.status, STATUSES),
            ("direction", self.direction, DIRECTIONS),
        ):
            checked.append(
                None if not at_runtime and is_deferred(value) else check_choice(name, value, allowed)
            )
        return checked[0], checked[1]

    def _interval(self) -> tuple[datetime, datetime]:
        """The rendered ``[created_from, created_to)`` in UTC; a run without a data interval fails."""
        for name, value in (("created_from", self.created_from), ("created_to", self.created_to)):
            if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
                raise NoDataIntervalError(
                    f"{name} is empty ({value!r}): this run has no data interval (e.g. a manual run of a "
                    "DAG without a schedule). Schedule the DAG with data intervals, e.g. "
                    "CronDataIntervalTimetable('0 0 * * *', timezone='UTC'), or pass created_from and "
                    "created_to explicitly"
                )
        start, end = check_created_range(self.created_from, self.created_to)
        assert start is not None and end is not None
        if start == end and getattr(self, "_from_run", False):
            raise NoDataIntervalError(
                f"this run's data interval is empty ({start.isoformat()} .. {end.isoformat()}): its "
                "timetable gives runs no interval (on Airflow 3 a cron string such as '@daily' is a "
                "trigger timetable). Schedule the DAG with CronDataIntervalTimetable('0 0 * * *', "
                "timezone='UTC'), or pass created_from and created_to explicitly"
            )
        return start, end

    @cached_property
    def hook(self) -> ExotelCallsHook:  # type: ignore[override]
        """The :class:`ExotelCallsHook`, created on first use (never at DAG parse time)."""
        from airflow_provider_exotel.hooks.calls import ExotelCallsHook

        return ExotelCallsHook(self.exotel_conn_id, **dict(self.hook_params or {}))

    # ---------------------------------------------------------------------------- waiting
    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def execute(self, context: Context) -> Any:
        self._check_arguments(at_runtime=True)
        start, end = self._interval()
        self._check_filters(at_runtime=True)
        ready = end + self.settle
        now = self._now()
        if now < ready:
            self.log.info(
                "Calls of %s .. %s are complete at %s (created_to + settle %s); waiting %s",
                start.isoformat(),
                end.isoformat(),
                ready.isoformat(),
                self.settle,
                "in the triggerer" if self.deferrable else "in the worker",
            )
            if self.deferrable:
                self.defer(trigger=_datetime_trigger(ready), method_name="execute_complete")
            while now < ready:
                self._sleep(min((ready - now).total_seconds(), MAX_NAP))
                now = self._now()
        return self._export(context, start, end)

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Resumed after the settle time: export."""
        self._check_arguments(at_runtime=True)
        start, end = self._interval()
        self._check_filters(at_runtime=True)
        return self._export(context, start, end)

    # ---------------------------------------------------------------------------- export
    def _export(self, context: Context, start: datetime, end: datetime) -> Any:
        try:
            if self.output_path is None:
                return self._to_xcom(start, end)
            target = to_path(self.output_path)
            progress = CallsProgress(self.log, start, end, self.hook.call_created_at)

            def fetch(resume: Resume | None) -> Iterator[dict[str, Any]]:
                for call in self._fetch(start, end, resume):
                    progress.add(call)
                    yield call

            count = write_export(target, fetch, key=self._identity(start, end), log=self.log, id_field="Sid")
            self.log.info("Fetched %s calls to %s in %.1f s", f"{count:,}", target, progress.elapsed)
            add_alias_events(context, self.outlets, target)
            return {"path": str(target), "count": count}
        finally:
            self._close_hook()

    def _fetch(self, start: datetime, end: datetime, resume: Resume | None) -> Iterator[dict[str, Any]]:
        """From ``start``; or after what an earlier try wrote: from its last call's second, skipping
        the calls already held."""
        if resume is None:
            return self._calls(start, end, self.max_records)
        resume_at = max(self.hook.call_created_at(resume.last) or start, start)
        left = None if self.max_records is None else max(self.max_records - resume.count, 0)
        return _first(skip_seen(self._calls(resume_at, end, None), resume.seen), left)

    def _calls(self, start: datetime, end: datetime, max_records: int | None) -> Iterator[dict[str, Any]]:
        status, direction = self._check_filters(at_runtime=True)
        return self.hook.iter_calls(
            created_from=start, created_to=end, status=status, direction=direction, max_records=max_records
        )

    def _to_xcom(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        limit = MAX_XCOM_CALLS + 1 if self.max_records is None else min(self.max_records, MAX_XCOM_CALLS + 1)
        result = list(self._calls(start, end, limit))
        if len(result) > MAX_XCOM_CALLS:
            raise ExotelError(
                f"{self.task_id}: more than {MAX_XCOM_CALLS} calls in {start.isoformat()} .. "
                f"{end.isoformat()}; XCom is not a data store — set output_path to stream them to a "
                "JSON Lines file (local path or storage URL such as s3://bucket/calls.jsonl), or "
                "max_records to fetch fewer"
            )
        self.log.info("Fetched %s calls", f"{len(result):,}")
        return result

    def _identity(self, start: datetime, end: datetime) -> dict[str, Any]:
        """What decides the rows: the query and the account (a partial of another is not resumed)."""
        return {
            "fetch": "v1/Calls",
            "created_from": start.isoformat(),
            "created_to": end.isoformat(),
            "filters": list(self._check_filters(at_runtime=True)),
            "max_records": self.max_records,
            **self._account(),
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the account's calls (``accounts/<sid>/calls``) and the file written, if any.

        :param task_instance: the finished task instance (unused).
        """
        return calls_lineage(self, self.output_path)


def _first(calls: Iterator[dict[str, Any]], limit: int | None) -> Iterator[dict[str, Any]]:
    for i, call in enumerate(calls):
        if limit is not None and i >= limit:
            return
        yield call


def _datetime_trigger(moment: datetime) -> Any:
    """Airflow's ``DateTimeTrigger`` (standard provider on Airflow 3, core on 2.x)."""
    try:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    except ImportError:  # pragma: no cover - Airflow 2.x without the standard provider
        from airflow.triggers.temporal import DateTimeTrigger  # type: ignore[no-redef,import-not-found]
    return DateTimeTrigger(moment=moment)
