"""ExotelCampaignTrigger — waits in the triggerer until an Exotel campaign finishes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_exotel._campaign_check import (
    FAILURE_STATES,
    SUCCESS_STATES,
    check_campaign,
    check_seconds,
    check_state_sets,
    describe,
    failure_message,
    is_permanent,
)
from airflow_provider_exotel._trigger_loop import poll, run_with_hook
from airflow_provider_exotel._validation import check_hook_params, check_path_segment

if TYPE_CHECKING:
    from airflow_provider_exotel.hooks.campaigns import ExotelCampaignsHook


class ExotelCampaignTrigger(BaseTrigger):
    """Poll an Exotel campaign every ``poll_interval`` seconds until it reaches a final status.

    Checks exactly what :class:`~airflow_provider_exotel.sensors.campaigns.ExotelCampaignSensor`
    and the create operator's ``wait_for_completion`` check (the same function), one request per
    poll. The hook is built, and every check runs, in a worker thread (``sync_to_async``), never on
    the triggerer's event loop. It serialises only ids and settings, never what the connection holds.

    Events: ``{"status": "success", "campaign": {...}}`` (a success state);
    ``{"status": "failed", "campaign": {...}, "message"}`` (a failure state);
    ``{"status": "error", "reason": "auth" | "invalid" | "request" | "timeout", "message"}``.
    Transient failures (5xx, 429, network) left after the hook's retries are logged and polled again.

    :param campaign_id: the campaign's id.
    :param exotel_conn_id: id of the ``exotel`` connection; the trigger reads it itself.
    :param success_states: statuses that end the wait successfully.
    :param failure_states: statuses that fail it.
    :param poll_interval: seconds between checks.
    :param end_time: Unix time after which the trigger gives up (a timeout event); ``None``: never.
    :param hook_params: keyword arguments for :class:`ExotelCampaignsHook` (e.g. ``retry_limit``).
    """

    def __init__(
        self,
        *,
        campaign_id: str,
        exotel_conn_id: str = "exotel_default",
        success_states: tuple[str, ...] | list[str] = SUCCESS_STATES,
        failure_states: tuple[str, ...] | list[str] = FAILURE_STATES,
        poll_interval: float = 60.0,
        end_time: float | None = None,
        hook_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.campaign_id = check_path_segment("campaign_id", campaign_id)
        self.exotel_conn_id = exotel_conn_id
        self.success_states, self.failure_states = check_state_sets(success_states, failure_states)
        self.poll_interval = check_seconds("poll_interval", poll_interval, zero=True)
        self.end_time = float(end_time) if end_time is not None else None
        self.hook_params = check_hook_params(hook_params)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-able kwargs: ids and settings, never a secret."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "campaign_id": self.campaign_id,
                "exotel_conn_id": self.exotel_conn_id,
                "success_states": list(self.success_states),
                "failure_states": list(self.failure_states),
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "hook_params": self.hook_params,
            },
        )

    def _make_hook(self) -> ExotelCampaignsHook:
        from airflow_provider_exotel.hooks.campaigns import ExotelCampaignsHook

        return ExotelCampaignsHook(self.exotel_conn_id, **self.hook_params)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TriggerEvent(await run_with_hook(self._make_hook, self._wait))

    async def _wait(self, hook: ExotelCampaignsHook) -> dict[str, Any]:
        """Check every ``poll_interval`` seconds; return the payload of the one event to fire."""
        from asgiref.sync import sync_to_async

        check = sync_to_async(check_campaign, thread_sensitive=False)
        last: dict[str, Any] | None = None

        async def once() -> dict[str, Any] | None:
            nonlocal last
            result = await check(hook, self.campaign_id, self.success_states, self.failure_states)
            last = result.campaign
            self.log.info("Exotel %s", describe(last))
            if result.done:
                return {"status": "success", "campaign": last}
            if result.failed:
                return {"status": "failed", "campaign": last, "message": failure_message(last)}
            return None

        def timeout() -> dict[str, Any]:
            seen = describe(last) if last else f"campaign {self.campaign_id} (never read)"
            return {
                "status": "error",
                "reason": "timeout",
                "message": f"Timed out waiting for Exotel {seen} to reach {list(self.success_states)}",
            }

        return await poll(
            once,
            interval=self.poll_interval,
            end_time=self.end_time,
            is_permanent=is_permanent,
            on_timeout=timeout,
            log=self.log,
            what="campaign check",
        )


__all__ = ["ExotelCampaignTrigger"]
