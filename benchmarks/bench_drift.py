"""Exact paging: what the drift mechanism costs (registered in run.py).

X1  a stable fetch of 10,000 contacts: requests vs ``ceil(N/20)`` non-overlapping pages — the price
    of the one-contact overlap between pages (goal ≤ 6 %), at concurrency 1 and 4
X2  a fetch that sees one delete (on a page already read) and one insert mid-way, keeping the total
    unchanged: requests ÷ the stable fetch's (goal ≤ 1.3×), at concurrency 1 and 4; the result is
    checked to be exact
X3  an account growing at the end (one contact appended every ten requests): pages read again
    (goal 0) — appends never cost a re-read
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _lib

N = 10_000
CONCURRENCY = (1, 4)


def _fetch(sim: Any, concurrency: int) -> tuple[list[str], Any]:
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

    hook = ExotelContactsHook("bench_drift", concurrency=concurrency, retry_delay=0)
    try:
        sids = [c["sid"] for c in hook.iter_contacts()]
        return sids, hook._pager.progress
    finally:
        hook.close()


def bench(tmp: Path, add: Callable[..., None], progress: Callable[[str], None]) -> None:
    sim = _lib.in_process_simulator().start()
    try:
        _lib.set_connection("bench_drift", sim.host, sim.port)
        seeded = [c["sid"] for c in sim.seed_contacts(N)]
        baseline = math.ceil(N / 20)
        for c in CONCURRENCY:
            progress(f"X1: stable fetch of {N:,} contacts, concurrency {c}")
            sim.clear_requests()
            sim.before_request = None
            got, _ = _fetch(sim, c)
            assert got == seeded, "stable fetch is not exact"
            stable = sim.request_count(method="GET")
            overhead = stable / baseline - 1
            add(
                "X1",
                f"stable fetch of {N:,}: requests vs ceil(N/20), C={c}",
                f"{stable}",
                f"{baseline}",
                f"+{overhead * 100:.1f} %",
                "≤ +6 %",
                overhead <= 0.06,
            )

            progress(f"X2: one delete + one insert mid-way, concurrency {c}")
            sim.clear_requests()
            victim = seeded[100 + c]
            new: list[str] = []

            def drift(s: Any, victim: str = victim, new: list[str] = new) -> None:
                s.delete_contact(victim)  # on a page already read: everything after shifts left
                new.append(s.insert_contact(first_name="New")["sid"])  # the total is unchanged

            sim.on_nth_request(stable // 2, drift, method="GET")
            got, pager = _fetch(sim, c)
            drifted = sim.request_count(method="GET")
            counts = Counter(got)
            exact = (
                max(counts.values()) == 1
                and all(s in counts for s in seeded if s != victim)
                and set(counts) <= set(seeded) | set(new)
            )
            assert exact, "fetch with drift is not exact"
            ratio = drifted / stable
            add(
                "X2",
                f"1 delete + 1 insert mid-way: requests ÷ stable fetch, C={c} (re-reads {pager.rereads})",
                f"{drifted}",
                f"{stable}",
                f"{ratio:.3f}×",
                "≤ 1.3×",
                ratio <= 1.3,
            )
            # restore the account for the next round
            sim.before_request = None
            for sid in new:
                sim.delete_contact(sid)
            sim.insert_contact(sid=victim, date_created=_seeded_created(seeded, victim))

        progress("X3: appending one contact every ten requests, concurrency 4")
        sim.clear_requests()
        counter = {"n": 0}

        def append(s: Any, request: Any) -> None:
            counter["n"] += 1
            if counter["n"] % 10 == 0:
                s.insert_contact(first_name="Appended")

        sim.before_request = append
        got, pager = _fetch(sim, 4)
        sim.before_request = None
        assert set(seeded) <= set(got) and len(got) == len(set(got)), "growing fetch is not exact"
        add(
            "X3",
            f"account growing by 1 every 10 requests ({len(got) - N} appended): pages read again",
            f"{pager.rereads}",
            "—",
            f"{pager.rereads}",
            "0",
            pager.rereads == 0,
        )
    finally:
        sim.stop()


def _seeded_created(seeded: list[str], sid: str) -> str:
    """The seeded ``date_created`` of ``sid`` (the simulator seeds one second apart from 2024-01-01)."""
    from datetime import UTC, datetime, timedelta

    i = seeded.index(sid)
    return (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
