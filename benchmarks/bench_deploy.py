"""What a deployment feels (registered in run.py).

D1  the connection form's Test button on an unreachable host (a closed port): seconds until it
    answers, vs the same check with the hook's full retry budget (what the button did before,
    24 s in the issue). Goal: ≤ 0.2 of it, one attempt.
D2  the deferrable sensor's first check while Exotel keeps answering 503: seconds the worker slot is
    held before the task defers, vs a first check with the full retry budget. Goal: ≤ 0.1 of it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import _lib


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    try:
        fn()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # an error, or TaskDeferred (a BaseException on Airflow 3): what is timed
        pass
    return time.perf_counter() - started


def bench(tmp: Path, add: Callable[..., None], progress: Callable[[str], None]) -> None:
    from airflow_provider_exotel._contacts_check import check_contacts
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook
    from airflow_provider_exotel.sensors.contacts import ExotelContactsSensor

    # D1 -- the Test button
    _lib.set_connection("bench_d1", "127.0.0.1", _closed_port())
    progress("D1: Test button on a closed port (the alternative spends the whole retry budget)")
    ours = _timed(lambda: ExotelContactsHook("bench_d1").test_connection())
    alt = _timed(lambda: ExotelContactsHook("bench_d1").count_contacts())
    ratio = ours / alt if alt else float("inf")
    add(
        "D1",
        "Test button on a closed port, s",
        f"{ours:.2f}",
        f"{alt:.1f}",
        f"{ratio:.3f}",
        "≤ 0.2",
        ratio <= 0.2,
    )

    # D2 -- the deferrable sensor's first check under faults
    sim = _lib.in_process_simulator().start()
    try:
        _lib.set_connection("bench_d2", sim.host, sim.port)
        sim.seed_contacts(10)
        sim.fail_every_request("503")
        progress("D2: deferrable sensor's first check while Exotel answers 503")
        sensor = ExotelContactsSensor(task_id="d2", exotel_conn_id="bench_d2", deferrable=True, timeout=600)
        ours = _timed(lambda: sensor.execute({}))  # raises TaskDeferred
        ours_requests = sim.request_count()
        sim.clear_requests()
        hook = ExotelContactsHook("bench_d2")
        alt = _timed(lambda: check_contacts(hook, list_sid=None, min_count=1, created_after=None))
        alt_requests = sim.request_count()
    finally:
        sim.stop()
    ratio = ours / alt if alt else float("inf")
    add(
        "D2",
        "worker slot held before deferring under 503s, s (requests)",
        f"{ours:.2f} ({ours_requests})",
        f"{alt:.1f} ({alt_requests})",
        f"{ratio:.3f}",
        "≤ 0.1",
        ratio <= 0.1 and ours_requests == 1,
    )
