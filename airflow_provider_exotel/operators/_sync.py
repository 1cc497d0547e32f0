"""The sync operator (private; public names in ``operators.contacts``).

Plan (:mod:`._sync_plan`, GET requests only), then apply (:mod:`._sync_apply`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_exotel.exceptions import ExotelError, ExotelValidationError
from airflow_provider_exotel.operators._audience import AudienceInput, AudienceOperator
from airflow_provider_exotel.operators._base import Check, check_bool, check_path, check_str
from airflow_provider_exotel.operators._sync_apply import SyncRun
from airflow_provider_exotel.operators._sync_plan import Plan, SyncPlanner

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

__all__ = ["ExotelSyncContactsFailedError", "ExotelSyncContactsOperator"]

#: the counts a sync returns, in the order it logs them
COUNTS = ("created", "updated", "unchanged", "added_to_list", "removed_from_list", "failed")


class ExotelSyncContactsFailedError(ExotelError):
    """More rows failed to sync than ``max_failures`` allows."""


class ExotelSyncContactsOperator(AudienceOperator):
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
    (it is not re-created). A fatal error (e.g. revoked credentials) stops every later write; what
    was done before it counts (the raised error's ``partial_result`` holds the counts).

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
        ``ExotelFetchContactsOperator(output_path=...)``), read instead of the whole account; the
        contacts created since its newest one are read too (newest first), and each contact it says
        needs an update is read again first, so a retry with the same file sends no write. Templated.
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
    _replays_by_sid = frozenset({"list_remove"})

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
        self._lineage_list_sid: str | None = None
        self._check_arguments(at_runtime=False)

    def _checks(self) -> list[Check]:
        return [
            *super()._checks(),
            (lambda v: check_str("list_name", v, optional=True), self.list_name),
            (lambda v: check_path("current_path", v), self.current_path),
            (lambda v: check_bool("remove_missing", v), self.remove_missing),
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

        list_sid = self._lineage_list_sid or self.list_sid
        lists: list[str | None] = [list_sid] if list_sid else []
        account: list[str | None] = [] if self.current_path is not None else [None]
        return operator_lineage(
            self,
            exotel_inputs=account + lists,
            exotel_outputs=[] if self.validate_only else [None, *lists],
            file_inputs=[self.input_path, self.current_path],
        )

    def execute(self, context: Context) -> dict[str, Any]:
        self._check_arguments(at_runtime=True)
        source = self._input(self.contacts, self.input_path)
        rows = source.validate()
        self._check_replay(source)
        if rows == 0 and self.remove_missing:
            raise ExotelValidationError(
                f"{source.describe()} is empty and remove_missing=True would empty the list; refusing "
                "(an empty audience is more often a failed export than an intent — delete the list instead)"
            )
        try:
            planner = SyncPlanner(
                self.hook,
                self.log,
                list_sid=self.list_sid,
                list_name=self.list_name,
                current_path=self.current_path,
                remove_missing=self.remove_missing,
            )
            plan = planner.plan(source, rows)
            self._lineage_list_sid = plan.list_sid  # found by list_name: for OpenLineage
            self._log_plan(plan, source)
            if self.validate_only:
                planned = (plan.created, plan.updated, plan.unchanged, plan.to_add, len(plan.to_remove), 0)
                return {**dict(zip(COUNTS, planned, strict=True)), "dry_run": True}
            return self._apply(plan, source)
        finally:
            self._close_hook()

    def _check_replay(self, source: AudienceInput) -> None:
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

    def _log_plan(self, plan: Plan, source: AudienceInput) -> None:
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
        self._log_examples(plan)

    def _log_examples(self, plan: Plan) -> None:
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
    def _apply(self, plan: Plan, source: AudienceInput) -> dict[str, Any]:
        with contextlib.ExitStack() as stack:
            run = SyncRun(self.hook, self.log, plan, self._failed_writer(stack))
            run.start_list()
            self._lineage_list_sid = run.list_sid
            for row, norm in source.rows():
                run.row(row, norm)
            run.finish()
        done = (plan.created, plan.updated, plan.unchanged, run.added, run.removed, run.failed)
        counts: dict[str, Any] = {**dict(zip(COUNTS, done, strict=True)), "dry_run": False}
        self.log.info(
            "Sync done: %s created, %s updated, %s unchanged, %s added to the list, %s removed from "
            "it, %s failed",
            *(f"{counts[k]:,}" for k in COUNTS),
        )
        if run.aborted is not None:
            self.log.error("Sync stopped: %s%s", run.aborted, self._where_failed())
            run.aborted.partial_result = counts  # type: ignore[attr-defined]  # what was done
            raise run.aborted
        if run.failed > self.max_failures:
            examples = "; ".join(run.first_failures)
            raise ExotelSyncContactsFailedError(
                f"{run.failed:,} of {plan.rows + len(plan.to_remove):,} rows failed to sync "
                f"(max_failures={self.max_failures})"
                f"{self._where_failed()}. First failures: {examples}"
            )
        return counts
