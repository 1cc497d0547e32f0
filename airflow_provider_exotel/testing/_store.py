"""The simulator's state: contacts in ``date_created`` order, lists and their members, seeding.

One re-entrant lock (``store.lock``) guards it all; the endpoint families hold it while they read or
change several things at once. Every change clears the query cache (``store.changed()``).
"""

from __future__ import annotations

import bisect
import hashlib
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_exotel.testing._clock import TIMESTAMP_FORMAT, SimClock

__all__ = ["CONTACT_FIELDS", "UPDATABLE_FIELDS", "ContactStore", "normalize_ts"]

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
_SEED_BASE = datetime(2024, 1, 1, tzinfo=UTC)
_TAGS = ("lead", "customer", "vip", None)
Query = tuple[tuple[tuple[str, bool], ...], str | None, tuple[str, ...] | None]


def normalize_ts(value: Any) -> str:
    """Return ``value`` (datetime or ISO string) as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    else:
        raise TypeError(f"date_created must be a datetime or ISO string, not {type(value).__name__}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def _str_key(value: Any) -> tuple[int, str]:
    return (0, "") if value is None else (1, str(value).casefold())


def name_matches(contact: dict[str, Any], needle: str) -> bool:
    """Exotel's ``name`` filter: a substring of the first, last or full name (casefolded)."""
    first = contact.get("first_name") or ""
    last = contact.get("last_name") or ""
    return needle in first.casefold() or needle in last.casefold() or needle in f"{first} {last}".casefold()


def _seed_fields(i: int, prefix: str | None) -> dict[str, Any]:
    return {
        "number": f"+9196{i:08d}",
        "first_name": f"{prefix if prefix is not None else 'First'}{i}",
        "last_name": f"Last{i}",
        "company_name": f"Company{i % 50}",
        "email": f"user{i}@example.com",
        "tag": _TAGS[i % 4],
        "custom_field": {"segment": "ABC"[i % 3], "score": i % 100} if i % 2 == 0 else None,
    }


class ContactStore:
    """Contacts (by sid, and in ``(date_created, insertion)`` order) and lists (ordered members).

    :param account_sid: written into every contact and list.
    :param seed: seed of the deterministic sids and samples of :meth:`seed_contacts` / :meth:`seed_lists`.
    :param clock: the simulator's clock (``date_created`` of new objects, ``date_updated``).
    """

    def __init__(self, account_sid: str, seed: int, clock: SimClock) -> None:
        self.account_sid = account_sid
        self.seed = seed
        self.clock = clock
        self.lock = threading.RLock()
        self.contacts: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []  # sids by (date_created, seq)
        self._order_keys: list[tuple[str, int]] = []
        self._keys: dict[str, tuple[str, int]] = {}
        self._seq = 0
        self._seed_counter = 0
        self.lists: dict[str, list[str]] = {}
        self.contact_lists: dict[str, list[str]] = {}
        self._list_meta: dict[str, dict[str, Any]] = {}
        self._query_cache: dict[Query, list[str]] = {}
        #: how often each contact was updated (PUT)
        self.update_counts: Counter[str] = Counter()

    def changed(self) -> None:
        """Forget cached query results (after any change)."""
        self._query_cache.clear()

    # ------------------------------------------------------------------ contacts
    def make_contact(self, sid: str, date_created: str, fields: dict[str, Any]) -> dict[str, Any]:
        contact = {f: fields.get(f) for f in CONTACT_FIELDS}
        contact.update(sid=sid, date_created=date_created, account_sid=self.account_sid)
        contact["date_updated"] = fields.get("date_updated") or date_created
        contact["uri"] = f"/v2/accounts/{self.account_sid}/contacts/{sid}"
        return contact

    def add(self, contact: dict[str, Any]) -> None:
        """Insert a contact at its place in the order (caller holds the lock)."""
        sid = contact["sid"]
        if sid in self.contacts:
            raise ValueError(f"contact {sid!r} already exists")
        self._seq += 1
        key = (contact["date_created"], self._seq)
        self.contacts[sid] = contact
        self._keys[sid] = key
        if not self._order_keys or key >= self._order_keys[-1]:
            self._order_keys.append(key)
            self.order.append(sid)
        else:
            idx = bisect.bisect_right(self._order_keys, key)
            self._order_keys.insert(idx, key)
            self.order.insert(idx, sid)

    def newest_created(self) -> str | None:
        """``date_created`` of the newest contact (caller holds the lock)."""
        return self._order_keys[-1][0] if self._order_keys else None

    def seed_contacts(self, n: int, *, prefix: str | None = None) -> list[dict[str, Any]]:
        """Create ``n`` deterministic contacts (see ``ExotelSimulator.seed_contacts``); copies."""
        created: list[dict[str, Any]] = []
        day_cached, day_prefix = -1, ""
        with self.lock:
            for _ in range(n):
                i = self._seed_counter
                self._seed_counter += 1
                sid = hashlib.md5(f"{self.seed}-{i}".encode()).hexdigest()
                if sid in self.contacts:  # extremely unlikely unless inserted manually
                    continue
                day, secs = divmod(i, 86400)
                if day != day_cached:  # 2024-01-01T00:00:00Z + i seconds, without strftime per contact
                    day_cached, day_prefix = day, (_SEED_BASE + timedelta(days=day)).strftime("%Y-%m-%d")
                ts = f"{day_prefix}T{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}Z"
                contact = self.make_contact(sid, ts, _seed_fields(i, prefix))
                self.add(contact)
                created.append(contact)
            self.changed()
            return [dict(c) for c in created]

    def insert_contact(self, **fields: Any) -> dict[str, Any]:
        """Add one contact (see ``ExotelSimulator.insert_contact``); a copy."""
        unknown = set(fields) - set(CONTACT_FIELDS)
        if unknown:
            raise TypeError(f"unknown contact fields: {sorted(unknown)}")
        with self.lock:
            sid = fields.get("sid") or uuid.uuid4().hex
            if fields.get("date_created") is not None:
                date_created = normalize_ts(fields["date_created"])
            else:
                date_created = self.clock.iso()
                newest = self.newest_created()
                if newest is not None and newest >= date_created:
                    last = datetime.strptime(newest, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
                    date_created = (last + timedelta(seconds=1)).strftime(TIMESTAMP_FORMAT)
            contact = self.make_contact(sid, date_created, fields)
            self.add(contact)
            self.changed()
            return dict(contact)

    def delete_contact(self, sid: str) -> bool:
        """Remove a contact and its list memberships; whether it existed."""
        with self.lock:
            if sid not in self.contacts:
                return False
            key = self._keys.pop(sid)
            idx = bisect.bisect_left(self._order_keys, key)
            del self._order_keys[idx]
            del self.order[idx]
            del self.contacts[sid]
            for list_sid in self.contact_lists.pop(sid, ()):
                members = self.lists.get(list_sid)
                if members is not None and sid in members:
                    members.remove(sid)
            self.changed()
            return True

    def get_contact(self, sid: str) -> dict[str, Any] | None:
        with self.lock:
            c = self.contacts.get(sid)
            return dict(c) if c is not None else None

    def all_contacts(self) -> list[dict[str, Any]]:
        """Copies of all contacts in default (``date_created`` ascending) order."""
        with self.lock:
            return [dict(self.contacts[s]) for s in self.order]

    def contacts_with_number(self, number: str) -> list[dict[str, Any]]:
        """Copies of the contacts whose ``number`` is exactly ``number`` (oldest first)."""
        return [c for c in self.all_contacts() if c.get("number") == number]

    def apply_update(self, contact: dict[str, Any], item: dict[str, Any], now: str) -> None:
        """Apply the updatable fields of ``item`` (caller holds the lock)."""
        for f in UPDATABLE_FIELDS:
            if f in item:
                contact[f] = item[f]
        contact["date_updated"] = now
        self.update_counts[contact["sid"]] += 1

    def rename_contact(self, sid: str, *, first_name: Any = None, last_name: Any = None) -> None:
        """Give a contact a new first (and optionally last) name; it moves under ``sort_by=name``."""
        with self.lock:
            contact = self.contacts[sid]
            if first_name is not None:
                contact["first_name"] = first_name
            if last_name is not None:
                contact["last_name"] = last_name
            contact["date_updated"] = self.clock.iso()
            self.changed()

    # ------------------------------------------------------------------ queries
    def _sort_key(self, fld: str) -> Callable[[str], Any]:
        contacts = self.contacts
        if fld == "date_created":
            return self._keys.__getitem__
        if fld == "name":
            return lambda s: (_str_key(contacts[s]["first_name"]), _str_key(contacts[s]["last_name"]))
        return lambda s: _str_key(contacts[s][fld])

    def select(
        self, sort_keys: tuple[tuple[str, bool], ...], name: str | None, list_sids: tuple[str, ...] | None
    ) -> list[str]:
        """Matching sids in order (caller holds the lock; the result must not be mutated)."""
        if not sort_keys and not name and list_sids is None:
            return self.order
        cache_key = (sort_keys, name, list_sids)
        cached = self._query_cache.get(cache_key)
        if cached is not None:
            return cached
        sids = self.order
        if sort_keys:
            sids = list(sids)
            for fld, desc in reversed(sort_keys):
                sids.sort(key=self._sort_key(fld), reverse=desc)
        if list_sids is not None:
            members: set[str] = set()
            for lsid in list_sids:
                members.update(self.lists.get(lsid, ()))
            sids = [s for s in sids if s in members]
        if name:
            sids = [s for s in sids if name_matches(self.contacts[s], name)]
        if len(self._query_cache) > 64:
            self._query_cache.clear()
        self._query_cache[cache_key] = sids
        return sids

    # ------------------------------------------------------------------ lists
    def create_list(self, list_sid: str, contact_sids: Iterable[str] = ()) -> None:
        """Create a list (or extend an existing one) with existing contacts, in the given order."""
        with self.lock:
            sids = list(contact_sids)
            missing = [s for s in sids if s not in self.contacts]
            if missing:
                raise KeyError(f"unknown contact sids: {missing[:5]}")
            present = set(self.lists.setdefault(list_sid, []))
            for s in sids:
                self.add_member(list_sid, s, present)
            self.changed()

    def add_member(self, list_sid: str, sid: str, present: set[str] | None = None) -> bool:
        """Add ``sid`` at the end of an existing list; whether it was not a member yet.

        :param present: the list's members as a set, kept up to date (for many additions at once).
        """
        with self.lock:
            members = self.lists[list_sid]
            if sid in (members if present is None else present):
                return False
            if present is not None:
                present.add(sid)
            members.append(sid)
            self.contact_lists.setdefault(sid, []).append(list_sid)
            self.changed()
            return True

    def remove_member(self, list_sid: str, sid: str) -> bool:
        """Remove ``sid`` from a list; whether it was a member."""
        with self.lock:
            members = self.lists.get(list_sid)
            if members is None or sid not in members:
                return False
            members.remove(sid)
            memberships = self.contact_lists.get(sid, [])
            if list_sid in memberships:
                memberships.remove(list_sid)
            self.changed()
            return True

    def swap_list_member(self, list_sid: str, remove_sid: str, add_sid: str) -> None:
        """``remove_sid`` leaves list ``list_sid``; ``add_sid`` joins it at the end."""
        with self.lock:
            if not self.remove_member(list_sid, remove_sid):
                raise ValueError(f"{remove_sid!r} is not a member of {list_sid!r}")
            self.add_member(list_sid, add_sid)

    def seed_lists(self, k: int, size: int) -> list[str]:
        """Create ``k`` lists ``list0``, ``list1``, ... (skipping taken names) of ``size``
        deterministically sampled contacts; their sids."""
        with self.lock:
            names: list[str] = []
            j = -1
            while len(names) < k:
                j += 1
                list_sid = f"list{j}"
                if list_sid in self.lists:
                    continue
                rng = random.Random(f"{self.seed}-list-{j}")
                self.create_list(list_sid, rng.sample(self.order, min(size, len(self.order))))
                names.append(list_sid)
            return names

    def list_contacts(self, list_sid: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(self.contacts[s]) for s in self.lists[list_sid]]

    def lists_copy(self) -> dict[str, list[str]]:
        with self.lock:
            return {k: list(v) for k, v in self.lists.items()}

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

    def list_info(self, sid: str) -> dict[str, Any]:
        """List metadata (lists made with ``create_list(sid, ...)`` are named after their sid)."""
        with self.lock:
            meta = self._list_meta.get(sid)
            if meta is None:
                meta = self._list_meta[sid] = self._new_list_meta(sid, sid, None)
            return {**meta, "contact_count": len(self.lists.get(sid, ()))}

    def new_list(self, name: str, tag: str | None, contact_sids: Iterable[str] = ()) -> dict[str, Any]:
        """Create a named list with a random sid (as ``POST lists`` does); its info."""
        with self.lock:
            sid = uuid.uuid4().hex
            self._list_meta[sid] = self._new_list_meta(sid, name, tag)
            self.create_list(sid, contact_sids)
            return self.list_info(sid)

    def list_names(self) -> set[str]:
        with self.lock:
            return {self.list_info(s)["name"] for s in self.lists}

    def list_by_name(self, name: str) -> dict[str, Any] | None:
        """The list named ``name`` (``{"sid", "name", "tag", ...}``) or ``None``."""
        with self.lock:
            for sid in self.lists:
                info = self.list_info(sid)
                if info["name"] == name:
                    return info
            return None

    def delete_list(self, sid: str) -> dict[str, Any] | None:
        """Remove a list (memberships too); its info, or ``None`` when unknown."""
        with self.lock:
            if sid not in self.lists:
                return None
            info = self.list_info(sid)
            for member in self.lists.pop(sid):
                lists = self.contact_lists.get(member)
                if lists and sid in lists:
                    lists.remove(sid)
            self._list_meta.pop(sid, None)
            self.changed()
            return info
