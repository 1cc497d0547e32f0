"""Measurements that need a fresh client process (memory, CPU). Run by ``run.py``, never directly.

    python benchmarks/_worker.py <mode> '<json args>'

Prints one JSON object on its last stdout line. The simulator always runs in another process, so
neither its memory nor its CPU time is counted here.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _lib


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _rss_mb() -> float:
    """Current RSS (Linux /proc; elsewhere the peak so far, which only makes growth look smaller)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return _maxrss_mb()


class PeakRss:
    """Peak RSS growth over a block: exact via ru_maxrss when the block sets a new peak, else sampled."""

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.before = _rss_mb()
        self.maxrss_before = _maxrss_mb()
        self.sampled = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.sampled = max(self.sampled, _rss_mb())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        maxrss = _maxrss_mb()
        peak = maxrss if maxrss > self.maxrss_before else max(self.sampled, _rss_mb())
        self.growth = peak - self.before

    def report(self) -> dict[str, float]:
        return {"before_mb": self.before, "growth_mb": self.growth}


def p3_ours(args: dict[str, Any]) -> dict[str, Any]:
    """Export every contact to JSON Lines with ExotelFetchContactsOperator; peak RSS growth."""
    from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator

    conn_id, out = args["conn_id"], args["output_path"]
    warm = ExotelFetchContactsOperator(
        task_id="warm_up", exotel_conn_id=conn_id, output_path=out + ".warm", max_records=40
    )
    warm.execute(context={})  # type: ignore[arg-type]  # loads the hook, requests, tenacity, ...
    op = ExotelFetchContactsOperator(task_id="export", exotel_conn_id=conn_id, output_path=out)
    with PeakRss() as rss:
        started = time.perf_counter()
        result = op.execute(context={})  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
    with open(out, encoding="utf-8") as fh:
        lines = sum(1 for _ in fh)
    return {**rss.report(), "seconds": elapsed, "count": result["count"], "lines": lines}


def p3_http_operator(args: dict[str, Any]) -> dict[str, Any]:
    """The same export with HttpOperator + pagination_function, then writing the JSON Lines file."""
    conn_id, out = args["http_conn_id"], args["output_path"]
    warm = _lib.http_operator(conn_id, task_id="warm_up")
    warm.pagination_function = lambda response: None  # one page: loads the HTTP hook and friends
    warm.execute(context={})
    op = _lib.http_operator(conn_id)
    with PeakRss() as rss:
        started = time.perf_counter()
        contacts = op.execute(context={})
        with open(out, "w", encoding="utf-8") as fh:
            for contact in contacts:
                fh.write(json.dumps(contact, ensure_ascii=False, separators=(",", ":")) + "\n")
        elapsed = time.perf_counter() - started
    return {**rss.report(), "seconds": elapsed, "count": len(contacts), "lines": len(contacts)}


def p4_cpu(args: dict[str, Any]) -> dict[str, Any]:
    """Client CPU per contact at zero latency: raw Session loop vs ours (C=1, C=4), interleaved."""
    conn_id, base_url, repeats = args["conn_id"], args["base_url"], args["repeats"]
    session = _lib.raw_session()
    runs = {
        "raw": lambda: _lib.fetch_session_loop(session, base_url),
        "ours_c1": lambda: _lib.fetch_ours(conn_id, 1),
        "ours_c4": lambda: _lib.fetch_ours(conn_id, 4),
    }
    for run in runs.values():  # warm-up: imports, connection set-up, first-call costs
        run()
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    counts: dict[str, int] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            c0, w0 = time.process_time(), time.perf_counter()
            counts[name] = run()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    return {
        name: {
            "cpu_median": statistics.median(cpu[name]),
            "cpu": cpu[name],
            "wall_median": statistics.median(wall[name]),
            "count": counts[name],
        }
        for name in runs
    }


MODES = {"p3-ours": p3_ours, "p3-http-operator": p3_http_operator, "p4-cpu": p4_cpu}


def main() -> None:
    mode, raw = sys.argv[1], sys.argv[2]
    args = json.loads(raw)
    tempfile.tempdir = args.get("tmpdir") or None
    import airflow.sdk  # noqa: F401  (Airflow configures logging on import; quiet it afterwards)

    _lib.quiet_logs()
    result = MODES[mode](args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
