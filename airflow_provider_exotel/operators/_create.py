"""The create operator (private; public names in ``operators.contacts``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel._new_contacts import MAX_BULK_CREATE, MAX_LIST_ADD, normalize_number
from airflow_provider_exotel._validation import check_int
from airflow_provider_exotel.exceptions import ExotelError, ExotelValidationError
from airflow_provider_exotel.operators._audience import AudienceInput, AudienceOperator, dead_letter
from airflow_provider_exotel.operators._base import Check, check_path, known_part
from airflow_provider_exotel.operators._files import JsonlWriter, jsonl_writer, to_path
from airflow_provider_exotel.operators._progress import Progress

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_exotel.hooks.contacts import BulkCreateResult

__all__ = ["ExotelCreateContactsFailedError", "ExotelCreateContactsOperator", "chunks"]


class ExotelCreateContactsFailedError(ExotelError):
    """More contacts failed to be created than ``max_failures`` allows."""


def chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """Lists of at most ``size`` items of ``rows``."""
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class ExotelCreateContactsOperator(AudienceOperator):
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
    ``max_failures`` of them; the file replays as ``input_path``. A ``list_add`` row exists in
    Exotel already (``error.contact_sid``): replayed here it is only added to the list, not created.
    When a fatal error (e.g. revoked credentials) stops the run, the contacts created before it are
    reported as created (log, ``output_path``, and the raised error's ``partial_result``, a
    ``BulkCreateResult`` of the whole input); only the others are dead-lettered.

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
    _replays_by_sid = frozenset({"list_add"})

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

    def _checks(self) -> list[Check]:
        return [
            *super()._checks(),
            (lambda v: check_path("output_path", v), self.output_path),
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
        source = self._input(self.contacts, self.input_path)
        total = source.validate()
        if source.replays and self.list_sid is None:
            raise ExotelValidationError(
                f"{source.describe()} holds {len(source.replays):,} list_add dead-letter row(s) (contacts "
                "that exist already): replay them with the list they failed on (list_sid)"
            )
        batches = -(-total // self.batch_size)
        also = f" and added to list {self.list_sid}" if self.list_sid else ""
        if source.replays:
            also += f"; {len(source.replays):,} existing contact(s) only added to the list"
        if self.validate_only:
            self.log.info(
                "Dry run: %s valid contact(s) from %s would be created in %d batch(es) of up to %d%s; "
                "nothing was sent",
                f"{total:,}",
                source.describe(),
                batches,
                self.batch_size,
                also,
            )
            return {
                "total": total + len(source.replays),
                "created": 0,
                "failed": 0,
                "failed_numbers": [],
                "dry_run": True,
                "batches": batches,
                "batch_size": self.batch_size,
            }
        self.log.info(
            "Creating %s contact(s) from %s in %d batch(es) of up to %d%s",
            f"{total:,}",
            source.describe(),
            batches,
            self.batch_size,
            also,
        )
        try:
            result = _CreateRun(self).run(source, total)
        finally:
            self._close_hook()
        return self._summary(result)

    def _summary(self, result: BulkCreateResult) -> dict[str, Any]:
        summary = result.to_dict()
        if len(result.failed) > self.max_failures:
            examples = "; ".join(f"{f['number']} ({f['code']} {f['message']})" for f in result.failed[:5])
            raise ExotelCreateContactsFailedError(
                f"{len(result.failed):,} of {result.total:,} contacts failed "
                f"(max_failures={self.max_failures}){self._where_failed()}. First failures: {examples}"
            )
        if self.output_path is not None:
            summary["path"] = str(to_path(self.output_path))
        return summary


class _CreateRun:
    """One run of the create operator: chunks of creates, then their list additions, then replays.

    After a fatal error nothing more is sent; what was applied before it still counts (and goes to
    ``output_path``), every row not applied is dead-lettered with that error.
    """

    def __init__(self, op: ExotelCreateContactsOperator) -> None:
        from airflow_provider_exotel.hooks.contacts import BulkCreateResult

        self.op = op
        self.hook = op.hook
        self.list_sid = op.list_sid
        self.result = BulkCreateResult()
        self.aborted: ExotelError | None = None
        self.failed: JsonlWriter | None = None
        self.out: JsonlWriter | None = None

    def run(self, source: AudienceInput, total: int) -> BulkCreateResult:
        op = self.op
        per_call = op.batch_size * max(1, int(getattr(self.hook, "concurrency", 1) or 1))
        progress = Progress(op.log, "created", total)
        with contextlib.ExitStack() as stack:
            self.failed = op._failed_writer(stack)
            if op.output_path is not None:
                self.out = stack.enter_context(jsonl_writer(to_path(op.output_path)))
            for chunk in chunks(source.rows(), per_call):
                self._chunk(chunk)
                progress.add(len(chunk), extra=f", {len(self.result.failed):,} failed")
            self._replay_list_adds(source.replays)
        result = self.result
        op.log.info(
            "Create done: %s submitted, %s created, %s failed",
            f"{result.total:,}",
            f"{len(result.created):,}",
            f"{len(result.failed):,}",
        )
        if self.aborted is not None:
            op.log.error("Create stopped: %s%s", self.aborted, op._where_failed())
            self.aborted.partial_result = result  # type: ignore[attr-defined]  # the whole run
            raise self.aborted
        return result

    def _send(self, norms: list[dict[str, Any]]) -> BulkCreateResult:
        """One hook call; after a fatal error, what it applied (``partial_result``), the rest failed."""
        from airflow_provider_exotel.hooks.contacts import BulkCreateResult

        sent = self.aborted is None
        if sent:
            try:
                return self.hook.create_contacts(norms, batch_size=self.op.batch_size)
            except ExotelValidationError:
                raise
            except ExotelError as exc:  # e.g. credentials revoked mid-run: stop sending
                self.aborted = exc
                known = known_part(exc, BulkCreateResult, len(norms))
                if known is not None:
                    return known
        assert self.aborted is not None
        return BulkCreateResult.unknown([n["number"] for n in norms], self.aborted, sent=sent)

    def _chunk(self, chunk: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        originals = {norm["number"]: orig for orig, norm in chunk}
        part = self._send([norm for _, norm in chunk])
        for failure in part.failed:
            dead_letter(
                self.failed, originals[failure["number"]], failure["code"], failure["message"], "create"
            )
        for created in part.created:
            if self.out is not None:
                self.out.write({"number": created["number"], "sid": created["sid"]})
        self.result.merge(part)
        if self.list_sid and part.created:
            self._add([(originals[c["number"]], c["sid"], c["number"]) for c in part.created])

    def _replay_list_adds(self, replays: list[tuple[dict[str, Any], str]]) -> None:
        """``list_add`` dead letters of an earlier run: the contacts exist, only add them."""
        if not replays:
            return
        self.result.total += len(replays)
        self._add([(row, sid, normalize_number(row.get("number"))) for row, sid in replays])

    def _add(self, items: list[tuple[dict[str, Any], str, str]]) -> None:
        """Add contacts to ``list_sid`` (``(row, sid, number)`` each); failures are dead-lettered."""
        from airflow_provider_exotel.hooks.contacts import BulkUpdateResult

        by_sid = {sid: (row, number) for row, sid, number in items}
        sids = list(by_sid)
        sent = self.aborted is None
        done: BulkUpdateResult | None = None
        if sent:
            try:
                done = self.hook.add_contacts_to_list(str(self.list_sid), sids, batch_size=MAX_LIST_ADD)
            except ExotelValidationError:
                raise
            except ExotelError as exc:  # what was added before it stays added (partial_result)
                self.aborted = exc
                done = known_part(exc, BulkUpdateResult, len(sids))
        if done is None:
            assert self.aborted is not None
            done = BulkUpdateResult.unknown(sids, self.aborted, sent=sent)
        for failure in done.failed:
            sid, code = failure["sid"], failure["code"]
            row, number = by_sid[sid]
            message = f"created as {sid} but not added to list {self.list_sid}: {failure['message']}"
            self.result.failed.append({"number": number, "code": code, "message": message})
            dead_letter(self.failed, row, code, message, "list_add", contact_sid=sid)
