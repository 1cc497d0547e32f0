"""Operators for Exotel calling campaigns: create (and wait), pause/resume/complete/archive, and
export a campaign's call details.

Imported on every DAG parse: the top level stays cheap (the hook, ``requests`` and the trigger are
imported only when a task runs).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import conf

from airflow_provider_exotel._campaign_check import (
    FAILURE_STATES,
    SUCCESS_STATES,
    ExotelCampaignFailedError,
    check_campaign,
    check_seconds,
    describe,
    evaluate,
    event_result,
    failure_message,
    is_permanent,
)
from airflow_provider_exotel._campaign_input import (
    CAMPAIGN_TYPES,
    check_action,
    check_extra,
    check_flow,
    check_retries,
)
from airflow_provider_exotel._validation import check_hook_params, check_int, check_path_segment
from airflow_provider_exotel.exceptions import ExotelError, ExotelValidationError
from airflow_provider_exotel.operators._base import ExotelBaseOperator, account_of, check_path, is_deferred
from airflow_provider_exotel.operators._fetch import MAX_XCOM_CONTACTS
from airflow_provider_exotel.operators._files import Resume, to_path, write_export
from airflow_provider_exotel.operators._lineage import add_alias_events, asset_uri, with_asset
from airflow_provider_exotel.operators._progress import Progress

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_exotel.hooks.campaigns import ExotelCampaignsHook

IF_EXISTS = ("adopt", "fail", "create")

__all__ = [
    "ExotelCampaignActionOperator",
    "ExotelCampaignFailedError",
    "ExotelCreateCampaignOperator",
    "ExotelFetchCampaignCallDetailsOperator",
]


class _CampaignOperator(ExotelBaseOperator):
    """Connection id, hook arguments and the lazily created :class:`ExotelCampaignsHook`."""

    def __init__(
        self, *, exotel_conn_id: str = "exotel_default", hook_params: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        super().__init__(exotel_conn_id=exotel_conn_id, hook_params=check_hook_params(hook_params), **kw)
        if not is_deferred(exotel_conn_id) and (
            not isinstance(exotel_conn_id, str) or not exotel_conn_id.strip()
        ):
            raise ExotelValidationError(f"exotel_conn_id must be a non-empty string, got {exotel_conn_id!r}")

    @cached_property
    def hook(self) -> ExotelCampaignsHook:  # type: ignore[override]
        """The hook, created on first use (never at DAG parse time)."""
        from airflow_provider_exotel.hooks.campaigns import ExotelCampaignsHook

        return ExotelCampaignsHook(self.exotel_conn_id, **dict(self.hook_params or {}))


def _campaign_id(value: Any) -> str:
    if isinstance(value, dict):  # the create operator's XCom (the campaign itself)
        value = value.get("id")
    return check_path_segment("campaign_id", value)


class ExotelCreateCampaignOperator(_CampaignOperator):
    """Create an Exotel calling campaign (and optionally wait until it has finished).

    **A retried task never calls the audience twice**: with ``if_exists="adopt"`` (default) a
    campaign of that exact ``name`` that exists (an earlier try, a re-run) is returned and nothing
    is created; ``"fail"`` raises instead; ``"create"`` always creates. The hook itself never sends
    the create twice (a lost answer is resolved by looking the name up).

    Returns the campaign dict (after ``wait_for_completion``, the final one). A failure state
    (``failed``, ``canceled``, ``deleted``) fails the task with the campaign's id, name, status and
    stats.

    :param name: the campaign's name (use one per run, e.g. ``"promo {{ run_id }}"``). Templated.
    :param caller_id: the ExoPhone to call from. Templated.
    :param list_sids: lists to call (1-5; exactly 1 for ``dynamic``). Templated.
    :param numbers: numbers to call instead (1-5000). Templated.
    :param flow_url: the call flow URL (or ``read_via_text``).
    :param read_via_text: a greeting read out instead of a flow.
    :param campaign_type: ``static`` (default) or ``dynamic``.
    :param send_at: start (datetime or RFC 3339). Templated.
    :param end_at: end. Templated.
    :param call_retries: the campaign's own retry policy (the hook's ``retries``), e.g.
        ``{"number_of_retries": 2, "interval_mins": 30, "mechanism": "Linear", "on_status": ["busy"]}``.
    :param call_status_callback: URL called after each call.
    :param call_schedule_callback: URL called when calls are scheduled.
    :param status_callback: URL called when the campaign's status changes.
    :param custom_field: any JSON value, returned in callbacks.
    :param extra: more campaign fields, sent as given.
    :param if_exists: ``adopt`` (default), ``fail`` or ``create``.
    :param wait_for_completion: wait for a final status before the task ends.
    :param poll_interval: seconds between status checks while waiting (one request each).
    :param timeout: seconds (or a timedelta) to wait at most; ``None``: no limit.
    :param deferrable: wait in the triggerer. Defaults to ``[operators] default_deferrable``.
    :param exotel_conn_id: id of the ``exotel`` connection.
    :param hook_params: extra :class:`ExotelCampaignsHook` arguments.
    """

    template_fields: Sequence[str] = ("name", "caller_id", "list_sids", "numbers", "send_at", "end_at")
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        name: str,
        caller_id: str,
        list_sids: Any = None,
        numbers: Any = None,
        flow_url: str | None = None,
        read_via_text: str | None = None,
        campaign_type: str = "static",
        send_at: Any = None,
        end_at: Any = None,
        call_retries: dict[str, Any] | None = None,
        call_status_callback: str | None = None,
        call_schedule_callback: str | None = None,
        status_callback: str | None = None,
        custom_field: Any = None,
        extra: dict[str, Any] | None = None,
        if_exists: str = "adopt",
        wait_for_completion: bool = False,
        poll_interval: float = 60,
        timeout: float | timedelta | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        exotel_conn_id: str = "exotel_default",
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(exotel_conn_id=exotel_conn_id, hook_params=hook_params, **kwargs)
        if if_exists not in IF_EXISTS:
            raise ExotelValidationError(f"if_exists must be one of {list(IF_EXISTS)}, got {if_exists!r}")
        if not isinstance(wait_for_completion, bool):
            raise ExotelValidationError(
                f"wait_for_completion must be True or False, got {wait_for_completion!r}"
            )
        if campaign_type not in CAMPAIGN_TYPES:
            raise ExotelValidationError(
                f"campaign_type must be one of {list(CAMPAIGN_TYPES)}, got {campaign_type!r}"
            )
        check_flow(flow_url, read_via_text)
        if call_retries is not None:
            check_retries(call_retries)
        check_extra(extra)
        self.name, self.caller_id = name, caller_id
        self.list_sids, self.numbers = list_sids, numbers
        self.flow_url, self.read_via_text, self.campaign_type = flow_url, read_via_text, campaign_type
        self.send_at, self.end_at, self.call_retries = send_at, end_at, call_retries
        self.callbacks = {
            "call_status_callback": call_status_callback,
            "call_schedule_callback": call_schedule_callback,
            "status_callback": status_callback,
        }
        self.custom_field, self.extra = custom_field, extra
        self.if_exists = if_exists
        self.wait_for_completion = wait_for_completion
        self.poll_interval = check_seconds("poll_interval", poll_interval)
        self.timeout = None if timeout is None else check_seconds("timeout", timeout)
        self.deferrable = deferrable
        if not any(is_deferred(v) for v in (name, caller_id, list_sids, numbers, send_at, end_at)):
            self._arguments()  # every rule checked at parse time when nothing is templated

    def _arguments(self) -> dict[str, Any]:
        """The rendered arguments of ``create_campaign``, checked (no request is sent)."""
        from airflow_provider_exotel._campaign_input import campaign_item

        arguments = {
            "name": self.name,
            "caller_id": self.caller_id,
            "list_sids": self.list_sids,
            "numbers": self.numbers,
            "flow_url": self.flow_url,
            "read_via_text": self.read_via_text,
            "campaign_type": self.campaign_type,
            "send_at": self.send_at,
            "end_at": self.end_at,
            "retries": self.call_retries,
            "custom_field": self.custom_field,
            "extra": self.extra,
        }
        callbacks = {k: v for k, v in self.callbacks.items() if v is not None}
        campaign_item(**arguments, callbacks=callbacks)
        return {**arguments, **callbacks}

    def execute(self, context: Context) -> dict[str, Any]:
        arguments = self._arguments()
        try:
            campaign = self._existing(arguments["name"])
            if campaign is None:
                campaign = self.hook.create_campaign(**arguments)
                self.log.info("Created Exotel %s", describe(campaign))
            if not self.wait_for_completion:
                return campaign
            return self._wait(campaign)
        finally:
            self._close_hook()

    def _existing(self, name: str) -> dict[str, Any] | None:
        """The campaign to adopt (``if_exists="adopt"``), or ``None`` to create one."""
        if self.if_exists == "create":
            return None
        found = self.hook.find_campaign(name)
        if found is None:
            return None
        if self.if_exists == "fail":
            raise ExotelError(
                f"An Exotel campaign named {name!r} exists ({describe(found)}) and if_exists='fail'; "
                "use if_exists='adopt' to continue with it, or another name"
            )
        self.log.warning(
            "Adopting the existing Exotel %s instead of creating another (if_exists='adopt': a retried "
            "task never calls the audience twice)",
            describe(found),
        )
        return found

    def _wait(self, campaign: dict[str, Any]) -> dict[str, Any]:
        result = evaluate(campaign, SUCCESS_STATES, FAILURE_STATES)
        if result.failed:
            raise ExotelCampaignFailedError(failure_message(campaign))
        if result.done:
            return campaign
        if self.deferrable:
            from airflow_provider_exotel.triggers.campaigns import ExotelCampaignTrigger

            self.defer(
                trigger=ExotelCampaignTrigger(
                    campaign_id=_campaign_id(campaign),
                    exotel_conn_id=self.exotel_conn_id,
                    poll_interval=self.poll_interval,
                    end_time=time.time() + self.timeout if self.timeout else None,
                    hook_params=self.hook_params,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout) if self.timeout else None,
            )
        return self._poll(_campaign_id(campaign))

    def _poll(self, campaign_id: str) -> dict[str, Any]:
        """Wait in the worker: one request every ``poll_interval`` seconds."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ExotelError(
                    f"Timed out after {self.timeout:g} s waiting for Exotel campaign {campaign_id}"
                )
            time.sleep(self.poll_interval if left is None else min(self.poll_interval, left))
            try:
                result = check_campaign(self.hook, campaign_id)
            except ExotelError as exc:
                if is_permanent(exc):
                    raise
                self.log.warning("Exotel campaign check failed, will check again: %s", exc)
                continue
            self.log.info("Exotel %s", describe(result.campaign))
            if result.failed:
                raise ExotelCampaignFailedError(failure_message(result.campaign))
            if result.done:
                return result.campaign

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: the final campaign, or the error it reported."""
        campaign = event_result(event, ExotelError)
        self.log.info("Exotel %s — done", describe(campaign))
        return campaign


class ExotelCampaignActionOperator(_CampaignOperator):
    """Pause, resume, complete or archive a campaign; returns the campaign after the action.

    A refused action (e.g. ``resume`` of a campaign that is not paused) fails the task with the
    campaign's current status.

    :param campaign_id: the campaign's id (or the create operator's XCom). Templated.
    :param action: ``pause``, ``resume``, ``complete`` or ``archive``. Templated.
    :param exotel_conn_id: id of the ``exotel`` connection.
    :param hook_params: extra :class:`ExotelCampaignsHook` arguments.
    """

    template_fields: Sequence[str] = ("campaign_id", "action")

    def __init__(
        self, *, campaign_id: Any, action: str, exotel_conn_id: str = "exotel_default", **kw: Any
    ) -> None:
        super().__init__(exotel_conn_id=exotel_conn_id, **kw)
        if not is_deferred(action):
            check_action(action)
        if not is_deferred(campaign_id) and not isinstance(campaign_id, dict):
            _campaign_id(campaign_id)
        self.campaign_id, self.action = campaign_id, action

    def execute(self, context: Context) -> dict[str, Any]:
        campaign_id, action = _campaign_id(self.campaign_id), check_action(self.action)
        try:
            campaign = self.hook.campaign_action(campaign_id, action)
        finally:
            self._close_hook()
        self.log.info("Exotel %s after %s", describe(campaign), action)
        return campaign


class ExotelFetchCampaignCallDetailsOperator(_CampaignOperator):
    """Export a campaign's call details (one row per call attempt) like the contacts fetch.

    With ``output_path`` (a local path or storage URL, templated) rows stream to JSON Lines, written
    atomically and resumable on a local filesystem (a later try goes on after the last row), and the
    task returns ``{"path", "count"}``; a static path is declared as an Asset outlet. Without it the
    rows themselves are returned (at most 1000). Rows appended while the campaign runs are read
    exactly once.

    :param campaign_id: the campaign's id (or the create operator's XCom). Templated.
    :param status: only calls with this outcome (``completed``, ``busy``, ``no-answer``, ``failed``).
    :param output_path: JSON Lines file to write. Templated.
    :param max_records: stop after this many rows.
    :param exotel_conn_id: id of the ``exotel`` connection.
    :param hook_params: extra :class:`ExotelCampaignsHook` arguments.
    """

    template_fields: Sequence[str] = ("campaign_id", "status", "output_path")
    ui_color = "#e3f2fd"

    def __init__(
        self,
        *,
        campaign_id: Any,
        status: str | None = None,
        output_path: Any = None,
        max_records: int | None = None,
        exotel_conn_id: str = "exotel_default",
        **kw: Any,
    ) -> None:
        if not is_deferred(output_path):
            check_path("output_path", output_path)
            uri = asset_uri(output_path)
            if uri is not None:
                kw["outlets"] = with_asset(kw.get("outlets"), uri)
        super().__init__(exotel_conn_id=exotel_conn_id, **kw)
        if not is_deferred(campaign_id) and not isinstance(campaign_id, dict):
            _campaign_id(campaign_id)
        check_int("max_records", max_records, minimum=0, optional=True)
        self.campaign_id, self.status = campaign_id, status
        self.output_path, self.max_records = output_path, max_records

    def _rows(self, max_records: int | None, resume: Any = None) -> Iterator[dict[str, Any]]:
        return self.hook.iter_campaign_call_details(
            _campaign_id(self.campaign_id), status=self.status, max_records=max_records, resume=resume
        )

    def execute(self, context: Context) -> Any:
        campaign_id = _campaign_id(self.campaign_id)
        try:
            progress = Progress(self.log, "fetched", None, self.hook.request_budget)
            if self.output_path is None:
                return self._to_xcom(campaign_id, progress)
            return self._export(context, campaign_id, progress)
        finally:
            self._close_hook()

    def _export(self, context: Context, campaign_id: str, progress: Any) -> dict[str, Any]:
        from airflow_provider_exotel.hooks.contacts import ResumePoint

        def fetch(resume: Resume | None) -> Iterator[dict[str, Any]]:
            if resume is None:
                return self._rows(self.max_records)
            return self._rows(self.max_records, ResumePoint(resume.count, resume.last, resume.seen))

        target = to_path(self.output_path)
        origin, account_sid = account_of(cast(Any, self.hook))  # any Exotel hook
        key = {
            "endpoint": f"campaigns/{campaign_id}/call-details",
            "status": self.status,
            "max_records": self.max_records,
            "account": {"conn_id": self.exotel_conn_id, "host": origin, "account_sid": account_sid},
        }
        count = write_export(target, fetch, key=key, log=self.log, on_row=progress.add, id_field="call_sid")
        self.log.info("Fetched %s call details of campaign %s to %s", f"{count:,}", campaign_id, target)
        add_alias_events(context, self.outlets, target)
        return {"path": str(target), "count": count}

    def _to_xcom(self, campaign_id: str, progress: Any) -> list[dict[str, Any]]:
        limit = (
            MAX_XCOM_CONTACTS + 1
            if self.max_records is None
            else min(self.max_records, MAX_XCOM_CONTACTS + 1)
        )
        rows: list[dict[str, Any]] = []
        details = self._rows(limit)
        try:
            for row in details:
                if len(rows) == MAX_XCOM_CONTACTS:
                    raise ExotelError(
                        f"{self.task_id}: campaign {campaign_id} has more than {MAX_XCOM_CONTACTS} call "
                        "details; XCom is not a data store — set output_path (a local path or storage URL "
                        "such as s3://bucket/calls.jsonl), or max_records to fetch fewer"
                    )
                rows.append(row)
                progress.add()
        finally:
            details.close()  # type: ignore[attr-defined]
        self.log.info("Fetched %s call details of campaign %s", f"{len(rows):,}", campaign_id)
        return rows

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the campaign's call details read and the file written, if any.

        :param task_instance: the finished task instance (unused).
        """
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        from airflow_provider_exotel.operators._lineage import exotel_namespace, file_dataset_name

        inputs: list[Dataset] = []
        try:
            namespace, account_sid = exotel_namespace(cast(Any, self.hook))
            name = f"accounts/{account_sid}/campaigns/{_campaign_id(self.campaign_id)}/call-details"
            inputs.append(Dataset(namespace=namespace, name=name))
        except Exception as exc:  # lineage never fails a task that succeeded
            self.log.warning("OpenLineage: cannot name the Exotel dataset (%s)", exc)
        finally:
            self._close_hook()
        named = file_dataset_name(self.output_path)
        outputs = [Dataset(namespace=named[0], name=named[1])] if named else []
        return OperatorLineage(inputs=inputs, outputs=outputs)
