"""The sync's apply phase (private): creates, updates, list additions and removals, in buffers.

A row that fails at a stage is dead-lettered and goes no further (a replay redoes every stage it
needs). After a fatal error (e.g. revoked credentials) nothing more is sent: what was applied before
it counts as applied (the hook's ``partial_result``), every row not done yet is dead-lettered with
that error — a contact that exists already as ``list_add`` with its ``contact_sid``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_exotel._new_contacts import MAX_BULK_CREATE, MAX_LIST_ADD
from airflow_provider_exotel.exceptions import ExotelError, ExotelRequestError, ExotelValidationError
from airflow_provider_exotel.operators._audience import dead_letter
from airflow_provider_exotel.operators._base import known_part
from airflow_provider_exotel.operators._files import JsonlWriter
from airflow_provider_exotel.operators._progress import Progress
from airflow_provider_exotel.operators._sync_plan import Plan, classify

__all__ = ["SyncRun", "remove_members"]


def remove_members(hook: Any, list_sid: str, sids: list[str]) -> tuple[Any, ExotelError | None]:
    """Remove ``sids`` from a list; ``(BulkUpdateResult, error)``.

    After a fatal error the removals done before it still count (the hook's ``partial_result``);
    without one, every member counts as not removed.
    """
    from airflow_provider_exotel.hooks.contacts import BulkUpdateResult

    try:
        return hook.remove_contacts_from_list(list_sid, sids), None
    except ExotelValidationError:
        raise
    except ExotelError as exc:
        known = known_part(exc, BulkUpdateResult, len(sids))
        return (known or BulkUpdateResult.unknown(sids, exc, sent=True)), exc


class SyncRun:
    """The apply phase: buffers of up to 5000 creates, updates and list additions, flushed in turn.

    :param hook: the contacts hook.
    :param log: the task's logger.
    :param plan: the plan (its index classifies each row again, as it streams by).
    :param failed: the dead-letter writer, or None.
    """

    def __init__(self, hook: Any, log: Any, plan: Plan, failed: JsonlWriter | None) -> None:
        self.hook = hook
        self.log = log
        self.plan = plan
        self.failed_out = failed
        self.creates: list[tuple[Any, dict[str, Any]]] = []
        self.updates: list[tuple[Any, dict[str, Any]]] = []
        self.adds: list[tuple[Any, str]] = []
        self.added = 0
        self.removed = 0
        self.failed = 0
        self.first_failures: list[str] = []
        self.aborted: ExotelError | None = None
        #: the list written to (found by name, or created by :meth:`start_list`)
        self.list_sid = plan.list_sid
        self.progress = Progress(log, "synced", plan.rows)

    def fail(self, row: Any, code: Any, message: str, stage: str, **extra: Any) -> None:
        self.failed += 1
        if len(self.first_failures) < 5:
            number = row.get("number") if isinstance(row, Mapping) else row
            if not number and "contact_sid" in extra:
                number = f"contact {extra['contact_sid']}"
            self.first_failures.append(f"{number} ({stage}: {code} {message})")
        dead_letter(self.failed_out, row, code, message, stage, **extra)

    def call(self, expected: type, total: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a hook call; a fatal error stops every later write and returns what it applied (or None)."""
        if self.aborted is not None:
            return None
        try:
            return fn(*args, **kwargs)
        except ExotelValidationError:
            raise
        except ExotelError as exc:
            self.aborted = exc
            return known_part(exc, expected, total)

    def start_list(self) -> None:
        name = self.plan.list_to_create
        if name is None:
            return
        if self.aborted is None:
            try:
                lst = self._create_list(name)
            except ExotelValidationError:
                raise
            except ExotelError as exc:
                self.aborted = exc
                return
            self.list_sid = str(lst["sid"])
            self.log.info("Created list %r: %s", name, self.list_sid)

    def _create_list(self, name: str) -> dict[str, Any]:
        """The plan found no list of that name: create it (or take it, if it appeared since)."""
        try:
            return self.hook.create_list(name)
        except ExotelRequestError as exc:
            if exc.status != 409:
                raise
            return self.hook.ensure_list(name)

    def row(self, row: Any, norm: dict[str, Any]) -> None:
        kind, sid, changed = classify(self.plan, norm)
        if kind == "created":
            self.creates.append((row, norm))
            if len(self.creates) >= MAX_BULK_CREATE:
                self.flush_creates()
        elif kind == "updated":
            self.updates.append((row, {"sid": sid, **{f: norm[f] for f in changed}}))
            if len(self.updates) >= MAX_BULK_CREATE:
                self.flush_updates()
        else:
            self.to_list(row, sid)  # type: ignore[arg-type]
        self.progress.add(extra=f", {self.failed:,} failed")

    def to_list(self, row: Any, sid: str) -> None:
        if self.plan.has_list and sid not in self.plan.members:
            self.adds.append((row, sid))
            if len(self.adds) >= MAX_LIST_ADD:
                self.flush_adds()

    def _not_done(self, rows: Iterable[Any], stage: str) -> None:
        error = self.aborted
        assert error is not None
        for row in rows:
            self.fail(row, error.status or 0, f"not synced: {error}", stage)

    def flush_creates(self) -> None:
        from airflow_provider_exotel.hooks.contacts import BulkCreateResult

        batch, self.creates = self.creates, []
        if not batch:
            return
        norms = [n for _, n in batch]
        result = self.call(
            BulkCreateResult, len(norms), self.hook.create_contacts, norms, batch_size=MAX_BULK_CREATE
        )
        if result is None:
            return self._not_done((r for r, _ in batch), "create")
        by_number = {n["number"]: r for r, n in batch}
        for failure in result.failed:
            self.fail(by_number[failure["number"]], failure["code"], failure["message"], "create")
        for created in result.created:
            self.to_list(by_number[created["number"]], created["sid"])

    def flush_updates(self) -> None:
        from airflow_provider_exotel.hooks.contacts import BulkUpdateResult

        batch, self.updates = self.updates, []
        if not batch:
            return
        updates = [u for _, u in batch]
        result = self.call(
            BulkUpdateResult,
            len(updates),
            self.hook.bulk_update_contacts,
            updates,
            batch_size=MAX_BULK_CREATE,
        )
        if result is None:
            return self._not_done((r for r, _ in batch), "update")
        by_sid = {u["sid"]: r for r, u in batch}
        for failure in result.failed:
            self.fail(by_sid[failure["sid"]], failure["code"], failure["message"], "update")
        for sid in result.succeeded:
            self.to_list(by_sid[sid], sid)

    def flush_adds(self) -> None:
        from airflow_provider_exotel.hooks.contacts import BulkUpdateResult

        batch, self.adds = self.adds, []
        if not batch:
            return
        result = None
        if self.list_sid is not None:  # else the list could not be created
            sids = [s for _, s in batch]
            result = self.call(
                BulkUpdateResult, len(sids), self.hook.add_contacts_to_list, self.list_sid, sids
            )
        by_sid = {s: r for r, s in batch}
        if result is None:
            error = self.aborted
            code, message = (error.status or 0, f"not synced: {error}") if error else (0, "no list")
            for sid, row in by_sid.items():
                self.fail(row, code, message, "list_add", contact_sid=sid)
            return
        for failure in result.failed:
            sid = failure["sid"]
            self.fail(by_sid[sid], failure["code"], failure["message"], "list_add", contact_sid=sid)
        self.added += len(result.succeeded)

    def finish(self) -> None:
        self.flush_creates()
        self.flush_updates()
        self.flush_adds()
        remove = self.plan.to_remove
        if not remove or self.list_sid is None:
            return
        result = None
        error = self.aborted
        if error is None:
            result, error = remove_members(self.hook, self.list_sid, remove)
            self.aborted = error
        if result is None:
            assert error is not None
            for sid in remove:
                row = self._member_row(sid)
                self.fail(row, error.status or 0, f"not removed: {error}", "list_remove", contact_sid=sid)
            return
        for failure in result.failed:
            sid = failure["sid"]
            self.fail(
                self._member_row(sid), failure["code"], failure["message"], "list_remove", contact_sid=sid
            )
        self.removed += len(result.succeeded)

    def _member_row(self, sid: str) -> dict[str, Any]:
        """A ``list_remove`` dead letter's row: the member's number when it has one, else nothing
        (the replay removes ``error.contact_sid`` again; it does not treat the row as audience)."""
        number = self.plan.members.get(sid)
        return {"number": number} if number else {}
