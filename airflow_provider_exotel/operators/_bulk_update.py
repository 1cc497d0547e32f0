"""The bulk update operator (private; public names in ``operators.contacts``)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel._validation import (
    MAX_BULK_UPDATE,
    check_int,
    normalized_contact,
    validate_contact,
    validate_contacts,
)
from airflow_provider_exotel.exceptions import ExotelError, ExotelValidationError
from airflow_provider_exotel.operators._base import (
    ExotelInputOperator,
    is_deferred,
    known_part,
)
from airflow_provider_exotel.operators._files import read_jsonl, to_path
from airflow_provider_exotel.operators._progress import Progress

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_exotel.hooks.contacts import BulkUpdateResult

__all__ = ["ExotelBulkUpdateContactsOperator", "ExotelBulkUpdateFailedError"]


class ExotelBulkUpdateFailedError(ExotelError):
    """More contacts failed to update than ``max_failures`` allows."""


class ExotelBulkUpdateContactsOperator(ExotelInputOperator):
    """Update many contacts with Exotel's bulk ``PUT contacts``.

    The input is either ``contacts`` (a list of dicts, or an XComArg from an upstream task) or
    ``input_path`` (a JSON Lines file, one contact per line, never loaded whole: a first streaming
    pass validates every line, a second sends them ``batch_size`` at a time). Each contact has a
    ``sid`` plus any of ``first_name, last_name, company_name, email, tag, custom_field, number``.

    Returns ``BulkUpdateResult.to_dict()``: ``{"total", "succeeded", "failed", "failed_sids"}``.
    Contacts Exotel rejected are written to ``failed_output_path`` (JSON Lines: the contact as sent
    plus ``"error": {"code", "message"}``) — before the task fails when more than ``max_failures``
    of them failed — so they can be replayed with ``input_path=<that file>``.

    :param contacts: list of contact dicts to update. Templated.
    :param input_path: local path or storage URL of a JSON Lines file of contacts. Templated.
    :param exotel_conn_id: id of the ``exotel`` connection. Templated.
    :param batch_size: contacts per request, 1..5000.
    :param max_failures: how many contacts may fail before the task fails (default 0).
    :param failed_output_path: local path or storage URL for the failed contacts (JSON Lines; an
        empty file when none failed). Templated.
    :param dry_run: validate and report what would be sent (count, batches) without sending.
    :param hook_params: extra :class:`ExotelContactsHook` arguments, e.g. ``{"concurrency": 2}``.
    """

    template_fields: Sequence[str] = ("exotel_conn_id", "contacts", "input_path", "failed_output_path")
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        contacts: Any = None,
        input_path: Any = None,
        exotel_conn_id: str = "exotel_default",
        batch_size: int = MAX_BULK_UPDATE,
        max_failures: int = 0,
        failed_output_path: Any = None,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            contacts=contacts,
            input_path=input_path,
            exotel_conn_id=exotel_conn_id,
            max_failures=max_failures,
            failed_output_path=failed_output_path,
            dry_run=dry_run,
            **kwargs,
        )
        self.batch_size = batch_size
        self._check_arguments(at_runtime=False)

    def _checks(self) -> list[tuple[Any, Any]]:
        return [
            *super()._checks(),
            (lambda v: check_int("batch_size", v, minimum=1, maximum=MAX_BULK_UPDATE), self.batch_size),
        ]

    def _check_contacts(self, contacts: Any) -> None:
        if isinstance(contacts, (str, bytes, Mapping)) or not isinstance(contacts, Iterable):
            raise ExotelValidationError(
                f"contacts must be a list of contact dicts, got {type(contacts).__name__} "
                "(to pass an upstream task's list, use its XComArg, e.g. contacts=make_updates(), "
                "or render_template_as_native_obj=True on the DAG)"
            )
        # a sid still templated (before rendering) stands in as a unique placeholder sid
        validate_contacts(
            [
                {**c, "sid": f"templated-{i}"} if isinstance(c, Mapping) and is_deferred(c.get("sid")) else c
                for i, c in enumerate(contacts)
            ],
            "contacts",
        )

    # ------------------------------------------------------------------ input
    def _validated_input(self) -> tuple[int, Any]:
        """Validate the whole input before anything is sent.

        Returns ``(count, chunks)`` where ``chunks(size)`` yields lists of at most ``size``
        contacts: slices of the validated list, or a fresh streaming pass over ``input_path``.
        """
        if self.contacts is not None:
            items = validate_contacts(self.contacts, "contacts")

            def list_chunks(size: int) -> Iterator[list[dict[str, Any]]]:
                for i in range(0, len(items), size):
                    yield items[i : i + size]

            return len(items), list_chunks

        path = to_path(self.input_path)
        count = self._validate_file(path)

        def file_chunks(size: int) -> Iterator[list[dict[str, Any]]]:
            chunk: list[dict[str, Any]] = []
            for _, contact in read_jsonl(path):
                chunk.append(normalized_contact(contact, contact["sid"].strip()))
                if len(chunk) == size:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

        return count, file_chunks

    def _validate_file(self, path: Any) -> int:
        """First streaming pass over ``input_path``: JSON, fields, sids, no duplicate sid."""
        seen: set[bytes] = set()  # 8-byte digests keep memory small for millions of sids
        count = 0
        for line_no, contact in read_jsonl(path):
            try:
                sid = validate_contact(contact, line_no, "input_path")
            except ExotelValidationError as exc:
                message = str(exc).replace(f"input_path[{line_no}]", f"line {line_no}")
                raise ExotelValidationError(f"input_path {path}: {message}") from None
            digest = hashlib.blake2b(sid.encode(), digest_size=8).digest()
            if digest in seen:
                first = next(n for n, c in read_jsonl(path) if _sid_of(c) == sid)
                if first != line_no:
                    raise ExotelValidationError(
                        f"input_path {path}: line {line_no} repeats sid {sid!r} (first on line {first}); "
                        "each contact may appear once per bulk update"
                    )
            seen.add(digest)
            count += 1
        return count

    # ------------------------------------------------------------------ run
    def execute(self, context: Context) -> dict[str, Any]:
        self._check_arguments(at_runtime=True)
        total, chunks = self._validated_input()
        batches = -(-total // self.batch_size)
        source = "contacts" if self.contacts is not None else f"input_path {self.input_path}"
        if self.validate_only:
            self.log.info(
                "Dry run: %s valid contact(s) from %s would be sent in %d batch(es) of up to %d; "
                "nothing was sent",
                f"{total:,}",
                source,
                batches,
                self.batch_size,
            )
            return {
                "total": total,
                "succeeded": 0,
                "failed": 0,
                "failed_sids": [],
                "dry_run": True,
                "batches": batches,
                "batch_size": self.batch_size,
            }

        self.log.info(
            "Updating %s contact(s) from %s in %d batch(es) of up to %d",
            f"{total:,}",
            source,
            batches,
            self.batch_size,
        )
        try:
            result = self._send(chunks, total)
        finally:
            self._close_hook()
        summary = result.to_dict()
        self.log.info(
            "Bulk update done: %s submitted, %s updated, %s failed in %d batch(es)",
            f"{result.total:,}",
            f"{len(result.succeeded):,}",
            f"{len(result.failed):,}",
            batches,
        )
        if len(result.failed) > self.max_failures:
            examples = "; ".join(f"{f['sid']} ({f['code']} {f['message']})" for f in result.failed[:5])
            where = (
                f"; failed contacts written to {to_path(self.failed_output_path)}"
                if self.failed_output_path is not None
                else "; set failed_output_path to keep them for a replay"
            )
            raise ExotelBulkUpdateFailedError(
                f"{len(result.failed):,} of {result.total:,} contacts failed to update "
                f"(max_failures={self.max_failures}){where}. First failures: {examples}"
            )
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the input file read (``input_path``) and the Exotel contacts written (none
        for a dry run).

        :param task_instance: the finished task instance (unused).
        """
        from airflow_provider_exotel.operators._lineage import operator_lineage

        return operator_lineage(
            self,
            exotel_outputs=[] if self.validate_only else [None],
            file_inputs=[self.input_path],
        )

    def _send(self, chunks: Any, total: int) -> BulkUpdateResult:
        """Second pass: send chunk by chunk, merging results and dead-lettering failed contacts.

        Whatever ends the update mid-way (an :class:`ExotelError` such as revoked credentials, the
        task's ``execution_timeout``, a SIGTERM, any other exception), nothing more is sent and
        ``failed_output_path`` still receives, and keeps, every contact not known to be updated:
        those Exotel rejected, those of batches in flight (outcome unknown) and those never sent.
        Then the exception propagates.
        """
        from airflow_provider_exotel.hooks.contacts import BulkUpdateResult

        # one hook call per `concurrency` batches keeps the hook's parallelism and bounds memory
        per_call = self.batch_size * max(1, int(getattr(self.hook, "concurrency", 1) or 1))
        result = BulkUpdateResult()
        progress = Progress(self.log, "updated", total)
        ended: BaseException | None = None
        with contextlib.ExitStack() as stack:
            failed = self._failed_writer(stack)
            try:
                for chunk in chunks(per_call):
                    part, ended = self._send_chunk(chunk, ended)
                    result.merge(part)
                    if failed is not None and part.failed:
                        by_sid = {c["sid"]: c for c in chunk}
                        for failure in part.failed:
                            sent = dict(by_sid.get(failure["sid"], {"sid": failure["sid"]}))
                            sent["error"] = {"code": failure["code"], "message": failure["message"]}
                            failed.write(sent)
                    progress.add(len(chunk), extra=f", {len(result.failed):,} failed")
            except BaseException as exc:  # reading the input or writing the file failed
                self.log.error("Bulk update stopped (%r); the dead-letter file may be incomplete", exc)
                ended = ended or exc
        if ended is not None:
            self.log.error(
                "Bulk update stopped: %s; %s updated, %s not updated (failed, not sent or outcome unknown)%s",
                str(ended) or type(ended).__name__,
                f"{len(result.succeeded):,}",
                f"{len(result.failed):,}",
                f" were written to {to_path(self.failed_output_path)}"
                if self.failed_output_path is not None
                else "; set failed_output_path to keep them for a replay",
            )
            with contextlib.suppress(AttributeError):  # what is known, for whoever catches it
                ended.partial_result = result  # type: ignore[attr-defined]
            raise ended
        return result

    def _send_chunk(
        self, chunk: list[dict[str, Any]], ended: BaseException | None
    ) -> tuple[BulkUpdateResult, BaseException | None]:
        """One hook call; after an error nothing is sent and the chunk is dead-lettered as not sent."""
        from airflow_provider_exotel.hooks.contacts import BulkUpdateResult

        if ended is not None:  # dead-letter every later contact too, so a replay loses nothing
            return BulkUpdateResult.unknown([c["sid"] for c in chunk], ended, sent=False), ended
        try:
            return self.hook.bulk_update_contacts(chunk, batch_size=self.batch_size), None
        except BaseException as exc:  # stop sending; keep what is known
            known = known_part(exc, BulkUpdateResult, len(chunk))
            if known is not None:
                return known, exc
            sent = not isinstance(exc, ExotelValidationError)
            return BulkUpdateResult.unknown([c["sid"] for c in chunk], exc, sent=sent), exc


def _sid_of(contact: Any) -> str | None:
    """The trimmed sid of a raw input row (``None`` when it has none)."""
    sid = contact.get("sid") if isinstance(contact, Mapping) else None
    return sid.strip() if isinstance(sid, str) else None
