"""Call-record exports (private; used by ``operators/calls.py``): resume seam, progress, lineage.

Standard library at the top level: the operator module imports this at DAG parse time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_exotel.operators._progress import duration

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

#: Seconds between progress lines in the task log.
PROGRESS_INTERVAL = 5.0


def skip_seen(calls: Iterator[dict[str, Any]], seen: set[str]) -> Iterator[dict[str, Any]]:
    """The calls whose ``Sid`` is not in ``seen`` (those an earlier try already wrote)."""
    for call in calls:
        if call.get("Sid") not in seen:
            yield call


class CallsProgress:
    """Logs ``fetched 4,000 calls, up to 2024-05-01 13:20:11 (41% of the interval), 310/s, ETA 9s``.

    At most every ``PROGRESS_INTERVAL`` s. Calls come oldest first, so the share of the interval
    already read (by ``DateCreated``) and the pace so far give the ETA.
    """

    def __init__(
        self,
        log: Any,
        start: datetime,
        end: datetime,
        created_at: Callable[[dict[str, Any]], datetime | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.created_at = created_at
        self.start, self.end = start, end
        self.count = 0
        self._clock = clock
        self.started = clock()
        self._last = self.started

    def add(self, call: dict[str, Any]) -> None:
        self.count += 1
        now = self._clock()
        if now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self.log.info("%s", self.line(call, now))

    def line(self, call: dict[str, Any], now: float) -> str:
        created = self.created_at(call)
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


__all__ = ["CallsProgress", "calls_lineage", "skip_seen"]
