"""The simulator's control endpoint: change a running simulator from outside its process.

A standalone simulator (``python -m airflow_provider_exotel.testing``) serves, beside the Exotel API,
a small JSON API under ``/_control/`` so a demo or a test of a real Airflow deployment can add and
delete contacts, change list membership, inject faults and read the request log while it runs —
e.g. to watch a deferred sensor fire. It is **loopback only**: a client that is not on 127.0.0.1
(or ``::1``) gets 403, whatever interface the simulator listens on, and so does a request a browser
page sends cross-site (it carries an ``Origin`` header). It needs no API credentials, and nothing
it does is recorded in the request log or subject to injected faults.

====================================================  =============================================
``GET    /_control``                                   this list of endpoints
``GET    /_control/state``                             ``{"account_sid", "contacts", "lists": {sid: size},
                                                       "pending_faults", "requests"}``
``POST   /_control/contacts``                          ``{"contacts": [{fields}]}`` adds contacts (``sid``,
                                                       ``date_created`` optional), or ``{"count": n}`` seeds
                                                       n generated ones; both take ``"list_sid"`` to add
                                                       them to that list too → ``{"contacts": [...]}``
``DELETE /_control/contacts/<sid>``                    deletes a contact → ``{"deleted": bool}``
``POST   /_control/lists/<list_sid>/contacts``         ``{"contact_sids": [...]}`` adds members (creates the
                                                       list when missing) → ``{"list_sid", "size"}``
``DELETE /_control/lists/<list_sid>/contacts/<sid>``   removes one member → ``{"removed": bool}``
``POST   /_control/faults``                            ``{"faults": ["503", "reset", ...], "method",
                                                       "path_endswith"}`` queues faults, or ``{"every":
                                                       "503", ...}`` fails every matching request;
                                                       ``"retry_after"``: seconds (``null``: no header)
``DELETE /_control/faults``                            clears every fault
``GET    /_control/requests?since=<n>``                the request log from entry n: ``{"total",
                                                       "requests": [{"method", "path", "query", "status",
                                                       "fault", "batch_size", "timestamp"}]}`` (no headers,
                                                       no bodies)
``DELETE /_control/requests``                          clears the request log
``GET    /_control/clock``                             ``{"now", "offset", "iso"}``: the simulator's clock
``POST   /_control/clock``                             ``{"advance": seconds}`` moves it ahead → the same
``GET    /_control/rate_limit``                        ``{"reset_format", "families": {family: {"limit",
                                                       "window", "headers"}}}``
``POST   /_control/rate_limit``                        ``{"reset_format": "epoch"|"epoch_ms"|"delta"}``
                                                       and/or ``{"limit": n|null, "window", "headers",
                                                       "family": "campaign"|"voice"}`` → the same
====================================================  =============================================

Example::

    curl -X POST localhost:8089/_control/contacts -d '{"count": 5, "list_sid": "list0"}'
    curl -X POST localhost:8089/_control/faults -d '{"faults": ["503", "503"], "method": "GET"}'
    curl localhost:8089/_control/requests?since=0

Errors answer ``{"error": "..."}`` with 400 (bad body), 403 (not loopback), 404 (unknown endpoint or
contact) or 405.
"""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from airflow_provider_exotel.testing.simulator import ExotelSimulator

__all__ = ["CONTROL_PREFIX", "ENDPOINTS", "is_control_path", "serve_control"]

CONTROL_PREFIX = "/_control"

#: (method, path pattern, what it does) — served by ``GET /_control`` and printed by the CLI.
ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("GET", "/_control/state", "contact and list counts, pending faults, logged requests"),
    ("POST", "/_control/contacts", 'add {"contacts": [...]} or seed {"count": n}; optional "list_sid"'),
    ("DELETE", "/_control/contacts/<sid>", "delete a contact"),
    ("POST", "/_control/lists/<list_sid>/contacts", 'add {"contact_sids": [...]} to a list'),
    ("DELETE", "/_control/lists/<list_sid>/contacts/<sid>", "remove a contact from a list"),
    ("POST", "/_control/faults", 'queue {"faults": [...]} or set {"every": kind}; "method", "path_endswith"'),
    ("DELETE", "/_control/faults", "clear all faults"),
    ("GET", "/_control/requests?since=<n>", "the request log from entry n (no headers or bodies)"),
    ("DELETE", "/_control/requests", "clear the request log"),
    ("GET", "/_control/clock", "the simulator's clock: now, offset"),
    ("POST", "/_control/clock", 'move the clock ahead: {"advance": seconds}'),
    ("GET", "/_control/rate_limit", "account limits and the X-RateLimit-Reset format"),
    ("POST", "/_control/rate_limit", 'set {"reset_format"} and/or {"limit", "window", "headers", "family"}'),
    ("GET", "/_control/campaigns", "campaign settings and every campaign's status and stats"),
    ("POST", "/_control/campaigns", 'set {"pace": calls/s, "status_spelling": "old"|"new"}'),
    ("POST", "/_control/campaigns/<id>/advance", 'run one campaign {"seconds": n} ahead'),
    ("POST", "/_control/campaigns/<id>/finish", "make every call left now and complete it"),
)


class ControlError(Exception):
    """An error answered to the control client as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_control_path(path: str) -> bool:
    """True for paths the control endpoint serves (never under the Exotel API's ``/v2``)."""
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ``::1`` and IPv4-mapped loopback addresses."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def serve_control(
    sim: ExotelSimulator,
    method: str,
    path: str,
    query: dict[str, str],
    body: bytes | None,
    client_address: str,
    headers: dict[str, str],
) -> tuple[int, dict[str, Any]]:
    """Answer one control request: ``(status, JSON-able body)``. Never raises."""
    try:
        if not is_loopback(client_address):
            raise ControlError(403, "the control endpoint only answers clients on 127.0.0.1 / ::1")
        if any(k.lower() == "origin" for k in headers):
            raise ControlError(403, "the control endpoint does not answer browser pages (Origin header)")
        return 200, _route(sim, method.upper(), path, query, _parse(body))
    except ControlError as exc:
        return exc.status, {"error": str(exc)}
    except (KeyError, TypeError, ValueError) as exc:
        return 400, {"error": f"{type(exc).__name__}: {exc}"}


def _parse(body: bytes | None) -> Any:
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        raise ControlError(400, "the request body must be JSON") from None
    if not isinstance(parsed, dict):
        raise ControlError(400, "the request body must be a JSON object")
    return parsed


def _route(sim: ExotelSimulator, method: str, path: str, query: dict[str, str], body: Any) -> dict[str, Any]:
    segs = [unquote(s) for s in path[len(CONTROL_PREFIX) :].split("/") if s]
    if not segs:
        _allow(method, "GET")
        return {
            "endpoints": [{"method": m, "path": p, "does": d} for m, p, d in ENDPOINTS],
            "doc": "airflow_provider_exotel.testing.control",
        }
    head = segs[0]
    if segs == ["state"]:
        _allow(method, "GET")
        return _state(sim)
    if head == "contacts" and len(segs) == 1:
        _allow(method, "POST")
        return _add_contacts(sim, body)
    if head == "contacts" and len(segs) == 2:
        _allow(method, "DELETE")
        return {"deleted": sim.delete_contact(segs[1])}
    if head == "lists" and len(segs) == 3 and segs[2] == "contacts":
        _allow(method, "POST")
        sids = body.get("contact_sids")
        if not isinstance(sids, list) or not all(isinstance(s, str) for s in sids):
            raise ControlError(400, "contact_sids must be a list of contact sids")
        try:
            sim.create_list(segs[1], sids)
        except KeyError as exc:
            raise ControlError(404, str(exc)) from None
        return {"list_sid": segs[1], "size": len(sim.lists.get(segs[1], ()))}
    if head == "lists" and len(segs) == 4 and segs[2] == "contacts":
        _allow(method, "DELETE")
        return {"removed": sim.store.remove_member(segs[1], segs[3])}
    if segs == ["faults"]:
        _allow(method, "POST", "DELETE")
        if method == "DELETE":
            sim.clear_faults()
            return {"pending_faults": 0}
        return _add_faults(sim, body)
    if segs == ["requests"]:
        _allow(method, "GET", "DELETE")
        if method == "DELETE":
            sim.clear_requests()
            return {"total": 0}
        return _requests(sim, query)
    if segs == ["clock"]:
        _allow(method, "GET", "POST")
        return _clock(sim, body if method == "POST" else None)
    if segs == ["rate_limit"]:
        _allow(method, "GET", "POST")
        return _rate_limit(sim, body if method == "POST" else None)
    if head == "campaigns":
        from airflow_provider_exotel.testing._campaigns_family import campaign_control

        try:
            return campaign_control(sim, method, segs[1:], body)
        except LookupError as exc:
            raise ControlError(404, str(exc).strip("'\"")) from None
    raise ControlError(404, f"no control endpoint {path}; GET {CONTROL_PREFIX} lists them")


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise ControlError(405, f"{method} not allowed here; use {' or '.join(allowed)}")


def _state(sim: ExotelSimulator) -> dict[str, Any]:
    return {
        "account_sid": sim.account_sid,
        "contacts": len(sim),
        "lists": {sid: len(members) for sid, members in sim.lists.items()},
        "pending_faults": sim.pending_faults,
        "requests": len(sim.requests),
        "clock": sim.clock.now(),
    }


def _clock(sim: ExotelSimulator, body: dict[str, Any] | None) -> dict[str, Any]:
    if body is not None:
        seconds = body.get("advance")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ControlError(400, 'send {"advance": seconds} (a number >= 0)')
        sim.clock.advance(seconds)  # ValueError (negative, not finite) answers 400
    clock = sim.clock
    return {"now": clock.now(), "offset": clock.offset, "iso": clock.iso()}


def _rate_limit(sim: ExotelSimulator, body: dict[str, Any] | None) -> dict[str, Any]:
    if body:
        if "reset_format" in body:
            sim.rate_limit_reset_format = body["reset_format"]  # ValueError answers 400
        if "limit" in body:
            limit, window, headers = body["limit"], body.get("window", 60.0), body.get("headers", True)
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
                raise ControlError(400, "limit must be an integer >= 1 or null")
            if not isinstance(headers, bool):
                raise ControlError(400, "headers must be true or false")
            sim.set_account_limit(
                limit, window=window, headers=headers, family=body.get("family", "campaign")
            )
    families = {
        name: {"limit": w.limit, "window": w.window, "headers": w.headers}
        for name, w in sim.account_limits.items()
    }
    return {"reset_format": sim.rate_limit_reset_format, "families": families}


def _add_contacts(sim: ExotelSimulator, body: dict[str, Any]) -> dict[str, Any]:
    list_sid = body.get("list_sid")
    if list_sid is not None and (not isinstance(list_sid, str) or not list_sid):
        raise ControlError(400, "list_sid must be a non-empty string")
    if "count" in body:
        count = body["count"]
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 100_000:
            raise ControlError(400, "count must be an integer from 0 to 100000")
        created = sim.seed_contacts(count)
    else:
        rows = body.get("contacts")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ControlError(400, 'send {"contacts": [{...}, ...]} or {"count": n}')
        created = []
        for row in rows:
            try:
                created.append(sim.insert_contact(**row))
            except (TypeError, ValueError) as exc:
                raise ControlError(400, f"contact {row!r}: {exc}") from None
    if list_sid is not None:
        sim.create_list(list_sid, [c["sid"] for c in created])
    return {"contacts": created}


def _add_faults(sim: ExotelSimulator, body: dict[str, Any]) -> dict[str, Any]:
    method = body.get("method")
    suffix = body.get("path_endswith")
    for name, value in (("method", method), ("path_endswith", suffix)):
        if value is not None and not isinstance(value, str):
            raise ControlError(400, f"{name} must be a string")
    retry_after = body.get("retry_after", "auto")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, int | float | str)
    ):
        raise ControlError(400, "retry_after must be a number of seconds, a string or null")
    try:
        if "every" in body:
            sim.fail_every_request(
                str(body["every"]), method=method, path_endswith=suffix, retry_after=retry_after
            )
        else:
            faults = body.get("faults")
            if not isinstance(faults, list) or not faults:
                raise ControlError(400, 'send {"faults": ["503", ...]} or {"every": "503"}')
            sim.add_faults(
                *(str(f) for f in faults), method=method, path_endswith=suffix, retry_after=retry_after
            )
    except ValueError as exc:  # an unknown fault kind
        raise ControlError(400, str(exc)) from None
    return {"pending_faults": sim.pending_faults}


def _requests(sim: ExotelSimulator, query: dict[str, str]) -> dict[str, Any]:
    raw = query.get("since", "0")
    if not raw.isdigit():
        raise ControlError(400, "since must be a non-negative integer")
    log = sim.requests
    return {
        "total": len(log),
        "requests": [
            {
                "method": r.method,
                "path": r.path,
                "query": r.query,
                "status": r.status,
                "fault": r.fault,
                "batch_size": r.batch_size,
                "timestamp": r.timestamp,
            }
            for r in log[int(raw) :]
        ],
    }
