"""ExotelContactsTrigger — waits in the triggerer for the deferrable :class:`ExotelContactsSensor`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from asgiref.sync import sync_to_async

from airflow_provider_exotel._contacts_check import (
    check_contacts,
    check_created_after,
    check_list_sid,
    check_min_count,
    describe_check,
    is_permanent,
)
from airflow_provider_exotel._trigger_loop import poll, run_with_hook
from airflow_provider_exotel._validation import check_hook_params

if TYPE_CHECKING:
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook


class ExotelContactsTrigger(BaseTrigger):
    """Poll Exotel until enough contacts exist, then fire one event.

    Checks exactly what :class:`~airflow_provider_exotel.sensors.contacts.ExotelContactsSensor`
    checks (the same function), every ``poke_interval`` seconds. The hook is synchronous, so each
    check runs in a worker thread through ``asgiref``'s ``sync_to_async`` — the way Airflow's
    triggerer expects blocking work, connection look-ups included, to be done.

    Events (the payload is what ``execute_complete`` receives):

    * ``{"status": "success", "count": n}`` — the condition holds;
    * ``{"status": "error", "reason": "auth" | "invalid" | "request", "message": ...}`` — an error
      waiting will not fix (bad credentials or no access, bad connection configuration, another
      4xx); yielded at once;
    * ``{"status": "error", "reason": "timeout", "message": ..., "count": n}`` — ``end_time`` passed.

    Transient failures (5xx, 429, network) left after the hook's own retries are logged and the
    trigger keeps polling.

    :param exotel_conn_id: id of the ``exotel`` connection; the trigger reads it itself.
    :param list_sid: only count the contacts of this list; ``None`` for all contacts.
    :param min_count: contacts needed, >= 0.
    :param created_after: ISO 8601 timestamp (or datetime); when given, the newest contact must have
        been created strictly after it.
    :param poke_interval: seconds between checks.
    :param end_time: Unix time (seconds) after which the trigger gives up with a timeout event;
        ``None`` to wait until Airflow's own deferral timeout.
    :param hook_params: keyword arguments for :class:`ExotelContactsHook` (e.g. ``retry_limit``).
    """

    def __init__(
        self,
        *,
        exotel_conn_id: str = "exotel_default",
        list_sid: str | None = None,
        min_count: int = 1,
        created_after: str | Any | None = None,
        poke_interval: float = 60.0,
        end_time: float | None = None,
        hook_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.exotel_conn_id = exotel_conn_id
        self.list_sid = check_list_sid(list_sid)
        self.min_count = check_min_count(min_count, rendered=True)
        parsed = check_created_after(created_after)
        self.created_after: str | None = parsed.isoformat() if parsed is not None else None
        self._created_after = parsed
        self.poke_interval = float(poke_interval)
        self.end_time = float(end_time) if end_time is not None else None
        self.hook_params = check_hook_params(hook_params)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-able kwargs: the connection id, never what it holds."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "exotel_conn_id": self.exotel_conn_id,
                "list_sid": self.list_sid,
                "min_count": self.min_count,
                "created_after": self.created_after,
                "poke_interval": self.poke_interval,
                "end_time": self.end_time,
                "hook_params": self.hook_params,
            },
        )

    def _make_hook(self) -> ExotelContactsHook:
        """Import and build the hook; blocking work, so :meth:`run` calls it in a worker thread."""
        from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

        return ExotelContactsHook(self.exotel_conn_id, **self.hook_params)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The hook's import (requests, tenacity, the HTTP provider) and set-up block for a moment: done
        # in a worker thread so the triggerer's event loop, shared by every trigger, stays free.
        yield TriggerEvent(await run_with_hook(self._make_hook, self._wait))

    async def _wait(self, hook: ExotelContactsHook) -> dict[str, Any]:
        """Check every ``poke_interval`` seconds; return the payload of the one event to fire."""
        # thread_sensitive=False: a fresh worker thread per check, so a slow Exotel never holds the
        # triggerer's shared sync thread; sync_to_async still lets the connection look-up inside
        # reach the triggerer's supervisor (async_to_sync bubbles back to this loop).
        check = sync_to_async(check_contacts, thread_sensitive=False)
        arguments: dict[str, Any] = {
            "list_sid": self.list_sid,
            "min_count": self.min_count,
            "created_after": self._created_after,
        }
        count = 0

        async def once() -> dict[str, Any] | None:
            nonlocal count
            result = await check(hook, **arguments)
            self.log.info(describe_check(result, **arguments))
            count = result.count
            return {"status": "success", "count": count} if result.done else None

        def timeout() -> dict[str, Any]:
            return {
                "status": "error",
                "reason": "timeout",
                "count": count,
                "message": self._describe_timeout(count),
            }

        return await poll(
            once,
            interval=self.poke_interval,
            end_time=self.end_time,
            is_permanent=is_permanent,
            on_timeout=timeout,
            log=self.log,
            what="check",
        )

    def _describe_timeout(self, count: int) -> str:
        scope = f"list {self.list_sid!r}" if self.list_sid else "the account"
        want = f"at least {self.min_count} contact(s)"
        if self.created_after:
            want += f" with one created after {self.created_after}"
        return f"Timed out waiting for {want} in {scope}; last count was {count}"


__all__ = ["ExotelContactsTrigger"]
