"""Shared operator plumbing (private): argument checks, the lazily built hook, the account's identity.

Checks run in ``__init__`` on static values (a DAG with a bad argument fails to parse) and again in
``execute`` on rendered ones. Nothing heavy at the top level: the hook is imported when a task runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_exotel._validation import (
    check_created_range,
    check_hook_params,
    check_int,
    join_list_sids,
)
from airflow_provider_exotel.exceptions import ExotelValidationError

if TYPE_CHECKING:
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

__all__ = [
    "ExotelBaseOperator",
    "ExotelInputOperator",
    "account_of",
    "check_bool",
    "check_created",
    "check_list_sids",
    "check_path",
    "check_str",
    "is_deferred",
    "known_part",
    "run_checks",
]

#: ``(check, value)``: the check is called with the value (before run time only once rendered).
Check = tuple[Callable[[Any], Any], Any]


def is_deferred(value: Any) -> bool:
    """True for a value only known at run time: a Jinja string, or an XComArg."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    return hasattr(value, "resolve") and not isinstance(value, os.PathLike)


def check_str(name: str, value: Any, *, optional: bool = False, allow_empty: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ExotelValidationError(f"{name} must be a non-empty string, got {value!r}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ExotelValidationError(f"{name} must be True or False, got {value!r}")


def check_path(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, str):
        if not value.strip():
            raise ExotelValidationError(f"{name} must be a local path or storage URL, got {value!r}")
        return
    if not isinstance(value, os.PathLike) and not hasattr(value, "protocol"):
        raise ExotelValidationError(
            f"{name} must be a local path or storage URL (str or ObjectStoragePath), "
            f"got {type(value).__name__}"
        )


def check_list_sids(value: Any) -> None:
    if isinstance(value, (list, tuple)) and value and any(is_deferred(v) for v in value):
        value = [v for v in value if not is_deferred(v)] or None  # the rest is checked once rendered
    join_list_sids(value)


def check_created(bounds: tuple[Any, Any, Any]) -> None:
    """``created_from``/``created_to``/``sort_by``; values still templated are checked when rendered."""
    check_created_range(*(None if is_deferred(v) else v for v in bounds))


def run_checks(checks: Iterable[Check], *, at_runtime: bool) -> None:
    """Run ``(check, value)`` pairs; before run time, values still templated are left for execute."""
    for check, value in checks:
        if at_runtime or not is_deferred(value):
            check(value)


class ExotelBaseOperator(BaseOperator):
    """Connection id, optional hook arguments and the lazily created hook.

    :param exotel_conn_id: id of the ``exotel`` connection.
    :param hook_params: extra :class:`ExotelContactsHook` arguments.
    """

    def __init__(
        self,
        *,
        exotel_conn_id: str = "exotel_default",
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.exotel_conn_id = exotel_conn_id
        self.hook_params = hook_params

    def _checks(self) -> list[Check]:
        return [
            (lambda v: check_str("exotel_conn_id", v), self.exotel_conn_id),
            (check_hook_params, self.hook_params),
        ]

    def _check_arguments(self, *, at_runtime: bool) -> None:
        run_checks(self._checks(), at_runtime=at_runtime)

    @cached_property
    def hook(self) -> ExotelContactsHook:
        """The :class:`ExotelContactsHook`, created on first use (never at DAG parse time)."""
        from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

        return ExotelContactsHook(self.exotel_conn_id, **dict(self.hook_params or {}))

    def _close_hook(self) -> None:
        """Release the hook's pooled HTTP session, if the hook was ever created."""
        hook = self.__dict__.pop("hook", None)
        if hook is not None:
            hook.close()

    def _account(self) -> dict[str, Any]:
        """The connection id, API origin and account sid the hook speaks to (no request is sent)."""
        origin, account_sid = account_of(self.hook)
        return {"conn_id": self.exotel_conn_id, "host": origin, "account_sid": account_sid}


class ExotelInputOperator(ExotelBaseOperator):
    """An operator that writes what its input says: ``contacts`` or ``input_path``, failures, dry run.

    :param contacts: list of rows (or an XComArg).
    :param input_path: local path or storage URL of a JSON Lines file of rows.
    :param max_failures: how many rows may fail before the task fails.
    :param failed_output_path: where failed rows go (JSON Lines).
    :param dry_run: validate and report without sending.
    """

    def __init__(
        self,
        *,
        contacts: Any = None,
        input_path: Any = None,
        max_failures: int = 0,
        failed_output_path: Any = None,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.contacts = contacts
        self.input_path = input_path
        self.max_failures = max_failures
        self.failed_output_path = failed_output_path
        # not ``self.dry_run``: that name is BaseOperator's dry_run() method, which Airflow calls
        self.validate_only = dry_run

    def _checks(self) -> list[Check]:
        return [
            *super()._checks(),
            (self._check_source, (self.contacts, self.input_path)),
            (lambda v: check_int("max_failures", v, minimum=0), self.max_failures),
            (lambda v: check_path("failed_output_path", v), self.failed_output_path),
            (lambda v: check_bool("dry_run", v), self.validate_only),
        ]

    def _check_source(self, pair: tuple[Any, Any]) -> None:
        contacts, input_path = pair
        has_contacts = contacts is not None
        has_path = input_path is not None and input_path != ""
        if has_contacts == has_path:
            raise ExotelValidationError(
                "give exactly one of contacts (a list of contact dicts) or input_path (a JSON Lines "
                f"file); got {'both' if has_contacts else 'neither'}"
            )
        if has_contacts and not is_deferred(contacts):
            self._check_contacts(contacts)
        if has_path and not is_deferred(input_path):
            check_path("input_path", input_path)

    def _check_contacts(self, contacts: Any) -> None:
        """Validate a static ``contacts`` argument (subclasses know their rows)."""

    def _failed_writer(self, stack: contextlib.ExitStack) -> Any:
        """The dead-letter :class:`~._files.JsonlWriter` (kept whatever ends the run), or None."""
        if self.failed_output_path is None:
            return None
        from airflow_provider_exotel.operators._files import jsonl_writer, to_path

        return stack.enter_context(jsonl_writer(to_path(self.failed_output_path), keep_on_error=True))


def account_of(hook: Any) -> tuple[str, str]:
    """``(origin, account_sid)`` of the hook's connection, e.g. ``("https://api.exotel.com", "acct")``.

    Reads the connection's resolved settings (no request is sent).
    """
    settings = hook.settings
    return settings.origin, settings.account_sid


def known_part(error: BaseException, expected: type, total: int) -> Any | None:
    """The ``partial_result`` an error carries (what was applied before it), if it covers ``total``.

    :param error: the exception a hook call raised.
    :param expected: the result class (``BulkUpdateResult`` or ``BulkCreateResult``).
    :param total: how many items the call was given.
    """
    known = getattr(error, "partial_result", None)
    if isinstance(known, expected) and getattr(known, "total", None) == total:
        return known
    return None
