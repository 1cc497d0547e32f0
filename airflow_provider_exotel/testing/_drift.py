"""Drift and wrong answers for the simulator: data that moves mid-fetch and pages that cannot be right.

Switches and helpers of :class:`~airflow_provider_exotel.testing.simulator.ExotelSimulator` for
testing exact paging:

* ``max_page_size`` (attribute, default ``None``): answer at most this many contacts per page while
  ``metadata.total`` still counts them all — a server capping pages at 10 or 19.
* ``rename_contact(sid, first_name=..., last_name=...)``: change a contact's name (and
  ``date_updated``), which moves it under ``sort_by=name:asc``.
* ``swap_list_member(list_sid, remove_sid, add_sid)``: one member leaves the list, another joins at
  its end — the list's total does not change.

Page fault kinds (for ``add_faults`` / ``fail_every_request``; applied to a GET page answer):

* ``repeat_page``: the page at offset 0 is answered whatever offset was asked for.
* ``empty_page``: ``response`` is empty while ``metadata.total`` is unchanged.
* ``short_page``: only the first half of the page's contacts.
* ``failure_item``: the first item is ``{"status": "failure", "code": 500, "data": null}``.
* ``null_data``: the first item has ``"data": null`` (status still ``"success"``).
* ``negative_total`` / ``bool_total`` / ``string_total``: ``metadata.total`` is ``-1`` / ``true``
  / ``"20"``.
* ``no_envelope``: a 200 whose JSON has neither ``response`` nor ``metadata``.
* ``sid_list`` / ``sid_dict`` / ``no_sid``: the first contact's ``sid`` is a list / a dict /
  missing.
"""

from __future__ import annotations

import json

PAGE_FAULT_KINDS = frozenset(
    {
        "repeat_page",
        "empty_page",
        "short_page",
        "failure_item",
        "null_data",
        "negative_total",
        "bool_total",
        "string_total",
        "no_envelope",
        "sid_list",
        "sid_dict",
        "no_sid",
    }
)


def drift_query(kind: str | None, method: str, query: dict[str, str]) -> dict[str, str]:
    """The query a page fault makes the server read (``repeat_page``: offset 0)."""
    if kind == "repeat_page" and method == "GET":
        return {**query, "offset": "0"}
    return query


def drift_body(kind: str | None, method: str, body: bytes) -> bytes:
    """Apply a page fault to a GET page answer (other answers pass unchanged)."""
    if kind not in PAGE_FAULT_KINDS or method != "GET":
        return body
    doc = json.loads(body)
    items = doc.get("response")
    if not isinstance(items, list):
        return body
    first = items[0] if items else None
    if kind == "empty_page":
        doc["response"] = []
    elif kind == "short_page":
        doc["response"] = items[: len(items) // 2]
    elif kind == "failure_item" and first is not None:
        items[0] = {
            "code": 500,
            "status": "failure",
            "data": None,
            "error_data": {"code": 5000, "message": "Internal Server Error"},
        }
    elif kind == "null_data" and first is not None:
        first["data"] = None
    elif kind in ("negative_total", "bool_total", "string_total"):
        total = doc["metadata"]["total"]
        doc["metadata"]["total"] = {"negative_total": -1, "bool_total": True}.get(kind, str(total))
    elif kind == "no_envelope":
        doc = {"request_id": doc.get("request_id"), "method": "GET", "http_code": 200}
    elif kind in ("sid_list", "sid_dict", "no_sid") and first is not None:
        sid = first["data"]["sid"]
        if kind == "no_sid":
            del first["data"]["sid"]
        else:
            first["data"]["sid"] = [sid] if kind == "sid_list" else {"sid": sid}
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")
