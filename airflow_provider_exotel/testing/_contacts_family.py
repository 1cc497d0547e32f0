"""The contacts endpoints of the simulator, below ``/v2/accounts/<account_sid>/``:

* ``GET contacts?offset=&limit=&name=&sort_by=&list_sids=&filter=show_list`` (pages of at most 20)
* ``GET contacts/<sid>``, ``PUT contacts/<sid>`` (single-contact update), ``DELETE contacts/<sid>``
* ``PUT contacts`` — bulk update, at most 5000; 200, or 207 with per-item failures (404 unknown sid)
* ``POST contacts`` ``{"contacts": [{"number", ...}]}`` — create, at most 5000; 200, or 207 with
  per-item failures (400 invalid number or field, 409 duplicate when ``duplicate_numbers ==
  "refuse"``)

Switches read from the simulator: ``max_page_size``, ``reorder_put_results``,
``put_results_without_data``, ``duplicate_numbers``, ``one_object_as_list``, ``delete_answer``.
Per-item faults: ``add_item_faults({sid: [codes]})`` for updates, ``add_create_item_faults({number:
[codes]})`` for creates.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel.testing._envelopes import (
    INVALID_JSON,
    ApiError,
    body_items,
    bulk,
    deleted,
    failure_item,
    one_object,
    page,
    paging,
    success_item,
)

if TYPE_CHECKING:
    from airflow_provider_exotel.testing._routes import ApiRequest, RouteTable
    from airflow_provider_exotel.testing.simulator import ExotelSimulator

__all__ = ["MAX_BULK_CREATE", "MAX_BULK_UPDATE", "SORTABLE_FIELDS", "ContactsFamily", "contact_page"]

MAX_BULK_UPDATE = 5000
MAX_BULK_CREATE = 5000
#: Values of the ``duplicate_numbers`` switch.
DUPLICATE_NUMBERS = ("allow", "refuse")
CREATE_FIELDS = frozenset(
    {"number", "first_name", "last_name", "company_name", "email", "tag", "custom_field"}
)
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
_NUMBER = re.compile(r"\+?[0-9]{6,15}")


def parse_sort(sort_by: str | None) -> tuple[tuple[str, bool], ...]:
    """``sort_by=<field>:asc|desc,...`` as ``((field, descending), ...)``; 400 when invalid."""
    keys = []
    for part in (sort_by or "").split(","):
        part = part.strip()
        if not part:
            continue
        fld, _, direction = part.partition(":")
        fld = fld.strip().lower()
        direction = (direction.strip() or "asc").lower()
        if fld not in SORTABLE_FIELDS or direction not in ("asc", "desc"):
            fields = ", ".join(SORTABLE_FIELDS)
            raise ApiError(400, f"Invalid sort_by {sort_by!r}; use <field>:asc|desc with field in {fields}")
        keys.append((fld, direction == "desc"))
    if keys == [("date_created", False)]:
        return ()
    return tuple(keys)


def contact_page(sim: ExotelSimulator, sids: list[str], offset: int, limit: int, show_list: bool) -> bytes:
    """The page ``sids[offset:offset + limit]`` (capped by ``max_page_size``; caller holds the lock)."""
    store = sim.store
    chosen = sids[offset : offset + limit]
    if sim.max_page_size is not None:
        chosen = chosen[: sim.max_page_size]
    items = []
    for sid in chosen:
        c = store.contacts[sid]
        if show_list:
            c = {**c, "lists": [{"sid": ls} for ls in store.contact_lists.get(sid, ())]}
        items.append(success_item(c))
    return page(items, offset, limit, len(sids))


class ContactsFamily:
    """Read, update, create and delete contacts."""

    def __init__(self, sim: ExotelSimulator) -> None:
        self.sim = sim
        self.store = sim.store

    def register(self, routes: RouteTable) -> None:
        routes.add("GET", "contacts", self.list_contacts, name="contacts")
        routes.add("PUT", "contacts", self.bulk_update, name="contacts")
        routes.add("POST", "contacts", self.create, name="contacts")
        routes.add("GET", "contacts/<sid>", self.get_one, name="a contact")
        routes.add("PUT", "contacts/<sid>", self.put_one, name="a contact")
        routes.add("DELETE", "contacts/<sid>", self.delete_one, name="a contact")

    # ------------------------------------------------------------------ reads
    def list_contacts(self, request: ApiRequest) -> tuple[int, bytes]:
        query = request.query
        offset, limit = paging(query)
        sort_keys = parse_sort(query.get("sort_by"))
        name = (query.get("name") or "").strip().casefold() or None
        raw_lists = query.get("list_sids")
        list_sids = None
        if raw_lists is not None and raw_lists.strip():
            list_sids = tuple(sorted({s.strip() for s in raw_lists.split(",") if s.strip()}))
        with self.store.lock:
            sids = self.store.select(sort_keys, name, list_sids)
            return 200, contact_page(self.sim, sids, offset, limit, query.get("filter") == "show_list")

    def _contact_or_404(self, sid: str) -> dict[str, Any]:
        contact = self.store.get_contact(sid)
        if contact is None:
            raise ApiError(404, "Contact not found")
        return contact

    def get_one(self, request: ApiRequest) -> tuple[int, bytes]:
        contact = self._contact_or_404(request.params["sid"])
        return 200, one_object(contact, "GET", as_list=self.sim.one_object_as_list)

    # ------------------------------------------------------------------ updates
    def _forced(self, key: str) -> int | None:
        code = self.sim.faults.pop_item(key)
        return None if code is None or code == 200 else code

    def _update_item(self, item: Any, now: str) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("sid"), str) or not item["sid"]:
            return failure_item(400, "Each contact must be an object with a 'sid'")
        forced = self._forced(item["sid"])
        if forced is not None:
            return failure_item(forced)
        contact = self.store.contacts.get(item["sid"])
        if contact is None:
            return failure_item(404)
        self.store.apply_update(contact, item, now)
        return success_item(contact)

    def bulk_update(self, request: ApiRequest) -> tuple[int, bytes]:
        parsed = request.body
        if parsed is INVALID_JSON or parsed is None:
            raise ApiError(400, "Request body must be valid JSON")
        if not isinstance(parsed, dict) or not isinstance(parsed.get("contacts"), list):
            raise ApiError(400, "Request body must be a JSON object with a 'contacts' list")
        items = parsed["contacts"]
        if not items:
            raise ApiError(400, "contacts must not be empty")
        if len(items) > MAX_BULK_UPDATE:
            raise ApiError(400, f"At most {MAX_BULK_UPDATE} contacts can be updated per request")
        now = self.sim.clock.iso()
        with self.store.lock:
            results = [self._update_item(item, now) for item in items]
            if any(r["status"] == "success" for r in results):
                self.store.changed()
            if self.sim.put_results_without_data:  # success items that do not echo the contact
                results = [{**r, "data": None} for r in results]
            if self.sim.reorder_put_results:  # a server that does not keep input order
                results.reverse()
            return bulk("PUT", results)

    def put_one(self, request: ApiRequest) -> tuple[int, bytes]:
        sid, parsed = request.params["sid"], request.body
        if parsed is INVALID_JSON or not isinstance(parsed, dict):
            raise ApiError(400, "Request body must be a JSON object")
        forced = self._forced(sid)
        if forced is not None:
            raise ApiError(forced)
        with self.store.lock:
            contact = self.store.contacts.get(sid)
            if contact is None:
                raise ApiError(404, "Contact not found")
            self.store.apply_update(contact, parsed, self.sim.clock.iso())
            self.store.changed()
            return 200, one_object(contact, "PUT")

    # ------------------------------------------------------------------ create, delete
    def _create_item(self, item: Any, numbers: set[Any]) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("number"), str):
            return failure_item(400, "Each contact must be an object with a 'number'")
        number = item["number"]
        if not _NUMBER.fullmatch(number):
            return failure_item(400, f"Invalid number {number!r}")
        unknown = sorted(set(item) - CREATE_FIELDS)
        if unknown:
            return failure_item(400, f"Unknown field(s) {unknown}")
        forced = self._forced(f"create:{number}")
        if forced is not None:
            return failure_item(forced, None)
        if self.sim.duplicate_numbers == "refuse" and number in numbers:
            return failure_item(409, f"A contact with number {number} already exists")
        numbers.add(number)
        now = self.sim.clock.iso()
        newest = self.store.newest_created()
        contact = self.store.make_contact(uuid.uuid4().hex, max(now, newest or now), item)
        self.store.add(contact)
        return success_item(dict(contact))

    def create(self, request: ApiRequest) -> tuple[int, bytes]:
        items = body_items(request, "contacts", MAX_BULK_CREATE, self.sim.max_json_body_bytes)
        store = self.store
        with store.lock:
            refuse = self.sim.duplicate_numbers == "refuse"
            numbers = {c.get("number") for c in store.contacts.values()} if refuse else set()
            results = [self._create_item(item, numbers) for item in items]
            store.changed()
        return bulk("POST", results)

    def delete_one(self, request: ApiRequest) -> tuple[int, bytes]:
        sid = request.params["sid"]

        def delete() -> bytes:
            contact = self._contact_or_404(sid)
            if not self.store.delete_contact(sid):
                raise ApiError(404, "Contact not found")
            return one_object(contact, "DELETE", as_list=self.sim.one_object_as_list)

        return deleted(delete, mode=self.sim.delete_answer, as_list=self.sim.one_object_as_list)
