"""A stateful fake of Exotel's v2 Contacts API, served on a real socket.

Standard library only, so it imports fast and runs anywhere::

    from airflow_provider_exotel.testing import ExotelSimulator

    with ExotelSimulator() as sim:
        sim.seed_contacts(100)
        sim.add_faults("429", "reset", method="GET", path_endswith="contacts")
        ...  # point a client at sim.url / sim.connection_json()

Endpoints (all below ``/v2/accounts/<account_sid>/``, HTTP Basic auth):

* ``GET contacts?offset=&limit=&name=&sort_by=&list_sids=&filter=show_list``
* ``GET lists/<list_sid>/contacts?offset=&limit=``
* ``GET contacts/<sid>``
* ``PUT contacts`` (bulk update, at most 5000 per request; 200 or 207)
* ``PUT contacts/<sid>`` (single-contact update)
* campaign endpoints — ``POST contacts``, ``DELETE contacts/<sid>``, lists and list membership:
  see ``testing/_campaign.py`` (switch ``duplicate_numbers``)

Fault injection (``add_faults`` / ``fail_every_request`` / ``add_item_faults``), latency, a sliding
window rate limiter and a thread-safe request log make it suitable for reliability tests and
benchmarks alike. Drift and wrong answers for paging tests — ``max_page_size``, ``rename_contact``,
``swap_list_member`` and the page fault kinds (``repeat_page``, ``empty_page``, ``short_page``,
``failure_item``, ``negative_total``, ``no_envelope``, ``sid_list`` …): see ``testing/_drift.py``.
A loopback-only control endpoint under ``/_control/`` changes a running simulator from another
process (see :mod:`airflow_provider_exotel.testing.control`).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import http
import json
import math
import random
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from airflow_provider_exotel.testing._campaign import CampaignEndpoints
from airflow_provider_exotel.testing._campaigns_family import CampaignsFamily  # WIRE
from airflow_provider_exotel.testing._clock import TIMESTAMP_FORMAT, SimClock
from airflow_provider_exotel.testing._drift import PAGE_FAULT_KINDS, DriftFeatures
from airflow_provider_exotel.testing._envelopes import (
    INVALID_JSON,
    MAX_PAGE_LIMIT,
    ApiError,
    dumps,
    one_object,
    paging,
)
from airflow_provider_exotel.testing._ratelimit import AccountWindow, check_reset_format
from airflow_provider_exotel.testing._requestlog import RecordedRequest, RequestLog, matches
from airflow_provider_exotel.testing._routes import BASES, ApiRequest, EndpointFamily, RouteTable
from airflow_provider_exotel.testing.control import is_control_path, serve_control

__all__ = [
    "CONTACT_FIELDS",
    "FAULT_KINDS",
    "MAX_BULK_UPDATE",
    "MAX_PAGE_LIMIT",
    "UPDATABLE_FIELDS",
    "ExotelSimulator",
    "Fault",
    "RecordedRequest",
]

CONTACT_FIELDS = (
    "sid",
    "date_created",
    "date_updated",
    "account_sid",
    "number",
    "first_name",
    "last_name",
    "company_name",
    "email",
    "tag",
    "custom_field",
    "uri",
)
UPDATABLE_FIELDS = ("first_name", "last_name", "company_name", "email", "tag", "custom_field", "number")
MAX_BULK_UPDATE = 5000
SORTABLE_FIELDS = (
    "date_created",
    "date_updated",
    "name",
    "first_name",
    "last_name",
    "number",
    "company_name",
    "email",
)

#: Named fault kinds. Any 3-digit status string (``"400"``, ``"403"``, ...) is accepted as well
#: and answered with an Exotel-style error envelope carrying that status.
FAULT_KINDS = frozenset(
    {
        "429",
        "500",
        "502_html",
        "503",
        "504",
        "401",
        "reset",
        "reset_after_apply",
        "slow",
        "truncated_json",
        "html_200",
    }
)
FAULT_KINDS |= PAGE_FAULT_KINDS  # wrong page answers: testing/_drift.py

_HTML_502 = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
_HTML_200 = (
    b"<!DOCTYPE html><html><head><title>Exotel</title></head>"
    b"<body><h1>Scheduled maintenance</h1><p>We'll be back shortly.</p></body></html>"
)
_SEED_BASE = datetime(2024, 1, 1, tzinfo=UTC)
_TS_FORMAT = TIMESTAMP_FORMAT
_INVALID_JSON = INVALID_JSON
_AUTO = "auto"
_ApiError = ApiError
_dumps = dumps


def _normalize_ts(value: Any) -> str:
    """Return ``value`` (datetime or ISO string) as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    else:
        raise TypeError(f"date_created must be a datetime or ISO string, not {type(value).__name__}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime(_TS_FORMAT)


def _str_key(value: Any) -> tuple[int, str]:
    return (0, "") if value is None else (1, str(value).casefold())


@dataclass(frozen=True)
class Fault:
    """One injected fault.

    ``kind`` is one of :data:`FAULT_KINDS` or a 3-digit status string.
    ``retry_after``: seconds for the ``Retry-After`` header (a number is sent as an integer, rounded
    up; any other string is sent verbatim); ``"auto"`` (default) means 1 for ``"429"`` and no header
    for other kinds; ``None`` means no header.
    ``delay``: seconds to stall for ``"slow"`` (default 5).
    """

    kind: str
    retry_after: float | str | None = _AUTO
    delay: float | None = None

    def __post_init__(self) -> None:
        kind = str(self.kind)
        object.__setattr__(self, "kind", kind)
        if kind not in FAULT_KINDS and not (len(kind) == 3 and kind.isdigit()):
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")

    @classmethod
    def coerce(cls, value: Fault | str | int, retry_after: float | str | None = _AUTO) -> Fault:
        """``value`` as a :class:`Fault`; a ``retry_after`` other than ``"auto"`` replaces its own."""
        fault = value if isinstance(value, Fault) else cls(str(value))
        if retry_after != _AUTO:
            fault = cls(fault.kind, retry_after, fault.delay)
        return fault

    def retry_after_header(self) -> str | None:
        ra = self.retry_after
        if isinstance(ra, str) and ra != _AUTO:
            return ra  # sent verbatim (HTTP-date, fractional or bogus values for client tests)
        if ra == _AUTO:
            ra = 1 if self.kind == "429" else None
        if ra is None:
            return None
        return str(max(0, math.ceil(float(ra))))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], sim: ExotelSimulator) -> None:
        self.sim = sim
        super().__init__(addr, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError | ValueError):  # client went away, socket closed by a reset, ...
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ExotelSimulator/1.0"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.sim._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sim._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header of every answer, from the simulator's clock (RFC 7231)."""
        return self.server.sim.clock.http_date(timestamp)

    def _dispatch(self) -> None:
        self.server.sim._handle(self)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch


class ExotelSimulator(CampaignEndpoints, DriftFeatures):
    """Stateful fake of Exotel's v2 Contacts API on ``127.0.0.1:<free port>``.

    Attributes settable at runtime: ``latency`` (seconds per request), ``rate_limit_per_minute``
    (sliding 60 s window per account; ``None`` = unlimited; no headers), ``account_limit`` (Exotel's
    fixed window with ``X-RateLimit-*`` headers, see :meth:`set_account_limit`), ``echo_headers_in_errors``,
    ``before_request`` (``callable(sim, RecordedRequest)`` run before each request is served,
    outside the state lock), ``record_requests`` and ``max_json_body_bytes``.
    """

    #: Answer ``PUT contacts`` with the result items in reverse input order (each success item
    #: still carries its contact, with ``sid``, in ``data``; failures carry no sid).
    reorder_put_results: bool = False
    #: Answer ``PUT contacts`` with ``"data": null`` in every item (no sids to match results by).
    put_results_without_data: bool = False

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        api_token: str = "test-token",
        account_sid: str = "acct1",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        rate_limit_per_minute: int | None = None,
        echo_headers_in_errors: bool = False,
        seed: int = 0,
        account_limit: int | None = None,
        account_window: float = 60.0,
        rate_limit_headers: bool = True,
        duplicate_numbers: str = "allow",
        rate_limit_reset_format: str = "epoch",
        clock: SimClock | None = None,
    ) -> None:
        #: the simulator's clock (``now()``, ``advance(seconds)``): dates, windows, ``Date`` headers
        self.clock = clock if clock is not None else SimClock()
        self.api_key = api_key
        self.api_token = api_token
        self.account_sid = account_sid
        self.host = host
        self._requested_port = port
        self.latency = latency
        self.rate_limit_per_minute = rate_limit_per_minute
        self.echo_headers_in_errors = echo_headers_in_errors
        self.seed = seed
        self.before_request: Callable[[ExotelSimulator, RecordedRequest], None] | None = None
        self.max_json_body_bytes = 2_000_000
        #: exceptions raised while serving (simulator bugs or before_request errors); answered 500
        self.errors: list[BaseException] = []
        self._expected_auth = "Basic " + base64.b64encode(f"{api_key}:{api_token}".encode()).decode()

        # contact state
        self._state_lock = threading.RLock()
        self._contacts: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []  # sids by (date_created, seq)
        self._order_keys: list[tuple[str, int]] = []
        self._keys: dict[str, tuple[str, int]] = {}
        self._seq = 0
        self._seed_counter = 0
        self._lists: dict[str, list[str]] = {}
        self._contact_lists: dict[str, list[str]] = {}
        self._query_cache: dict[Any, list[str]] = {}
        self.update_counts: Counter[str] = Counter()
        self._init_campaign(duplicate_numbers)  # lists and creates: testing/_campaign.py

        self.log = RequestLog()

        # faults / rate limiting
        self._fault_lock = threading.Lock()
        self._faults: list[tuple[Fault, str | None, str | None]] = []
        self._persistent_fault: tuple[Fault, str | None, str | None] | None = None
        self._item_faults: dict[str, deque[int]] = {}
        self._rate_lock = threading.Lock()
        self._rate_window: deque[float] = deque()
        self._reset_format = check_reset_format(rate_limit_reset_format)
        #: Exotel's fixed-window account limits with X-RateLimit-* headers, per budget family
        #: (``"campaign"``: v2, ``"voice"``: v1; ``set_account_limit``)
        self.account_limits: dict[str, AccountWindow] = {}
        if account_limit is not None:
            self.set_account_limit(account_limit, window=account_window, headers=rate_limit_headers)

        #: the API's routes (``routes.add(method, pattern, handler)``; see testing/_routes.py)
        self.routes = RouteTable()
        self.families: list[EndpointFamily] = []
        self._register_contacts(self.routes)
        self._register_campaign(self.routes)  # testing/_campaign.py
        self.add_family(CampaignsFamily)  # WIRE: campaigns (testing/_campaigns_family.py)

        # server
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ExotelSimulator:
        if self._server is not None:
            return self
        self._server = _Server((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"ExotelSimulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:  # wake up handler threads parked on keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ExotelSimulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ExotelSimulator is not running; call start() first")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_path(self) -> str:
        return f"/v2/accounts/{self.account_sid}"

    @property
    def base_url(self) -> str:
        """``<url>/v2/accounts/<account_sid>``."""
        return self.url + self.base_path

    @property
    def auth(self) -> tuple[str, str]:
        return (self.api_key, self.api_token)

    def _track(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    # ------------------------------------------------------------------ airflow connection
    def _connection_extra(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return {"account_sid": self.account_sid, **overrides}

    def connection_json(self, **extra_overrides: Any) -> str:
        """Airflow connection JSON (for ``AIRFLOW_CONN_EXOTEL_DEFAULT``) pointing at this simulator."""
        return json.dumps(
            {
                "conn_type": "exotel",
                "login": self.api_key,
                "password": self.api_token,
                "host": self.host,
                "port": self.port,
                "schema": "http",
                "extra": self._connection_extra(extra_overrides),
            }
        )

    def connection_uri(self, **extra_overrides: Any) -> str:
        """Airflow connection URI (``exotel://key:token@127.0.0.1:<port>/http?account_sid=...``)."""
        extra = self._connection_extra(extra_overrides)
        if all(isinstance(v, str) for v in extra.values()):
            query = urlencode(extra)
        else:
            query = urlencode({"__extra__": json.dumps(extra)})
        return (
            f"exotel://{quote(self.api_key, safe='')}:{quote(self.api_token, safe='')}"
            f"@{self.host}:{self.port}/http?{query}"
        )

    # ------------------------------------------------------------------ state: contacts
    def _make_contact(self, sid: str, date_created: str, fields: dict[str, Any]) -> dict[str, Any]:
        contact: dict[str, Any] = {
            "sid": sid,
            "date_created": date_created,
            "date_updated": fields.get("date_updated") or date_created,
            "account_sid": self.account_sid,
            "number": fields.get("number"),
            "first_name": fields.get("first_name"),
            "last_name": fields.get("last_name"),
            "company_name": fields.get("company_name"),
            "email": fields.get("email"),
            "tag": fields.get("tag"),
            "custom_field": fields.get("custom_field"),
            "uri": f"/v2/accounts/{self.account_sid}/contacts/{sid}",
        }
        return contact

    def _add_locked(self, contact: dict[str, Any]) -> None:
        sid = contact["sid"]
        if sid in self._contacts:
            raise ValueError(f"contact {sid!r} already exists")
        self._seq += 1
        key = (contact["date_created"], self._seq)
        self._contacts[sid] = contact
        self._keys[sid] = key
        if not self._order_keys or key >= self._order_keys[-1]:
            self._order_keys.append(key)
            self._order.append(sid)
        else:
            idx = bisect.bisect_right(self._order_keys, key)
            self._order_keys.insert(idx, key)
            self._order.insert(idx, sid)

    def seed_contacts(self, n: int, *, prefix: str | None = None) -> list[dict[str, Any]]:
        """Create ``n`` deterministic contacts and return copies of them.

        Contact ``i`` (counting across calls) gets sid ``md5(f"{seed}-{i}")``, ``date_created``
        2024-01-01T00:00:00Z + i seconds, number ``+9196xxxxxxxx``, first name ``First{i}`` (or
        ``f"{prefix}{i}"`` when ``prefix`` is given), last name ``Last{i}``.
        """
        tags = ("lead", "customer", "vip", None)
        created: list[dict[str, Any]] = []
        day_cached, day_prefix = -1, ""
        with self._state_lock:
            for _ in range(n):
                i = self._seed_counter
                self._seed_counter += 1
                sid = hashlib.md5(f"{self.seed}-{i}".encode()).hexdigest()
                if sid in self._contacts:  # extremely unlikely unless inserted manually
                    continue
                day, secs = divmod(i, 86400)
                if day != day_cached:
                    day_cached, day_prefix = day, (_SEED_BASE + timedelta(days=day)).strftime("%Y-%m-%d")
                ts = f"{day_prefix}T{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}Z"
                contact = self._make_contact(
                    sid,
                    ts,
                    {
                        "number": f"+9196{i:08d}",
                        "first_name": f"{prefix if prefix is not None else 'First'}{i}",
                        "last_name": f"Last{i}",
                        "company_name": f"Company{i % 50}",
                        "email": f"user{i}@example.com",
                        "tag": tags[i % 4],
                        "custom_field": {"segment": "ABC"[i % 3], "score": i % 100} if i % 2 == 0 else None,
                    },
                )
                self._add_locked(contact)
                created.append(contact)
            self._query_cache.clear()
            return [dict(c) for c in created]

    def insert_contact(self, **fields: Any) -> dict[str, Any]:
        """Add one contact. ``sid`` defaults to a random 32-hex id; ``date_created`` (datetime or
        ISO string) defaults to now, but at least one second after the newest existing contact."""
        unknown = set(fields) - set(CONTACT_FIELDS)
        if unknown:
            raise TypeError(f"unknown contact fields: {sorted(unknown)}")
        with self._state_lock:
            sid = fields.get("sid") or uuid.uuid4().hex
            if fields.get("date_created") is not None:
                date_created = _normalize_ts(fields["date_created"])
            else:
                date_created = self.clock.iso()
                if self._order_keys and self._order_keys[-1][0] >= date_created:
                    last = datetime.strptime(self._order_keys[-1][0], _TS_FORMAT).replace(tzinfo=UTC)
                    date_created = (last + timedelta(seconds=1)).strftime(_TS_FORMAT)
            contact = self._make_contact(sid, date_created, fields)
            self._add_locked(contact)
            self._query_cache.clear()
            return dict(contact)

    def delete_contact(self, sid: str) -> bool:
        """Remove a contact (and its list memberships). Returns whether it existed."""
        with self._state_lock:
            if sid not in self._contacts:
                return False
            key = self._keys.pop(sid)
            idx = bisect.bisect_left(self._order_keys, key)
            del self._order_keys[idx]
            del self._order[idx]
            del self._contacts[sid]
            for list_sid in self._contact_lists.pop(sid, ()):
                members = self._lists.get(list_sid)
                if members is not None:
                    try:
                        members.remove(sid)
                    except ValueError:
                        pass
            self._query_cache.clear()
            return True

    def get_contact(self, sid: str) -> dict[str, Any] | None:
        with self._state_lock:
            c = self._contacts.get(sid)
            return dict(c) if c is not None else None

    @property
    def contacts(self) -> list[dict[str, Any]]:
        """Copies of all contacts in default (date_created ascending) order."""
        with self._state_lock:
            return [dict(self._contacts[s]) for s in self._order]

    @property
    def contact_sids(self) -> list[str]:
        with self._state_lock:
            return list(self._order)

    def __len__(self) -> int:
        return len(self._contacts)

    # ------------------------------------------------------------------ state: lists
    def create_list(self, list_sid: str, contact_sids: Iterable[str] = ()) -> None:
        """Create a list (or extend an existing one) with existing contacts, in the given order."""
        with self._state_lock:
            sids = list(contact_sids)
            missing = [s for s in sids if s not in self._contacts]
            if missing:
                raise KeyError(f"unknown contact sids: {missing[:5]}")
            members = self._lists.setdefault(list_sid, [])
            present = set(members)
            for s in sids:
                if s not in present:
                    members.append(s)
                    present.add(s)
                    self._contact_lists.setdefault(s, []).append(list_sid)
            self._query_cache.clear()

    def seed_lists(self, k: int, size: int) -> list[str]:
        """Create ``k`` lists named ``list0``, ``list1``, ... (skipping names already taken), each
        with ``size`` deterministically sampled contacts (lists may overlap). Returns their sids."""
        with self._state_lock:
            names: list[str] = []
            j = -1
            while len(names) < k:
                j += 1
                list_sid = f"list{j}"
                if list_sid in self._lists:
                    continue
                rng = random.Random(f"{self.seed}-list-{j}")
                chosen = rng.sample(self._order, min(size, len(self._order)))
                self.create_list(list_sid, chosen)
                names.append(list_sid)
            return names

    def list_contacts(self, list_sid: str) -> list[dict[str, Any]]:
        with self._state_lock:
            return [dict(self._contacts[s]) for s in self._lists[list_sid]]

    @property
    def lists(self) -> dict[str, list[str]]:
        with self._state_lock:
            return {k: list(v) for k, v in self._lists.items()}

    # ------------------------------------------------------------------ request log
    @property
    def record_requests(self) -> bool:
        return self.log.record_requests

    @record_requests.setter
    def record_requests(self, value: bool) -> None:
        self.log.record_requests = value

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.log.requests

    def request_count(self, method: str | None = None, path_endswith: str | None = None) -> int:
        return self.log.count(method, path_endswith)

    def clear_requests(self) -> None:
        self.log.clear()

    def count_status(self, code: int) -> int:
        """Number of responses sent with HTTP status ``code`` (since the last clear_requests)."""
        return self.log.count_status(code)

    @property
    def max_in_flight(self) -> int:
        return self.log.max_in_flight

    @property
    def in_flight(self) -> int:
        return self.log.in_flight

    def reset_max_in_flight(self) -> None:
        self.log.reset_max_in_flight()

    # ------------------------------------------------------------------ faults
    def add_faults(
        self,
        *faults: Fault | str | int,
        method: str | None = None,
        path_endswith: str | None = None,
        retry_after: float | str | None = _AUTO,
    ) -> None:
        """Queue faults; each later request matching the filter consumes the next one (FIFO).

        :param retry_after: ``Retry-After`` of these faults (see :class:`Fault`; ``None``: no header).
        """
        coerced = [Fault.coerce(f, retry_after) for f in faults]
        with self._fault_lock:
            for f in coerced:
                self._faults.append((f, method.upper() if method else None, path_endswith))

    def fail_every_request(
        self,
        kind: Fault | str | int,
        *,
        method: str | None = None,
        path_endswith: str | None = None,
        retry_after: float | str | None = _AUTO,
    ) -> None:
        """Every matching request fails with ``kind`` until :meth:`clear_faults`.

        :param retry_after: ``Retry-After`` of the answers: e.g. ``0`` for a server answering
            ``429`` with ``Retry-After: 0`` forever, ``None`` for 429s without the header.
        """
        fault = Fault.coerce(kind, retry_after)
        with self._fault_lock:
            self._persistent_fault = (fault, method.upper() if method else None, path_endswith)

    def add_item_faults(self, faults: dict[str, Iterable[int]]) -> None:
        """Per-contact faults for updates: the next PUT including ``sid`` answers that item with the
        next queued status code, without applying it."""
        with self._fault_lock:
            for sid, codes in faults.items():
                self._item_faults.setdefault(sid, deque()).extend(int(c) for c in codes)

    def on_nth_request(
        self, n: int, action: Callable[[ExotelSimulator], Any], *, method: str | None = None
    ) -> threading.Event:
        """Run ``action(sim)`` once, just before the ``n``-th request (of ``method``, if given) is
        served — e.g. to delete contacts between pages, or start failing mid-run. Replaces
        ``before_request``. Returns an event set once the action has run."""
        done = threading.Event()
        lock = threading.Lock()
        seen = [0]

        def before(sim: ExotelSimulator, request: RecordedRequest) -> None:
            if method is not None and request.method != method.upper():
                return
            with lock:
                seen[0] += 1
                fire = seen[0] == n
            if fire:
                action(sim)
                done.set()

        self.before_request = before
        return done

    def clear_faults(self) -> None:
        with self._fault_lock:
            self._faults.clear()
            self._persistent_fault = None
            self._item_faults.clear()

    @property
    def pending_faults(self) -> int:
        """Queued (not yet consumed) request faults."""
        with self._fault_lock:
            return len(self._faults)

    def _next_fault(self, method: str, path: str) -> Fault | None:
        with self._fault_lock:
            for i, (fault, m, suffix) in enumerate(self._faults):
                if matches(m, suffix, method, path):
                    del self._faults[i]
                    return fault
            if self._persistent_fault is not None:
                fault, m, suffix = self._persistent_fault
                if matches(m, suffix, method, path):
                    return fault
        return None

    def _pop_item_fault(self, sid: str) -> int | None:
        with self._fault_lock:
            codes = self._item_faults.get(sid)
            if not codes:
                return None
            code = codes.popleft()
            if not codes:
                del self._item_faults[sid]
            return code

    # ------------------------------------------------------------------ rate limiting
    def _rate_check(self) -> int | None:
        """Return None when the request may proceed, else seconds until a slot frees."""
        limit = self.rate_limit_per_minute
        if limit is None:
            return None
        with self._rate_lock:
            now = self.clock.now()
            window = self._rate_window
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= limit:
                if not window:
                    return 60
                return max(1, math.ceil(window[0] + 60.0 - now))
            window.append(now)
            return None

    def reset_rate_limit(self) -> None:
        with self._rate_lock:
            self._rate_window.clear()
        for account in list(self.account_limits.values()):
            account.clear()

    @property
    def account_limit(self) -> AccountWindow | None:
        """The campaign family's (v2: contacts, lists, campaigns) account window, or ``None``."""
        return self.account_limits.get("campaign")

    @account_limit.setter
    def account_limit(self, window: AccountWindow | None) -> None:
        if window is None:
            self.account_limits.pop("campaign", None)
        else:
            self.account_limits["campaign"] = window

    @property
    def rate_limit_reset_format(self) -> str:
        """What ``X-RateLimit-Reset`` carries: ``"epoch"`` (default: epoch seconds), ``"epoch_ms"``
        (epoch milliseconds) or ``"delta"`` (seconds until the reset); applies to every family."""
        return self._reset_format

    @rate_limit_reset_format.setter
    def rate_limit_reset_format(self, value: str) -> None:
        self._reset_format = check_reset_format(value)
        for account in list(self.account_limits.values()):
            account.reset_format = value

    def set_account_limit(
        self, limit: int | None, *, window: float = 60.0, headers: bool = True, family: str = "campaign"
    ) -> AccountWindow | None:
        """Limit the account like Exotel: ``limit`` requests per fixed ``window`` seconds.

        Every answer then carries ``X-RateLimit-Limit/-Remaining/-Reset`` (``headers=False`` hides
        them); a request past the budget gets 429, ``Retry-After`` and Exotel's ``RestException``
        body. The counter is the server's, shared by every client (threads or processes). Scale
        ``window`` down (e.g. 2 s) to test or benchmark many windows quickly. ``None`` removes it.
        Returns the :class:`AccountWindow` (its ``admitted``/``refused`` counts, ``utilisation()``).
        ``family`` is the budget it limits: ``"campaign"`` (v2 paths) or ``"voice"`` (v1 paths).
        """
        families = {fam for _v, _a, fam in BASES.values()}
        if family not in families:
            raise ValueError(f"family must be one of {sorted(families)}, got {family!r}")
        if limit is None:
            self.account_limits.pop(family, None)
            return None
        account = AccountWindow(limit, float(window), headers, self._reset_format, self.clock.now)
        self.account_limits[family] = account
        return account

    def _account_check(self, rec: RecordedRequest, family: str) -> None:
        account = self.account_limits.get(family)
        if account is None:
            return
        ok, headers, body = account.admit()
        rec.rate_headers = headers
        if not ok:
            raise ApiError(429, message="Rate limit exceeded", raw_body=body)

    # ------------------------------------------------------------------ HTTP handling
    def _handle(self, h: _Handler) -> None:
        started = time.monotonic()
        parts = urlsplit(h.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = dict(h.headers.items())
        rec = RecordedRequest(
            method=h.command,
            path=path,
            query=query,
            headers=headers,
            client_port=h.client_address[1] if h.client_address else None,
            timestamp=self.clock.now(),
        )
        try:
            body = _read_body(h)
        except (ValueError, OSError):
            h.close_connection = True
            body = None
        parsed: Any = None
        if body is not None:
            rec.body_size = len(body)
            if body:
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = _INVALID_JSON
                if h.command == "PUT" and parsed is not _INVALID_JSON:
                    if isinstance(parsed, dict) and isinstance(parsed.get("contacts"), list):
                        rec.batch_size = len(parsed["contacts"])
                    if len(body) <= self.max_json_body_bytes:
                        rec.json_body = parsed

        if is_control_path(path):  # the loopback-only control endpoint (testing/control.py)
            self._serve_control(h, rec, query, body)
            return
        self.log.arrived(rec)
        try:
            if body is None:
                self._send_error(h, rec, _ApiError(400, "Malformed request body"))
                return
            callback = self.before_request
            if callback is not None:
                callback(self, rec)
            if self.latency:
                time.sleep(self.latency)
            fault = self._next_fault(rec.method, path)
            self._serve(h, rec, path, query, parsed, fault)
        except Exception as exc:  # a simulator bug or a failing before_request: answer 500
            self.errors.append(exc)
            try:
                self._send_error(h, rec, _ApiError(500, f"Simulator error: {exc!r}"))
            except OSError:
                pass
        finally:
            rec.duration = time.monotonic() - started
            self.log.answered(rec)

    def _serve_control(
        self, h: _Handler, rec: RecordedRequest, query: dict[str, str], body: bytes | None
    ) -> None:
        client = h.client_address[0] if h.client_address else ""
        status, answer = serve_control(self, rec.method, rec.path, query, body, client, rec.headers)
        self._send(h, rec, status, _dumps(answer))

    def _serve(
        self,
        h: _Handler,
        rec: RecordedRequest,
        path: str,
        query: dict[str, str],
        parsed: Any,
        fault: Fault | None,
    ) -> None:
        if fault is not None:
            rec.fault = fault.kind
            kind = fault.kind
            if fault.delay is not None and kind != "slow":
                time.sleep(fault.delay)
            if kind == "reset":
                self._reset(h)
                return
            if kind == "slow":
                time.sleep(5.0 if fault.delay is None else fault.delay)
            elif kind == "html_200":
                self._send(h, rec, 200, _HTML_200, "text/html; charset=utf-8")
                return
            elif kind == "502_html":
                self._send(h, rec, 502, _HTML_502, "text/html; charset=utf-8")
                return
            elif kind.isdigit():
                extra = {}
                ra = fault.retry_after_header()
                if ra is not None:
                    extra["Retry-After"] = ra
                self._send_error(h, rec, _ApiError(int(kind), headers=extra))
                return
        page_fault = fault.kind if fault is not None else None
        query = self._drift_query(page_fault, rec.method, query)  # testing/_drift.py
        try:
            status, body, answer_headers = self._route(rec, path, query, parsed)
        except _ApiError as err:
            self._send_error(h, rec, err)
            return
        body = self._drift_body(page_fault, rec.method, body)  # testing/_drift.py
        if fault is not None and fault.kind == "reset_after_apply":
            self._reset(h)
            return
        if fault is not None and fault.kind == "truncated_json":
            body = body[: max(1, len(body) // 2)]
        self._send(h, rec, status, body, headers=answer_headers)

    def _route(
        self, rec: RecordedRequest, path: str, query: dict[str, str], parsed: Any
    ) -> tuple[int, bytes, dict[str, str]]:
        if rec.header("Authorization") != self._expected_auth:
            raise ApiError(401)
        base, rest = RouteTable.split(path, self.account_sid)
        retry = self._rate_check()
        if retry is not None:
            raise ApiError(429, headers={"Retry-After": str(retry)})
        self._account_check(rec, BASES[base][2])
        route, params = self.routes.resolve(rec.method, base, rest, path)
        answer = route.handler(ApiRequest(rec.method, path, query, parsed, rec, base, params))
        return answer if len(answer) == 3 else (*answer, {})

    def add_family(self, factory: Callable[[ExotelSimulator], EndpointFamily]) -> EndpointFamily:
        """Serve one more endpoint family: ``factory(sim)`` is built and registers its routes."""
        family = factory(self)
        family.register(self.routes)
        self.families.append(family)
        return family

    def _register_contacts(self, routes: RouteTable) -> None:
        routes.add("GET", "contacts", lambda r: (200, self._get_contacts(r.query)), name="contacts")
        routes.add("PUT", "contacts", lambda r: self._bulk_update(r.body), name="contacts")
        one = "a contact"
        routes.add("GET", "contacts/<sid>", lambda r: (200, self._get_one(r.params["sid"])), name=one)
        routes.add("PUT", "contacts/<sid>", lambda r: (200, self._put_one(r.params["sid"], r.body)), name=one)
        routes.add(
            "GET",
            "lists/<list_sid>/contacts",
            lambda r: (200, self._get_list_contacts(r.params["list_sid"], r.query)),
            name="list contacts",
        )

    # -- endpoint implementations
    @staticmethod
    def _paging(query: dict[str, str]) -> tuple[int, int]:
        return paging(query)

    @staticmethod
    def _parse_sort(sort_by: str | None) -> tuple[tuple[str, bool], ...]:
        if not sort_by:
            return ()
        keys = []
        for part in sort_by.split(","):
            part = part.strip()
            if not part:
                continue
            fld, _, direction = part.partition(":")
            fld = fld.strip().lower()
            direction = (direction.strip() or "asc").lower()
            if fld not in SORTABLE_FIELDS or direction not in ("asc", "desc"):
                raise _ApiError(
                    400,
                    f"Invalid sort_by {sort_by!r}; use <field>:asc|desc with field in "
                    f"{', '.join(SORTABLE_FIELDS)}",
                )
            keys.append((fld, direction == "desc"))
        if keys == [("date_created", False)]:
            return ()
        return tuple(keys)

    def _sort_key(self, fld: str) -> Callable[[str], Any]:
        contacts = self._contacts
        if fld == "date_created":
            return self._keys.__getitem__
        if fld == "name":
            return lambda s: (_str_key(contacts[s]["first_name"]), _str_key(contacts[s]["last_name"]))
        return lambda s: _str_key(contacts[s][fld])

    def _query(
        self, sort_keys: tuple[tuple[str, bool], ...], name: str | None, list_sids: tuple[str, ...] | None
    ) -> list[str]:
        """Matching sids in order (caller holds the state lock; result must not be mutated)."""
        if not sort_keys and not name and list_sids is None:
            return self._order
        cache_key = (sort_keys, name, list_sids)
        cached = self._query_cache.get(cache_key)
        if cached is not None:
            return cached
        if sort_keys:
            sids = list(self._order)
            for fld, desc in reversed(sort_keys):
                sids.sort(key=self._sort_key(fld), reverse=desc)
        else:
            sids = self._order
        if list_sids is not None:
            members: set[str] = set()
            for lsid in list_sids:
                members.update(self._lists.get(lsid, ()))
            sids = [s for s in sids if s in members]
        if name:
            contacts = self._contacts
            sids = [s for s in sids if _name_matches(contacts[s], name)]
        if len(self._query_cache) > 64:
            self._query_cache.clear()
        self._query_cache[cache_key] = sids
        return sids

    def _page_body(self, page: list[str], offset: int, limit: int, total: int, show_list: bool) -> bytes:
        page = self._cap_page(page)  # max_page_size: testing/_drift.py
        items = []
        for sid in page:
            c = self._contacts[sid]
            if show_list:
                c = dict(c)
                c["lists"] = [{"sid": ls} for ls in self._contact_lists.get(sid, ())]
            items.append({"code": 200, "error_data": None, "status": "success", "data": c})
        return _dumps(
            {
                "request_id": uuid.uuid4().hex,
                "method": "GET",
                "http_code": 200,
                "metadata": {"count": len(items), "offset": offset, "limit": limit, "total": total},
                "response": items,
            }
        )

    def _get_contacts(self, query: dict[str, str]) -> bytes:
        offset, limit = self._paging(query)
        sort_keys = self._parse_sort(query.get("sort_by"))
        name = (query.get("name") or "").strip().casefold() or None
        raw_lists = query.get("list_sids")
        list_sids = None
        if raw_lists is not None and raw_lists.strip():
            list_sids = tuple(sorted({s.strip() for s in raw_lists.split(",") if s.strip()}))
        show_list = query.get("filter") == "show_list"
        with self._state_lock:
            sids = self._query(sort_keys, name, list_sids)
            return self._page_body(sids[offset : offset + limit], offset, limit, len(sids), show_list)

    def _get_list_contacts(self, list_sid: str, query: dict[str, str]) -> bytes:
        offset, limit = self._paging(query)
        show_list = query.get("filter") == "show_list"
        with self._state_lock:
            members = self._lists.get(list_sid)
            if members is None:
                raise _ApiError(404, "List not found")
            return self._page_body(members[offset : offset + limit], offset, limit, len(members), show_list)

    def _get_one(self, sid: str) -> bytes:
        with self._state_lock:
            c = self._contacts.get(sid)
            if c is None:
                raise ApiError(404, "Contact not found")
            return one_object(c, "GET", as_list=self.one_object_as_list)

    def _apply_update(self, contact: dict[str, Any], item: dict[str, Any], now: str) -> None:
        for f in UPDATABLE_FIELDS:
            if f in item:
                contact[f] = item[f]
        contact["date_updated"] = now
        self.update_counts[contact["sid"]] += 1

    @staticmethod
    def _item_failure(code: int, description: str | None = None) -> dict[str, Any]:
        err = _ApiError(code, description)
        if code == 404 and description is None:
            err.description = "Contact not found"
        return {
            "code": code,
            "error_data": {"code": err.code, "message": err.message, "description": err.description},
            "status": "failure",
        }

    def _bulk_update(self, parsed: Any) -> tuple[int, bytes]:
        if parsed is _INVALID_JSON or parsed is None:
            raise _ApiError(400, "Request body must be valid JSON")
        if not isinstance(parsed, dict) or not isinstance(parsed.get("contacts"), list):
            raise _ApiError(400, "Request body must be a JSON object with a 'contacts' list")
        items = parsed["contacts"]
        if not items:
            raise _ApiError(400, "contacts must not be empty")
        if len(items) > MAX_BULK_UPDATE:
            raise _ApiError(400, f"At most {MAX_BULK_UPDATE} contacts can be updated per request")
        results: list[dict[str, Any]] = []
        failed = 0
        now = self.clock.iso()
        with self._state_lock:
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("sid"), str) or not item["sid"]:
                    results.append(self._item_failure(400, "Each contact must be an object with a 'sid'"))
                    failed += 1
                    continue
                sid = item["sid"]
                forced = self._pop_item_fault(sid)
                if forced is not None and forced != 200:
                    results.append(self._item_failure(forced))
                    failed += 1
                    continue
                contact = self._contacts.get(sid)
                if contact is None:
                    results.append(self._item_failure(404))
                    failed += 1
                    continue
                self._apply_update(contact, item, now)
                results.append({"code": 200, "error_data": None, "status": "success", "data": contact})
            if failed < len(items):
                self._query_cache.clear()
            if self.put_results_without_data:  # success items that do not echo the contact
                results = [{**r, "data": None} for r in results]
            if self.reorder_put_results:  # a server that does not keep input order
                results.reverse()
            status = 207 if failed else 200
            body = _dumps(
                {
                    "request_id": uuid.uuid4().hex,
                    "method": "PUT",
                    "http_code": status,
                    "metadata": {"failed": failed, "total": len(items), "success": len(items) - failed},
                    "response": results,
                }
            )
        return status, body

    def _put_one(self, sid: str, parsed: Any) -> bytes:
        if parsed is _INVALID_JSON or not isinstance(parsed, dict):
            raise _ApiError(400, "Request body must be a JSON object")
        forced = self._pop_item_fault(sid)
        if forced is not None and forced != 200:
            raise _ApiError(forced)
        with self._state_lock:
            contact = self._contacts.get(sid)
            if contact is None:
                raise _ApiError(404, "Contact not found")
            self._apply_update(contact, parsed, self.clock.iso())
            self._query_cache.clear()
            return _dumps(
                {
                    "request_id": uuid.uuid4().hex,
                    "method": "PUT",
                    "http_code": 200,
                    "response": {"code": 200, "error_data": None, "status": "success", "data": contact},
                }
            )

    # -- wire helpers
    def _send(
        self,
        h: _Handler,
        rec: RecordedRequest,
        status: int,
        body: bytes,
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
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
        if headers:
            lines.extend(f"{k}: {v}" for k, v in headers.items())
        if rec.rate_headers:
            lines.extend(f"{k}: {v}" for k, v in rec.rate_headers.items() if not headers or k not in headers)
        if h.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        rec.status = status
        h.wfile.write(head + body)

    def _send_error(self, h: _Handler, rec: RecordedRequest, err: _ApiError) -> None:
        envelope: dict[str, Any] = {
            "request_id": uuid.uuid4().hex,
            "method": rec.method,
            "http_code": err.status,
            "response": {
                "code": err.status,
                "error_data": {"code": err.code, "message": err.message, "description": err.description},
                "status": "failure",
            },
        }
        if self.echo_headers_in_errors:
            envelope["request_headers"] = dict(rec.headers)
        if err.raw_body is not None:
            self._send(h, rec, err.status, err.raw_body, headers=err.headers)
            return
        self._send(h, rec, err.status, _dumps(envelope), headers=err.headers)

    @staticmethod
    def _reset(h: _Handler) -> None:
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


def _matches(method: str | None, suffix: str | None, req_method: str, req_path: str) -> bool:
    if method is not None and method.upper() != req_method.upper():
        return False
    if suffix is not None and not req_path.rstrip("/").endswith(suffix.rstrip("/")):
        return False
    return True


def _name_matches(contact: dict[str, Any], needle: str) -> bool:
    first = contact.get("first_name") or ""
    last = contact.get("last_name") or ""
    return needle in first.casefold() or needle in last.casefold() or needle in f"{first} {last}".casefold()


def _read_body(h: _Handler) -> bytes:
    te = (h.headers.get("Transfer-Encoding") or "").lower()
    if "chunked" in te:
        chunks = []
        while True:
            line = h.rfile.readline(65537)
            if not line:
                raise ValueError("truncated chunked body")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers
                    trailer = h.rfile.readline(65537)
                    if trailer in (b"\r\n", b"\n", b""):
                        break
                break
            chunks.append(h.rfile.read(size))
            h.rfile.readline(3)
        return b"".join(chunks)
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
