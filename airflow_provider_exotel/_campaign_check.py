"""The condition shared by the campaign sensor, its trigger and the create operator's wait.

One place decides "has the campaign finished, and did it fail?", so poke, reschedule, deferrable
and ``wait_for_completion`` can never disagree. Also holds the argument checks they share. Cheap to
import: no HTTP, no hook.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel._trigger_loop import event_error
from airflow_provider_exotel.exceptions import (
    ExotelAuthError,
    ExotelError,
    ExotelValidationError,
)

if TYPE_CHECKING:
    from airflow_provider_exotel.hooks.campaigns import ExotelCampaignsHook

#: Statuses a waited-for campaign succeeds on, and fails on (the sensor's defaults).
SUCCESS_STATES = ("completed", "archived")
FAILURE_STATES = ("failed", "canceled", "deleted")
KNOWN_STATES = ("created", "in-progress", "paused", *SUCCESS_STATES, *FAILURE_STATES)
#: Statuses of a failed request worth checking again (besides 5xx and network errors).
_RETRYABLE_4XX = frozenset({408, 425, 429})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class ExotelCampaignFailedError(ExotelError):
    """The campaign reached a failure state (``failure_states``); the message has id, name,
    status and stats."""


@dataclass(frozen=True)
class CampaignCheck:
    """Outcome of one :func:`check_campaign`: ``done`` (a success state), ``failed`` (a failure
    state) and the campaign as read."""

    done: bool
    failed: bool
    campaign: dict[str, Any]

    @property
    def status(self) -> Any:
        return self.campaign.get("status")


def normalize_status(value: Any) -> Any:
    """``InProgress``/``IN_PROGRESS``/``in progress`` → ``in-progress``; ``Cancelled`` → ``canceled``.

    Anything that is not a string is returned unchanged.
    """
    if not isinstance(value, str):
        return value
    text = _CAMEL.sub("-", value.strip())
    text = re.sub(r"[\s_]+", "-", text).lower()
    return "canceled" if text == "cancelled" else text


def evaluate(
    campaign: Mapping[str, Any], success_states: tuple[str, ...], failure_states: tuple[str, ...]
) -> CampaignCheck:
    """Classify a campaign already read (e.g. the one ``create_campaign`` returned)."""
    status = campaign.get("status")
    return CampaignCheck(status in success_states, status in failure_states, dict(campaign))


def check_campaign(
    hook: ExotelCampaignsHook,
    campaign_id: str,
    success_states: tuple[str, ...] = SUCCESS_STATES,
    failure_states: tuple[str, ...] = FAILURE_STATES,
) -> CampaignCheck:
    """Read the campaign once (one request) and classify it."""
    return evaluate(hook.get_campaign(campaign_id), success_states, failure_states)


def describe(campaign: Mapping[str, Any]) -> str:
    """``campaign 5c1 ('May promo'): in-progress, stats {...}``."""
    stats = campaign.get("stats")
    text = f"campaign {campaign.get('id')} ({campaign.get('name')!r}): {campaign.get('status')}"
    return text + (f", stats {dict(stats) if isinstance(stats, Mapping) else stats}" if stats else "")


def failure_message(campaign: Mapping[str, Any]) -> str:
    return f"Exotel {describe(campaign)} — a failure state, so the task fails"


def is_permanent(exc: ExotelError) -> bool:
    """True for errors that waiting will not fix: auth, bad input, most 4xx (404: no such campaign)."""
    if isinstance(exc, ExotelAuthError | ExotelValidationError):
        return True
    status = exc.status
    return status is not None and 400 <= status < 500 and status not in _RETRYABLE_4XX


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------
def check_states(name: str, value: Any) -> tuple[str, ...]:
    """A non-empty list of statuses (any spelling), in the hook's spelling."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple | set | frozenset) or not items:
        raise ExotelValidationError(f"{name} must be a non-empty list of campaign statuses, got {value!r}")
    states = tuple(normalize_status(s) for s in items)
    unknown = [s for s in states if s not in KNOWN_STATES]
    if unknown:
        raise ExotelValidationError(
            f"{name} has unknown status(es) {unknown}; expected some of {list(KNOWN_STATES)}"
        )
    return states


def check_state_sets(success_states: Any, failure_states: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    success = check_states("success_states", success_states)
    failure = check_states("failure_states", failure_states)
    both = sorted(set(success) & set(failure))
    if both:
        raise ExotelValidationError(f"success_states and failure_states share {both}")
    return success, failure


def check_seconds(name: str, value: Any, *, zero: bool = False) -> float:
    """Seconds (> 0, or >= 0 with ``zero``) from a number or a ``timedelta``."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not (value >= 0 if zero else value > 0) or value == float("inf"):
        bound = ">= 0" if zero else "> 0"
        raise ExotelValidationError(
            f"{name} must be a number of seconds {bound} (or a timedelta), got {value!r}"
        )
    return float(value)


def event_result(event: Any, timeout_error: type[Exception]) -> dict[str, Any]:
    """The campaign an :class:`ExotelCampaignTrigger` event carries, or the error it reports.

    :param event: the trigger's payload.
    :param timeout_error: raised for a timeout (the sensor's ``AirflowSensorTimeout``).
    """
    if not isinstance(event, Mapping):
        raise ExotelError(f"Exotel campaign trigger returned no usable event: {event!r}")
    status = event.get("status")
    campaign = event.get("campaign")
    if status == "success" and isinstance(campaign, dict):
        return campaign
    message = str(event.get("message") or f"Exotel campaign trigger failed: {event!r}")
    if status == "failed" and isinstance(campaign, dict):
        raise ExotelCampaignFailedError(failure_message(campaign))
    raise event_error(event.get("reason"), message, timeout_error)


__all__ = [
    "FAILURE_STATES",
    "SUCCESS_STATES",
    "CampaignCheck",
    "ExotelCampaignFailedError",
    "check_campaign",
    "check_seconds",
    "check_state_sets",
    "describe",
    "evaluate",
    "event_result",
    "failure_message",
    "is_permanent",
    "normalize_status",
]
