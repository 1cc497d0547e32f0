"""What create and sync share (private): the validated input, dead letters, the base operator.

An input is ``contacts`` (a list of dicts, or an XComArg) or ``input_path`` (JSON Lines, never
loaded whole), validated in one streaming pass before anything is sent. A row carrying an ``error``
object is a dead letter of an earlier run being replayed: its stage decides what the replay does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airflow_provider_exotel._new_contacts import DuplicateNumbers, validate_new_contact
from airflow_provider_exotel._validation import check_list_sid
from airflow_provider_exotel.exceptions import ExotelValidationError
from airflow_provider_exotel.operators._base import (
    Check,
    ExotelInputOperator,
)
from airflow_provider_exotel.operators._files import JsonlWriter, read_jsonl, to_path

__all__ = ["AudienceInput", "AudienceOperator", "dead_letter"]


class AudienceInput:
    """The rows to create or sync: ``(original row, normalised copy)`` pairs, in input order.

    A file is never loaded whole: :meth:`validate` is one streaming pass (fields, numbers, no number
    twice) and each :meth:`rows` call is another. A dead letter whose ``error.stage`` is in
    ``by_sid`` (the sync: ``list_remove``; create: ``list_add``) is not an audience row: its
    ``error.contact_sid`` is kept in :attr:`replays` (``(row, sid)``), it needs no valid number and
    :meth:`rows` skips it.

    :param contacts: the list of rows, or None.
    :param input_path: the JSON Lines file, when ``contacts`` is None.
    :param by_sid: dead-letter stages replayed by contact sid.
    """

    def __init__(self, contacts: Any, input_path: Any, *, by_sid: frozenset[str] = frozenset()) -> None:
        self.contacts = contacts
        self.path = to_path(input_path) if contacts is None else None
        self.by_sid = by_sid
        #: 8-byte digest of every input number (filled by :meth:`validate`)
        self.keys: dict[bytes, int] = {}
        #: rows with an ``error`` object (filled by :meth:`validate`)
        self.dead_letters = 0
        #: ``(row, contact sid)`` of the dead letters replayed by sid, in input order
        self.replays: list[tuple[dict[str, Any], str]] = []

    @property
    def removals(self) -> list[str]:
        """Contact sids of the replayed dead letters (the sync: members to remove again)."""
        return [sid for _, sid in self.replays]

    def _where(self, ordinal: int) -> str:
        return f"contacts[{ordinal}]" if self.path is None else f"input_path {self.path}: line {ordinal}"

    def _raw(self) -> Iterator[tuple[int, Any, Mapping[str, Any] | None]]:
        """``(ordinal, row without its error object, error object or None)``."""
        if self.path is None:
            if isinstance(self.contacts, str | bytes | Mapping) or not isinstance(self.contacts, Iterable):
                raise ExotelValidationError(
                    f"contacts must be a list of contact dicts, got {type(self.contacts).__name__}"
                )
            items: Iterable[tuple[int, Any]] = enumerate(self.contacts)
        else:
            items = read_jsonl(self.path, keep_errors=True)
        for ordinal, row in items:
            error = row.get("error") if isinstance(row, Mapping) else None
            if isinstance(error, Mapping):
                yield ordinal, {k: v for k, v in row.items() if k != "error"}, error
            else:
                yield ordinal, row, None

    def _replayed_sid(self, ordinal: int, error: Mapping[str, Any] | None) -> str | None:
        """The contact sid of a dead letter replayed by sid (None for an audience row)."""
        if error is None or error.get("stage") not in self.by_sid:
            return None
        return check_list_sid(
            error.get("contact_sid"),
            f"{self._where(ordinal)} (a {error.get('stage')} dead letter) error.contact_sid",
        )

    def validate(self) -> int:
        """Check every row; return the number of audience rows (replayed dead letters apart)."""
        seen = DuplicateNumbers(self._where)
        replays: dict[str, int] = {}
        self.replays = []
        count = dead = 0
        for ordinal, row, error in self._raw():
            dead += error is not None
            sid = self._replayed_sid(ordinal, error)
            if sid is None:
                seen.add(validate_new_contact(row, self._where(ordinal))["number"], ordinal)
                count += 1
            elif sid in replays:
                raise ExotelValidationError(
                    f"{self._where(ordinal)} repeats the {error.get('stage')} of contact {sid!r} "  # type: ignore[union-attr]
                    f"(first in {self._where(replays[sid])})"
                )
            else:
                replays[sid] = ordinal
                self.replays.append((row, sid))
        self.keys = seen.keys
        self.dead_letters = dead
        return count

    def rows(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """``(row, normalised copy)`` of every audience row."""
        for ordinal, row, error in self._raw():
            if self._replayed_sid(ordinal, error) is None:
                yield row, validate_new_contact(row, self._where(ordinal))

    def describe(self) -> str:
        return "contacts" if self.path is None else f"input_path {self.path}"


def dead_letter(out: JsonlWriter | None, row: Any, code: Any, message: str, stage: str, **extra: Any) -> None:
    """One dead-letter line: the input row as given plus ``error`` (dropped again on replay)."""
    if out is None:
        return
    line = dict(row) if isinstance(row, Mapping) else {"row": row}
    line["error"] = {"code": code, "message": message, "stage": stage, **extra}
    out.write(line)


class AudienceOperator(ExotelInputOperator):
    """Arguments shared by create and sync: the input, the list, failures and the dry run."""

    #: dead-letter stages that replay by contact sid rather than as audience rows
    _replays_by_sid: frozenset[str] = frozenset()

    def __init__(self, *, list_sid: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.list_sid = list_sid

    def _checks(self) -> list[Check]:
        return [
            *super()._checks(),
            (lambda v: None if v is None else check_list_sid(v), self.list_sid),  # a path segment
        ]

    def _check_contacts(self, contacts: Any) -> None:
        self._input(contacts, None).validate()

    def _input(self, contacts: Any, input_path: Any) -> AudienceInput:
        return AudienceInput(contacts, input_path, by_sid=self._replays_by_sid)

    def _where_failed(self) -> str:
        if self.failed_output_path is not None:
            how = "input_path=" + (
                " and remove_missing=False" if getattr(self, "remove_missing", False) else ""
            )
            return f"; failed rows written to {to_path(self.failed_output_path)} (replay with {how})"
        return "; set failed_output_path to keep them for a replay"
