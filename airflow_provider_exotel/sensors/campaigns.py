"""ExotelCampaignSensor — wait until an Exotel calling campaign has finished."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_exotel._campaign_check import (
    FAILURE_STATES,
    SUCCESS_STATES,
    CampaignCheck,
    ExotelCampaignFailedError,
    check_campaign,
    check_state_sets,
    describe,
    event_result,
    failure_message,
    is_permanent,
)
from airflow_provider_exotel._run_dates import RunDatesRendering
from airflow_provider_exotel._validation import check_hook_params, check_path_segment
from airflow_provider_exotel.exceptions import ExotelError, ExotelValidationError

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_exotel.hooks.campaigns import ExotelCampaignsHook

#: The deferrable sensor's first check (in the worker): at most this many seconds per request.
FIRST_CHECK_TIMEOUT = 5.0


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class ExotelCampaignSensor(RunDatesRendering, BaseSensorOperator):
    """Wait until an Exotel campaign reaches a final status; its XCom is the campaign dict.

    Succeeds on ``success_states``; a status in ``failure_states`` fails the task at once with the
    campaign's id, name, status and stats (:class:`ExotelCampaignFailedError`). Each check is one
    request. Bad credentials, no access and an unknown campaign (404) fail at once; transient
    failures (5xx, 429, network) are logged and checked again at the next poke.

    With ``deferrable=True`` it checks once in the worker (one short attempt: a transient failure
    defers at once), then waits in the triggerer
    (:class:`~airflow_provider_exotel.triggers.campaigns.ExotelCampaignTrigger`, the same check
    every ``poke_interval`` seconds) without holding a worker slot. ``timeout`` applies in every mode.

    :param campaign_id: the campaign's id. Templated (e.g. from the create operator's XCom).
    :param success_states: statuses that end the wait (default ``completed``, ``archived``).
    :param failure_states: statuses that fail it (default ``failed``, ``canceled``, ``deleted``).
    :param deferrable: wait in the triggerer. Defaults to ``[operators] default_deferrable``.
    :param exotel_conn_id: id of the ``exotel`` connection. Templated.
    :param hook_params: extra :class:`ExotelCampaignsHook` arguments.
    :param sensor_kwargs: ``poke_interval``, ``timeout``, ``mode`` and the other sensor arguments.
    """

    template_fields: Sequence[str] = ("campaign_id", "exotel_conn_id")
    ui_color = "#d8f0e6"

    def __init__(
        self,
        *,
        campaign_id: str,
        success_states: Sequence[str] = SUCCESS_STATES,
        failure_states: Sequence[str] = FAILURE_STATES,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        exotel_conn_id: str = "exotel_default",
        hook_params: dict[str, Any] | None = None,
        **sensor_kwargs: Any,
    ) -> None:
        super().__init__(**sensor_kwargs)
        if not _is_template(campaign_id) and not hasattr(campaign_id, "resolve"):
            check_path_segment("campaign_id", campaign_id)
        if not isinstance(exotel_conn_id, str) or not exotel_conn_id.strip():
            raise ExotelValidationError(f"exotel_conn_id must be a non-empty string, got {exotel_conn_id!r}")
        self.campaign_id = campaign_id
        self.success_states, self.failure_states = check_state_sets(success_states, failure_states)
        self.deferrable = deferrable
        self.exotel_conn_id = exotel_conn_id
        self.hook_params = check_hook_params(hook_params)

    @cached_property
    def hook(self) -> ExotelCampaignsHook:
        """The hook, created on first use (after templates are rendered)."""
        from airflow_provider_exotel.hooks.campaigns import ExotelCampaignsHook

        return ExotelCampaignsHook(self.exotel_conn_id, **self.hook_params)

    def _check(self, hook: ExotelCampaignsHook) -> CampaignCheck:
        result = check_campaign(
            hook,
            check_path_segment("campaign_id", self.campaign_id),
            self.success_states,
            self.failure_states,
        )
        self.log.info("Exotel %s", describe(result.campaign))
        if result.failed:
            raise ExotelCampaignFailedError(failure_message(result.campaign))
        return result

    def poke(self, context: Context) -> PokeReturnValue:
        try:
            result = self._check(self.hook)
        except ExotelError as exc:
            if isinstance(exc, ExotelCampaignFailedError) or is_permanent(exc):
                raise
            self.log.warning("Exotel campaign check failed, will check again at the next poke: %s", exc)
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=result.done, xcom_value=result.campaign)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from airflow_provider_exotel.triggers.campaigns import ExotelCampaignTrigger

        campaign_id = check_path_segment("campaign_id", self.campaign_id)
        done = self._first_check()
        if done is not None:
            return done
        self.defer(
            trigger=ExotelCampaignTrigger(
                campaign_id=campaign_id,
                exotel_conn_id=self.exotel_conn_id,
                success_states=self.success_states,
                failure_states=self.failure_states,
                poll_interval=self.poke_interval,
                end_time=time.time() + self.timeout,
                hook_params=self.hook_params,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def _first_check(self) -> dict[str, Any] | None:
        """One short attempt in the worker: the campaign when done, ``None`` to defer."""
        from airflow_provider_exotel.hooks.campaigns import ExotelCampaignsHook

        hook = None
        try:
            # one attempt, timeout capped (also below a connection extra); a 429 defers at once
            hook = ExotelCampaignsHook(self.exotel_conn_id, **self.hook_params).single_attempt(
                FIRST_CHECK_TIMEOUT
            )
            result = self._check(hook)
        except ExotelError as exc:
            if isinstance(exc, ExotelCampaignFailedError) or is_permanent(exc):
                raise
            self.log.warning(
                "Exotel campaign check failed (%s); deferring now, the trigger checks again", exc
            )
            return None
        finally:
            if hook is not None:
                hook.close()
        return result.campaign if result.done else None

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: the campaign, or the error it reported."""
        campaign = event_result(event, AirflowSensorTimeout)
        self.log.info("Exotel %s — done", describe(campaign))
        return campaign


__all__ = ["FIRST_CHECK_TIMEOUT", "ExotelCampaignFailedError", "ExotelCampaignSensor"]
