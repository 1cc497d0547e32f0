"""Incremental and resumed exports (registered in run.py).

I1  export one day's new contacts out of 100,000 created over a year (~274 a day), with
    ``created_from``/``created_to``: requests vs a full export of the account (goal ≤ 1 %), for the
    newest day (a daily DAG) and a day in the middle (a backfill); and against the documented cost
    ``k/19 + 2·log2(N) + 3``
I2  an export of 20,000 contacts SIGKILLed part-way (a real subprocess running the operator), then
    resumed by the next try: the second try's requests ÷ a full export's (goal ≤ 0.6 when killed
    half-way), and the file is byte-identical to an uninterrupted export
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _lib

ACCOUNT = 100_000
SPACING = timedelta(seconds=315)  # 100,000 contacts over ~365 days: ~274 a day
RESUME_CONTACTS = 20_000
RESUME_LATENCY = 0.002
KILL_AT = (0.25, 0.5, 0.75)
CONCURRENCY = 4
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def _export(tmp: Path, name: str, **kwargs: Any) -> dict[str, Any]:
    from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator

    op = ExotelFetchContactsOperator(
        task_id="bench_incremental",
        exotel_conn_id="bench_incremental",
        output_path=str(tmp / name),
        hook_params={"concurrency": CONCURRENCY},
        **kwargs,
    )
    result: dict[str, Any] = op.execute(context={})
    return result


def bench(tmp: Path, add: Callable[..., None], progress: Callable[[str], None]) -> None:
    work = tmp / "incremental"
    work.mkdir(parents=True, exist_ok=True)
    _incremental(work, add, progress)
    _resumed(work, add, progress)


def _incremental(work: Path, add: Callable[..., None], progress: Callable[[str], None]) -> None:
    sim = _lib.in_process_simulator().start()
    try:
        _lib.set_connection("bench_incremental", sim.host, sim.port)
        progress(f"I1: seeding {ACCOUNT:,} contacts over a year")
        for i in range(ACCOUNT):
            sim.insert_contact(date_created=BASE + i * SPACING)
        sim.clear_requests()
        full = _export(work, "full.jsonl")
        full_requests = sim.request_count(method="GET")
        assert full["count"] == ACCOUNT, full
        progress(f"I1: full export {full_requests:,} requests")
        newest = BASE + (ACCOUNT - 1) * SPACING
        days = {
            "yesterday (a daily DAG)": newest.replace(hour=0, minute=0, second=0) - timedelta(days=1),
            "a day in the middle (a backfill)": BASE + timedelta(days=180),
        }
        for label, day in days.items():
            sim.clear_requests()
            result = _export(
                work,
                f"day-{day:%Y%m%d}.jsonl",
                created_from=day.isoformat(),
                created_to=(day + timedelta(days=1)).isoformat(),
            )
            requests = sim.request_count(method="GET")
            k = result["count"]
            formula = k / 19 + 2 * math.log2(ACCOUNT) + 3
            ratio = requests / full_requests
            add(
                "I1",
                f"export {label}: {k} new of {ACCOUNT:,} contacts, requests vs a full export",
                f"{requests} requests",
                f"{full_requests:,} requests",
                f"{ratio:.2%}",
                "≤ 1 %",
                ratio <= 0.01,
            )
            add(
                "I1",
                f"same ({label}): requests vs the documented k/19 + 2·log2(N) + 3",
                f"{requests} requests",
                f"{formula:.0f}",
                f"{requests / formula:.2f}×",
                "≤ 1×",
                requests <= formula,
            )
    finally:
        sim.stop()


def _resumed(work: Path, add: Callable[..., None], progress: Callable[[str], None]) -> None:
    from airflow_provider_exotel.operators._files import target_key

    sim = _lib.in_process_simulator().start()
    try:
        _lib.set_connection("bench_incremental", sim.host, sim.port)
        sim.seed_contacts(RESUME_CONTACTS)
        sim.clear_requests()
        _export(work, "reference.jsonl")
        full = sim.request_count(method="GET")
        reference = (work / "reference.jsonl").read_bytes()
        for fraction in KILL_AT:
            target = work / f"resumed-{fraction:.2f}.jsonl"
            sim.latency = RESUME_LATENCY
            _kill_midway(sim, target, int(full * fraction))
            partial = target.with_name(f".exotel-{target_key(target)}.partial.jsonl")
            held = partial.read_bytes().count(b"\n") if partial.exists() else 0
            sim.latency = 0.0
            sim.clear_requests()
            _export(work, target.name)
            second = sim.request_count(method="GET")
            identical = target.read_bytes() == reference
            ratio = second / full
            progress(f"I2: killed at {fraction:.0%} ({held:,} contacts kept), second try {second} requests")
            add(
                "I2",
                f"export of {RESUME_CONTACTS:,} SIGKILLed after {fraction:.0%} of its requests: "
                "second try's requests vs a full export" + ("" if identical else " (FILE DIFFERS)"),
                f"{second:,} requests",
                f"{full:,} requests",
                f"{ratio:.2f}",
                "≤ 0.6" if fraction == 0.5 else "info",
                (ratio <= 0.6 and identical) if fraction == 0.5 else (None if identical else False),
            )
    finally:
        sim.stop()


def _kill_midway(sim: Any, target: Path, after_requests: int) -> None:
    code = textwrap.dedent(
        f"""
        from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator
        ExotelFetchContactsOperator(
            task_id="bench_incremental", exotel_conn_id="bench_incremental", output_path={str(target)!r},
            hook_params={{"concurrency": {CONCURRENCY}}},
        ).execute(context={{}})
        """
    )
    sim.clear_requests()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
    )
    try:
        deadline = time.monotonic() + 300
        while sim.request_count(method="GET") < after_requests:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the export to kill ended (or stalled) before it got far enough")
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
