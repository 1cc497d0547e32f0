"""The sync's plan (private): what Exotel holds, and what each input row needs. GET requests only.

:class:`SyncPlanner` reads the account's contacts — or ``current_path``, an earlier export, then the
contacts created since it (newest first, down to its newest ``date_created``) and a fresh copy of
each contact the file says needs an update — and the list's members, then classifies every row as
``created``, ``updated`` or ``unchanged`` against an :class:`AccountIndex`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_exotel._new_contacts import changed_fields, field_digests, normalize_number, number_key
from airflow_provider_exotel._validation import parse_timestamp
from airflow_provider_exotel.exceptions import ExotelRequestError, ExotelValidationError
from airflow_provider_exotel.operators._audience import AudienceInput
from airflow_provider_exotel.operators._files import read_jsonl, to_path
from airflow_provider_exotel.operators._progress import Progress

#: Rows of each kind shown when a sync logs its plan.
PLAN_EXAMPLES = 5
#: Bytes of field digests at the start of an index entry.
_DIGESTS = 48

__all__ = ["AccountIndex", "Plan", "SyncPlanner", "classify"]


class AccountIndex:
    """Exotel's contacts as the sync needs them: number → (sid, field digests), ~230 bytes each.

    Full contact dicts are not kept: for a million contacts that would be gigabytes. Several
    contacts with one number: the oldest (``date_created``, then first seen) is the match.
    """

    def __init__(self) -> None:
        self._by_number: dict[bytes, bytes] = {}
        self.contacts = 0
        self.same_number = 0

    def add(self, contact: Mapping[str, Any]) -> None:
        number = normalize_number(contact.get("number"))
        sid = contact.get("sid")
        if not number or not isinstance(sid, str):
            return
        created = contact.get("date_created")
        created_b = created.encode() if isinstance(created, str) else b""
        packed = field_digests(contact) + created_b + b"\0" + sid.encode()
        key = number_key(number)
        old = self._by_number.get(key)
        if old is not None and old[_DIGESTS:].split(b"\0", 1)[1] == sid.encode():
            return  # the same contact again (a catch-up read overlapping the file)
        self.contacts += 1
        if old is None:
            self._by_number[key] = packed
            return
        self.same_number += 1
        old_created = old[_DIGESTS:].split(b"\0", 1)[0]
        if created_b and old_created and created_b < old_created:
            self._by_number[key] = packed

    def get(self, number: str) -> tuple[str, bytes] | None:
        packed = self._by_number.get(number_key(number))
        if packed is None:
            return None
        return packed[_DIGESTS:].split(b"\0", 1)[1].decode(), packed[:_DIGESTS]

    def refresh(self, number: str, fresh: Mapping[str, Any] | None) -> None:
        """Replace the match of ``number`` by a fresh read of it (``None``: it no longer exists)."""
        key = number_key(number)
        packed = self._by_number.get(key)
        if packed is None or fresh is None:
            return  # a deleted contact stays planned as an update: it fails at stage update
        if normalize_number(fresh.get("number")) != number:
            del self._by_number[key]  # renumbered since: nothing in Exotel has this number now
            return
        self._by_number[key] = field_digests(fresh) + packed[_DIGESTS:]


@dataclass
class Plan:
    list_sid: str | None = None
    list_to_create: str | None = None
    members: dict[str, str] = field(default_factory=dict)  # sid -> number
    index: AccountIndex = field(default_factory=AccountIndex)
    rows: int = 0  # audience rows
    replayed_removals: int = 0  # list_remove dead letters in the input
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    to_add: int = 0
    to_remove: list[str] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)
    source: str = "the account"  # where the contacts were read

    def example(self, kind: str, text: str) -> None:
        shown = self.examples.setdefault(kind, [])
        if len(shown) < PLAN_EXAMPLES:
            shown.append(text)

    @property
    def has_list(self) -> bool:
        return bool(self.list_sid or self.list_to_create)


def classify(plan: Plan, row: Mapping[str, Any]) -> tuple[str, str | None, list[str]]:
    """``(kind, sid, changed fields)`` with kind ``created``, ``updated`` or ``unchanged``."""
    hit = plan.index.get(row["number"])
    if hit is None:
        return "created", None, []
    sid, digests = hit
    changed = changed_fields(row, digests)
    return ("updated" if changed else "unchanged"), sid, changed


class SyncPlanner:
    """Builds a :class:`Plan` with GET requests only.

    :param hook: the contacts hook.
    :param log: the task's logger.
    :param list_sid: the list, or None.
    :param list_name: the list's exact name instead (created when missing), or None.
    :param current_path: an earlier export of the account's contacts, or None.
    :param remove_missing: plan removing list members absent from the input.
    """

    def __init__(
        self,
        hook: Any,
        log: Any,
        *,
        list_sid: str | None,
        list_name: str | None,
        current_path: Any,
        remove_missing: bool,
    ) -> None:
        self.hook = hook
        self.log = log
        self.list_sid = list_sid
        self.list_name = list_name
        self.current_path = current_path
        self.remove_missing = remove_missing

    def plan(self, source: AudienceInput, rows: int) -> Plan:
        plan = Plan(rows=rows, list_sid=self.list_sid, replayed_removals=len(source.replays))
        self._find_list(plan)
        progress = Progress(self.log, "read", None)
        if self.current_path is not None:
            self._read_current(plan, progress)
        else:
            self._read(plan, self.hook.iter_contacts(), progress)
        self.log.info(
            "Read %s contact(s) with a number from %s in %.1f s",
            f"{plan.index.contacts:,}",
            plan.source,
            progress.elapsed,
        )
        if plan.list_sid is not None:
            for member in self.hook.iter_list_contacts(plan.list_sid):
                if isinstance(member.get("sid"), str):
                    plan.members[member["sid"]] = normalize_number(member.get("number"))
        if self.current_path is not None:
            self._refresh_updates(plan, source)
        self._count(plan, source)
        return plan

    def _find_list(self, plan: Plan) -> None:
        if self.list_name is None:
            return
        found = None
        lists = self.hook.iter_lists(name=self.list_name)
        try:
            found = next((lst for lst in lists if lst.get("name") == self.list_name), None)
        finally:
            close = getattr(lists, "close", None)
            if close is not None:
                close()
        if found is None:
            plan.list_to_create = self.list_name
        else:
            plan.list_sid = str(found["sid"])

    @staticmethod
    def _read(plan: Plan, contacts: Any, progress: Progress) -> None:
        try:
            for contact in contacts:
                plan.index.add(contact)
                progress.add()
        finally:
            close = getattr(contacts, "close", None)
            if close is not None:
                close()

    def _read_current(self, plan: Plan, progress: Progress) -> None:
        """``current_path``, then the contacts created since its newest one (newest first)."""
        path = to_path(self.current_path)
        newest: datetime | None = None
        for line_no, contact in read_jsonl(path, argument="current_path"):
            if not isinstance(contact, Mapping):
                raise ExotelValidationError(f"current_path {path}: line {line_no} is not a contact object")
            plan.index.add(contact)
            progress.add()
            created = parse_timestamp(contact.get("date_created"))
            if created is not None and (newest is None or created > newest):
                newest = created
        in_file = plan.index.contacts
        # created_from is inclusive: contacts of the newest second are read again (added once)
        self._read(plan, self.hook.iter_contacts(created_from=newest), progress)
        since = plan.index.contacts - in_file
        plan.source = f"current_path {path} (+{since:,} created since)"

    def _refresh_updates(self, plan: Plan, source: AudienceInput) -> None:
        """The file may be older than the account: re-read each contact it says needs an update."""
        stale: list[tuple[str, str]] = []
        for _, row in source.rows():
            kind, sid, _ = classify(plan, row)
            if kind == "updated" and sid is not None:
                stale.append((row["number"], sid))
        for number, sid in stale:
            try:
                fresh: Mapping[str, Any] | None = self.hook.get_contact(sid)
            except ExotelRequestError as exc:
                if exc.status != 404:
                    raise
                fresh = None
            plan.index.refresh(number, fresh)
        if stale:
            self.log.info("Re-read %s contact(s) that current_path says need an update", f"{len(stale):,}")

    def _count(self, plan: Plan, source: AudienceInput) -> None:
        for _, row in source.rows():
            kind, sid, changed = classify(plan, row)
            setattr(plan, kind, getattr(plan, kind) + 1)
            detail = f" ({', '.join(changed)})" if changed else ""
            plan.example(kind, f"{row['number']}{detail}")
            if plan.has_list and (sid is None or sid not in plan.members):
                plan.to_add += 1
                plan.example("add", row["number"])
        if self.remove_missing:
            for sid, number in plan.members.items():
                if not number or number_key(number) not in source.keys:
                    plan.to_remove.append(sid)
                    plan.example("remove", f"{number or '(no number)'} ({sid})")
        for sid in source.removals:  # replayed list_remove dead letters: members still are removed
            if sid in plan.members:
                plan.to_remove.append(sid)
                plan.example("remove", f"{plan.members[sid] or '(no number)'} ({sid}, replayed)")
