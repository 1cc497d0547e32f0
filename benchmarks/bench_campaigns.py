"""Campaigns (registered in run.py): exporting a big campaign's outcomes, and waiting for one.

C1  a 10,000-number campaign's call details exported (JSON Lines, the operator) while a contacts
    export runs beside it on the same account: both share the campaign family's window (R=30 per
    window, scaled from 60 s to ``WINDOW`` s). Achieved ÷ R over the run (goal ≥ 0.95) and 429s
    (goal 0), counted by the server.
C2  waiting for a 2-hour campaign (7,200 numbers at 1 call/s of simulator time) with
    ``wait_for_completion`` at ``poll_interval=60``: requests made (goal ≤ 130, one per poll) and,
    deferrable, worker-slot seconds held ÷ the wait (goal ≤ 1 %). The simulator clock is moved by
    each poll's sleep instead of waiting two hours; beside it the same wait polling in the worker.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import _lib

R = 30
WINDOW = 3.0
NUMBERS = 10_000
BESIDE = 3_000  # contacts exported beside the call details
WAIT_NUMBERS = 7_200  # 2 h at 1 call/s
POLL = 60

Add = Callable[..., None]
Progress = Callable[[str], None]


def bench(tmp: Path, add: Add, progress: Progress) -> None:
    work = tmp / "campaigns"
    work.mkdir(parents=True, exist_ok=True)
    _c1(work, add, progress)
    _c2(add, progress)


def _campaign(sim: Any, numbers: int, list_sid: str, name: str) -> str:
    from airflow_provider_exotel.hooks.campaigns import ExotelCampaignsHook

    contacts = sim.seed_contacts(numbers)
    sim.create_list(list_sid, [c["sid"] for c in contacts])
    hook = ExotelCampaignsHook("bench_campaigns", retry_delay=0)
    try:
        made = hook.create_campaign(name=name, caller_id="0801", list_sids=[list_sid], read_via_text="Hi")
    finally:
        hook.close()
    return str(made["id"])


def _c1(work: Path, add: Add, progress: Progress) -> None:
    from airflow_provider_exotel.operators.campaigns import ExotelFetchCampaignCallDetailsOperator
    from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator

    sim = _lib.in_process_simulator().start()
    try:
        _lib.set_connection("bench_campaigns", sim.host, sim.port)
        campaign_id = _campaign(sim, NUMBERS, "C1", "C1 campaign")
        sim.campaigns.finish(campaign_id)
        sim.seed_contacts(BESIDE)
        sim.set_account_limit(R, window=WINDOW)
        results: dict[str, Any] = {}
        details = ExotelFetchCampaignCallDetailsOperator(
            task_id="c1_details",
            campaign_id=campaign_id,
            output_path=str(work / "calls.jsonl"),
            exotel_conn_id="bench_campaigns",
        )
        contacts = ExotelFetchContactsOperator(
            task_id="c1_contacts",
            exotel_conn_id="bench_campaigns",
            output_path=str(work / "contacts.jsonl"),
            max_records=BESIDE,
        )

        def run(name: str, op: Any) -> None:
            results[name] = op.execute(context={})

        progress(f"C1: {NUMBERS:,} call details + {BESIDE:,} contacts beside, R={R} per {WINDOW:g} s window")
        threads = [
            threading.Thread(target=run, args=a) for a in (("details", details), ("contacts", contacts))
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        account = sim.account_limit
        util, refused = account.utilisation(), account.refused
        ok = (
            results.get("details", {}).get("count") == NUMBERS
            and results.get("contacts", {}).get("count") == BESIDE
        )
        progress(
            f"C1: {seconds:.1f} s, {account.admitted} requests, {refused} × 429, achieved {util:.3f} of R"
        )
        what = f"{NUMBERS:,} call details + {BESIDE:,} contacts at once, one account"
        add(
            "C1",
            f"{what}: achieved ÷ R" + ("" if ok else " (INCOMPLETE)"),
            f"{util:.3f}",
            f"R={R}/window",
            f"{util:.3f}",
            "≥ 0.95",
            util >= 0.95 and ok,
        )
        add("C1", f"{what}: 429s received", str(refused), "—", "—", "= 0", refused == 0)
    finally:
        sim.stop()


def _c2(add: Add, progress: Progress) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    sim = _lib.in_process_simulator().start()
    try:
        _lib.set_connection("bench_campaigns", sim.host, sim.port)
        progress(f"C2: a {WAIT_NUMBERS:,}-number campaign at 1 call/s, waited with poll_interval={POLL}")
        contacts = sim.seed_contacts(WAIT_NUMBERS)
        sim.create_list("C2", [c["sid"] for c in contacts])
        for deferrable in (True, False):
            sim.clear_requests()
            op = _create_op(f"C2 {'deferred' if deferrable else 'polled'}", deferrable)
            started_at = sim.clock.now()
            slot = 0.0
            if deferrable:
                t0 = time.perf_counter()
                try:
                    op.execute({})
                    raise AssertionError("the deferrable wait did not defer")
                except TaskDeferred as deferred:
                    slot += time.perf_counter() - t0
                    event = _run_trigger(sim, deferred.trigger)
                t0 = time.perf_counter()
                final = op.execute_complete({}, event)
                slot += time.perf_counter() - t0
            else:
                with mock.patch.object(time, "sleep", lambda s: sim.clock.advance(s)):
                    final = op.execute({})
                slot = sim.clock.now() - started_at  # the worker held its slot for the whole wait
            waited = sim.clock.now() - started_at
            requests = sim.request_count()
            label = "deferrable" if deferrable else "polling in the worker"
            progress(
                f"C2 {label}: {final['status']}, {requests} requests, slot {slot:.1f} s of {waited:.0f} s"
            )
            add(
                "C2",
                f"2-hour campaign waited ({label}): requests made",
                str(requests),
                f"{waited / POLL:.0f} polls",
                "—",
                "≤ 130" if deferrable else "info",
                requests <= 130 and final["status"] == "completed" if deferrable else None,
            )
            add(
                "C2",
                f"2-hour campaign waited ({label}): worker-slot seconds ÷ the wait",
                f"{slot:.1f} s",
                f"{waited:.0f} s",
                f"{slot / waited:.2%}",
                "≤ 1 %" if deferrable else "info",
                slot / waited <= 0.01 if deferrable else None,
            )
    finally:
        sim.stop()


def _create_op(name: str, deferrable: bool) -> Any:
    from airflow_provider_exotel.operators.campaigns import ExotelCreateCampaignOperator

    return ExotelCreateCampaignOperator(
        task_id="c2",
        name=name,
        caller_id="0801",
        list_sids=["C2"],
        read_via_text="Hi",
        wait_for_completion=True,
        poll_interval=POLL,
        deferrable=deferrable,
        exotel_conn_id="bench_campaigns",
    )


def _run_trigger(sim: Any, trigger: Any) -> dict[str, Any]:
    """Run the trigger like the triggerer does, its sleeps moving the simulator clock instead."""

    async def fake_sleep(seconds: float) -> None:
        sim.clock.advance(seconds)

    async def main() -> dict[str, Any]:
        with mock.patch.object(asyncio, "sleep", fake_sleep):
            event = await trigger.run().__anext__()
        return dict(event.payload)

    return asyncio.run(main())
