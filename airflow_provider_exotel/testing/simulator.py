"""A stateful fake of Exotel's APIs, served on a real socket: ``ExotelSimulator``, a façade.

Standard library only, so it imports fast and runs anywhere::

    from airflow_provider_exotel.testing import ExotelSimulator

    with ExotelSimulator() as sim:
        sim.seed_contacts(100)
        sim.add_faults("429", "reset", method="GET", path_endswith="contacts")
        ...  # point a client at sim.url / sim.connection_json()

Below it, one module per job (all in ``testing/``):

==========================  =====================================================================
``_store.py``               contacts, their order, lists and members, seeding
``_contacts_family.py``     ``GET/PUT/POST contacts``, ``GET/PUT/DELETE contacts/<sid>``
``_lists_family.py``        ``GET/POST lists``, ``GET/DELETE lists/<sid>``, list members
``_routes.py``              the route table endpoint families register in (how to add one)
``_serve.py``               one request's way: log, faults, credentials, limits, route, drift
``_wire.py``                the HTTP server and handler, reading and writing bytes
``_envelopes.py``           Exotel's envelopes and errors (``ApiError``, ``one_object``, ``page``)
``_faults.py``              ``Fault``, the fault kinds, queued / persistent / per-item faults
``_ratelimit.py``           the per-minute limiter and Exotel's account windows per budget family
``_drift.py``               page fault kinds (wrong pages) for exact-paging tests
``_clock.py``               ``sim.clock``: real time plus an offset (``advance(seconds)``)
``_requestlog.py``          ``RecordedRequest`` and the request log
``control.py``              the loopback-only control endpoint under ``/_control/``
==========================  =====================================================================

Every simulator serves the families of :data:`ENDPOINT_FAMILIES`; ``sim.add_family(factory)`` adds
one to a single simulator.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlencode

from airflow_provider_exotel.testing._calls import CallsFamily
from airflow_provider_exotel.testing._calls_facade import CallsFacade
from airflow_provider_exotel.testing._campaigns_family import CampaignsFamily
from airflow_provider_exotel.testing._clock import SimClock
from airflow_provider_exotel.testing._contacts_family import (
    DUPLICATE_NUMBERS,
    MAX_BULK_UPDATE,
    ContactsFamily,
)
from airflow_provider_exotel.testing._envelopes import MAX_PAGE_LIMIT
from airflow_provider_exotel.testing._faults import AUTO, FAULT_KINDS, Fault, FaultBook
from airflow_provider_exotel.testing._lists_family import ListsFamily
from airflow_provider_exotel.testing._ratelimit import AccountWindow, RateLimits
from airflow_provider_exotel.testing._requestlog import RecordedRequest, RequestLog
from airflow_provider_exotel.testing._routes import EndpointFamily, RouteTable
from airflow_provider_exotel.testing._serve import serve_request
from airflow_provider_exotel.testing._store import CONTACT_FIELDS, UPDATABLE_FIELDS, ContactStore
from airflow_provider_exotel.testing._wire import Handler, Server

__all__ = [
    "CONTACT_FIELDS",
    "ENDPOINT_FAMILIES",
    "FAULT_KINDS",
    "MAX_BULK_UPDATE",
    "MAX_PAGE_LIMIT",
    "UPDATABLE_FIELDS",
    "ExotelSimulator",
    "Fault",
    "RecordedRequest",
]

#: The endpoint families every simulator serves: ``factory(sim)`` builds one, which registers its
#: routes (see ``testing/_routes.py``).
ENDPOINT_FAMILIES: tuple[Callable[[ExotelSimulator], EndpointFamily], ...] = (
    ContactsFamily,
    ListsFamily,
    CallsFamily,
    CampaignsFamily,  # testing/_campaigns_family.py
)


class ExotelSimulator(CallsFacade):
    """Stateful fake of Exotel's APIs on ``127.0.0.1:<free port>``.

    Attributes settable at runtime: ``latency`` (seconds per request), ``rate_limit_per_minute``
    (sliding 60 s window; ``None`` = unlimited; no headers), ``rate_limit_reset_format``,
    ``echo_headers_in_errors``, ``before_request`` (``callable(sim, RecordedRequest)`` run before
    each request is served), ``record_requests``, ``max_json_body_bytes`` and the switches below.
    Parts: ``clock``, ``store``, ``log``, ``faults``, ``rate_limits``, ``routes``, ``families``.
    """

    #: Answer ``PUT contacts`` with the result items in reverse input order (each success item
    #: still carries its contact, with ``sid``, in ``data``; failures carry no sid).
    reorder_put_results: bool = False
    #: Answer ``PUT contacts`` with ``"data": null`` in every item (no sids to match results by).
    put_results_without_data: bool = False
    #: Answer one-object endpoints with ``response`` as a one-item list.
    one_object_as_list: bool = False
    #: How DELETEs answer: ``"json"`` (default), ``"no_content"`` (204) or ``"failure_item"`` (an
    #: unknown object is a 200 whose ``response`` item is the 404 failure).
    delete_answer: str = "json"
    #: Answer at most this many contacts per page (``None``: the requested limit); ``total`` unchanged.
    max_page_size: int | None = None

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
        if duplicate_numbers not in DUPLICATE_NUMBERS:
            raise ValueError(
                f"duplicate_numbers must be one of {DUPLICATE_NUMBERS}, got {duplicate_numbers!r}"
            )
        self.api_key, self.api_token, self.account_sid = api_key, api_token, account_sid
        self.host, self._requested_port = host, port
        self.latency, self.echo_headers_in_errors, self.seed = latency, echo_headers_in_errors, seed
        #: creating an existing number makes a second contact (``"allow"``) or a per-item 409
        self.duplicate_numbers = duplicate_numbers
        self.before_request: Callable[[ExotelSimulator, RecordedRequest], None] | None = None
        self.max_json_body_bytes = 2_000_000
        #: exceptions raised while serving (simulator bugs or before_request errors); answered 500
        self.errors: list[BaseException] = []
        self._expected_auth = "Basic " + base64.b64encode(f"{api_key}:{api_token}".encode()).decode()
        #: the simulator's clock (``now()``, ``advance(seconds)``): dates, windows, ``Date`` headers
        self.clock = clock if clock is not None else SimClock()
        self.store = ContactStore(account_sid, seed, self.clock)
        self.log = RequestLog()
        self.faults = FaultBook()
        self.rate_limits = RateLimits(self.clock.now, rate_limit_reset_format)
        self.rate_limit_per_minute = rate_limit_per_minute
        if account_limit is not None:
            self.set_account_limit(account_limit, window=account_window, headers=rate_limit_headers)
        #: the API's routes (``routes.add(method, pattern, handler)``; see testing/_routes.py)
        self.routes = RouteTable()
        self.families: list[EndpointFamily] = []
        for factory in ENDPOINT_FAMILIES:
            self.add_family(factory)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    def add_family(self, factory: Callable[[ExotelSimulator], EndpointFamily]) -> EndpointFamily:
        """Serve one more endpoint family: ``factory(sim)`` is built and registers its routes."""
        family = factory(self)
        family.register(self.routes)
        self.families.append(family)
        return family

    def check_credentials(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries this simulator's key and token."""
        return authorization == self._expected_auth

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ExotelSimulator:
        if self._server is not None:
            return self
        self._server = Server((self.host, self._requested_port), self._serve, self.clock)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"ExotelSimulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def _serve(self, handler: Handler) -> None:
        serve_request(self, handler)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
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

    # ------------------------------------------------------------------ airflow connection
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
                "extra": {"account_sid": self.account_sid, **extra_overrides},
            }
        )

    def connection_uri(self, **extra_overrides: Any) -> str:
        """Airflow connection URI (``exotel://key:token@127.0.0.1:<port>/http?account_sid=...``)."""
        extra = {"account_sid": self.account_sid, **extra_overrides}
        if all(isinstance(v, str) for v in extra.values()):
            query = urlencode(extra)
        else:
            query = urlencode({"__extra__": json.dumps(extra)})
        return (
            f"exotel://{quote(self.api_key, safe='')}:{quote(self.api_token, safe='')}"
            f"@{self.host}:{self.port}/http?{query}"
        )

    # ------------------------------------------------------------------ state (testing/_store.py)
    def seed_contacts(self, n: int, *, prefix: str | None = None) -> list[dict[str, Any]]:
        """Create ``n`` deterministic contacts and return copies of them.

        Contact ``i`` (counting across calls) gets sid ``md5(f"{seed}-{i}")``, ``date_created``
        2024-01-01T00:00:00Z + i seconds, number ``+9196xxxxxxxx``, first name ``First{i}`` (or
        ``f"{prefix}{i}"`` when ``prefix`` is given), last name ``Last{i}``.
        """
        return self.store.seed_contacts(n, prefix=prefix)

    def insert_contact(self, **fields: Any) -> dict[str, Any]:
        """Add one contact. ``sid`` defaults to a random 32-hex id; ``date_created`` (datetime or
        ISO string) defaults to the clock's now, but at least one second after the newest contact."""
        return self.store.insert_contact(**fields)

    def delete_contact(self, sid: str) -> bool:
        """Remove a contact (and its list memberships). Returns whether it existed."""
        return self.store.delete_contact(sid)

    def get_contact(self, sid: str) -> dict[str, Any] | None:
        return self.store.get_contact(sid)

    def rename_contact(self, sid: str, *, first_name: Any = None, last_name: Any = None) -> None:
        """Give a contact a new first (and optionally last) name; it moves under ``sort_by=name``."""
        self.store.rename_contact(sid, first_name=first_name, last_name=last_name)

    def contacts_with_number(self, number: str) -> list[dict[str, Any]]:
        """Copies of the contacts whose ``number`` is exactly ``number`` (oldest first)."""
        return self.store.contacts_with_number(number)

    @property
    def contacts(self) -> list[dict[str, Any]]:
        """Copies of all contacts in default (date_created ascending) order."""
        return self.store.all_contacts()

    @property
    def contact_sids(self) -> list[str]:
        with self.store.lock:
            return list(self.store.order)

    @property
    def update_counts(self) -> Counter[str]:
        """How often each contact was updated (by sid)."""
        return self.store.update_counts

    def __len__(self) -> int:
        return len(self.store.contacts)

    def create_list(self, list_sid: str, contact_sids: Iterable[str] = ()) -> None:
        """Create a list (or extend an existing one) with existing contacts, in the given order."""
        self.store.create_list(list_sid, contact_sids)

    def seed_lists(self, k: int, size: int) -> list[str]:
        """Create ``k`` lists named ``list0``, ``list1``, ... (skipping names already taken), each
        with ``size`` deterministically sampled contacts (lists may overlap). Returns their sids."""
        return self.store.seed_lists(k, size)

    def add_list(
        self, name: str, *, tag: str | None = None, contact_sids: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Create a named list (as ``POST lists`` would) with existing contacts; return it."""
        with self.store.lock:
            if name in self.store.list_names():
                raise ValueError(f"a list named {name!r} exists")
            return self.store.new_list(name, tag, contact_sids)

    def list_by_name(self, name: str) -> dict[str, Any] | None:
        """The list named ``name`` (``{"sid", "name", "tag", ...}``) or ``None``."""
        return self.store.list_by_name(name)

    def list_contacts(self, list_sid: str) -> list[dict[str, Any]]:
        return self.store.list_contacts(list_sid)

    def swap_list_member(self, list_sid: str, remove_sid: str, add_sid: str) -> None:
        """``remove_sid`` leaves list ``list_sid``; ``add_sid`` joins it at the end."""
        self.store.swap_list_member(list_sid, remove_sid, add_sid)

    @property
    def lists(self) -> dict[str, list[str]]:
        return self.store.lists_copy()

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

    # ------------------------------------------------------------------ faults (testing/_faults.py)
    def add_faults(
        self,
        *faults: Fault | str | int,
        method: str | None = None,
        path_endswith: str | None = None,
        retry_after: float | str | None = AUTO,
    ) -> None:
        """Queue faults; each later request matching the filter consumes the next one (FIFO).

        :param retry_after: ``Retry-After`` of these faults (see :class:`Fault`; ``None``: no header).
        """
        self.faults.add([Fault.coerce(f, retry_after) for f in faults], method, path_endswith)

    def fail_every_request(
        self,
        kind: Fault | str | int,
        *,
        method: str | None = None,
        path_endswith: str | None = None,
        retry_after: float | str | None = AUTO,
    ) -> None:
        """Every matching request fails with ``kind`` until :meth:`clear_faults`.

        :param retry_after: ``Retry-After`` of the answers: e.g. ``0`` for a server answering
            ``429`` with ``Retry-After: 0`` forever, ``None`` for 429s without the header.
        """
        self.faults.fail_every(Fault.coerce(kind, retry_after), method, path_endswith)

    def add_item_faults(self, faults: dict[str, Iterable[int]]) -> None:
        """Per-contact faults for updates: the next PUT including ``sid`` answers that item with the
        next queued status code, without applying it."""
        self.faults.add_items(faults)

    def add_create_item_faults(self, faults: dict[str, Iterable[int]]) -> None:
        """Per-contact faults for creates: the next ``POST contacts`` including ``number`` (as sent)
        answers that item with the next queued status code, without creating it."""
        self.faults.add_items(faults, "create:")

    def add_list_item_faults(self, faults: dict[str, Iterable[int]]) -> None:
        """Per-member faults for list additions: the next ``POST lists/<sid>/contacts`` including
        ``contact_sid`` answers that item with the next queued status code, without adding it."""
        self.faults.add_items(faults, "list_add:")

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
        self.faults.clear()

    @property
    def pending_faults(self) -> int:
        """Queued (not yet consumed) request faults."""
        return self.faults.pending

    # ------------------------------------------------------------------ rate limits (testing/_ratelimit.py)
    @property
    def rate_limit_per_minute(self) -> int | None:
        return self.rate_limits.minute.per_minute

    @rate_limit_per_minute.setter
    def rate_limit_per_minute(self, value: int | None) -> None:
        self.rate_limits.minute.per_minute = value

    @property
    def rate_limit_reset_format(self) -> str:
        """What ``X-RateLimit-Reset`` carries: ``"epoch"`` (default: epoch seconds), ``"epoch_ms"``
        (epoch milliseconds) or ``"delta"`` (seconds until the reset); applies to every family."""
        return self.rate_limits.reset_format

    @rate_limit_reset_format.setter
    def rate_limit_reset_format(self, value: str) -> None:
        self.rate_limits.reset_format = value

    @property
    def account_limits(self) -> dict[str, AccountWindow]:
        """Account windows by budget family (``"campaign"``: v2 paths, ``"voice"``: v1 paths)."""
        return self.rate_limits.windows

    @property
    def account_limit(self) -> AccountWindow | None:
        """The campaign family's (v2: contacts, lists, campaigns) account window, or ``None``."""
        return self.rate_limits.windows.get("campaign")

    @account_limit.setter
    def account_limit(self, window: AccountWindow | None) -> None:
        if window is None:
            self.rate_limits.windows.pop("campaign", None)
        else:
            self.rate_limits.windows["campaign"] = window

    def reset_rate_limit(self) -> None:
        self.rate_limits.clear()

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
        return self.rate_limits.set_window(family, limit, window, headers)
