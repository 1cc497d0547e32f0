"""Campaign answers read and paged rows keyed (private; used by ``hooks/campaigns.py``).

Nothing here speaks HTTP. :func:`keyed_check` and :func:`rekey` let the one paging engine (which
anchors pages on a ``sid``) page campaigns (``id``) and call details (``call_sid``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel._campaign_check import normalize_status
from airflow_provider_exotel._validation import parse_timestamp

if TYPE_CHECKING:
    from airflow_provider_exotel.hooks._paging import Check

#: Marks a row the pager was given a ``sid`` for (removed before the row is yielded).
_KEYED = "_exotel_keyed_sid"


def normalize_campaign(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of Exotel's campaign (or call-detail row) with ``status`` normalised."""
    out = dict(data)
    if "status" in out:
        out["status"] = normalize_status(out["status"])
    return out


# --------------------------------------------------------------------------------------------------
# Paging rows that are not keyed by ``sid``
# --------------------------------------------------------------------------------------------------
def rekey(body: dict[str, Any], key: str) -> dict[str, Any]:
    """Give every ``data`` of a page a ``sid`` (its ``key``), in place, so the pager can anchor on it."""
    items = body.get("response")
    for item in items if isinstance(items, list) else ():
        data = item.get("data") if isinstance(item, dict) else None
        if isinstance(data, dict) and "sid" not in data and data.get(key) not in (None, ""):
            data["sid"] = str(data[key])
            data[_KEYED] = True
    return body


def unkey(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as Exotel sent it (without the ``sid`` :func:`rekey` added), status normalised."""
    if row.get(_KEYED):
        row = {k: v for k, v in row.items() if k not in ("sid", _KEYED)}
    return normalize_campaign(row)


def keyed_check(check: Check | None, key: str) -> Check:
    def run(body: dict[str, Any]) -> None:
        if check is not None:
            check(rekey(body, key))

    return run


# --------------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------------
def first_item(body: Mapping[str, Any]) -> Any:
    """The one item of an answer whose ``response`` is an object or a one-item list."""
    response = body.get("response")
    if isinstance(response, list):
        return response[0] if response else None
    return response


def item_outcome(item: Any) -> tuple[int | None, str, dict[str, Any]]:
    """``(None, "", data)`` for a success item, else ``(code, message, {})``."""
    if not isinstance(item, Mapping):
        return 0, "no result in Exotel's answer", {}
    code, status, data = item.get("code"), item.get("status"), item.get("data")
    if (status == "success" or (status is None and code in (200, 201))) and isinstance(data, dict):
        return None, "", data
    raw = item.get("error_data")
    error = raw if isinstance(raw, Mapping) else {}
    message = ": ".join(str(error[k]) for k in ("message", "description") if error.get(k))
    return (
        (code if isinstance(code, int) and not isinstance(code, bool) else 0),
        message or str(status or "failure"),
        {},
    )


def created_since(campaign: Mapping[str, Any], since: float) -> bool:
    """Whether a campaign's ``date_created`` is at or after ``since`` (epoch seconds)."""
    moment = parse_timestamp(campaign.get("date_created"))
    return moment is not None and moment.timestamp() >= since
