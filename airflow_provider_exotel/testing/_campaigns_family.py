"""The simulator's campaigns endpoint family (standard library only).

Endpoints, below ``/v2/accounts/<account_sid>/`` (the campaign budget family):

* ``POST campaigns`` ``{"campaigns": [{…}]}`` — one campaign: ``name``, ``caller_id``, ``lists``
  (1-5 existing list sids; exactly 1 for ``campaign_type: dynamic``) or ``from`` (1-5000 numbers,
  one invalid number fails the request), ``url`` or ``flow_type`` + ``read_via_text``, ``schedule``
  ``{"send_at", "end_at"}``, ``retries``… A bad campaign is a 400 with Exotel's error shape.
* ``GET campaigns?offset=&limit=&name=&status=&sort_by=`` (``name`` matches substrings; ``status``
  in either spelling; ``sort_by=date_created:asc|desc``), ``GET campaigns/<id>``
* ``PUT campaigns/<id>`` ``{"campaigns": [{"action": "pause"|"resume"|"complete"|"archive"}]}`` —
  the status machine; a refused action is a 400 naming the status
* ``DELETE campaigns/<id>`` — only before it starts; then it answers GET with status ``deleted``
* ``GET campaigns/<id>/call-details?offset=&limit=&status=&sort_by=`` — one row per call

Campaigns run on the simulator clock (:mod:`._campaign_runs`) at ``pace`` calls per second (family
attribute, CLI ``--campaign-pace``, control endpoint). ``status_spelling``: ``"old"`` (default,
``in-progress``) or ``"new"`` (``InProgress``; CLI ``--status-spelling``). Every call made is also
a v1 call record: kept in ``family.call_records`` and handed to the v1 Calls family when the
simulator serves it (``sim.add_call_record(date_created=, duration=, status=, direction=, to=,
from_=, sid=, **v1_fields)``).

Control endpoint (``/_control/campaigns``): ``GET`` → settings and every campaign's status and
stats; ``POST {"pace", "status_spelling"}`` changes settings; ``POST /_control/campaigns/<id>/advance
{"seconds": n}`` runs that campaign n seconds ahead (the clock stays); ``POST
/_control/campaigns/<id>/finish`` makes every call left now. CLI: ``python -m
airflow_provider_exotel.testing campaign advance|finish|show <id> [--seconds n] [--url …]``.
"""

from __future__ import annotations

import re
import threading
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel.testing._campaign_runs import ACTIONS, Callee, CampaignRun, iso, spell
from airflow_provider_exotel.testing._envelopes import INVALID_JSON, ApiError, one_object, page, paging

if TYPE_CHECKING:
    from airflow_provider_exotel.testing._routes import ApiRequest, RouteTable

__all__ = ["CampaignsFamily", "campaign_control"]

MAX_LISTS = 5
MAX_NUMBERS = 5000
SPELLINGS = ("old", "new")
_NUMBER = re.compile(r"\+?[0-9]{6,15}")
_STATUS_KEY = re.compile(r"[\s_-]+")


def _status_key(status: str) -> str:
    """One key for every spelling of a status (``InProgress``, ``in-progress``, ``in_progress``)."""
    return _STATUS_KEY.sub("", status).lower().replace("cancelled", "canceled")


class CampaignsFamily:
    """Campaigns that dial on the simulator clock. Built with the simulator (``sim.campaigns``)."""

    def __init__(self, sim: Any, *, pace: float = 1.0, status_spelling: str = "old") -> None:
        self.sim = sim
        self.pace = float(pace)
        self.status_spelling = status_spelling
        self.runs: dict[str, CampaignRun] = {}
        self.call_records: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        sim.campaigns = self

    def register(self, routes: RouteTable) -> None:
        routes.add("POST", "campaigns", self._create, name="campaigns")
        routes.add("GET", "campaigns", self._list, name="campaigns")
        routes.add("GET", "campaigns/<campaign_id>", self._get, name="a campaign")
        routes.add("PUT", "campaigns/<campaign_id>", self._action, name="a campaign")
        routes.add("DELETE", "campaigns/<campaign_id>", self._delete, name="a campaign")
        routes.add("GET", "campaigns/<campaign_id>/call-details", self._details, name="call details")

    # ------------------------------------------------------------------ state helpers (tests)
    def now(self) -> float:
        return float(self.sim.clock.now())

    def run(self, campaign_id: str) -> CampaignRun:
        """The campaign brought up to now (``KeyError`` when unknown)."""
        with self._lock:
            run = self.runs[campaign_id]
            run.advance(self.now())
            return run

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        """The campaign as ``GET campaigns/<id>`` shows it."""
        with self._lock:
            return self.run(campaign_id).view(self.status_spelling)

    def call_details(self, campaign_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.run(campaign_id).rows]

    def finish(self, campaign_id: str) -> dict[str, Any]:
        """Make every call left now and complete the campaign."""
        with self._lock:
            self.runs[campaign_id].finish(self.now())
            return self.campaign(campaign_id)

    def advance(self, campaign_id: str, seconds: float) -> dict[str, Any]:
        """Run one campaign ``seconds`` of running time ahead (the simulator clock stays)."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self.runs[campaign_id].bonus(float(seconds), self.now())
            return self.campaign(campaign_id)

    def _record_call(self, row: dict[str, Any], at: float, record: dict[str, Any]) -> None:
        """Keep the v1 record; hand the call to the v1 Calls family (``sim.add_call_record``) if served."""
        self.call_records.append(record)
        add = getattr(self.sim, "add_call_record", None)
        if callable(add):
            add(
                date_created=int(at),
                duration=row["duration"],
                status=row["status"],
                direction="outbound-api",
                to=row["number"],
                from_=str(row["caller_id"]),
                sid=row["call_sid"],
                RecordingUrl=row["recording_url"],
                AnsweredBy=record["AnsweredBy"],
            )

    # ------------------------------------------------------------------ endpoints
    def _create(self, request: ApiRequest) -> tuple[int, bytes]:
        body = request.body
        if body is INVALID_JSON or not isinstance(body, dict) or not isinstance(body.get("campaigns"), list):
            raise ApiError(400, "Request body must be a JSON object with a 'campaigns' list")
        items = body["campaigns"]
        request.record.batch_size = len(items)
        request.record.json_body = body
        if len(items) != 1 or not isinstance(items[0], dict):
            raise ApiError(400, "Send exactly one campaign object in 'campaigns'")
        item = items[0]
        _check_campaign(item)
        callees = self._numbers(item)
        now = self.now()
        campaign_id = uuid.uuid4().hex
        schedule = item.get("schedule") or {}
        data = {
            **{k: v for k, v in item.items() if k != "campaigns"},
            "id": campaign_id,
            "account_sid": self.sim.account_sid,
            "campaign_type": item.get("campaign_type", "static"),
            "date_created": iso(now),
            "date_updated": iso(now),
            "uri": f"/v2/accounts/{self.sim.account_sid}/campaigns/{campaign_id}",
        }
        send_at = _moment(schedule.get("send_at"))
        end_at = _moment(schedule.get("end_at"))
        run = CampaignRun(
            data=data,
            start_at=max(now, send_at) if send_at is not None else now,
            end_at=end_at,
            pace=self.pace,
            resolve=callees,
            on_call=self._record_call,
        )
        with self._lock:
            self.runs[campaign_id] = run
            run.advance(now)
            view = run.view(self.status_spelling)
        return 200, one_object(view, "POST", as_list=True)

    def _numbers(self, item: dict[str, Any]) -> Any:
        """What the campaign will call, read when it starts (lists are checked now)."""
        if "from" in item:
            numbers = [Callee(n) for n in item["from"]]
            return lambda: list(numbers)
        known = self.sim.lists
        missing = [s for s in item["lists"] if s not in known]
        if missing:
            raise ApiError(400, f"List(s) not found: {', '.join(missing)}")
        sids = list(item["lists"])
        dedupe = not item.get("call_duplicate_numbers")

        def resolve() -> list[Callee]:
            seen: set[str] = set()
            out = []
            for sid in sids:
                for contact in self.sim.list_contacts(sid) if sid in self.sim.lists else ():
                    number = contact.get("number")
                    if not isinstance(number, str) or (dedupe and number in seen):
                        continue
                    seen.add(number)
                    name = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
                    out.append(Callee(number, name))
            return out

        return resolve

    def _one(self, request: ApiRequest) -> CampaignRun:
        run = self.runs.get(request.params["campaign_id"])
        if run is None:
            raise ApiError(404, "Campaign not found")
        run.advance(self.now())
        return run

    def _get(self, request: ApiRequest) -> tuple[int, bytes]:
        with self._lock:
            view = self._one(request).view(self.status_spelling)
        return 200, one_object(view, "GET", as_list=getattr(self.sim, "one_object_as_list", False))

    def _list(self, request: ApiRequest) -> tuple[int, bytes]:
        offset, limit = paging(request.query)
        needle = (request.query.get("name") or "").casefold()
        status = request.query.get("status")
        order = (request.query.get("sort_by") or "date_created:asc").strip().lower()
        if order not in ("date_created", "date_created:asc", "date_created:desc"):
            raise ApiError(400, f"Invalid sort_by {order!r}; use date_created:asc|desc")
        with self._lock:
            now = self.now()
            views = []
            for run in self.runs.values():
                run.advance(now)
                if needle and needle not in str(run.data.get("name", "")).casefold():
                    continue
                if status and _status_key(status) != _status_key(run.status):
                    continue
                views.append(run.view(self.status_spelling))
        if order.endswith("desc"):
            views.reverse()
        items = [{"code": 200, "error_data": None, "status": "success", "data": v} for v in views]
        return 200, page(items[offset : offset + limit], offset, limit, len(items))

    def _action(self, request: ApiRequest) -> tuple[int, bytes]:
        body = request.body
        items = body.get("campaigns") if isinstance(body, dict) else None
        action = (
            items[0].get("action")
            if isinstance(items, list) and items and isinstance(items[0], dict)
            else None
        )
        if action not in ACTIONS:
            raise ApiError(
                400, f"Send {{'campaigns': [{{'action': one of {sorted(ACTIONS)}}}]}}, got {action!r}"
            )
        with self._lock:
            run = self._one(request)
            needs, _ = ACTIONS[action]
            if run.status not in needs:
                raise ApiError(
                    400,
                    f"Campaign is {spell(run.status, self.status_spelling)}; {action} needs "
                    f"{' or '.join(spell(s, self.status_spelling) for s in needs)}",
                )
            run.act(action, self.now())
            view = run.view(self.status_spelling)
        return 200, one_object(view, "PUT", as_list=True)

    def _delete(self, request: ApiRequest) -> tuple[int, bytes]:
        with self._lock:
            run = self._one(request)
            if run.status == "deleted":
                raise ApiError(404, "Campaign not found")
            if run.status != "created":
                status = spell(run.status, self.status_spelling)
                raise ApiError(400, f"Campaign is {status}; only a created campaign can be deleted")
            run.status = "deleted"
            run.data["date_updated"] = iso(self.now())
            view = run.view(self.status_spelling)
        return 200, one_object(view, "DELETE")

    def _details(self, request: ApiRequest) -> tuple[int, bytes]:
        offset, limit = paging(request.query)
        status = request.query.get("status")
        order = (request.query.get("sort_by") or "date_created:asc").strip().lower()
        with self._lock:
            rows = [
                r
                for r in self._one(request).rows
                if not status or _status_key(r["status"]) == _status_key(status)
            ]
        if order.endswith("desc"):
            rows = rows[::-1]
        items = [{"code": 200, "error_data": None, "status": "success", "data": dict(r)} for r in rows]
        return 200, page(items[offset : offset + limit], offset, limit, len(items))


# --------------------------------------------------------------------------------------------------
# Checks of a new campaign (Exotel's rules)
# --------------------------------------------------------------------------------------------------
def _check_campaign(item: dict[str, Any]) -> None:
    for key in ("name", "caller_id"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise ApiError(400, f"'{key}' is required")
    kind = item.get("campaign_type", "static")
    if kind not in ("static", "dynamic"):
        raise ApiError(400, f"Invalid campaign_type {kind!r}")
    if ("lists" in item) == ("from" in item):
        raise ApiError(400, "Give either 'lists' or 'from'")
    if "lists" in item:
        lists = item["lists"]
        if not isinstance(lists, list) or not all(isinstance(s, str) and s for s in lists):
            raise ApiError(400, "'lists' must be a list of list sids")
        if not 1 <= len(lists) <= (1 if kind == "dynamic" else MAX_LISTS):
            raise ApiError(400, f"A {kind} campaign takes 1 to {1 if kind == 'dynamic' else MAX_LISTS} lists")
    else:
        numbers = item["from"]
        if not isinstance(numbers, list) or not 1 <= len(numbers) <= MAX_NUMBERS:
            raise ApiError(400, f"'from' must hold 1 to {MAX_NUMBERS} numbers")
        bad = [n for n in numbers if not isinstance(n, str) or not _NUMBER.fullmatch(n)]
        if bad:
            raise ApiError(400, f"Invalid number {bad[0]!r}")
    if ("url" in item) == ("read_via_text" in item) or ("read_via_text" in item and "flow_type" not in item):
        raise ApiError(400, "Give either 'url' or 'flow_type' with 'read_via_text'")
    schedule = item.get("schedule") or {}
    if not isinstance(schedule, dict):
        raise ApiError(400, "'schedule' must be an object")
    send_at, end_at = _moment(schedule.get("send_at")), _moment(schedule.get("end_at"))
    if end_at is not None and send_at is not None and end_at <= send_at:
        raise ApiError(400, "schedule.end_at must be after send_at")
    retries = item.get("retries")
    if retries is not None:
        count = retries.get("number_of_retries") if isinstance(retries, dict) else None
        if not isinstance(count, int) or not 0 <= count <= 3:
            raise ApiError(400, "retries.number_of_retries must be 0-3")


def _moment(value: Any) -> float | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"Invalid RFC 3339 time {value!r}") from None
    if parsed.tzinfo is None:
        raise ApiError(400, f"Time {value!r} has no offset (RFC 3339)")
    return parsed.timestamp()


# --------------------------------------------------------------------------------------------------
# Control endpoint (``/_control/campaigns…``)
# --------------------------------------------------------------------------------------------------
def campaign_control(sim: Any, method: str, segs: list[str], body: dict[str, Any]) -> dict[str, Any]:
    """Serve ``/_control/campaigns[/<id>/advance|finish]``; ``LookupError`` for an unknown campaign."""
    family: CampaignsFamily = sim.campaigns
    if not segs:
        if method == "POST":
            _settings(family, body)
        with family._lock:
            listed = [family.campaign(cid) for cid in family.runs]
        return {
            "pace": family.pace,
            "status_spelling": family.status_spelling,
            "campaigns": [{k: c.get(k) for k in ("id", "name", "status", "stats")} for c in listed],
        }
    campaign_id = segs[0]
    if campaign_id not in family.runs:
        raise LookupError(f"no campaign {campaign_id}")
    if segs[1:] == ["finish"] and method == "POST":
        return family.finish(campaign_id)
    if segs[1:] == ["advance"] and method == "POST":
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError('send {"seconds": n} with n >= 0')
        return family.advance(campaign_id, seconds)
    if segs[1:] == [] and method == "GET":
        return family.campaign(campaign_id)
    raise LookupError(f"no control endpoint {method} campaigns/{'/'.join(segs)}")


def _settings(family: CampaignsFamily, body: dict[str, Any]) -> None:
    pace = body.get("pace")
    spelling = body.get("status_spelling")
    if pace is not None and (isinstance(pace, bool) or not isinstance(pace, int | float) or pace <= 0):
        raise ValueError("pace must be a number of calls per second > 0")
    if spelling is not None and spelling not in SPELLINGS:
        raise ValueError(f"status_spelling must be one of {SPELLINGS}")
    if pace is not None:
        family.pace = float(pace)
    if spelling is not None:
        family.status_spelling = spelling
