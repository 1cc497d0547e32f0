"""The run loop the triggers share: build the hook off the event loop, poll, time out, close;
and the mapping between an error and an error event's ``reason``, both ways.

Cheap to import (standard library only at the top): triggers are imported at DAG parse.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

#: the payload of the one event a trigger fires
Payload = dict[str, Any]


class _Closable(Protocol):
    def close(self) -> None: ...


H = TypeVar("H", bound=_Closable)


async def run_with_hook(make_hook: Callable[[], H], wait: Callable[[H], Awaitable[Payload]]) -> Payload:
    """Build the hook in a worker thread, ``wait`` with it, and close it in a thread.

    :param make_hook: builds the hook (blocking: imports, connection look-up).
    :param wait: the poll loop; returns the event's payload.
    """
    from asgiref.sync import sync_to_async

    # thread_sensitive=False: a fresh worker thread, so a slow Exotel never holds the triggerer's
    # shared sync thread (the connection look-up inside still reaches the supervisor).
    hook = await sync_to_async(make_hook, thread_sensitive=False)()
    try:
        return await wait(hook)
    finally:
        # In a thread: close() takes the lock a check may hold while it resolves the connection.
        await asyncio.to_thread(hook.close)


def error_reason(exc: Exception) -> str:
    """``auth``, ``invalid`` or ``request``: the ``reason`` of a permanent error's event."""
    from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelValidationError

    if isinstance(exc, ExotelAuthError):
        return "auth"
    return "invalid" if isinstance(exc, ExotelValidationError) else "request"


def event_error(reason: Any, message: str, timeout_error: type[Exception]) -> Exception:
    """The exception an error event's ``reason`` stands for (the reverse of :func:`error_reason`).

    :param reason: the event's ``reason``.
    :param message: the event's message.
    :param timeout_error: the class for ``timeout`` (a sensor's ``AirflowSensorTimeout``).
    """
    from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelRequestError, ExotelValidationError

    if reason == "timeout":
        return timeout_error(message)
    if reason == "auth":
        return ExotelAuthError(message)
    if reason == "invalid":
        return ExotelValidationError(message)
    return ExotelRequestError(message)


async def poll(
    check: Callable[[], Awaitable[Payload | None]],
    *,
    interval: float,
    end_time: float | None,
    is_permanent: Callable[[Any], bool],
    on_timeout: Callable[[], Payload],
    log: logging.Logger | Any,
    what: str,
) -> Payload:
    """Run ``check`` every ``interval`` seconds until it returns a payload, an error or time runs out.

    :param check: one check; a payload ends the wait, ``None`` checks again.
    :param interval: seconds between checks.
    :param end_time: Unix time after which ``on_timeout()`` is returned; ``None``: never.
    :param is_permanent: true for an ``ExotelError`` waiting will not fix (an error event).
    :param on_timeout: the timeout event's payload.
    :param log: where a transient failure is logged (and polled again).
    :param what: names the check in that log line.
    """
    from airflow_provider_exotel.exceptions import ExotelError

    while True:
        try:
            payload = await check()
        except ExotelError as exc:
            if is_permanent(exc):
                return {"status": "error", "reason": error_reason(exc), "message": str(exc)}
            log.warning("Exotel %s failed, will check again: %s", what, exc)
            payload = None
        if payload is not None:
            return payload
        now = time.time()
        if end_time is not None and now >= end_time:
            return on_timeout()
        await asyncio.sleep(interval if end_time is None else min(interval, end_time - now))
