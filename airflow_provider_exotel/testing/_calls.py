"""Voice v1 call records for the simulator: ``GET /v1/Accounts/<sid>/Calls[.json]`` and ``Calls/<sid>``.

An endpoint family (``CallsFamily``, in ``ENDPOINT_FAMILIES``; standard library only) with
Exotel's quirks (the façade's methods for it, ``sim.seed_calls`` …, are in ``_calls_facade.py``):

* JSON only with ``.json``; without it the answer is XML (``<TwilioResponse>``), as at Exotel.
* ``DateCreated=gte:YYYY-MM-DD HH:MM:SS;lte:…`` (both inclusive) in the account's time zone
  (``calls_timezone``, default ``Asia/Kolkata``); timestamps are written the same way, without an
  offset. Default range: the last 31 days. A range over 31 days, or a ``gte`` more than 183 days
  back, is refused with 400 and a ``RestException`` body.
* ``PageSize`` 1..100 (default 50), ``SortBy=DateCreated:asc|desc`` (default desc), ``Status``,
  ``Direction`` filters, the cursor ``After`` in ``Metadata.NextPageUri`` (``PrevPageUri`` is null).
* Calls in progress are not listed; ``Duration``, ``Price`` and ``EndTime`` stay null until
  ``late_fields_delay`` seconds (default 120) after a call ends — on the simulator clock
  (``sim.clock.advance(…)`` moves it).
* Its own request budget (family ``"voice"``), apart from the campaign APIs': off unless asked for
  (:meth:`set_voice_limit`, whose default is Exotel's 200 per 60 s, ``set_account_limit(...,
  family="voice")`` or CLI ``--voice-limit``).

Feeding it: :meth:`add_call_record` (one call; campaigns append their dialled calls with it) and
:meth:`seed_calls` (CLI ``--calls N``). Page faults for the next list answers:
:meth:`add_calls_faults` (``repeat_page``, ``short_page``, ``no_metadata``, ``outside_window``).
"""

from __future__ import annotations

import base64
import bisect
import json
import random
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from airflow_provider_exotel.testing._ratelimit import AccountWindow

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
MAX_RANGE = 31 * 86400
MAX_AGE = 183 * 86400
STATUSES = ("completed", "failed", "busy", "no-answer")
DIRECTIONS = ("inbound", "outbound-dial", "outbound-api")
CALL_FAULT_KINDS = frozenset({"repeat_page", "short_page", "no_metadata", "outside_window"})
CALL_FIELDS = (
    "Sid",
    "ParentCallSid",
    "DateCreated",
    "DateUpdated",
    "AccountSid",
    "To",
    "From",
    "PhoneNumberSid",
    "Status",
    "StartTime",
    "EndTime",
    "Duration",
    "Price",
    "Direction",
    "AnsweredBy",
    "RecordingUrl",
)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _refusal(err: _Refused, as_json: bool) -> tuple[int, bytes, dict[str, str]]:
    """A v1 error: ``{"RestException": {"Status", "Message", "Code"}}`` (or its XML)."""
    doc = {"RestException": {"Status": err.status, "Message": err.message, "Code": err.status}}
    return (err.status, *_encode(doc, as_json))


class CallsFamily:
    """The v1 ``Calls`` endpoints (an endpoint family of ``ENDPOINT_FAMILIES``) over an in-memory
    store of call records. The simulator's façade reaches it as ``sim.calls`` (see :class:`CallsFacade`).
    """

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        #: the account's time zone: v1 timestamps and the DateCreated filter are wall-clock times in it
        self.calls_timezone = "Asia/Kolkata"
        #: seconds after a call ends before ``Duration``/``Price``/``EndTime`` are filled in
        self.late_fields_delay = 120.0
        self._calls_lock = threading.RLock()
        self._calls: dict[str, dict[str, Any]] = {}
        self._call_keys: list[tuple[int, int, str]] = []  # (created epoch, seq, sid), sorted
        self._call_seq = 0
        self._calls_faults: deque[str] = deque()
        self._last_calls_page: bytes | None = None
        self._total_cache: tuple[Any, int] = (None, 0)

    # ------------------------------------------------------------------ configuration
    def set_voice_limit(
        self, limit: int | None = 200, *, window: float = 60.0, headers: bool = True
    ) -> AccountWindow | None:
        """The voice family's budget: ``limit`` requests (Exotel's default: 200) per fixed ``window``
        seconds, with ``X-RateLimit-*`` headers; ``None`` removes it (the default: unlimited)."""
        return self.sim.set_account_limit(limit, window=window, headers=headers, family="voice")

    def add_calls_faults(self, *kinds: str) -> None:
        """Queue page faults for the next ``Calls`` list answers, one per answer, in order
        (``"none"`` answers that page correctly, e.g. to fault the second page)."""
        for kind in kinds:
            if kind not in CALL_FAULT_KINDS | {"none"}:
                raise ValueError(f"unknown calls fault {kind!r}; expected one of {sorted(CALL_FAULT_KINDS)}")
        with self._calls_lock:
            self._calls_faults.extend(kinds)

    def _calls_now(self) -> float:
        return float(self.sim.clock.now())

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.calls_timezone)

    # ------------------------------------------------------------------ records
    def add_call_record(
        self,
        *,
        date_created: datetime | float | None = None,
        duration: int = 60,
        status: str = "completed",
        direction: str = "outbound-api",
        to: str = "+919800000000",
        from_: str = "+918000000000",
        price: float | None = None,
        sid: str | None = None,
        ring_seconds: int = 0,
        **fields: Any,
    ) -> dict[str, Any]:
        """Add one call; return its record as the API will show it once settled.

        :param date_created: when the call was created (datetime, naive = UTC, or epoch seconds;
            default now); whole seconds, like Exotel.
        :param duration: talk time in seconds; the call ends ``ring_seconds + duration`` after creation
            and is listed from then on.
        :param status: final status (``completed``, ``failed``, ``busy``, ``no-answer``).
        :param fields: other v1 fields (``RecordingUrl``, ``AnsweredBy``, ``PhoneNumberSid``,
            ``ParentCallSid``) as they should appear.
        """
        if status not in STATUSES or direction not in DIRECTIONS:
            raise ValueError(f"status must be one of {STATUSES} and direction one of {DIRECTIONS}")
        created = _epoch(date_created if date_created is not None else self._calls_now())
        ended = created + int(ring_seconds) + int(duration)
        call_sid = sid or uuid.uuid4().hex
        record: dict[str, Any] = {
            "sid": call_sid,
            "created": created,
            "start": created + int(ring_seconds),
            "end": ended,
            "duration": int(duration),
            "price": round(0.5 + 0.01 * duration, 3) if price is None else price,
            "status": status,
            "direction": direction,
            "to": to,
            "from": from_,
            "fields": dict(fields),
        }
        with self._calls_lock:
            if call_sid in self._calls:
                raise ValueError(f"call {call_sid} exists")
            self._call_seq += 1
            self._calls[call_sid] = record
            bisect.insort(self._call_keys, (created, self._call_seq, call_sid))
        return self._render(record, ended + self.late_fields_delay)

    def seed_calls(
        self,
        n: int,
        *,
        days: float = 7.0,
        start: datetime | float | None = None,
        end: datetime | float | None = None,
    ) -> list[dict[str, Any]]:
        """Add ``n`` calls created at random (deterministic per ``seed``) in ``[start, end)``.

        Default ``end``: an hour ago (so every call has ended and settled); default ``start``:
        ``days`` before ``end``.
        """
        high = _epoch(end) if end is not None else int(self._calls_now()) - 3600
        low = _epoch(start) if start is not None else int(high - days * 86400)
        rng = random.Random(f"calls:{self.sim.seed}:{len(self._calls)}")
        out = []
        for _ in range(n):
            status = rng.choices(STATUSES, weights=(70, 10, 10, 10))[0]
            out.append(
                self.add_call_record(
                    date_created=rng.randrange(low, max(high, low + 1)),
                    duration=rng.randrange(5, 600) if status == "completed" else 0,
                    status=status,
                    direction=rng.choice(DIRECTIONS),
                    to=f"+9198{rng.randrange(10**8):08d}",
                    from_=f"+9180{rng.randrange(10**8):08d}",
                    sid=f"call{self.sim.seed}x{len(self._calls):07d}{rng.randrange(16**6):06x}",
                )
            )
        return out

    def call_records(self) -> list[dict[str, Any]]:
        """Every call as the API shows it now (in progress ones included), oldest first."""
        now = self._calls_now()
        with self._calls_lock:
            return [self._render(self._calls[sid], now) for _, _, sid in self._call_keys]

    def _render(self, record: dict[str, Any], now: float) -> dict[str, Any]:
        """The call as the API shows it at ``now`` (a settled call's view is kept: it no longer changes)."""
        if now < record["end"] + self.late_fields_delay:
            return self._view(record, now)
        key = (self.calls_timezone, self.late_fields_delay, self.sim.account_sid)
        cached = record.get("view")
        if cached is None or cached[0] != key:
            cached = record["view"] = (key, self._view(record, now))
        return dict(cached[1])

    def _view(self, record: dict[str, Any], now: float) -> dict[str, Any]:
        zone = self._zone()

        def local(epoch: float) -> str:
            return datetime.fromtimestamp(epoch, zone).strftime(TIME_FORMAT)

        ended = record["end"] <= now
        settled = now >= record["end"] + self.late_fields_delay
        call = dict.fromkeys(CALL_FIELDS)
        call.update(
            Sid=record["sid"],
            DateCreated=local(record["created"]),
            DateUpdated=local(record["end"] + self.late_fields_delay if settled else min(now, record["end"])),
            AccountSid=self.sim.account_sid,
            To=record["to"],
            From=record["from"],
            Status=record["status"] if ended else "in-progress",
            StartTime=local(record["start"]),
            Direction=record["direction"],
        )
        if settled:
            call.update(
                EndTime=local(record["end"]),
                Duration=str(record["duration"]),
                Price=f"{record['price']:.3f}",
            )
        call.update({k: v for k, v in record["fields"].items() if k in CALL_FIELDS})
        return call

    # ------------------------------------------------------------------ HTTP
    def register(self, routes: Any) -> None:
        """Register the v1 routes (testing/_routes.py); ``.json`` first, then the XML spellings."""
        for suffix in (".json", ""):
            routes.add("GET", f"Calls{suffix}", self._calls_list_answer, base="v1", name="Calls")
            routes.add("GET", f"Calls/<call_sid>{suffix}", self._call_answer, base="v1", name="a call")

    def _calls_list_answer(self, request: Any) -> tuple[int, bytes, dict[str, str]]:
        as_json = request.path.endswith(".json")
        try:
            doc = self._list_calls(request.path, request.query)
        except _Refused as err:
            return _refusal(err, as_json)
        body, headers = _encode(doc, as_json)
        return 200, self._calls_fault(body, as_json), headers

    def _call_answer(self, request: Any) -> tuple[int, bytes, dict[str, str]]:
        as_json = request.path.endswith(".json")
        sid = request.params["call_sid"]
        with self._calls_lock:
            record = self._calls.get(sid)
        if record is None:
            return _refusal(_Refused(404, f"Call {sid} not found"), as_json)
        return (200, *_encode({"Call": self._render(record, self._calls_now())}, as_json))

    def _list_calls(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        now = self._calls_now()
        size = _page_size(query.get("PageSize"))
        descending = _sort(query.get("SortBy"))
        low, high = self._date_range(query.get("DateCreated"), now)
        wanted = {
            k: _choices(k, query.get(k), allowed)
            for k, allowed in (("Status", STATUSES), ("Direction", DIRECTIONS))
        }
        cursor = query.get("After")
        after = _cursor(cursor) if cursor else None
        with self._calls_lock:
            keys = self._call_keys
            lo = bisect.bisect_left(keys, (low, -1, ""))
            hi = bisect.bisect_right(keys, (high, 1 << 62, ""))
            if after is not None:
                if descending:
                    hi = min(hi, bisect.bisect_left(keys, after))
                else:
                    lo = max(lo, bisect.bisect_right(keys, after))
            indexes = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
            page: list[tuple[tuple[int, int, str], dict[str, Any]]] = []
            more = False
            for i in indexes:
                record = self._calls[keys[i][2]]
                if not self._listed(record, now, wanted):
                    continue
                if len(page) == size:
                    more = True
                    break
                page.append((keys[i], record))
            calls = [self._render(r, now) for _, r in page]
        base = "/" + "/".join(s for s in path.split("/") if s)
        plain = {k: v for k, v in query.items() if k not in ("After", "Before")}
        return {
            "Metadata": {
                "Total": self._total(low, high, wanted, now),
                "PageSize": size,
                "FirstPageUri": f"{base}?{urlencode(plain)}",
                "PrevPageUri": None,
                "NextPageUri": f"{base}?{urlencode({**plain, 'After': _token(page[-1][0])})}"
                if more
                else None,
            },
            "Calls": calls,
        }

    def _total(self, low: int, high: int, wanted: dict[str, set[str] | None], now: float) -> int:
        """Calls listed for these filters; counted again when calls are added or every 30 s."""
        filters = repr(sorted((k, sorted(v or ())) for k, v in wanted.items()))
        key = (low, high, filters, len(self._calls), int(now // 30))
        with self._calls_lock:
            if self._total_cache[0] != key:
                keys = self._call_keys
                lo = bisect.bisect_left(keys, (low, -1, ""))
                hi = bisect.bisect_right(keys, (high, 1 << 62, ""))
                count = sum(1 for i in range(lo, hi) if self._listed(self._calls[keys[i][2]], now, wanted))
                self._total_cache = (key, count)
            return self._total_cache[1]

    def _listed(self, record: dict[str, Any], now: float, wanted: dict[str, set[str] | None]) -> bool:
        if record["end"] > now:  # in progress: not listed
            return False
        for key, field in (("Status", "status"), ("Direction", "direction")):
            if wanted[key] is not None and record[field] not in wanted[key]:  # type: ignore[operator]
                return False
        return True

    def _date_range(self, value: str | None, now: float) -> tuple[int, int]:
        """``DateCreated`` as inclusive epoch bounds; refused past one month or 6 months back."""
        bounds: dict[str, int] = {}
        for part in (value or "").split(";"):
            if not part.strip():
                continue
            op, _, text = part.partition(":")
            try:
                naive = datetime.strptime(text.strip(), TIME_FORMAT)
            except ValueError:
                raise _Refused(400, f"Invalid DateCreated filter {part!r}") from None
            if op not in ("gte", "lte") or op in bounds:
                raise _Refused(400, f"Invalid DateCreated operator {op!r}; use gte and lte")
            bounds[op] = int(naive.replace(tzinfo=self._zone()).timestamp())
        high = bounds.get("lte", int(now))
        low = bounds.get("gte", high - MAX_RANGE)
        if high - low > MAX_RANGE:
            raise _Refused(400, "DateCreated range cannot be more than 1 month")
        if low < now - MAX_AGE:
            raise _Refused(400, "Call records can be queried only up to 6 months old")
        return low, high

    def _calls_fault(self, body: bytes, as_json: bool) -> bytes:
        """Apply the next queued page fault; ``repeat_page`` answers the page served last again
        (with its ``NextPageUri``), so repeats in a row keep a cursor chain from advancing."""
        with self._calls_lock:
            kind = self._calls_faults.popleft() if self._calls_faults else None
            served = _page_fault(kind if as_json else None, body, self._last_calls_page)
            self._last_calls_page = served
        return served


def _page_fault(kind: str | None, body: bytes, previous: bytes | None) -> bytes:
    if kind in (None, "none"):
        return body
    if kind == "repeat_page":
        return previous or body
    doc = json.loads(body)
    if kind == "short_page":
        doc["Calls"] = doc["Calls"][: len(doc["Calls"]) // 2]
    elif kind == "no_metadata":
        del doc["Metadata"]
    elif kind == "outside_window" and doc["Calls"]:
        doc["Calls"][0]["DateCreated"] = "2000-01-01 00:00:00"
    return json.dumps(doc).encode()


def _epoch(value: datetime | float) -> int:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(moment.timestamp() // 1)
    return int(value // 1)


def _token(key: tuple[int, int, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}:{key[2]}".encode()).decode()


def _cursor(value: str) -> tuple[int, int, str]:
    try:
        created, seq, sid = base64.urlsafe_b64decode(value.encode()).decode().split(":", 2)
        return int(created), int(seq), sid
    except (ValueError, UnicodeDecodeError):
        raise _Refused(400, "Invalid After cursor") from None


def _page_size(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise _Refused(400, f"PageSize must be 1..{MAX_PAGE_SIZE}")
    return int(value)


def _sort(value: str | None) -> bool:
    if value in (None, "DateCreated:desc"):
        return True
    if value == "DateCreated:asc":
        return False
    raise _Refused(400, f"Invalid SortBy {value!r}")


def _choices(name: str, value: str | None, allowed: Iterable[str]) -> set[str] | None:
    if value is None:
        return None
    items = {v.strip() for v in value.split(",")}
    if not items <= set(allowed):
        raise _Refused(400, f"Invalid {name} {value!r}")
    return items


def _encode(doc: dict[str, Any], as_json: bool) -> tuple[bytes, dict[str, str]]:
    """JSON (``.json``) or, as Exotel answers without it, XML; with the answer's Content-Type."""
    if as_json:
        return json.dumps(doc).encode(), {"Content-Type": "application/json; charset=utf-8"}
    xml = '<?xml version="1.0" encoding="UTF-8"?>\n<TwilioResponse>' + _xml(doc) + "</TwilioResponse>"
    return xml.encode(), {"Content-Type": "application/xml; charset=utf-8"}


def _xml(value: Any, tag: str | None = None) -> str:
    if isinstance(value, dict):
        inner = "".join(_xml(v, k) for k, v in value.items())
    elif isinstance(value, list):
        inner = "".join(_xml(v, "Call") for v in value)
    else:
        inner = "" if value is None else escape(str(value))
    return inner if tag is None else f"<{tag}>{inner}</{tag}>"


__all__ = ["CALL_FAULT_KINDS", "CallsFamily"]
