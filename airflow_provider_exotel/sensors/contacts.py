"""ExotelContactsSensor — wait until enough (or new enough) Exotel contacts exist."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_exotel._contacts_check import (
    check_contacts,
    check_created_after,
    check_list_sid,
    check_min_count,
    describe_check,
    is_permanent,
    is_template,
)
from airflow_provider_exotel._run_dates import RunDatesRendering
from airflow_provider_exotel._trigger_loop import event_error
from airflow_provider_exotel.exceptions import (
    ExotelError,
    ExotelValidationError,
)

if TYPE_CHECKING:
    import datetime as dt

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

#: The deferrable sensor's first check (in the worker): at most this many seconds per request, so an
#: Exotel that accepts connections and never answers defers quickly instead of holding the slot.
FIRST_CHECK_TIMEOUT = 5.0


class ExotelContactsSensor(RunDatesRendering, BaseSensorOperator):
    """Wait until the contacts of an Exotel account (or of one list) are there.

    Succeeds when the contacts number at least ``min_count`` and, when ``created_after`` is given,
    at least one of them was created strictly after it. The task's XCom value is
    ``{"count": <contacts counted>}``.

    Each check costs one request (two with ``created_after``). Bad credentials or no access fail
    the task at once, as do a misconfigured connection and other 4xx answers; a transient failure
    left after the hook's retries (5xx, 429, network) is logged and the sensor checks again at the
    next poke. A ``list_sid`` Exotel does not know (404) is waited for: it may be created later.

    Works in ``poke`` and ``reschedule`` mode, and with ``deferrable=True`` it checks once, then
    hands the waiting to :class:`~airflow_provider_exotel.triggers.contacts.ExotelContactsTrigger`
    in the triggerer, which runs the very same check. That first check in the worker makes one
    attempt with a timeout of at most ``FIRST_CHECK_TIMEOUT`` seconds: a transient failure (5xx,
    429, network, no answer in time) defers at once and the trigger retries with the hook's usual
    timeout and retries, so a struggling Exotel never holds a worker slot. ``timeout`` applies in
    every mode.

    :param exotel_conn_id: id of the ``exotel`` connection. Templated.
    :param list_sid: only count the contacts of this list; ``None`` (default) counts all contacts of
        the account. Templated.
    :param min_count: contacts needed, an integer >= 0 (default 1). Templated.
    :param created_after: a datetime or ISO 8601 timestamp (naive means UTC); when given, the newest
        contact must have been created strictly after it. Templated, e.g.
        ``"{{ data_interval_start }}"``.
    :param deferrable: wait in the triggerer instead of occupying a worker slot (needs a running
        ``airflow triggerer``). Defaults to Airflow's ``[operators] default_deferrable``.
    :param sensor_kwargs: ``poke_interval``, ``timeout``, ``mode``, ``soft_fail`` and the other
        arguments of ``BaseSensorOperator``.
    """

    template_fields: Sequence[str] = ("exotel_conn_id", "list_sid", "min_count", "created_after")
    ui_color = "#d8f0e6"

    def __init__(
        self,
        *,
        exotel_conn_id: str = "exotel_default",
        list_sid: str | None = None,
        min_count: int = 1,
        created_after: dt.datetime | str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **sensor_kwargs: Any,
    ) -> None:
        super().__init__(**sensor_kwargs)
        if not is_template(min_count):
            check_min_count(min_count, rendered=False)
        if not is_template(list_sid):
            check_list_sid(list_sid)
        if not is_template(created_after):
            check_created_after(created_after)
        if not isinstance(exotel_conn_id, str) or not exotel_conn_id.strip():
            raise ExotelValidationError(f"exotel_conn_id must be a non-empty string, got {exotel_conn_id!r}")
        self.exotel_conn_id = exotel_conn_id
        self.list_sid = list_sid
        self.min_count = min_count
        self.created_after = created_after
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> ExotelContactsHook:
        """The hook, created on first use (after templates are rendered)."""
        from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

        return ExotelContactsHook(self.exotel_conn_id)

    def _rendered_arguments(self) -> dict[str, Any]:
        """The rendered arguments, validated: ``list_sid``, ``min_count``, ``created_after``."""
        return {
            "list_sid": check_list_sid(self.list_sid),
            "min_count": check_min_count(self.min_count, rendered=True),
            "created_after": check_created_after(self.created_after),
        }

    def poke(self, context: Context) -> PokeReturnValue:
        arguments = self._rendered_arguments()
        try:
            result = check_contacts(self.hook, **arguments)
        except ExotelError as exc:
            if is_permanent(exc):
                raise
            self.log.warning("Exotel check failed, will check again at the next poke: %s", exc)
            return PokeReturnValue(is_done=False)
        self.log.info(describe_check(result, **arguments))
        return PokeReturnValue(is_done=result.done, xcom_value={"count": result.count})

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from airflow_provider_exotel.triggers.contacts import ExotelContactsTrigger

        arguments = self._rendered_arguments()
        count = self._first_check(arguments)
        if count is not None:
            return {"count": count}
        created_after = arguments["created_after"]
        self.defer(
            trigger=ExotelContactsTrigger(
                exotel_conn_id=self.exotel_conn_id,
                list_sid=arguments["list_sid"],
                min_count=arguments["min_count"],
                created_after=created_after.isoformat() if created_after else None,
                poke_interval=self.poke_interval,
                end_time=time.time() + self.timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def _first_check(self, arguments: dict[str, Any]) -> int | None:
        """Check once in the worker, with a single short attempt: the count when done, else ``None``.

        A transient failure is not retried here (the trigger retries at its own pace, without a
        worker slot); errors that waiting will not fix raise.
        """
        from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

        # one attempt, and a 429 defers instead of waiting for the budget in the worker; the cap
        # also applies to the connection's own timeout extra
        hook: ExotelContactsHook | None = None
        try:
            hook = ExotelContactsHook(self.exotel_conn_id).single_attempt(FIRST_CHECK_TIMEOUT)
            result = check_contacts(hook, **arguments)
        except ExotelError as exc:
            if is_permanent(exc):
                raise
            self.log.warning("Exotel check failed (%s); deferring now, the trigger checks again", exc)
            return None
        finally:
            if hook is not None:
                hook.close()
        self.log.info(describe_check(result, **arguments))
        return result.count if result.done else None

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, int]:
        """Resume after the trigger fired: return ``{"count": n}`` or raise what it reported."""
        if not isinstance(event, dict):
            raise ExotelError(f"Exotel contacts trigger returned no usable event: {event!r}")
        status = event.get("status")
        if status == "success":
            count = int(event.get("count", 0))
            self.log.info("Exotel contacts condition met: %d contact(s)", count)
            return {"count": count}
        message = str(event.get("message") or f"Exotel contacts trigger failed: {event!r}")
        raise event_error(event.get("reason"), message, AirflowSensorTimeout)


__all__ = ["FIRST_CHECK_TIMEOUT", "ExotelContactsSensor"]
