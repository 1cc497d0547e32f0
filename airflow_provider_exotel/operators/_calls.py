"""Call-record exports (private; used by ``operators/calls.py``): resume, progress, lineage.

Standard library at the top level: the operator module imports this at DAG parse time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_exotel.operators._export import ResumableExport

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

#: Seconds between progress lines in the task log.
PROGRESS_INTERVAL = 5.0


class CallsExport(ResumableExport):
    """:class:`ResumableExport` for v1 call records, keyed by ``Sid`` (contacts use ``sid``).

    Integrator: fold into ``operators/_files.py`` as a ``key=`` argument of the resumable writer.
    """

    def _read_held(self, fd: int) -> tuple[int, dict[str, Any] | None, set[str]] | None:
        try:
            with open(self.note, encoding="utf-8") as note:
                if json.load(note) != json.loads(json.dumps(self.fetch, default=str)):
                    return None
        except (OSError, ValueError):
            return None
        sids: set[str] = set()
        last: dict[str, Any] | None = None
        end = 0  # bytes of complete lines
        try:
            with open(self.partial, "rb") as reader:
                for line in reader:
                    if not line.endswith(b"\n"):
                        break  # a torn last line (the try was killed mid-write): cut below
                    call = json.loads(line)
                    sid = call.get("Sid") if isinstance(call, dict) else None
                    if not isinstance(sid, str):
                        return None
                    sids.add(sid)
                    last = call
                    end += len(line)
                size = reader.seek(0, os.SEEK_END)
        except (OSError, ValueError):
            return None
        if not sids:
            return None
        if end < size:
            os.ftruncate(fd, end)
        return len(sids), last, sids


def skip_seen(calls: Iterator[dict[str, Any]], seen: set[str]) -> Iterator[dict[str, Any]]:
    """The calls whose ``Sid`` is not in ``seen`` (those an earlier try already wrote)."""
    for call in calls:
        if call.get("Sid") not in seen:
            yield call


def duration(seconds: float) -> str:
    """``2h 43m``, ``4m 10s``, ``12s``."""
    s = max(round(seconds), 0)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


class CallsProgress:
    """Logs ``fetched 4,000 calls, up to 2024-05-01 13:20:11 (41% of the interval), 310/s, ETA 9s``.

    At most every ``PROGRESS_INTERVAL`` s. Calls come oldest first, so the share of the interval
    already read (by ``DateCreated``) and the pace so far give the ETA.
    """

    def __init__(self, log: Any, start: datetime, end: datetime, clock: Any = time.monotonic) -> None:
        self.log = log
        self.start, self.end = start, end
        self.count = 0
        self._clock = clock
        self.started = clock()
        self._last = self.started

    def add(self, call: dict[str, Any], created: datetime | None) -> None:
        self.count += 1
        now = self._clock()
        if now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self.log.info("%s", self.line(call, created, now))

    def line(self, call: dict[str, Any], created: datetime | None, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        text = f"fetched {self.count:,} calls, up to {call.get('DateCreated')}"
        span = (self.end - self.start).total_seconds()
        if created is not None and span > 0:
            done = min(max((created - self.start).total_seconds() / span, 0.0), 1.0)
            text += f" ({done:.0%} of the interval), {self.count / elapsed:,.1f}/s"
            if done > 0:
                text += f", ETA {duration(elapsed * (1 - done) / done)}"
        return text

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started


def calls_lineage(operator: Any, output_path: Any) -> OperatorLineage:
    """OpenLineage: the account's calls (``exotel://<host>``, ``accounts/<sid>/calls``) → the file."""
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_exotel.operators._lineage import exotel_namespace, file_dataset_name

    inputs: list[Dataset] = []
    try:
        namespace, account_sid = exotel_namespace(operator.hook)
        inputs.append(Dataset(namespace=namespace, name=f"accounts/{quote(account_sid, safe='')}/calls"))
    except Exception as exc:  # lineage must never fail a task that succeeded
        operator.log.warning("OpenLineage: cannot name the Exotel calls dataset (%s)", exc)
    finally:
        operator._close_hook()
    named = file_dataset_name(output_path)
    outputs = [Dataset(namespace=named[0], name=named[1])] if named is not None else []
    return OperatorLineage(inputs=inputs, outputs=outputs)


__all__ = ["CallsExport", "CallsProgress", "calls_lineage", "duration", "skip_seen"]
