"""Call records (Voice v1 ``Calls``): a 60-day export against the voice budget, apart from campaigns.

Exotel's voice APIs have their own budget (200 requests a minute by default), separate from the
campaign APIs' 30. The simulator enforces both as fixed windows, scaled from 60 s to ``WINDOW``
seconds with the limits kept, so a run spans many windows in seconds; what is judged is what the
server counted: requests admitted per window ÷ R, 429s, and the request count.

V1  100,000 calls over 60 days exported (operator, JSON Lines): ≥ 0.95 of the voice budget, 0 × 429,
    requests ≤ 1.02 × the minimum (⌈calls/100⌉ + one per month window)
C3  the same kind of export while another client saturates the campaign family: the voice export
    still gets ≥ 0.95 of its own budget, with 0 × 429
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _lib

R_VOICE = 200  # requests per window, as Exotel's voice APIs
R_CAMPAIGN = 30  # the campaign APIs'
WINDOW = 8.0  # seconds (Exotel: 60); the client must sustain R / WINDOW requests a second
CALLS = 100_000
DAYS = 60
C3_CALLS = 40_000
C3_DAYS = 40

Add = Callable[..., None]
Progress = Callable[[str], None]


def _span(days: int) -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=days), end


def _export(conn_id: str, start: datetime, end: datetime, target: Path) -> tuple[int, float]:
    """Ours: the operator exports ``[start, end)`` to ``target``; returns (calls, seconds)."""
    from airflow_provider_exotel.operators.calls import ExotelFetchCallsOperator

    op = ExotelFetchCallsOperator(
        task_id="bench_calls",
        created_from=start.isoformat(),
        created_to=end.isoformat(),
        output_path=str(target),
        exotel_conn_id=conn_id,
        settle=0,
    )
    started = time.perf_counter()
    result = op.execute({})
    return result["count"], time.perf_counter() - started


def _minimum(sim: Any, start: datetime, end: datetime) -> int:
    """⌈calls/100⌉ + one request per month window (the last page of each window may be partial)."""
    windows = math.ceil((end - start) / timedelta(days=31))
    return math.ceil(len(sim.call_records()) / 100) + windows


def _saturate(conn_id: str, stop: threading.Event) -> None:
    """Read contacts over and over on the campaign family until ``stop`` (keeps its budget spent)."""
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

    hook = ExotelContactsHook(conn_id, concurrency=4)
    try:
        while not stop.is_set():
            for _ in hook.iter_contacts():
                if stop.is_set():
                    return
    finally:
        hook.close()


def bench(tmp: Path, add: Add, progress: Progress) -> None:
    """Run V1 and C3 (see the module docstring)."""
    sim = _lib.in_process_simulator().start()
    try:
        voice = sim.set_voice_limit(R_VOICE, window=WINDOW)
        _lib.set_connection("bench_calls", sim.host, sim.port)
        start, end = _span(DAYS)
        progress(f"V1: seeding {CALLS:,} calls over {DAYS} days ...")
        sim.seed_calls(CALLS, start=start, end=end)

        progress(f"V1: exporting them at R={R_VOICE} per {WINDOW:g} s window (voice family) ...")
        voice.clear()
        count, seconds = _export("bench_calls", start, end, tmp / "calls.jsonl")
        if count != CALLS:
            raise AssertionError(f"exported {count:,} calls, expected {CALLS:,}")
        util, refused, admitted = voice.utilisation(), voice.refused, voice.admitted
        minimum = _minimum(sim, start, end)
        progress(
            f"V1: {seconds:.1f} s, {admitted} requests (minimum {minimum}), {refused} × 429, {util:.3f} of R"
        )
        what = f"{CALLS:,} calls / {DAYS} days"
        add(
            "V1",
            f"{what}: achieved ÷ voice R (R={R_VOICE}/window)",
            f"{util:.3f}",
            "—",
            f"{util:.3f}",
            "≥ 0.95",
            util >= 0.95,
        )
        add("V1", f"{what}: 429s received", str(refused), "—", "—", "= 0", refused == 0)
        ratio = (admitted + refused) / minimum
        add(
            "V1",
            f"{what}: requests ÷ minimum",
            str(admitted + refused),
            str(minimum),
            f"{ratio:.3f}",
            "≤ 1.02",
            ratio <= 1.02,
        )
        _c3(sim, tmp, add, progress)
    finally:
        sim.stop()


def _c3(sim: Any, tmp: Path, add: Add, progress: Progress) -> None:
    """C3: a voice export beside a saturated campaign family (same account, same simulator)."""
    campaign = sim.set_account_limit(R_CAMPAIGN, window=WINDOW)
    sim.seed_contacts(R_CAMPAIGN * 19 * 4)
    start, end = _span(C3_DAYS)
    voice = sim.account_limits["voice"]
    voice.clear()
    stop = threading.Event()
    hogs = [threading.Thread(target=_saturate, args=("bench_calls", stop)) for _ in range(2)]
    progress(f"C3: voice export of {C3_DAYS} days while 2 clients saturate the campaign family ...")
    for hog in hogs:
        hog.start()
    try:
        time.sleep(WINDOW)  # the campaign window is spent before the voice export starts
        count, seconds = _export("bench_calls", start, end, tmp / "calls-c3.jsonl")
    finally:
        stop.set()
        for hog in hogs:
            hog.join()
    util, refused = voice.utilisation(), voice.refused
    progress(
        f"C3: {count:,} calls in {seconds:.1f} s, voice {util:.3f} of R, {refused} × 429; campaign "
        f"{campaign.utilisation():.3f} of its R, {campaign.refused} × 429"
    )
    beside = f"campaign family meanwhile: {campaign.utilisation():.2f} of its R, {campaign.refused} × 429"
    add(
        "C3",
        "voice export, campaign saturated: achieved ÷ voice R",
        f"{util:.3f}",
        beside,
        f"{util:.3f}",
        "≥ 0.95",
        util >= 0.95,
    )
    add("C3", "voice export, campaign saturated: voice 429s", str(refused), beside, "—", "= 0", refused == 0)
