"""One request's way through the simulator, as a chain of small steps:

read → control endpoint? → request log → ``before_request`` / latency → fault → credentials →
base and account → rate limits → route table → page drift → answer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel.testing._drift import drift_body, drift_query
from airflow_provider_exotel.testing._envelopes import ApiError, dumps
from airflow_provider_exotel.testing._routes import BASES, ApiRequest, RouteTable
from airflow_provider_exotel.testing._wire import Handler, read_request, reset, send, send_error
from airflow_provider_exotel.testing.control import is_control_path, serve_control

if TYPE_CHECKING:
    from airflow_provider_exotel.testing._faults import Fault
    from airflow_provider_exotel.testing._requestlog import RecordedRequest
    from airflow_provider_exotel.testing.simulator import ExotelSimulator

__all__ = ["serve_request"]

_HTML = "text/html; charset=utf-8"
_HTML_502 = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
_HTML_200 = (
    b"<!DOCTYPE html><html><head><title>Exotel</title></head>"
    b"<body><h1>Scheduled maintenance</h1><p>We'll be back shortly.</p></body></html>"
)


def serve_request(sim: ExotelSimulator, h: Handler) -> None:
    """Serve one request of ``h`` (the :class:`~airflow_provider_exotel.testing._wire.Server`'s callback)."""
    started = time.monotonic()
    rec, body, parsed = read_request(h, sim.max_json_body_bytes, sim.clock.now())
    if is_control_path(rec.path):  # the loopback-only control endpoint (testing/control.py)
        client = h.client_address[0] if h.client_address else ""
        status, answer = serve_control(sim, rec.method, rec.path, rec.query, body, client, rec.headers)
        send(h, rec, status, dumps(answer))
        return
    sim.log.arrived(rec)
    echo = sim.echo_headers_in_errors
    try:
        if body is None:
            send_error(h, rec, ApiError(400, "Malformed request body"), echo_headers=echo)
            return
        callback = sim.before_request
        if callback is not None:
            callback(sim, rec)
        if sim.latency:
            time.sleep(sim.latency)
        _answer(sim, h, rec, parsed, sim.faults.next_for(rec.method, rec.path))
    except Exception as exc:  # a simulator bug or a failing before_request: answer 500
        sim.errors.append(exc)
        try:
            send_error(h, rec, ApiError(500, f"Simulator error: {exc!r}"), echo_headers=echo)
        except OSError:
            pass
    finally:
        rec.duration = time.monotonic() - started
        sim.log.answered(rec)


def _fault_answered(h: Handler, rec: RecordedRequest, fault: Fault, echo: bool) -> bool:
    """Apply the fault kinds that act before routing; whether the request is answered (or reset)."""
    kind = fault.kind
    if fault.delay is not None and kind != "slow":
        time.sleep(fault.delay)
    if kind == "reset":
        reset(h)
    elif kind == "slow":
        time.sleep(5.0 if fault.delay is None else fault.delay)
        return False
    elif kind == "html_200":
        send(h, rec, 200, _HTML_200, _HTML)
    elif kind == "502_html":
        send(h, rec, 502, _HTML_502, _HTML)
    elif kind.isdigit():
        ra = fault.retry_after_header()
        error = ApiError(int(kind), headers={} if ra is None else {"Retry-After": ra})
        send_error(h, rec, error, echo_headers=echo)
    else:
        return False
    return True


def _answer(sim: ExotelSimulator, h: Handler, rec: RecordedRequest, parsed: Any, fault: Fault | None) -> None:
    if fault is not None:
        rec.fault = fault.kind
        if _fault_answered(h, rec, fault, sim.echo_headers_in_errors):
            return
    kind = fault.kind if fault is not None else None
    query = drift_query(kind, rec.method, rec.query)  # testing/_drift.py
    try:
        status, body, headers = _route(sim, rec, query, parsed)
    except ApiError as err:
        send_error(h, rec, err, echo_headers=sim.echo_headers_in_errors)
        return
    body = drift_body(kind, rec.method, body)  # testing/_drift.py
    if kind == "reset_after_apply":
        reset(h)
        return
    if kind == "truncated_json":
        body = body[: max(1, len(body) // 2)]
    send(h, rec, status, body, headers=headers)


def _route(
    sim: ExotelSimulator, rec: RecordedRequest, query: dict[str, str], parsed: Any
) -> tuple[int, bytes, dict[str, str]]:
    if not sim.check_credentials(rec.header("Authorization")):
        raise ApiError(401)
    base, rest = RouteTable.split(rec.path, sim.account_sid)
    retry, rate_headers, refused = sim.rate_limits.admit(BASES[base][2])
    if retry is not None:
        raise ApiError(429, headers={"Retry-After": str(retry)})
    rec.rate_headers = rate_headers
    if refused is not None:
        raise ApiError(429, message="Rate limit exceeded", raw_body=refused)
    route, params = sim.routes.resolve(rec.method, base, rest, rec.path)
    answer = route.handler(ApiRequest(rec.method, rec.path, query, parsed, rec, base, params))
    return answer if len(answer) == 3 else (*answer, {})
