"""Shared operator plumbing (private): argument checks, the lazily built hook, the account's identity.

Checks run in ``__init__`` on static values (a DAG with a bad argument fails to parse) and again in
``execute`` on rendered ones. Nothing heavy at the top level: the hook is imported when a task runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_exotel._validation import check_created_range, check_hook_params, join_list_sids
from airflow_provider_exotel.exceptions import ExotelValidationError

if TYPE_CHECKING:
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

__all__ = [
    "ExotelBaseOperator",
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


def account_of(hook: ExotelContactsHook) -> tuple[str, str]:
    """``(origin, account_sid)`` of the hook's connection, e.g. ``("https://api.exotel.com", "acct")``.

    Reads the connection (no request is sent).
    """
    hook.get_conn()  # resolves the connection: host, region, port and account sid
    parts = urlsplit(hook.base_url)
    return f"{parts.scheme}://{parts.netloc}", hook.account_sid


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
