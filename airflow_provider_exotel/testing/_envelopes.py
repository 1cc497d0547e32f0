"""Exotel's JSON envelopes and errors, as the simulator writes them (standard library only).

An endpoint handler raises :class:`ApiError` for a whole-request failure (the wire answers it with
Exotel's error envelope) and builds its success answers with :func:`one_object`, :func:`page` and
:func:`bulk` from :func:`success_item` / :func:`failure_item` items.
"""

from __future__ import annotations

import http
import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_exotel.testing._routes import ApiRequest

__all__ = [
    "DELETE_ANSWERS",
    "INVALID_JSON",
    "ApiError",
    "body_items",
    "bulk",
    "deleted",
    "dumps",
    "failure_item",
    "one_object",
    "page",
    "success_item",
]

#: The parsed body of a request whose body is not JSON (``None`` means no body).
INVALID_JSON: Any = object()

# status -> (Exotel error code, message)
ERRORS: dict[int, tuple[int, str]] = {
    400: (1002, "Bad Request"),
    401: (1010, "Unauthorized"),
    403: (1011, "Forbidden"),
    404: (1000, "Not Found"),
    405: (1003, "Method Not Allowed"),
    429: (1008, "Too Many Requests"),
    500: (5000, "Internal Server Error"),
    502: (5002, "Bad Gateway"),
    503: (5003, "Service Unavailable"),
    504: (5004, "Gateway Timeout"),
}
DESCRIPTIONS: dict[int, str] = {
    401: "Authentication is required to access the resource",
    403: "You do not have access to this resource",
    404: "Resource not found",
    429: "Rate limit exceeded",
    500: "Temporary failure",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
    504: "Upstream timed out",
}


class ApiError(Exception):
    """A whole-request failure, answered with Exotel's error envelope (or ``raw_body``).

    :param status: HTTP status.
    :param description: ``error_data.description`` (default: a stock text for the status).
    :param message: ``error_data.message`` (default: the status phrase).
    :param code: Exotel's error code (default: from the status).
    :param headers: extra answer headers (``Retry-After``).
    :param raw_body: answer this body instead of the envelope.
    """

    def __init__(
        self,
        status: int,
        description: str | None = None,
        *,
        message: str | None = None,
        code: int | None = None,
        headers: dict[str, str] | None = None,
        raw_body: bytes | None = None,
    ) -> None:
        super().__init__(description)
        self.raw_body = raw_body
        if status in ERRORS:
            default_code, default_message = ERRORS[status]
        else:
            default_code = status * 10
            try:
                default_message = http.HTTPStatus(status).phrase
            except ValueError:
                default_message = "Error"
        self.status = status
        self.code = code if code is not None else default_code
        self.message = message or default_message
        self.description = description or DESCRIPTIONS.get(status, self.message)
        self.headers = headers or {}

    def error_data(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "description": self.description}


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes (a lone surrogate stored by a test travels as a ``\\ud800`` escape)."""
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def _envelope(method: str, status: int, **parts: Any) -> bytes:
    return dumps({"request_id": uuid.uuid4().hex, "method": method, "http_code": status, **parts})


def success_item(data: Any) -> dict[str, Any]:
    return {"code": 200, "error_data": None, "status": "success", "data": data}


def failure_item(code: int, description: str | None = None) -> dict[str, Any]:
    """A failed item of a bulk answer (a 404 without description says "Contact not found")."""
    if code == 404 and description is None:
        description = "Contact not found"
    err = ApiError(code, description)
    return {"code": code, "error_data": err.error_data(), "status": "failure"}


def error_envelope(method: str, err: ApiError) -> dict[str, Any]:
    """The whole-request error answer (a dict: the wire may add ``request_headers``)."""
    return {
        "request_id": uuid.uuid4().hex,
        "method": method,
        "http_code": err.status,
        "response": {"code": err.status, "error_data": err.error_data(), "status": "failure"},
    }


def one_object(data: Any, method: str, *, as_list: bool = False, item: dict[str, Any] | None = None) -> bytes:
    """A one-object answer; ``as_list``: ``response`` as a one-item list (Exotel does both)."""
    item = success_item(data) if item is None else item
    return _envelope(method, 200, response=[item] if as_list else item)


def page(items: list[dict[str, Any]], offset: int, limit: int, total: int) -> bytes:
    """A GET page: ``metadata`` ``{count, offset, limit, total}`` and the items."""
    metadata = {"count": len(items), "offset": offset, "limit": limit, "total": total}
    return _envelope("GET", 200, metadata=metadata, response=items)


def bulk(method: str, results: list[dict[str, Any]]) -> tuple[int, bytes]:
    """A bulk answer: 200 when every item succeeded, else 207; ``metadata`` counts them."""
    failed = sum(1 for r in results if r["status"] != "success")
    status = 207 if failed else 200
    metadata = {"failed": failed, "total": len(results), "success": len(results) - failed}
    return status, _envelope(method, status, metadata=metadata, response=results)


MAX_PAGE_LIMIT = 20
DEFAULT_PAGE_LIMIT = 20


def paging(query: dict[str, str]) -> tuple[int, int]:
    """``(offset, limit)`` of a GET page request (400 when not non-negative integers, limit > 20)."""

    def _int(name: str, default: int) -> int:
        raw = query.get(name)
        if raw is None or raw == "":
            return default
        raw = raw.strip()
        if not raw.isdigit():
            raise ApiError(400, f"{name} must be a non-negative integer")
        return int(raw)

    offset = _int("offset", 0)
    limit = _int("limit", DEFAULT_PAGE_LIMIT)
    if limit > MAX_PAGE_LIMIT:
        raise ApiError(400, f"limit must be at most {MAX_PAGE_LIMIT}")
    return offset, limit


def body_items(request: ApiRequest, key: str, cap: int, keep_bytes: int) -> list[Any]:
    """The ``key`` list of a bulk request's body (1..``cap`` items; 400 otherwise); logs its size
    and (up to ``keep_bytes``) its body on the request's record."""
    parsed = request.body
    if parsed is INVALID_JSON or parsed is None:
        raise ApiError(400, "Request body must be valid JSON")
    if not isinstance(parsed, dict) or not isinstance(parsed.get(key), list):
        raise ApiError(400, f"Request body must be a JSON object with a {key!r} list")
    items = parsed[key]
    rec = request.record
    rec.batch_size = len(items)
    if rec.body_size <= keep_bytes:
        rec.json_body = parsed
    if not items:
        raise ApiError(400, f"{key} must not be empty")
    if len(items) > cap:
        raise ApiError(400, f"At most {cap} {key} per request")
    return items


#: Values of the simulator's ``delete_answer`` switch.
DELETE_ANSWERS = ("json", "no_content", "failure_item")


def deleted(delete: Callable[[], bytes], *, mode: str, as_list: bool) -> tuple[int, bytes]:
    """A DELETE's answer, shaped by ``mode``: ``"json"`` (200 with the deleted object, 404 when
    unknown), ``"no_content"`` (204 without a body) or ``"failure_item"`` (an unknown object is a
    200 whose ``response`` item is the 404 failure)."""
    if mode not in DELETE_ANSWERS:
        raise ValueError(f"delete_answer must be one of {DELETE_ANSWERS}, got {mode!r}")
    try:
        body = delete()
    except ApiError as err:
        if err.status != 404 or mode != "failure_item":
            raise
        return 200, one_object(None, "DELETE", as_list=as_list, item=failure_item(404, err.description))
    if mode == "no_content":
        return 204, b""
    return 200, body
