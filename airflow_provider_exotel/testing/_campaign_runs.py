"""One simulated campaign: its status machine and its dialling, computed lazily from the clock.

Standard library only. A :class:`CampaignRun` holds no thread: every request that touches it first
calls :meth:`CampaignRun.advance` with the simulator clock's ``now()``, which brings it up to that
moment — it starts at ``send_at`` (or when created), dials its numbers one after another at
``pace`` calls per second of running time (paused time does not count), writes one call-detail row
per call (and a v1 call record), and completes after the last call or at ``end_at``. A paused
campaign past ``end_at`` is ``canceled``; one that has nobody to call when it starts ``failed``.

Outcomes are deterministic: a number's SHA-256 decides (6 in 10 ``completed``, 2 ``no-answer``,
1 ``busy``, 1 ``failed``), so a test knows what a campaign's report must count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = ["ACTIONS", "OUTCOMES", "CampaignRun", "outcome_of", "spell"]

#: action -> (statuses it needs, status it leads to)
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "pause": (("created", "in-progress"), "paused"),
    "resume": (("paused",), "in-progress"),
    "complete": (("paused",), "completed"),
    "archive": (("completed",), "archived"),
}
OUTCOMES = ("completed", "no-answer", "busy", "failed")
#: the newer pages' spelling of each status (``--status-spelling new``)
NEW_SPELLING = {
    "created": "Created",
    "in-progress": "InProgress",
    "paused": "Paused",
    "completed": "Completed",
    "failed": "Failed",
    "canceled": "Canceled",
    "deleted": "Deleted",
    "archived": "Archived",
}
_TS = "%Y-%m-%dT%H:%M:%SZ"
try:  # the account's time zone, in which v1 call records are written
    from zoneinfo import ZoneInfo

    ACCOUNT_TZ: Any = ZoneInfo("Asia/Kolkata")
except Exception:  # pragma: no cover - no tz database
    ACCOUNT_TZ = timezone(timedelta(hours=5, minutes=30))


def spell(status: str, spelling: str) -> str:
    """``status`` as the API writes it: ``old`` (``in-progress``) or ``new`` (``InProgress``)."""
    return NEW_SPELLING.get(status, status) if spelling == "new" else status


def outcome_of(number: str) -> str:
    """The deterministic outcome of a call to ``number``."""
    digit = hashlib.sha256(number.encode()).digest()[0] % 10
    return "completed" if digit < 6 else "no-answer" if digit < 8 else "busy" if digit < 9 else "failed"


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime(_TS)


def _v1_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, ACCOUNT_TZ).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Callee:
    number: str
    name: str = ""


@dataclass
class CampaignRun:
    """A campaign's state; ``data`` is what the API shows (besides ``status`` and ``stats``)."""

    data: dict[str, Any]
    start_at: float
    end_at: float | None
    pace: float
    resolve: Callable[[], list[Callee]]  # the numbers to call, read when the campaign starts
    status: str = "created"
    callees: list[Callee] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    active_since: float | None = None  # when the current running stretch began
    dial_done: float = 0.0  # running seconds before it
    #: called with (call-detail row, epoch of the call, v1 call record) for every call made
    on_call: Callable[[dict[str, Any], float, dict[str, Any]], None] | None = None

    @property
    def id(self) -> str:
        return str(self.data["id"])

    # ------------------------------------------------------------------ time
    def advance(self, now: float) -> None:
        """Bring the campaign up to ``now``."""
        if self.status == "created" and now >= self.start_at:
            self._start()
        if self.status == "in-progress":
            self._dial(now)
        if self.status == "paused" and self.end_at is not None and now >= self.end_at:
            self._set("canceled", self.end_at)

    def _start(self) -> None:
        self.callees = self.resolve()
        if not self.callees:
            self._set("failed", self.start_at)  # nobody to call: no call made
            return
        self._set("in-progress", self.start_at)
        self.active_since = self.start_at

    def _dial(self, now: float) -> None:
        assert self.active_since is not None
        horizon = now if self.end_at is None else min(now, self.end_at)
        running = self.dial_done + max(0.0, horizon - self.active_since)
        due = min(len(self.callees), int(running * self.pace) + 1)
        for i in range(len(self.rows), due):
            at = self.active_since + (i / self.pace - self.dial_done)
            self._call(i, at, outcome_of(self.callees[i].number))
        if len(self.rows) >= len(self.callees):
            self._stop_running(horizon)
            self._set("completed", self._last_call_at())
        elif self.end_at is not None and now >= self.end_at:
            self._stop_running(self.end_at)
            self._set("completed", self.end_at)  # the calls left are not made

    def _last_call_at(self) -> float:
        return _epoch(self.rows[-1]["date_created"]) if self.rows else self.start_at

    def _stop_running(self, at: float) -> None:
        if self.active_since is not None:
            self.dial_done += max(0.0, at - self.active_since)
            self.active_since = None

    def bonus(self, seconds: float, now: float) -> None:
        """Advance this campaign alone by ``seconds`` of running time (the control endpoint)."""
        self.advance(now)
        if self.status == "created":
            self.start_at = now
            self.advance(now)
        if self.status == "in-progress":
            self.dial_done += seconds
            self._dial(now)

    def finish(self, now: float) -> None:
        """Make every call left now and complete (the control endpoint)."""
        self.advance(now)
        if self.status == "created":
            self.start_at = now
            self.advance(now)
        if self.status in ("in-progress", "paused"):
            for i in range(len(self.rows), len(self.callees)):
                self._call(i, now, outcome_of(self.callees[i].number))
            self._stop_running(now)
            self._set("completed", now)

    # ------------------------------------------------------------------ actions
    def act(self, action: str, now: float) -> None:
        """Apply ``action`` (already checked against :data:`ACTIONS`)."""
        if action == "pause":
            if self.status == "in-progress":
                self._stop_running(now)
            self._set("paused", now)
        elif action == "resume":
            self._set("in-progress", now)
            self.active_since = now
            self.advance(now)
        elif action == "complete":  # the calls not made are marked failed
            for i in range(len(self.rows), len(self.callees)):
                self._call(i, now, "failed", dialled=False)
            self._set("completed", now)
        else:
            self._set(ACTIONS[action][1], now)

    def _set(self, status: str, at: float) -> None:
        self.status = status
        self.data["date_updated"] = iso(max(at, _epoch(self.data["date_updated"])))

    # ------------------------------------------------------------------ rows
    def _call(self, i: int, at: float, outcome: str, *, dialled: bool = True) -> None:
        if self.rows:
            at = max(at, _epoch(self.rows[-1]["date_created"]))  # rows stay in time order
        callee = self.callees[i]
        sid = hashlib.sha1(f"{self.id}:{i}".encode()).hexdigest()
        duration = (
            10 + hashlib.sha256(callee.number.encode()).digest()[1] % 110 if outcome == "completed" else 0
        )
        row = {
            "call_sid": sid,
            "number": callee.number,
            "name": callee.name,
            "status": outcome,
            "duration": duration,
            "date_created": iso(at),
            "start_time": iso(at),
            "end_time": iso(at + duration),
            "caller_id": self.data.get("caller_id"),
            "direction": "outbound-api",
            "digits": None,
            "recording_url": f"https://recordings.example/{sid}.mp3" if duration else None,
        }
        self.rows.append(row)
        if dialled and self.on_call is not None:
            self.on_call(row, at, self._v1_record(row, at))

    def _v1_record(self, row: dict[str, Any], at: float) -> dict[str, Any]:
        account = self.data.get("account_sid")
        return {
            "Sid": row["call_sid"],
            "ParentCallSid": None,
            "DateCreated": _v1_time(at),
            "DateUpdated": _v1_time(at + row["duration"]),
            "AccountSid": account,
            "To": row["number"],
            "From": row["caller_id"],
            "PhoneNumberSid": row["caller_id"],
            "Status": row["status"],
            "StartTime": _v1_time(at),
            "EndTime": _v1_time(at + row["duration"]),
            "Duration": row["duration"],
            "Price": round(0.5 * -(-row["duration"] // 60), 2) if row["duration"] else 0.0,
            "Direction": "outbound-api",
            "AnsweredBy": "human" if row["status"] == "completed" else None,
            "RecordingUrl": row["recording_url"],
            "CampaignId": self.id,
        }

    def stats(self) -> dict[str, int]:
        counts = {o: 0 for o in OUTCOMES}
        for row in self.rows:
            counts[row["status"]] += 1
        total = len(self.callees) if self.callees else len(self.data.get("from") or ())
        return {
            "total": total,
            "dialled": len(self.rows),
            **counts,
            "pending": max(0, total - len(self.rows)),
        }

    def view(self, spelling: str) -> dict[str, Any]:
        """The campaign as the API shows it."""
        return {**self.data, "status": spell(self.status, spelling), "stats": self.stats()}


def _epoch(text: str) -> float:
    return datetime.strptime(text, _TS).replace(tzinfo=UTC).timestamp()
