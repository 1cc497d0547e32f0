"""The lists endpoints of the simulator, below ``/v2/accounts/<account_sid>/``:

* ``GET lists?offset=&limit=&name=`` (``name`` matches substrings), ``POST lists``
  ``{"lists": [{"name", "tag"}]}`` (a taken name is a per-item 409)
* ``GET lists/<sid>``, ``DELETE lists/<sid>``
* ``GET lists/<sid>/contacts?offset=&limit=`` — the members, in list order
* ``POST lists/<sid>/contacts`` ``{"contact_references": [{"contact_sid"}]}`` — at most 5000;
  adding a member again succeeds (membership is a set); a list holds at most 100,000
* ``DELETE lists/<sid>/contacts/<contact_sid>`` — 404 when not a member

Switches read from the simulator: ``one_object_as_list``, ``delete_answer``, ``max_page_size``.
Per-item faults: ``add_list_item_faults({contact_sid: [codes]})``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_exotel.testing._contacts_family import contact_page
from airflow_provider_exotel.testing._envelopes import (
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

__all__ = ["MAX_LIST_ADD", "MAX_LIST_SIZE", "ListsFamily"]

MAX_BULK_LISTS = 5000
MAX_LIST_ADD = 5000
MAX_LIST_SIZE = 100_000


class ListsFamily:
    """Lists and their members."""

    def __init__(self, sim: ExotelSimulator) -> None:
        self.sim = sim
        self.store = sim.store

    def register(self, routes: RouteTable) -> None:
        routes.add("GET", "lists", self.list_lists, name="lists")
        routes.add("POST", "lists", self.create_lists, name="lists")
        routes.add("GET", "lists/<list_sid>", self.get_list, name="a list")
        routes.add("DELETE", "lists/<list_sid>", self.delete_list, name="a list")
        routes.add("GET", "lists/<list_sid>/contacts", self.members, name="list contacts")
        routes.add("POST", "lists/<list_sid>/contacts", self.add_members, name="list contacts")
        routes.add("DELETE", "lists/<list_sid>/contacts/<sid>", self.remove_member, name="a list member")

    def _deleted(self, delete: Any) -> tuple[int, bytes]:
        return deleted(delete, mode=self.sim.delete_answer, as_list=self.sim.one_object_as_list)

    def _known(self, list_sid: str) -> None:
        if list_sid not in self.store.lists:
            raise ApiError(404, "List not found")

    # ------------------------------------------------------------------ lists
    def list_lists(self, request: ApiRequest) -> tuple[int, bytes]:
        offset, limit = paging(request.query)
        needle = (request.query.get("name") or "").casefold()
        with self.store.lock:
            infos = [self.store.list_info(s) for s in self.store.lists]
        if needle:
            infos = [i for i in infos if needle in str(i["name"]).casefold()]
        chosen = infos[offset : offset + limit]
        return 200, page([success_item(i) for i in chosen], offset, limit, len(infos))

    def _create_item(self, item: Any, names: set[str]) -> dict[str, Any]:
        name = item.get("name") if isinstance(item, dict) else None
        tag = item.get("tag") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.strip() or not (tag is None or isinstance(tag, str)):
            return failure_item(400, "Each list must be an object with a 'name' (and a string 'tag')")
        if name in names:
            return failure_item(409, f"A list named {name!r} already exists")
        names.add(name)
        return success_item(self.store.new_list(name, tag))

    def create_lists(self, request: ApiRequest) -> tuple[int, bytes]:
        items = body_items(request, "lists", MAX_BULK_LISTS, self.sim.max_json_body_bytes)
        with self.store.lock:
            names = self.store.list_names()
            results = [self._create_item(item, names) for item in items]
        return bulk("POST", results)

    def get_list(self, request: ApiRequest) -> tuple[int, bytes]:
        with self.store.lock:
            self._known(request.params["list_sid"])
            info = self.store.list_info(request.params["list_sid"])
        return 200, one_object(info, "GET", as_list=self.sim.one_object_as_list)

    def delete_list(self, request: ApiRequest) -> tuple[int, bytes]:
        def delete() -> bytes:
            info = self.store.delete_list(request.params["list_sid"])
            if info is None:
                raise ApiError(404, "List not found")
            return one_object(info, "DELETE", as_list=self.sim.one_object_as_list)

        return self._deleted(delete)

    # ------------------------------------------------------------------ members
    def members(self, request: ApiRequest) -> tuple[int, bytes]:
        offset, limit = paging(request.query)
        with self.store.lock:
            self._known(request.params["list_sid"])
            sids = self.store.lists[request.params["list_sid"]]
            return 200, contact_page(
                self.sim, sids, offset, limit, request.query.get("filter") == "show_list"
            )

    def _add_item(self, list_sid: str, item: Any, present: set[str]) -> dict[str, Any]:
        sid = item.get("contact_sid") if isinstance(item, dict) else None
        if not isinstance(sid, str) or not sid:
            return failure_item(400, "Each reference must be an object with a 'contact_sid'")
        code = self.sim.faults.pop_item(f"list_add:{sid}")
        if code is not None and code != 200:
            return failure_item(code, None)
        if sid not in self.store.contacts:
            return failure_item(404, "Contact not found")
        if sid not in present and len(present) >= MAX_LIST_SIZE:
            return failure_item(400, f"A list holds at most {MAX_LIST_SIZE} contacts")
        self.store.add_member(list_sid, sid, present)
        return success_item({"contact_sid": sid, "list_sid": list_sid})

    def add_members(self, request: ApiRequest) -> tuple[int, bytes]:
        list_sid = request.params["list_sid"]
        with self.store.lock:
            self._known(list_sid)
        items = body_items(request, "contact_references", MAX_LIST_ADD, self.sim.max_json_body_bytes)
        with self.store.lock:
            self._known(list_sid)
            present = set(self.store.lists[list_sid])
            results = [self._add_item(list_sid, item, present) for item in items]
            self.store.changed()
        return bulk("POST", results)

    def remove_member(self, request: ApiRequest) -> tuple[int, bytes]:
        list_sid, sid = request.params["list_sid"], request.params["sid"]

        def delete() -> bytes:
            with self.store.lock:
                self._known(list_sid)
                if not self.store.remove_member(list_sid, sid):
                    raise ApiError(404, "Contact is not in the list")
            return one_object(
                {"contact_sid": sid, "list_sid": list_sid}, "DELETE", as_list=self.sim.one_object_as_list
            )

        return self._deleted(delete)
