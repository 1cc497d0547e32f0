"""Checks of call-record filters, shared by the calls hook and operator (standard library only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow_provider_exotel.exceptions import ExotelValidationError

#: Call statuses the v1 ``Status`` filter accepts (calls in progress are never listed).
STATUSES = ("completed", "failed", "busy", "no-answer")
#: Directions the v1 ``Direction`` filter accepts.
DIRECTIONS = ("inbound", "outbound-dial", "outbound-api")
#: Longest ``settle`` accepted (calls last at most 4 hours at Exotel).
MAX_SETTLE = timedelta(days=1)


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str | None:
    """A v1 filter: ``None``, one allowed value, or several (a list, or comma-separated)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, list | tuple) and items:
        cleaned = [i.strip().lower() for i in items if isinstance(i, str)]
        if len(cleaned) == len(items) and all(i in allowed for i in cleaned):
            return ",".join(dict.fromkeys(cleaned))
    raise ExotelValidationError(f"{name} must be one of {list(allowed)} (or a list of them), got {value!r}")


def check_settle(value: Any) -> timedelta:
    """``settle``: a ``timedelta`` or seconds, from 0 to one day."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = timedelta(seconds=value)
    if not isinstance(value, timedelta) or not timedelta(0) <= value <= MAX_SETTLE:
        raise ExotelValidationError(
            f"settle must be a timedelta (or seconds) from 0 to {MAX_SETTLE}, got {value!r}"
        )
    return value


__all__ = ["DIRECTIONS", "MAX_SETTLE", "STATUSES", "check_choice", "check_settle"]
