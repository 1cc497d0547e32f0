"""Campaign audiences: create contacts, and sync an audience (contacts + a list) idempotently.

Private module; the operators are importable from ``airflow_provider_exotel.operators.contacts``.
Like the other operator modules its top level stays cheap: the hook is imported when a task runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel._new_contacts import (
    MAX_BULK_CREATE,
    MAX_LIST_ADD,
    DuplicateNumbers,
    changed_fields,
    field_digests,
    normalize_number,
    number_key,
    validate_new_contact,
)
from airflow_provider_exotel._validation import check_int, check_list_sid
from airflow_provider_exotel.exceptions import ExotelError, ExotelRequestError, ExotelValidationError
from airflow_provider_exotel.operators.contacts import (
    _atomic_jsonl_writer,
    _check_bool,
    _check_path,
    _check_str,
    _closing,
    _dead_letter_writer,
    _ExotelBaseOperator,
    _is_deferred,
    _jsonl,
    _Progress,
    _read_jsonl,
    _to_path,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_exotel.hooks.contacts import BulkCreateResult

#: Rows of each kind shown when a sync logs its plan.
PLAN_EXAMPLES = 5

__all__ = [
    "ExotelCreateContactsFailedError",
    "ExotelCreateContactsOperator",
    "ExotelSyncContactsFailedError",
    "ExotelSyncContactsOperator",
]


class ExotelCreateContactsFailedError(ExotelError):
    """More contacts failed to be created than ``max_failures`` allows."""


class ExotelSyncContactsFailedError(ExotelError):
    """More rows failed to sync than ``max_failures`` allows."""


# --------------------------------------------------------------------------------------------------
# Input: a list of dicts or a JSON Lines file, validated whole before anything is sent
# --------------------------------------------------------------------------------------------------
class _Input:
    """The rows to create or sync: ``(original row, normalised copy)`` pairs, in input order.

    A file is never loaded whole: :meth:`validate` is one streaming pass (fields, numbers, no number
    twice) and each :meth:`rows` call is another.

    A row carrying an ``error`` object is a dead letter of an earlier run (``failed_output_path``)
    being replayed: the object is dropped and the row counted in :attr:`dead_letters`. With
    ``removals=True`` (the sync) a dead letter of stage ``list_remove`` is not an audience row: its
    ``error.contact_sid`` goes to :attr:`removals` (the replay removes that member again), it needs
    no valid number and :meth:`rows` skips it.
    """

    def __init__(self, contacts: Any, input_path: Any, *, removals: bool = False) -> None:
        self.contacts = contacts
        self.path = _to_path(input_path) if contacts is None else None
        self.replays_removals = removals
        #: 8-byte digest of every input number (filled by :meth:`validate`)
        self.keys: dict[bytes, int] = {}
        #: rows with an ``error`` object (filled by :meth:`validate`)
        self.dead_letters = 0
        #: contact sids of the ``list_remove`` dead letters, in input order (filled by :meth:`validate`)
        self.removals: list[str] = []

    def _where(self, ordinal: int) -> str:
        return f"contacts[{ordinal}]" if self.path is None else f"input_path {self.path}: line {ordinal}"

    def _raw(self) -> Iterator[tuple[int, Any, Mapping[str, Any] | None]]:
        """``(ordinal, row, error)``: the list index or the file's line number, the row without its
        dead-letter ``error`` object, and that object (``None`` for a row that is not one)."""
        if self.path is None:
            if isinstance(self.contacts, str | bytes | Mapping) or not isinstance(self.contacts, Iterable):
                raise ExotelValidationError(
                    f"contacts must be a list of contact dicts, got {type(self.contacts).__name__}"
                )
            items: Iterable[tuple[int, Any]] = enumerate(self.contacts)
        else:
            items = _read_jsonl(self.path, keep_errors=True)
        for ordinal, row in items:
            error = row.get("error") if isinstance(row, Mapping) else None
            if isinstance(error, Mapping):
                yield ordinal, {k: v for k, v in row.items() if k != "error"}, error
            else:
                yield ordinal, row, None

    def _removal(self, ordinal: int, error: Mapping[str, Any] | None) -> str | None:
        """The member to remove again, if this row is a ``list_remove`` dead letter of a sync."""
        if not self.replays_removals or error is None or error.get("stage") != "list_remove":
            return None
        return check_list_sid(
            error.get("contact_sid"), f"{self._where(ordinal)} (a list_remove dead letter) error.contact_sid"
        )

    def validate(self) -> int:
        """Check every row; return the number of audience rows (``list_remove`` dead letters apart)."""
        seen = DuplicateNumbers(self._where)
        removals: dict[str, int] = {}
        count = dead = 0
        for ordinal, row, error in self._raw():
            dead += error is not None
            sid = self._removal(ordinal, error)
            if sid is None:
                seen.add(validate_new_contact(row, self._where(ordinal))["number"], ordinal)
                count += 1
            elif sid in removals:
                raise ExotelValidationError(
                    f"{self._where(ordinal)} repeats the list_remove of contact {sid!r} "
                    f"(first in {self._where(removals[sid])})"
                )
            else:
                removals[sid] = ordinal
        self.keys = seen.keys
        self.dead_letters = dead
        self.removals = list(removals)
        return count

    def rows(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """``(row, normalised copy)`` of every audience row."""
        for ordinal, row, error in self._raw():
            if self._removal(ordinal, error) is None:
                yield row, validate_new_contact(row, self._where(ordinal))

    def describe(self) -> str:
        return "contacts" if self.path is None else f"input_path {self.path}"


def _check_source(contacts: Any, input_path: Any, removals: bool) -> None:
    has_contacts = contacts is not None
    has_path = input_path is not None and input_path != ""
    if has_contacts == has_path:
        raise ExotelValidationError(
            "give exactly one of contacts (a list of contact dicts) or input_path (a JSON Lines "
            f"file); got {'both' if has_contacts else 'neither'}"
        )
    if has_contacts and not _is_deferred(contacts):
        _Input(contacts, None, removals=removals).validate()
    if has_path and not _is_deferred(input_path):
        _check_path("input_path", input_path)


def _dead_letter(fh: Any, row: Any, code: Any, message: str, stage: str, **extra: Any) -> None:
    """One dead-letter line: the input row as given plus ``error`` (dropped again on replay)."""
    if fh is None:
        return
    out = dict(row) if isinstance(row, Mapping) else {"row": row}
    out["error"] = {"code": code, "message": message, "stage": stage, **extra}
    fh.write(_jsonl(out))


class _AudienceBase(_ExotelBaseOperator):
    """Arguments shared by create and sync: the input, failures and the dry run."""

    #: ``list_remove`` dead letters in the input replay as removals (the sync), not as contacts
    _replays_removals = False

    def __init__(
        self,
        *,
        contacts: Any = None,
        input_path: Any = None,
        exotel_conn_id: str = "exotel_default",
        list_sid: str | None = None,
        max_failures: int = 0,
        failed_output_path: Any = None,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(exotel_conn_id=exotel_conn_id, **kwargs)
        self.contacts = contacts
        self.input_path = input_path
        self.list_sid = list_sid
        self.max_failures = max_failures
        self.failed_output_path = failed_output_path
        # not ``self.dry_run``: that name is BaseOperator's dry_run() method, which Airflow calls
        self.validate_only = dry_run

    def _checks(self) -> list[tuple[Any, Any]]:
        return [
            *super()._checks(),
            (
                lambda pair: _check_source(pair[0], pair[1], self._replays_removals),
                (self.contacts, self.input_path),
            ),
            (lambda v: None if v is None else check_list_sid(v), self.list_sid),  # a path segment
            (lambda v: check_int("max_failures", v, minimum=0), self.max_failures),
            (lambda v: _check_path("failed_output_path", v), self.failed_output_path),
            (lambda v: _check_bool("dry_run", v), self.validate_only),
        ]

    def _failed_writer(self, stack: contextlib.ExitStack) -> Any:
        if self.failed_output_path is None:
            return None
        return stack.enter_context(_dead_letter_writer(_to_path(self.failed_output_path)))

    def _where_failed(self) -> str:
        if self.failed_output_path is not None:
            how = "input_path=" + (
                " and remove_missing=False" if getattr(self, "remove_missing", False) else ""
            )
            return f"; failed rows written to {_to_path(self.failed_output_path)} (replay with {how})"
        return "; set failed_output_path to keep them for a replay"


# --------------------------------------------------------------------------------------------------
# Create
# --------------------------------------------------------------------------------------------------
class ExotelCreateContactsOperator(_AudienceBase):
    """Create contacts in Exotel (``POST contacts``, up to 5000 per request), optionally into a list.

    The input is ``contacts`` (a list of dicts, or an XComArg) or ``input_path`` (JSON Lines, never
    loaded whole). Each row has a ``number`` (spaces, dashes, dots and parentheses are removed; then
    6-15 digits with an optional leading ``+``) and any of ``first_name, last_name, company_name,
    email, tag, custom_field``. The whole input is validated before the first request; a number may
    appear once.

    Returns ``BulkCreateResult.to_dict()`` — ``{"total", "created", "failed", "failed_numbers"}`` —
    plus ``"path"`` with ``output_path``. Rows that failed (to be created, or with ``list_sid`` to be
    added to the list) are written to ``failed_output_path`` as the input row plus ``"error":
    {"code", "message", "stage"}`` (``create`` or ``list_add``) before the task fails for more than
    ``max_failures`` of them; the file replays as ``input_path``. Rows that failed at ``list_add``
    exist in Exotel already (``error.contact_sid``): replay those with
    :class:`ExotelSyncContactsOperator`, which matches numbers, rather than creating them again.

    :param contacts: list of contact dicts to create. Templated.
    :param input_path: local path or storage URL of a JSON Lines file of contacts. Templated.
    :param exotel_conn_id: id of the ``exotel`` connection. Templated.
    :param list_sid: add the created contacts to this list. Templated.
    :param output_path: write ``{"number", "sid"}`` JSON Lines of the created contacts here
        (``number`` normalised). Templated.
    :param batch_size: contacts per request, 1..5000.
    :param max_failures: how many rows may fail before the task fails (default 0).
    :param failed_output_path: local path or storage URL for the failed rows. Templated.
    :param dry_run: validate and report what would be sent, without sending anything.
    :param hook_params: extra :class:`ExotelContactsHook` arguments, e.g. ``{"concurrency": 2}``.
    """

    template_fields: Sequence[str] = (
        "exotel_conn_id",
        "contacts",
        "input_path",
        "list_sid",
        "output_path",
        "failed_output_path",
    )
    ui_color = "#e8f5e9"

    def __init__(
        self,
        *,
        contacts: Any = None,
        input_path: Any = None,
        exotel_conn_id: str = "exotel_default",
        list_sid: str | None = None,
        output_path: Any = None,
        batch_size: int = MAX_BULK_CREATE,
        max_failures: int = 0,
        failed_output_path: Any = None,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            contacts=contacts,
            input_path=input_path,
            exotel_conn_id=exotel_conn_id,
            list_sid=list_sid,
            max_failures=max_failures,
            failed_output_path=failed_output_path,
            dry_run=dry_run,
            **kwargs,
        )
        self.output_path = output_path
        self.batch_size = batch_size
        self._check_arguments(at_runtime=False)

    def _checks(self) -> list[tuple[Any, Any]]:
        return [
            *super()._checks(),
            (lambda v: _check_path("output_path", v), self.output_path),
            (lambda v: check_int("batch_size", v, minimum=1, maximum=MAX_BULK_CREATE), self.batch_size),
        ]

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: ``input_path`` read; the Exotel contacts (and ``list_sid``'s members) and
        ``output_path`` written — nothing written for a dry run.

        :param task_instance: the finished task instance (unused).
        """
        from airflow_provider_exotel.operators._lineage import operator_lineage

        writes = not self.validate_only
        return operator_lineage(
            self,
            exotel_outputs=([None] + ([self.list_sid] if self.list_sid else [])) if writes else [],
            file_inputs=[self.input_path],
            file_outputs=[self.output_path] if writes else [],
        )

    def execute(self, context: Context) -> dict[str, Any]:
        self._check_arguments(at_runtime=True)
        source = _Input(self.contacts, self.input_path)
        total = source.validate()
        batches = -(-total // self.batch_size)
        if self.validate_only:
            self.log.info(
                "Dry run: %s valid contact(s) from %s would be created in %d batch(es) of up to %d%s; "
                "nothing was sent",
                f"{total:,}",
                source.describe(),
                batches,
                self.batch_size,
                f" and added to list {self.list_sid}" if self.list_sid else "",
            )
            return {
                "total": total,
                "created": 0,
                "failed": 0,
                "failed_numbers": [],
                "dry_run": True,
                "batches": batches,
                "batch_size": self.batch_size,
            }
        self.log.info(
            "Creating %s contact(s) from %s in %d batch(es) of up to %d",
            f"{total:,}",
            source.describe(),
            batches,
            self.batch_size,
        )
        try:
            result = self._create(source, total)
        finally:
            self._close_hook()
        summary = result.to_dict()
        self.log.info(
            "Create done: %s submitted, %s created, %s failed",
            f"{result.total:,}",
            f"{len(result.created):,}",
            f"{len(result.failed):,}",
        )
        if len(result.failed) > self.max_failures:
            examples = "; ".join(f"{f['number']} ({f['code']} {f['message']})" for f in result.failed[:5])
            raise ExotelCreateContactsFailedError(
                f"{len(result.failed):,} of {result.total:,} contacts failed "
                f"(max_failures={self.max_failures}){self._where_failed()}. First failures: {examples}"
            )
        if self.output_path is not None:
            summary["path"] = str(_to_path(self.output_path))
        return summary

    def _create(self, source: _Input, total: int) -> BulkCreateResult:
        from airflow_provider_exotel.hooks.contacts import BulkCreateResult

        hook = self.hook
        per_call = self.batch_size * max(1, int(getattr(hook, "concurrency", 1) or 1))
        result = BulkCreateResult()
        progress = _Progress(self.log, "created", total)
        aborted: ExotelError | None = None
        with contextlib.ExitStack() as stack:
            failed_fh = self._failed_writer(stack)
            out_fh = None
            if self.output_path is not None:
                out_fh = stack.enter_context(_atomic_jsonl_writer(_to_path(self.output_path)))
            for chunk in _chunks(source.rows(), per_call):
                originals = {norm["number"]: orig for orig, norm in chunk}
                part = BulkCreateResult(total=len(chunk))
                if aborted is None:
                    try:
                        part = hook.create_contacts([norm for _, norm in chunk], batch_size=self.batch_size)
                    except ExotelValidationError:
                        raise
                    except ExotelError as exc:  # e.g. credentials revoked mid-run: stop sending
                        aborted = exc
                if aborted is not None:
                    part.failed = [
                        {"number": n, "code": aborted.status or 0, "message": f"not created: {aborted}"}
                        for n in originals
                    ]
                for failure in part.failed:
                    _dead_letter(
                        failed_fh, originals[failure["number"]], failure["code"], failure["message"], "create"
                    )
                for created in part.created:
                    if out_fh is not None:
                        out_fh.write(_jsonl({"number": created["number"], "sid": created["sid"]}))
                if self.list_sid and part.created and aborted is None:
                    aborted = self._add_to_list(part, originals, failed_fh, aborted)
                result.merge(part)
                progress.add(len(chunk), extra=f", {len(result.failed):,} failed")
        if aborted is not None:
            self.log.error("Create stopped: %s%s", aborted, self._where_failed())
            raise aborted
        return result

    def _add_to_list(
        self, part: BulkCreateResult, originals: dict[str, Any], failed_fh: Any, aborted: ExotelError | None
    ) -> ExotelError | None:
        """Add one chunk's created contacts to ``list_sid``; failures join ``part.failed``."""
        number_of = {c["sid"]: c["number"] for c in part.created}
        try:
            added = self.hook.add_contacts_to_list(
                str(self.list_sid), list(number_of), batch_size=MAX_LIST_ADD
            )
            failures = [(f["sid"], f["code"], f["message"]) for f in added.failed]
        except ExotelValidationError:
            raise
        except ExotelError as exc:
            aborted = exc
            failures = [(sid, exc.status or 0, str(exc)) for sid in number_of]
        for sid, code, message in failures:
            number = number_of[sid]
            message = f"created as {sid} but not added to list {self.list_sid}: {message}"
            part.failed.append({"number": number, "code": code, "message": message})
            _dead_letter(failed_fh, originals[number], code, message, "list_add", contact_sid=sid)
        return aborted


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --------------------------------------------------------------------------------------------------
# Sync
# --------------------------------------------------------------------------------------------------
class _AccountIndex:
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
        self.contacts += 1
        created = contact.get("date_created")
        created_b = created.encode() if isinstance(created, str) else b""
        packed = field_digests(contact) + created_b + b"\0" + sid.encode()
        key = number_key(number)
        old = self._by_number.get(key)
        if old is None:
            self._by_number[key] = packed
            return
        self.same_number += 1
        old_created = old[48:].split(b"\0", 1)[0]
        if created_b and old_created and created_b < old_created:
            self._by_number[key] = packed

    def get(self, number: str) -> tuple[str, bytes] | None:
        packed = self._by_number.get(number_key(number))
        if packed is None:
            return None
        return packed[48:].split(b"\0", 1)[1].decode(), packed[:48]


@dataclass
class _Plan:
    list_sid: str | None = None
    list_to_create: str | None = None
    members: dict[str, str] = field(default_factory=dict)  # sid -> number
    index: _AccountIndex = field(default_factory=_AccountIndex)
    rows: int = 0  # audience rows
    replayed_removals: int = 0  # list_remove dead letters in the input
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    to_add: int = 0
    to_remove: list[str] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def example(self, kind: str, text: str) -> None:
        shown = self.examples.setdefault(kind, [])
        if len(shown) < PLAN_EXAMPLES:
            shown.append(text)


class ExotelSyncContactsOperator(_AudienceBase):
    """Make Exotel match an audience: contacts keyed by normalised number, and optionally a list.

    **Plan** (GET requests only): read the account's contacts — or ``current_path``, the JSON
    Lines of an earlier fetch, which saves ``contacts/19`` requests — and, with a list, the list's
    members. **Apply**: create the numbers Exotel lacks, update contacts whose given fields differ
    (fields absent from a row are left alone), add every input contact that is not a member yet to
    the list (``list_sid``, or ``list_name``, created when missing) and, with
    ``remove_missing=True``, remove the members whose number is not in the input. A second sync of
    the same input sends no write at all. Several Exotel contacts with one number: the oldest is the
    match; the others are counted in the plan and left alone.

    Returns ``{"created", "updated", "unchanged", "added_to_list", "removed_from_list", "failed",
    "dry_run"}``: every audience row is counted once in ``created``, ``updated`` or ``unchanged``
    (what the plan found it needed; replayed ``list_remove`` rows apart, see below);
    ``added_to_list``/``removed_from_list`` count done changes; ``failed`` counts rows that failed
    in any stage. They go to ``failed_output_path`` as the input row plus
    ``"error": {"code", "message", "stage"}`` (``create``, ``update``, ``list_add``,
    ``list_remove``) — the file replays as ``input_path`` — and the task fails when more than
    ``max_failures`` rows failed. A contact deleted between plan and apply fails at ``update``
    (it is not re-created).

    Replay: the same sync with ``input_path=<failed_output_path>`` and ``remove_missing=False`` (a
    file of failed rows is not the whole audience: an input holding dead-letter rows — rows with an
    ``error`` object — is refused with ``remove_missing=True``). A ``list_remove`` row holds the
    member's number when it has one and, in ``error``, its ``contact_sid``: the replay removes that
    contact from the list again if it is still a member (no valid number needed) rather than
    treating the row as audience. Such rows count in ``removed_from_list`` or ``failed``, never in
    ``created``/``updated``/``unchanged``, which add up to the audience rows.

    :param contacts: list of rows (``number`` plus any of ``first_name, last_name, company_name,
        email, tag, custom_field``). Templated.
    :param input_path: local path or storage URL of a JSON Lines file of rows. Templated.
    :param exotel_conn_id: id of the ``exotel`` connection. Templated.
    :param list_sid: the list the audience must be in. Templated.
    :param list_name: instead of ``list_sid``: the list's exact name; created when missing.
        Templated.
    :param current_path: JSON Lines of the account's contacts from an earlier fetch (e.g.
        ``ExotelFetchContactsOperator(output_path=...)``), read instead of the account. It must be
        recent: contacts created since would be created again. Templated.
    :param remove_missing: remove list members whose number is not in the input.
    :param max_failures: how many rows may fail before the task fails (default 0).
    :param failed_output_path: local path or storage URL for the failed rows. Templated.
    :param dry_run: plan only (GET requests only) and log the plan.
    :param hook_params: extra :class:`ExotelContactsHook` arguments, e.g. ``{"concurrency": 2}``.
    """

    template_fields: Sequence[str] = (
        "exotel_conn_id",
        "contacts",
        "input_path",
        "list_sid",
        "list_name",
        "current_path",
        "failed_output_path",
    )
    ui_color = "#ede7f6"
    _replays_removals = True

    def __init__(
        self,
        *,
        contacts: Any = None,
        input_path: Any = None,
        exotel_conn_id: str = "exotel_default",
        list_sid: str | None = None,
        list_name: str | None = None,
        current_path: Any = None,
        remove_missing: bool = False,
        max_failures: int = 0,
        failed_output_path: Any = None,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            contacts=contacts,
            input_path=input_path,
            exotel_conn_id=exotel_conn_id,
            list_sid=list_sid,
            max_failures=max_failures,
            failed_output_path=failed_output_path,
            dry_run=dry_run,
            **kwargs,
        )
        self.list_name = list_name
        self.current_path = current_path
        self.remove_missing = remove_missing
        self._check_arguments(at_runtime=False)

    def _checks(self) -> list[tuple[Any, Any]]:
        return [
            *super()._checks(),
            (lambda v: _check_str("list_name", v, optional=True), self.list_name),
            (lambda v: _check_path("current_path", v), self.current_path),
            (lambda v: _check_bool("remove_missing", v), self.remove_missing),
            (self._check_list_args, (self.list_sid, self.list_name, self.remove_missing)),
        ]

    @staticmethod
    def _check_list_args(args: tuple[Any, Any, Any]) -> None:
        list_sid, list_name, remove_missing = args
        if list_sid is not None and list_name is not None:
            raise ExotelValidationError("give at most one of list_sid or list_name, got both")
        if remove_missing is True and list_sid is None and list_name is None:
            raise ExotelValidationError("remove_missing=True needs a list: set list_sid or list_name")

    # ------------------------------------------------------------------ run
    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: ``input_path`` and ``current_path`` (or the account's contacts) and the
        list's members read; the Exotel contacts and the list's members written (not for a dry run).

        :param task_instance: the finished task instance (unused).
        """
        from airflow_provider_exotel.operators._lineage import operator_lineage

        list_sid = getattr(self, "_lineage_list_sid", None) or self.list_sid
        lists = [list_sid] if list_sid else []
        return operator_lineage(
            self,
            exotel_inputs=([] if self.current_path is not None else [None]) + lists,
            exotel_outputs=[] if self.validate_only else [None, *lists],
            file_inputs=[self.input_path, self.current_path],
        )

    def execute(self, context: Context) -> dict[str, Any]:
        self._check_arguments(at_runtime=True)
        source = _Input(self.contacts, self.input_path, removals=True)
        rows = source.validate()
        self._check_replay(source)
        if rows == 0 and self.remove_missing:
            raise ExotelValidationError(
                f"{source.describe()} is empty and remove_missing=True would empty the list; refusing "
                "(an empty audience is more often a failed export than an intent — delete the list instead)"
            )
        try:
            plan = self._plan(source, rows)
            self._lineage_list_sid = plan.list_sid  # found by list_name: for OpenLineage
            self._log_plan(plan, source)
            if self.validate_only:
                return {
                    "created": plan.created,
                    "updated": plan.updated,
                    "unchanged": plan.unchanged,
                    "added_to_list": plan.to_add,
                    "removed_from_list": len(plan.to_remove),
                    "failed": 0,
                    "dry_run": True,
                }
            return self._apply(plan, source)
        finally:
            self._close_hook()

    def _check_replay(self, source: _Input) -> None:
        """Refuse, before any request, a replay of dead letters that would do harm or cannot work."""
        if source.dead_letters and self.remove_missing:
            raise ExotelValidationError(
                f"{source.describe()} holds {source.dead_letters:,} dead-letter row(s) (rows with an "
                "'error' object, from failed_output_path): a replay of failed rows is not the whole "
                "audience, and remove_missing=True would remove every list member not in it. Replay "
                "with remove_missing=False"
            )
        if source.removals and self.list_sid is None and self.list_name is None:
            raise ExotelValidationError(
                f"{source.describe()} holds {len(source.removals):,} list_remove dead-letter row(s): "
                "replay them with the list they failed on (list_sid or list_name)"
            )

    # ------------------------------------------------------------------ plan (GET only)
    def _plan(self, source: _Input, rows: int) -> _Plan:
        hook = self.hook
        plan = _Plan(rows=rows, list_sid=self.list_sid, replayed_removals=len(source.removals))
        if self.list_name is not None:
            found = None
            with _closing(hook.iter_lists(name=self.list_name)) as lists:
                for lst in lists:
                    if lst.get("name") == self.list_name:
                        found = lst
                        break
            if found is None:
                plan.list_to_create = self.list_name
            else:
                plan.list_sid = str(found["sid"])

        progress = _Progress(self.log, "read", None)
        if self.current_path is not None:
            path = _to_path(self.current_path)
            for line_no, contact in _read_jsonl(path):
                if not isinstance(contact, Mapping):
                    raise ExotelValidationError(
                        f"current_path {path}: line {line_no} is not a contact object"
                    )
                plan.index.add(contact)
                progress.add()
            where = f"current_path {path}"
        else:
            for contact in hook.iter_contacts():
                plan.index.add(contact)
                progress.add()
            where = "the account"
        self.log.info(
            "Read %s contact(s) with a number from %s in %.1f s",
            f"{plan.index.contacts:,}",
            where,
            progress.elapsed,
        )
        if plan.list_sid is not None:
            for member in hook.iter_list_contacts(plan.list_sid):
                if isinstance(member.get("sid"), str):
                    plan.members[member["sid"]] = normalize_number(member.get("number"))

        for _, row in source.rows():
            kind, sid, changed = self._classify(plan, row)
            setattr(plan, kind, getattr(plan, kind) + 1)
            detail = f" ({', '.join(changed)})" if changed else ""
            plan.example(kind, f"{row['number']}{detail}")
            if (plan.list_sid or plan.list_to_create) and (sid is None or sid not in plan.members):
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
        return plan

    @staticmethod
    def _classify(plan: _Plan, row: Mapping[str, Any]) -> tuple[str, str | None, list[str]]:
        """``(kind, sid, changed fields)`` with kind ``created``, ``updated`` or ``unchanged``."""
        hit = plan.index.get(row["number"])
        if hit is None:
            return "created", None, []
        sid, digests = hit
        changed = changed_fields(row, digests)
        return ("updated" if changed else "unchanged"), sid, changed

    def _log_plan(self, plan: _Plan, source: _Input) -> None:
        if plan.list_to_create:
            target = f"list {plan.list_to_create!r} (to be created)"
        elif plan.list_sid:
            target = f"list {plan.list_sid} ({len(plan.members):,} members)"
        else:
            target = "no list"
        self.log.info(
            "%s: %s row(s) from %s against %s Exotel contact(s), %s: %s to create, %s to update, "
            "%s unchanged, %s to add to the list, %s to remove from it",
            "Dry run plan" if self.validate_only else "Plan",
            f"{plan.rows:,}",
            source.describe(),
            f"{plan.index.contacts:,}",
            target,
            f"{plan.created:,}",
            f"{plan.updated:,}",
            f"{plan.unchanged:,}",
            f"{plan.to_add:,}",
            f"{len(plan.to_remove):,}",
        )
        if plan.replayed_removals:
            self.log.info(
                "%s list_remove dead letter(s) replayed: those still members of the list are removed "
                "(counted in removed_from_list), the others are gone already",
                f"{plan.replayed_removals:,}",
            )
        if plan.index.same_number:
            self.log.info(
                "%s Exotel contact(s) share a number with an older contact; the oldest is matched, "
                "the others are left alone",
                f"{plan.index.same_number:,}",
            )
        labels = {
            "created": "to create",
            "updated": "to update",
            "unchanged": "unchanged",
            "add": "to add to the list",
            "remove": "to remove from the list",
        }
        for kind, label in labels.items():
            shown = plan.examples.get(kind)
            if shown:
                self.log.info("  %s, first %d: %s", label, len(shown), "; ".join(shown))
        if self.validate_only:
            self.log.info("Dry run: nothing was sent")

    # ------------------------------------------------------------------ apply
    def _apply(self, plan: _Plan, source: _Input) -> dict[str, Any]:
        run = _SyncRun(self, plan)
        with contextlib.ExitStack() as stack:
            run.failed_fh = self._failed_writer(stack)
            run.start_list()
            for row, norm in source.rows():
                run.row(row, norm)
            run.finish()
        counts = {
            "created": plan.created,
            "updated": plan.updated,
            "unchanged": plan.unchanged,
            "added_to_list": run.added,
            "removed_from_list": run.removed,
            "failed": run.failed,
            "dry_run": False,
        }
        self.log.info(
            "Sync done: %s created, %s updated, %s unchanged, %s added to the list, %s removed from "
            "it, %s failed",
            *(
                f"{counts[k]:,}"
                for k in ("created", "updated", "unchanged", "added_to_list", "removed_from_list", "failed")
            ),
        )
        if run.aborted is not None:
            self.log.error("Sync stopped: %s%s", run.aborted, self._where_failed())
            raise run.aborted
        if run.failed > self.max_failures:
            examples = "; ".join(run.first_failures)
            raise ExotelSyncContactsFailedError(
                f"{run.failed:,} of {plan.rows + len(plan.to_remove):,} rows failed to sync "
                f"(max_failures={self.max_failures})"
                f"{self._where_failed()}. First failures: {examples}"
            )
        return counts


class _SyncRun:
    """The apply phase: buffers of up to 5000 creates, updates and list additions, flushed in turn.

    A row that fails at a stage is dead-lettered and goes no further (a replay redoes every stage
    it needs). After a fatal error (e.g. revoked credentials) nothing more is sent and every row
    not done yet is dead-lettered with that error.
    """

    def __init__(self, op: ExotelSyncContactsOperator, plan: _Plan) -> None:
        self.op = op
        self.hook = op.hook
        self.plan = plan
        self.failed_fh: Any = None
        self.creates: list[tuple[Any, dict[str, Any]]] = []
        self.updates: list[tuple[Any, dict[str, Any]]] = []
        self.adds: list[tuple[Any, str]] = []
        self.added = 0
        self.removed = 0
        self.failed = 0
        self.first_failures: list[str] = []
        self.aborted: ExotelError | None = None
        self.list_sid = plan.list_sid
        self.progress = _Progress(op.log, "synced", plan.rows)

    def fail(self, row: Any, code: Any, message: str, stage: str, **extra: Any) -> None:
        self.failed += 1
        if len(self.first_failures) < 5:
            number = row.get("number") if isinstance(row, Mapping) else row
            if not number and "contact_sid" in extra:
                number = f"contact {extra['contact_sid']}"
            self.first_failures.append(f"{number} ({stage}: {code} {message})")
        _dead_letter(self.failed_fh, row, code, message, stage, **extra)

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a hook call; a fatal error stops every later write (``None`` is returned)."""
        if self.aborted is not None:
            return None
        try:
            return fn(*args, **kwargs)
        except ExotelValidationError:
            raise
        except ExotelError as exc:
            self.aborted = exc
            return None

    def start_list(self) -> None:
        name = self.plan.list_to_create
        if name is None:
            return
        lst = self.call(self._create_list, name)
        if lst is not None:
            self.list_sid = str(lst["sid"])
            self.op.log.info("Created list %r: %s", name, self.list_sid)
            self.op._lineage_list_sid = self.list_sid

    def _create_list(self, name: str) -> dict[str, Any]:
        """The plan found no list of that name: create it (or take it, if it appeared since)."""
        try:
            return self.hook.create_list(name)
        except ExotelRequestError as exc:
            if exc.status != 409:
                raise
            return self.hook.ensure_list(name)

    def row(self, row: Any, norm: dict[str, Any]) -> None:
        kind, sid, changed = ExotelSyncContactsOperator._classify(self.plan, norm)
        if kind == "created":
            self.creates.append((row, norm))
            if len(self.creates) >= MAX_BULK_CREATE:
                self.flush_creates()
        elif kind == "updated":
            update = {"sid": sid, **{f: norm[f] for f in changed}}
            self.updates.append((row, update))
            if len(self.updates) >= MAX_BULK_CREATE:
                self.flush_updates()
        else:
            self.to_list(row, sid)  # type: ignore[arg-type]
        self.progress.add(extra=f", {self.failed:,} failed")

    def to_list(self, row: Any, sid: str) -> None:
        if (self.plan.list_sid or self.plan.list_to_create) and sid not in self.plan.members:
            self.adds.append((row, sid))
            if len(self.adds) >= MAX_LIST_ADD:
                self.flush_adds()

    def _stage_failed(self, rows: Iterable[Any], stage: str) -> None:
        assert self.aborted is not None
        for row in rows:
            self.fail(row, self.aborted.status or 0, f"not synced: {self.aborted}", stage)

    def flush_creates(self) -> None:
        batch, self.creates = self.creates, []
        if not batch:
            return
        result = self.call(self.hook.create_contacts, [n for _, n in batch], batch_size=MAX_BULK_CREATE)
        if result is None:
            return self._stage_failed((r for r, _ in batch), "create")
        by_number = {n["number"]: r for r, n in batch}
        for failure in result.failed:
            self.fail(by_number[failure["number"]], failure["code"], failure["message"], "create")
        for created in result.created:
            self.to_list(by_number[created["number"]], created["sid"])

    def flush_updates(self) -> None:
        batch, self.updates = self.updates, []
        if not batch:
            return
        result = self.call(self.hook.bulk_update_contacts, [u for _, u in batch], batch_size=MAX_BULK_CREATE)
        if result is None:
            return self._stage_failed((r for r, _ in batch), "update")
        by_sid = {u["sid"]: r for r, u in batch}
        for failure in result.failed:
            self.fail(by_sid[failure["sid"]], failure["code"], failure["message"], "update")
        for sid in result.succeeded:
            self.to_list(by_sid[sid], sid)

    def flush_adds(self) -> None:
        batch, self.adds = self.adds, []
        if not batch:
            return
        if self.list_sid is None:  # the list could not be created
            return self._stage_failed((r for r, _ in batch), "list_add")
        result = self.call(self.hook.add_contacts_to_list, self.list_sid, [s for _, s in batch])
        if result is None:
            return self._stage_failed((r for r, _ in batch), "list_add")
        by_sid = {s: r for r, s in batch}
        for failure in result.failed:
            self.fail(
                by_sid[failure["sid"]],
                failure["code"],
                failure["message"],
                "list_add",
                contact_sid=failure["sid"],
            )
        self.added += len(result.succeeded)

    def finish(self) -> None:
        self.flush_creates()
        self.flush_updates()
        self.flush_adds()
        remove = self.plan.to_remove
        if not remove or self.list_sid is None:
            return
        result = self.call(self.hook.remove_contacts_from_list, self.list_sid, remove)
        if result is None:
            for sid in remove:
                self.fail(
                    self._member_row(sid),
                    self.aborted.status or 0,  # type: ignore[union-attr]
                    f"not removed: {self.aborted}",
                    "list_remove",
                    contact_sid=sid,
                )
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
