"""What Exotel's answers mean (private): one rule for a bulk item's outcome, one-object envelopes,
pairing bulk items with what was sent, and page parsing. No HTTP here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_exotel.exceptions import ExotelRequestError
from airflow_provider_exotel.hooks._retry import TransientError

Check = Callable[[dict[str, Any]], None]

#: The message of an input item the answer says nothing about.
NO_RESULT = "no result returned by Exotel for this item"


# --------------------------------------------------------------------------------------------------
# One bulk item
# --------------------------------------------------------------------------------------------------
def is_success(item: Any) -> bool:
    """The one success rule: ``status`` "success" (any case) with a 2xx ``code`` or none; an item
    without a ``status`` succeeds on a 2xx ``code`` alone."""
    if not isinstance(item, Mapping):
        return False
    code = item.get("code")
    status = item.get("status")
    code_ok = isinstance(code, int) and not isinstance(code, bool) and 200 <= code < 300
    if status is None:
        return code_ok
    return isinstance(status, str) and status.lower() == "success" and (code is None or code_ok)


def item_outcome(item: Any) -> tuple[int | None, str, dict[str, Any]]:
    """``(None, "", data)`` for a successful bulk-answer item, else ``(code, message, {})``.

    ``data`` is the item's ``data`` object (``{}`` when it has none).
    """
    if not isinstance(item, Mapping):
        return 0, NO_RESULT, {}
    if is_success(item):
        data = item.get("data")
        return None, "", data if isinstance(data, dict) else {}
    code = item.get("code")
    raw = item.get("error_data")
    error_data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    parts = [str(error_data[k]) for k in ("message", "description") if error_data.get(k)]
    failure = code if isinstance(code, int) and not isinstance(code, bool) else 0
    return failure, ": ".join(parts) or str(item.get("status") or "failure"), {}


def item_sid(item: Any) -> str | None:
    """The ``data.sid`` a bulk-answer item carries, if any."""
    data = item.get("data") if isinstance(item, Mapping) else None
    sid = data.get("sid") if isinstance(data, Mapping) else None
    return sid if isinstance(sid, str) else None


# --------------------------------------------------------------------------------------------------
# Pairing a bulk answer with what was sent
# --------------------------------------------------------------------------------------------------
def response_items(body: Mapping[str, Any]) -> list[Any]:
    items = body.get("response")
    return items if isinstance(items, list) else []


def by_position(sent: list[Any], body: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    """Each item sent with the answer item at its position (``None`` when there is none)."""
    items = response_items(body)
    return [(x, items[i] if i < len(items) else None) for i, x in enumerate(sent)]


def by_sid(batch: list[dict[str, Any]], body: Mapping[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """Pair each contact sent (with its ``sid``) with its result item (``None`` when it has none).

    Items that carry ``data.sid`` are matched by it, whatever their order; only when no item carries
    a sid is the answer matched by position (Exotel answers in input order). In a mixed answer the
    items without a sid go, in order, to the contacts still unmatched — but such an item counts as a
    *success* only at its own position, so a reordered answer never reports a contact updated.
    """
    items = response_items(body)
    if not any(item_sid(item) for item in items):
        return by_position(batch, body)
    index = {contact["sid"]: i for i, contact in enumerate(batch)}
    matched: dict[int, Any] = {}
    loose: list[tuple[int, Any]] = []  # (position, item) of items without a (known) sid
    for position, item in enumerate(items):
        sid = item_sid(item)
        if sid is None:
            loose.append((position, item))
        elif sid in index and index[sid] not in matched:
            matched[index[sid]] = item
    unmatched = [i for i in range(len(batch)) if i not in matched]
    for i, (position, item) in zip(unmatched, loose, strict=False):
        if is_success(item) and position != i:
            continue  # a success we cannot attribute: the contact stays without a result
        matched[i] = item
    return [(contact, matched.get(i)) for i, contact in enumerate(batch)]


# --------------------------------------------------------------------------------------------------
# One-object envelopes
# --------------------------------------------------------------------------------------------------
def single_item(body: Mapping[str, Any]) -> Any:
    """The ``response`` of a one-object answer: an object, or the item of a one-item list."""
    response = body.get("response")
    if isinstance(response, list):
        return response[0] if len(response) == 1 else None
    return response


def one_object(body: Mapping[str, Any], label: str) -> dict[str, Any]:
    """``data`` of a one-object answer (``response`` an object or a one-item list)."""
    code, message, data = item_outcome(single_item(body))
    if code is not None:
        raise ExotelRequestError(f"Exotel {label}: {code} {message}", status=code or None)
    if not data:
        raise ExotelRequestError(f"Exotel {label}: answer has no object in 'response'")
    return data


def refusal(body: Mapping[str, Any]) -> tuple[int, str] | None:
    """``(code, message)`` when a 2xx answer (e.g. a DELETE's) carries a failure item in
    ``response``, else ``None`` (done; also when it carries no item at all)."""
    item = single_item(body)
    if not isinstance(item, Mapping):
        return None
    code = item.get("code")
    if item.get("status") != "failure" and not (isinstance(code, int) and code >= 400):
        return None
    failure, message, _ = item_outcome(item)
    return (failure or 0), message


# --------------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------------
@dataclass
class Page:
    """One checked page answer (see :func:`parse_page`)."""

    offset: int
    limit: int
    total: int
    contacts: list[dict[str, Any]]
    sent: int = 0  # tick of the fetch's clock when the request went out
    seq: int = 0  # tick when its answer arrived (a page sent after another's arrival is newer)


def transient(message: str) -> TransientError:
    return TransientError(ExotelRequestError(message))


def parse_page(body: Mapping[str, Any], endpoint: str, offset: int, limit: int) -> Page:
    """Check one page answer and return it; raise ``TransientError`` if it cannot be right.

    Cannot be right: no ``response`` list or ``metadata`` object; a ``metadata.total`` that is not
    a non-negative integer; an item that is not a success (:func:`is_success`; a missing ``status``
    counts as one) or has no ``data`` object; a contact without a non-empty string ``sid``; the same
    sid twice; a page whose length is not ``min(limit, total - offset)``.
    """
    items = body.get("response")
    metadata = body.get("metadata")
    if not isinstance(items, list) or not isinstance(metadata, Mapping):
        raise transient(f"Exotel GET {endpoint}: HTTP 200 without the response/metadata envelope")
    total = metadata.get("total")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise transient(f"Exotel GET {endpoint}: metadata.total is not a non-negative integer")
    contacts: list[dict[str, Any]] = []
    sids: set[str] = set()
    for position, item in enumerate(items, start=offset):
        data = _page_item(item, endpoint, position)
        if data["sid"] in sids:
            raise transient(f"Exotel GET {endpoint}: sid {data['sid']} twice in the page at offset {offset}")
        sids.add(data["sid"])
        contacts.append(data)
    expected = max(0, min(limit, total - offset))
    if len(contacts) != expected:
        raise transient(
            f"Exotel GET {endpoint}: page at offset {offset} has {len(contacts)} contacts, expected "
            f"{expected} (limit {limit}, total {total})"
        )
    return Page(offset, limit, total, contacts)


def _page_item(item: Any, endpoint: str, position: int) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise transient(f"Exotel GET {endpoint}: item at offset {position} is not an object")
    data = item.get("data")
    if not is_success({"status": "success", **item}) or not isinstance(data, dict):
        raise transient(
            f"Exotel GET {endpoint}: item at offset {position} is a failure "
            f"(status {item.get('status')!r}, code {item.get('code')!r}) or has no data"
        )
    sid = data.get("sid")
    if not isinstance(sid, str) or not sid:
        raise transient(f"Exotel GET {endpoint}: contact at offset {position} has no string sid")
    return data


def page_contacts(body: Mapping[str, Any], endpoint: str) -> list[dict[str, Any]]:
    """The ``data`` objects of a page answer (no checks beyond the ``response`` list)."""
    items = body.get("response")
    if not isinstance(items, list):
        raise ExotelRequestError(f"Exotel GET {endpoint}: answer has no 'response' list")
    contacts = []
    for item in items:
        data = item.get("data") if isinstance(item, Mapping) else None
        if isinstance(data, dict):
            contacts.append(data)
    return contacts


def page_total(body: Mapping[str, Any], endpoint: str) -> int:
    """``metadata.total`` of a page answer; ``ExotelRequestError`` when it is not a count."""
    metadata = body.get("metadata")
    total = metadata.get("total") if isinstance(metadata, Mapping) else None
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ExotelRequestError(f"Exotel GET {endpoint}: answer has no non-negative integer metadata.total")
    return total


def check_total(endpoint: str) -> Check:
    """A ``check`` for single requests that only need ``metadata.total`` (counts): a missing
    envelope or a total that is not a non-negative integer is retried like a garbled body."""

    def check(body: dict[str, Any]) -> None:
        try:
            page_total(body, endpoint)
        except ExotelRequestError as exc:
            raise TransientError(exc) from None

    return check
