"""Campaign endpoints of the simulator: create/delete contacts, lists and list membership.

A mixin of :class:`~airflow_provider_exotel.testing.simulator.ExotelSimulator` (standard library
only, like it). Endpoints, below ``/v2/accounts/<account_sid>/``:

* ``POST contacts`` ``{"contacts": [{"number", ...}]}`` — create, at most 5000; 200, or 207 with
  per-item failures (400 invalid number or field, 409 duplicate when ``duplicate_numbers ==
  "refuse"``)
* ``DELETE contacts/<sid>``
* ``GET lists?offset=&limit=&name=`` (``name`` matches substrings), ``POST lists``
  ``{"lists": [{"name", "tag"}]}`` (a taken name is a per-item 409)
* ``GET lists/<sid>``, ``DELETE lists/<sid>``
* ``POST lists/<sid>/contacts`` ``{"contact_references": [{"contact_sid"}]}`` — at most 5000;
  adding a member again succeeds (membership is a set)
* ``DELETE lists/<sid>/contacts/<contact_sid>`` — 404 when not a member

Switches: ``duplicate_numbers`` (constructor argument, attribute, CLI ``--duplicate-numbers``) —
``"allow"`` (default: creating an existing number makes a second contact) or ``"refuse"`` (a
per-item 409); Exotel does not document which it does. ``one_object_as_list`` (attribute) — answer
one-object endpoints with ``response`` as a one-item list. ``delete_answer`` (attribute) — how the
DELETEs answer: ``"json"`` (default: 200 with the deleted object, 404 when unknown),
``"no_content"`` (204 without a body) or ``"failure_item"`` (an unknown object is a 200 whose
``response`` item is the 404 failure).

Per-item faults: ``add_create_item_faults({number: [503]})`` and ``add_list_item_faults({contact_sid:
[500]})`` answer that item of the next matching POST with the queued code, without applying it (like
``add_item_faults`` for ``PUT contacts``); ``clear_faults()`` drops them too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel.testing import _envelopes as envelopes
from airflow_provider_exotel.testing._envelopes import INVALID_JSON, ApiError, dumps, paging

if TYPE_CHECKING:
    from airflow_provider_exotel.testing._clock import SimClock
    from airflow_provider_exotel.testing._requestlog import RecordedRequest
    from airflow_provider_exotel.testing._routes import ApiRequest, RouteTable

MAX_BULK_CREATE = 5000
MAX_LIST_ADD = 5000
MAX_LIST_SIZE = 100_000
#: Values of the ``duplicate_numbers`` switch.
DUPLICATE_NUMBERS = ("allow", "refuse")
CREATE_FIELDS = frozenset(
    {"number", "first_name", "last_name", "company_name", "email", "tag", "custom_field"}
)
_NUMBER = re.compile(r"\+?[0-9]{6,15}")


class CampaignEndpoints:
    """Mixin: lists and creates. Uses the simulator's state (``_contacts``, ``_lists``...)."""

    duplicate_numbers: str = "allow"
    one_object_as_list: bool = False
    delete_answer: str = "json"

    # provided by ExotelSimulator
    _state_lock: Any
    _contacts: dict[str, dict[str, Any]]
    _lists: dict[str, list[str]]
    _contact_lists: dict[str, list[str]]
    _query_cache: dict[Any, list[str]]
    _order_keys: list[tuple[str, int]]
    account_sid: str
    max_json_body_bytes: int
    clock: SimClock

    def _init_campaign(self, duplicate_numbers: str = "allow") -> None:
        if duplicate_numbers not in DUPLICATE_NUMBERS:
            raise ValueError(
                f"duplicate_numbers must be one of {DUPLICATE_NUMBERS}, got {duplicate_numbers!r}"
            )
        self.duplicate_numbers = duplicate_numbers
        self._list_meta: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ per-item faults
    def add_create_item_faults(self, faults: dict[str, Iterable[int]]) -> None:
        """Per-contact faults for creates: the next ``POST contacts`` including ``number`` (as sent)
        answers that item with the next queued status code, without creating it."""
        self._queue_item_faults("create", faults)

    def add_list_item_faults(self, faults: dict[str, Iterable[int]]) -> None:
        """Per-member faults for list additions: the next ``POST lists/<sid>/contacts`` including
        ``contact_sid`` answers that item with the next queued status code, without adding it."""
        self._queue_item_faults("list_add", faults)

    def _queue_item_faults(self, kind: str, faults: dict[str, Iterable[int]]) -> None:
        # beside the PUT item faults, under a prefix: cleared by clear_faults() like them
        self.add_item_faults({f"{kind}:{key}": codes for key, codes in faults.items()})  # type: ignore[attr-defined]

    def _forced_failure(self, kind: str, key: str) -> dict[str, Any] | None:
        code = self._pop_item_fault(f"{kind}:{key}")  # type: ignore[attr-defined]
        return None if code is None or code == 200 else self._fail(code, None)

    # ------------------------------------------------------------------ state helpers (tests)
    def add_list(
        self, name: str, *, tag: str | None = None, contact_sids: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Create a named list (as ``POST lists`` would) with existing contacts; return it."""
        with self._state_lock:
            if any(self._list_info(s)["name"] == name for s in self._lists):
                raise ValueError(f"a list named {name!r} exists")
            sid = uuid.uuid4().hex
            self._list_meta[sid] = self._new_list_meta(sid, name, tag)
            self.create_list(sid, contact_sids)  # type: ignore[attr-defined]
            return dict(self._list_info(sid))

    def list_by_name(self, name: str) -> dict[str, Any] | None:
        """The list named ``name`` (``{"sid", "name", "tag", ...}``) or ``None``."""
        with self._state_lock:
            for sid in self._lists:
                info = self._list_info(sid)
                if info["name"] == name:
                    return dict(info)
            return None

    def contacts_with_number(self, number: str) -> list[dict[str, Any]]:
        """Copies of the contacts whose ``number`` is exactly ``number`` (oldest first)."""
        with self._state_lock:
            return [dict(c) for c in self.contacts if c.get("number") == number]  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ routing
    def _register_campaign(self, routes: RouteTable) -> None:
        """Register the campaign endpoints (testing/_routes.py)."""
        add = routes.add
        add("POST", "contacts", lambda r: self._create_contacts(r.record, r.body), name="contacts")
        add("DELETE", "contacts/<sid>", lambda r: self._deleted(self._delete_contact_answer, r.params["sid"]))
        add("GET", "lists", lambda r: (200, self._get_lists(r.query)), name="lists")
        add("POST", "lists", lambda r: self._create_lists(r.record, r.body), name="lists")
        add("GET", "lists/<list_sid>", self._get_list, name="a list")
        add(
            "DELETE",
            "lists/<list_sid>",
            lambda r: self._deleted(self._delete_list_answer, r.params["list_sid"]),
        )
        add(
            "POST",
            "lists/<list_sid>/contacts",
            lambda r: self._add_to_list(r.record, r.params["list_sid"], r.body),
            name="list contacts",
        )
        add(
            "DELETE",
            "lists/<list_sid>/contacts/<sid>",
            lambda r: self._deleted(self._remove_from_list, r.params["list_sid"], r.params["sid"]),
            name="a list member",
        )

    def _get_list(self, request: ApiRequest) -> tuple[int, bytes]:
        with self._state_lock:
            if request.params["list_sid"] not in self._lists:
                raise ApiError(404, "List not found")
            return 200, self._one(self._list_info(request.params["list_sid"]), "GET")

    # ------------------------------------------------------------------ envelopes
    def _deleted(self, delete: Any, *args: str) -> tuple[int, bytes]:
        """A DELETE's answer, shaped by the ``delete_answer`` switch."""
        try:
            body = delete(*args)
        except ApiError as err:
            if err.status != 404 or self.delete_answer != "failure_item":
                raise
            item = self._fail(404, err.description)
            return 200, dumps(
                {
                    "request_id": uuid.uuid4().hex,
                    "method": "DELETE",
                    "http_code": 200,
                    "response": [item] if self.one_object_as_list else item,
                }
            )
        if self.delete_answer == "no_content":
            return 204, b""
        return 200, body

    def _one(self, data: dict[str, Any], method: str) -> bytes:
        item = {"code": 200, "error_data": None, "status": "success", "data": data}
        return dumps(
            {
                "request_id": uuid.uuid4().hex,
                "method": method,
                "http_code": 200,
                "response": [item] if self.one_object_as_list else item,
            }
        )

    @staticmethod
    def _bulk(method: str, results: list[dict[str, Any]]) -> tuple[int, bytes]:
        failed = sum(1 for r in results if r["status"] != "success")
        status = 207 if failed else 200
        return status, dumps(
            {
                "request_id": uuid.uuid4().hex,
                "method": method,
                "http_code": status,
                "metadata": {"failed": failed, "total": len(results), "success": len(results) - failed},
                "response": results,
            }
        )

    @staticmethod
    def _ok(data: dict[str, Any]) -> dict[str, Any]:
        return {"code": 200, "error_data": None, "status": "success", "data": data}

    @staticmethod
    def _fail(code: int, description: str | None) -> dict[str, Any]:
        return envelopes.failure_item(code, description)

    def _items(self, rec: RecordedRequest, parsed: Any, key: str, cap: int) -> list[Any]:
        if parsed is INVALID_JSON or parsed is None:
            raise ApiError(400, "Request body must be valid JSON")
        if not isinstance(parsed, dict) or not isinstance(parsed.get(key), list):
            raise ApiError(400, f"Request body must be a JSON object with a {key!r} list")
        items = parsed[key]
        rec.batch_size = len(items)
        if rec.body_size <= self.max_json_body_bytes:
            rec.json_body = parsed
        if not items:
            raise ApiError(400, f"{key} must not be empty")
        if len(items) > cap:
            raise ApiError(400, f"At most {cap} {key} per request")
        return items

    # ------------------------------------------------------------------ contacts
    def _create_contacts(self, rec: RecordedRequest, parsed: Any) -> tuple[int, bytes]:
        items = self._items(rec, parsed, "contacts", MAX_BULK_CREATE)
        results = []
        with self._state_lock:
            numbers = (
                {c.get("number") for c in self._contacts.values()}
                if self.duplicate_numbers == "refuse"
                else set()
            )
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("number"), str):
                    results.append(self._fail(400, "Each contact must be an object with a 'number'"))
                    continue
                number = item["number"]
                if not _NUMBER.fullmatch(number):
                    results.append(self._fail(400, f"Invalid number {number!r}"))
                    continue
                unknown = sorted(set(item) - CREATE_FIELDS)
                if unknown:
                    results.append(self._fail(400, f"Unknown field(s) {unknown}"))
                    continue
                forced = self._forced_failure("create", number)
                if forced is not None:
                    results.append(forced)
                    continue
                if self.duplicate_numbers == "refuse" and number in numbers:
                    results.append(self._fail(409, f"A contact with number {number} already exists"))
                    continue
                numbers.add(number)
                now = self.clock.iso()
                if self._order_keys and self._order_keys[-1][0] > now:
                    now = self._order_keys[-1][0]
                sid = uuid.uuid4().hex
                contact = self._make_contact(sid, now, item)  # type: ignore[attr-defined]
                self._add_locked(contact)  # type: ignore[attr-defined]
                results.append(self._ok(dict(contact)))
            self._query_cache.clear()
        return self._bulk("POST", results)

    def _contact_or_404(self, sid: str) -> dict[str, Any]:
        with self._state_lock:
            contact = self._contacts.get(sid)
            if contact is None:
                raise ApiError(404, "Contact not found")
            return dict(contact)

    def _delete_contact_answer(self, sid: str) -> bytes:
        contact = self._contact_or_404(sid)
        if not self.delete_contact(sid):  # type: ignore[attr-defined]
            raise ApiError(404, "Contact not found")
        return self._one(contact, "DELETE")

    # ------------------------------------------------------------------ lists
    def _new_list_meta(self, sid: str, name: str, tag: str | None) -> dict[str, Any]:
        now = self.clock.iso()
        return {
            "sid": sid,
            "name": name,
            "tag": tag,
            "date_created": now,
            "date_updated": now,
            "account_sid": self.account_sid,
            "uri": f"/v2/accounts/{self.account_sid}/lists/{sid}",
        }

    def _list_info(self, sid: str) -> dict[str, Any]:
        """List metadata (lists made with ``create_list(sid, ...)`` are named after their sid)."""
        meta = self._list_meta.get(sid)
        if meta is None:
            meta = self._list_meta[sid] = self._new_list_meta(sid, sid, None)
        return {**meta, "contact_count": len(self._lists.get(sid, ()))}

    def _get_lists(self, query: dict[str, str]) -> bytes:
        offset, limit = paging(query)
        needle = (query.get("name") or "").casefold()
        with self._state_lock:
            infos = [self._list_info(s) for s in self._lists]
        if needle:
            infos = [i for i in infos if needle in str(i["name"]).casefold()]
        page = infos[offset : offset + limit]
        return dumps(
            {
                "request_id": uuid.uuid4().hex,
                "method": "GET",
                "http_code": 200,
                "metadata": {"count": len(page), "offset": offset, "limit": limit, "total": len(infos)},
                "response": [self._ok(i) for i in page],
            }
        )

    def _create_lists(self, rec: RecordedRequest, parsed: Any) -> tuple[int, bytes]:
        items = self._items(rec, parsed, "lists", MAX_BULK_CREATE)
        results = []
        with self._state_lock:
            names = {self._list_info(s)["name"] for s in self._lists}
            for item in items:
                name = item.get("name") if isinstance(item, dict) else None
                tag = item.get("tag") if isinstance(item, dict) else None
                if not isinstance(name, str) or not name.strip() or not (tag is None or isinstance(tag, str)):
                    results.append(
                        self._fail(400, "Each list must be an object with a 'name' (and a string 'tag')")
                    )
                    continue
                if name in names:
                    results.append(self._fail(409, f"A list named {name!r} already exists"))
                    continue
                names.add(name)
                sid = uuid.uuid4().hex
                self._list_meta[sid] = self._new_list_meta(sid, name, tag)
                self._lists[sid] = []
                results.append(self._ok(self._list_info(sid)))
        return self._bulk("POST", results)

    def _delete_list_answer(self, sid: str) -> bytes:
        with self._state_lock:
            if sid not in self._lists:
                raise ApiError(404, "List not found")
            info = self._list_info(sid)
            for member in self._lists.pop(sid):
                lists = self._contact_lists.get(member)
                if lists and sid in lists:
                    lists.remove(sid)
            self._list_meta.pop(sid, None)
            self._query_cache.clear()
        return self._one(info, "DELETE")

    def _add_to_list(self, rec: RecordedRequest, list_sid: str, parsed: Any) -> tuple[int, bytes]:
        with self._state_lock:
            if list_sid not in self._lists:
                raise ApiError(404, "List not found")
        items = self._items(rec, parsed, "contact_references", MAX_LIST_ADD)
        results = []
        with self._state_lock:
            members = self._lists[list_sid]
            present = set(members)
            for item in items:
                sid = item.get("contact_sid") if isinstance(item, dict) else None
                if not isinstance(sid, str) or not sid:
                    results.append(self._fail(400, "Each reference must be an object with a 'contact_sid'"))
                elif (forced := self._forced_failure("list_add", sid)) is not None:
                    results.append(forced)
                elif sid not in self._contacts:
                    results.append(self._fail(404, "Contact not found"))
                elif sid not in present and len(members) >= MAX_LIST_SIZE:
                    results.append(self._fail(400, f"A list holds at most {MAX_LIST_SIZE} contacts"))
                else:
                    if sid not in present:
                        members.append(sid)
                        present.add(sid)
                        self._contact_lists.setdefault(sid, []).append(list_sid)
                    results.append(self._ok({"contact_sid": sid, "list_sid": list_sid}))
            self._query_cache.clear()
        return self._bulk("POST", results)

    def _remove_from_list(self, list_sid: str, contact_sid: str) -> bytes:
        with self._state_lock:
            members = self._lists.get(list_sid)
            if members is None:
                raise ApiError(404, "List not found")
            if contact_sid not in members:
                raise ApiError(404, "Contact is not in the list")
            members.remove(contact_sid)
            lists = self._contact_lists.get(contact_sid)
            if lists and list_sid in lists:
                lists.remove(list_sid)
            self._query_cache.clear()
        return self._one({"contact_sid": contact_sid, "list_sid": list_sid}, "DELETE")
