"""The simulator façade's v1 call-record methods and command-line options (standard library only).

``CallsFacade`` is a base of :class:`~airflow_provider_exotel.testing.simulator.ExotelSimulator`:
``sim.seed_calls``, ``sim.add_call_record``, ``sim.call_records``, ``sim.add_calls_faults``,
``sim.set_voice_limit``, ``sim.calls_timezone``, ``sim.late_fields_delay``, all served by
``sim.calls``, the :class:`~airflow_provider_exotel.testing._calls.CallsFamily` of the simulator.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_exotel.testing._calls import CallsFamily
from airflow_provider_exotel.testing._ratelimit import AccountWindow


class CallsFacade:
    """The simulator's v1 call-record methods (a base of ``ExotelSimulator``), all on ``sim.calls``."""

    families: list[Any]

    @property
    def calls(self) -> CallsFamily:
        """The v1 ``Calls`` family: its records, switches and faults."""
        return next(f for f in self.families if isinstance(f, CallsFamily))

    def seed_calls(self, n: int, **kwargs: Any) -> list[dict[str, Any]]:
        """Add ``n`` call records (see :meth:`CallsFamily.seed_calls`)."""
        return self.calls.seed_calls(n, **kwargs)

    def add_call_record(self, **kwargs: Any) -> dict[str, Any]:
        """Add one call record (see :meth:`CallsFamily.add_call_record`); campaigns record their calls."""
        return self.calls.add_call_record(**kwargs)

    def call_records(self) -> list[dict[str, Any]]:
        """Every call as the API shows it now (in progress ones included), oldest first."""
        return self.calls.call_records()

    def add_calls_faults(self, *kinds: str) -> None:
        """Page faults for the next ``Calls`` list answers (see :meth:`CallsFamily.add_calls_faults`)."""
        self.calls.add_calls_faults(*kinds)

    def set_voice_limit(self, limit: int | None = 200, **kwargs: Any) -> AccountWindow | None:
        """The voice family's budget (Exotel: 200 requests per 60 s); ``None`` removes it."""
        return self.calls.set_voice_limit(limit, **kwargs)

    @property
    def calls_timezone(self) -> str:
        """The account's time zone of v1 timestamps (default ``Asia/Kolkata``)."""
        return self.calls.calls_timezone

    @calls_timezone.setter
    def calls_timezone(self, value: str) -> None:
        ZoneInfo(value)  # a name that does not exist fails here, not in a request
        self.calls.calls_timezone = value

    @property
    def late_fields_delay(self) -> float:
        """Seconds after a call ends before ``Duration``, ``Price`` and ``EndTime`` are filled in."""
        return self.calls.late_fields_delay

    @late_fields_delay.setter
    def late_fields_delay(self, value: float) -> None:
        self.calls.late_fields_delay = float(value)


def add_calls_arguments(parser: Any) -> None:
    """The command line's v1 options (``python -m airflow_provider_exotel.testing``)."""
    parser.add_argument("--calls", type=int, default=0, help="number of v1 call records to seed")
    parser.add_argument(
        "--calls-days", type=float, default=7.0, help="seeded calls spread over the last N days"
    )
    parser.add_argument("--calls-timezone", default="Asia/Kolkata", help="account time zone of v1 timestamps")
    parser.add_argument(
        "--voice-limit", type=int, default=None, help="voice budget: requests per 60 s (Exotel: 200)"
    )


def apply_calls_arguments(sim: Any, args: Any) -> None:
    sim.calls.calls_timezone = args.calls_timezone
    if args.voice_limit is not None:
        sim.set_voice_limit(args.voice_limit)
    if args.calls > 0:
        sim.seed_calls(args.calls, days=args.calls_days)


__all__ = ["CallsFacade", "add_calls_arguments", "apply_calls_arguments"]
