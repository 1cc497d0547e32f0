"""The simulator's wire: a threading HTTP/1.1 server on a real socket, reading requests and writing
answers byte by byte (so faults can truncate or reset them). Standard library only.

:class:`Server` hands every request to its ``serve(handler)`` callable (``testing/_serve.py``);
:func:`read_request`, :func:`send`, :func:`send_error` and :func:`reset` are what that uses.
"""

from __future__ import annotations

import http
import json
import socket
import struct
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_exotel.testing._clock import SimClock
from airflow_provider_exotel.testing._envelopes import INVALID_JSON, ApiError, dumps, error_envelope
from airflow_provider_exotel.testing._requestlog import RecordedRequest

__all__ = ["Handler", "Server", "read_request", "reset", "send", "send_error"]

JSON = "application/json; charset=utf-8"


class Server(ThreadingHTTPServer):
    """One thread per connection; keeps the open connections so :meth:`close` can wake them.

    :param addr: ``(host, port)`` to bind (port 0: a free one).
    :param serve: called with the :class:`Handler` of every request.
    :param clock: the simulator's clock (the ``Date`` header).
    """

    daemon_threads = True
    block_on_close = False
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], serve: Callable[[Handler], None], clock: SimClock) -> None:
        self.serve = serve
        self.clock = clock
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError | ValueError):  # client went away, socket closed by a reset, ...
            return
        super().handle_error(request, client_address)

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._conns_lock:
            if open_:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def close(self) -> None:
        """Stop serving, wake handler threads parked on keep-alive connections, close the socket."""
        self.shutdown()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ExotelSimulator/1.0"
    sys_version = ""
    server: Server

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header of every answer, from the simulator's clock (RFC 7231)."""
        return self.server.clock.http_date(timestamp)

    def _dispatch(self) -> None:
        self.server.serve(self)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch


def _read_chunked(h: Handler) -> bytes:
    chunks: list[bytes] = []
    while True:
        line = h.rfile.readline(65537)
        if not line:
            raise ValueError("truncated chunked body")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        chunks.append(h.rfile.read(size))
        h.rfile.readline(3)


def read_body(h: Handler) -> bytes:
    """The request body (chunked or ``Content-Length``); ``ValueError`` when malformed."""
    if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
        return _read_chunked(h)
    length = h.headers.get("Content-Length")
    if not length:
        return b""
    n = int(length)
    if n < 0:
        raise ValueError("negative Content-Length")
    data = h.rfile.read(n)
    if len(data) != n:
        raise ValueError("truncated body")
    return data


def read_request(h: Handler, keep_bytes: int, now: float) -> tuple[RecordedRequest, bytes | None, Any]:
    """``(record, body or None when malformed, parsed JSON)``; a PUT's body goes on the record.

    :param keep_bytes: keep a parsed body of at most this many bytes on the record.
    :param now: arrival time (the simulator clock).
    """
    parts = urlsplit(h.path)
    rec = RecordedRequest(
        method=h.command,
        path=parts.path,
        query=dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=dict(h.headers.items()),
        client_port=h.client_address[1] if h.client_address else None,
        timestamp=now,
    )
    try:
        body: bytes | None = read_body(h)
    except (ValueError, OSError):
        h.close_connection = True
        return rec, None, None
    rec.body_size = len(body or b"")
    if not body:
        return rec, body, None
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = INVALID_JSON
    if h.command == "PUT" and parsed is not INVALID_JSON:
        if isinstance(parsed, dict) and isinstance(parsed.get("contacts"), list):
            rec.batch_size = len(parsed["contacts"])
        if len(body) <= keep_bytes:
            rec.json_body = parsed
    return rec, body, parsed


def send(
    h: Handler,
    rec: RecordedRequest,
    status: int,
    body: bytes,
    content_type: str = JSON,
    headers: dict[str, str] | None = None,
) -> None:
    """Write one answer (status line, headers incl. ``Date`` and the account's rate headers, body);
    a ``Content-Type`` in ``headers`` replaces ``content_type``."""
    headers = dict(headers or {})
    for name in [k for k in headers if k.lower() == "content-type"]:
        content_type = headers.pop(name)
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {status} {reason}",
        f"Server: {h.server_version}",
        f"Date: {h.date_time_string()}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    lines.extend(f"{k}: {v}" for k, v in rec.rate_headers.items() if k not in headers)
    if h.close_connection:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    rec.status = status
    if rec.status_log is not None:
        rec.status_log.status_sent(rec)
    h.wfile.write(head + body)


def send_error(h: Handler, rec: RecordedRequest, err: ApiError, *, echo_headers: bool = False) -> None:
    """Answer Exotel's error envelope (or the error's raw body); ``echo_headers``: a leaky API that
    puts the request's headers into the body."""
    if err.raw_body is not None:
        send(h, rec, err.status, err.raw_body, headers=err.headers)
        return
    envelope = error_envelope(rec.method, err)
    if echo_headers:
        envelope["request_headers"] = dict(rec.headers)
    send(h, rec, err.status, dumps(envelope), headers=err.headers)


def reset(h: Handler) -> None:
    """Abort the connection with a TCP RST and no response."""
    h.close_connection = True
    conn = h.connection
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        conn.close()  # the fd is really closed (-> RST) once rfile is closed in finish()
    except OSError:
        pass
