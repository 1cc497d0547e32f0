"""The simulator's request log: every API request as it arrived, with counts (thread-safe)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RecordedRequest", "RequestLog", "matches"]


@dataclass
class RecordedRequest:
    """One request as the simulator saw it (appended to the log when it arrives).

    ``status`` is ``None`` while the request is in flight and for connection resets.
    ``json_body`` is the parsed PUT body (kept when the body is at most
    ``ExotelSimulator.max_json_body_bytes``); ``batch_size`` is ``len(body["contacts"])`` for PUTs.
    ``timestamp`` is the simulator clock's time of arrival.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body_size: int = 0
    json_body: Any = None
    batch_size: int | None = None
    status: int | None = None
    fault: str | None = None
    timestamp: float = field(default_factory=time.time)
    duration: float | None = None
    client_port: int | None = None
    #: ``X-RateLimit-*`` (and ``Retry-After``) headers of the account limit sent with the answer
    rate_headers: dict[str, str] = field(default_factory=dict)
    #: the log that counts this request's status as it is sent (set on arrival)
    status_log: RequestLog | None = field(default=None, repr=False, compare=False)
    status_counted: bool = field(default=False, repr=False, compare=False)

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        lname = name.lower()
        for k, v in self.headers.items():
            if k.lower() == lname:
                return v
        return None


def matches(method: str | None, suffix: str | None, req_method: str, req_path: str) -> bool:
    """Whether a request matches a ``method`` / ``path_endswith`` filter (``None``: any)."""
    if method is not None and method.upper() != req_method.upper():
        return False
    if suffix is not None and not req_path.rstrip("/").endswith(suffix.rstrip("/")):
        return False
    return True


class RequestLog:
    """Recorded requests, answered statuses and the number of requests in flight."""

    def __init__(self) -> None:
        self.record_requests = True
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._status_counts: Counter[int] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0

    def arrived(self, rec: RecordedRequest) -> None:
        with self._lock:
            if self.record_requests:
                self._requests.append(rec)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        rec.status_log = self

    def status_sent(self, rec: RecordedRequest) -> None:
        """Count the request's status once, before its bytes go out (a client that has the answer
        sees it counted)."""
        with self._lock:
            if rec.status is not None and not rec.status_counted:
                rec.status_counted = True
                self._status_counts[rec.status] += 1

    def answered(self, rec: RecordedRequest) -> None:
        self.status_sent(rec)
        with self._lock:
            self._in_flight -= 1

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path_endswith: str | None = None) -> int:
        return sum(1 for r in self.requests if matches(method, path_endswith, r.method, r.path))

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._status_counts.clear()

    def count_status(self, code: int) -> int:
        with self._lock:
            return self._status_counts[code]

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    def reset_max_in_flight(self) -> None:
        with self._lock:
            self._max_in_flight = self._in_flight
