"""The request budget (first in `make bench`): what a fetch achieves against the account's real limit.

Exotel limits an account to R requests per window (30 a minute for the Campaign APIs), announces it
in ``X-RateLimit-*`` headers and answers 429 past it. The simulator enforces the same fixed window,
scaled from 60 s to ``WINDOW`` seconds with R kept at 30, so a run spans many windows in seconds;
what is judged is the ratio (requests admitted per window ÷ R, counted by the server) and the 429s.

B1  one process, headers, no configuration: achieved ÷ R (goal ≥ 0.95), 429s (goal 0)
B2  three processes (each its own hook) on one account: together ≥ 0.9 of R, ≤ 3 × 429
B3  headers hidden (the hook learns from 429s): ≥ 0.8 of R, ≤ 5 % of requests answered 429
B4  ``requests_per_minute`` = R set by hand, headers hidden (the old way; info)

Beside each: Exotel's own sample loop and ``HttpOperator`` + ``pagination_function`` on the same
server (how many requests they sent, their 429s, whether they finished).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _lib

R = 30  # requests per window, as Exotel's Campaign APIs
WINDOW = 3.0  # seconds (Exotel: 60)
WINDOWS = 10  # windows of work per run
PROCESSES = 3

Add = Callable[..., None]
Progress = Callable[[str], None]


def _contacts_for(windows: int) -> int:
    """Contacts that take about ``windows`` windows to fetch at R per window (19 new per page)."""
    return windows * R * (_lib.PAGE - 1)


def _alternatives(sim: Any, http_conn_id: str, clients: int = 1) -> dict[str, str]:
    """Run the sample loop and HttpOperator (``clients`` of each at once) on a fresh window."""
    results: dict[str, str] = {}
    for name, fetch in (
        ("Exotel sample loop", lambda: _lib.fetch_exotel_sample_loop(sim.url)),
        ("HttpOperator", lambda: len(_lib.fetch_http_operator(http_conn_id))),
    ):
        sim.account_limit.clear()
        sim.clear_requests()
        outcomes: list[str] = []

        def run(fetch: Callable[[], int] = fetch, outcomes: list[str] = outcomes) -> None:
            try:
                outcomes.append(f"finished ({fetch():,} contacts)")
            except Exception as exc:
                outcomes.append(f"failed: {type(exc).__name__}")

        threads = [threading.Thread(target=run) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent = sim.request_count()
        refused = sim.account_limit.refused
        verdict = outcomes[0] if len(set(outcomes)) == 1 else "; ".join(sorted(set(outcomes)))
        who = f"{clients} × {name}" if clients > 1 else name
        results[name] = f"{who}: {sent} requests, {refused} × 429, {verdict}"
    return results


def _judge(sim: Any) -> tuple[float, int, int]:
    account = sim.account_limit
    return account.utilisation(), account.refused, account.admitted


def bench(tmp: Path, add: Add, progress: Progress) -> None:
    """Run B1-B4 (see the module docstring)."""
    import run  # the runner, for notes

    sim = _lib.in_process_simulator(account_limit=R, account_window=WINDOW).start()
    try:
        sim.record_requests = True
        contacts = _contacts_for(WINDOWS)
        sim.seed_contacts(contacts)
        _lib.set_connection("bench_budget", sim.host, sim.port)
        _lib.set_connection("bench_budget_http", sim.host, sim.port, conn_type="http")

        # B1 — one process, headers, zero configuration
        progress(f"B1: headers, zero config: {contacts:,} contacts at R={R} per {WINDOW:g} s window ...")
        sim.account_limit.clear()
        started = time.perf_counter()
        n = _lib.fetch_ours("bench_budget", 4)
        seconds = time.perf_counter() - started
        if n != contacts:
            raise AssertionError(f"ours fetched {n:,} contacts, expected {contacts:,}")
        util, refused, admitted = _judge(sim)
        alt = _alternatives(sim, "bench_budget_http")
        progress(f"B1: ours {seconds:.1f} s, {admitted} requests, {refused} × 429, achieved {util:.3f} of R")
        beside = " / ".join(alt.values())
        add(
            "B1",
            f"headers, no config: achieved ÷ R (R={R}/window)",
            f"{util:.3f}",
            beside,
            f"{util:.3f}",
            "≥ 0.95",
            util >= 0.95,
        )
        add("B1", "headers, no config: 429s received", str(refused), beside, "—", "= 0", refused == 0)

        # B2 — three processes
        per_process = _contacts_for(WINDOWS) // PROCESSES
        progress(f"B2: {PROCESSES} processes, each its own hook, {per_process:,} contacts each ...")
        sim.account_limit.clear()
        code = (
            "import logging, sys; logging.disable(logging.CRITICAL); sys.path.insert(0, sys.argv[1]); "
            "import _lib; print(_lib.fetch_ours('bench_budget', 4))"
        )
        # a smaller account of its own: each process fetches all of it
        sim2 = _lib.in_process_simulator(account_limit=R, account_window=WINDOW).start()
        try:
            sim2.seed_contacts(per_process)
            _lib.set_connection("bench_budget", sim2.host, sim2.port)
            _lib.set_connection("bench_budget_http", sim2.host, sim2.port, conn_type="http")
            here = str(Path(__file__).resolve().parent)
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", code, here],
                    env=dict(os.environ),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                for _ in range(PROCESSES)
            ]
            outs = [p.communicate(timeout=600)[0].strip().splitlines() for p in procs]
            counts = [int(o[-1]) if o and o[-1].isdigit() else -1 for o in outs]
            if counts != [per_process] * PROCESSES:
                raise AssertionError(f"processes fetched {counts}, expected {per_process:,} each")
            util, refused, admitted = _judge(sim2)
            alt = _alternatives(sim2, "bench_budget_http", clients=PROCESSES)
        finally:
            sim2.stop()
            _lib.set_connection("bench_budget", sim.host, sim.port)
            _lib.set_connection("bench_budget_http", sim.host, sim.port, conn_type="http")
        progress(f"B2: {admitted} requests, {refused} × 429, achieved {util:.3f} of R together")
        beside = " / ".join(alt.values())
        add(
            "B2",
            f"{PROCESSES} processes, headers: achieved ÷ R together",
            f"{util:.3f}",
            beside,
            f"{util:.3f}",
            "≥ 0.9",
            util >= 0.9,
        )
        add(
            "B2",
            f"{PROCESSES} processes, headers: 429s received (all)",
            str(refused),
            beside,
            "—",
            f"≤ {PROCESSES}",
            refused <= PROCESSES,
        )

        # B3 — headers hidden
        sim.account_limit.headers = False
        progress(f"B3: headers hidden: {contacts:,} contacts ...")
        sim.account_limit.clear()
        n = _lib.fetch_ours("bench_budget", 4)
        if n != contacts:
            raise AssertionError(f"ours fetched {n:,} contacts, expected {contacts:,}")
        util, refused, admitted = _judge(sim)
        share = refused / max(admitted + refused, 1)
        alt = _alternatives(sim, "bench_budget_http")
        progress(f"B3: {admitted} requests, {refused} × 429 ({share:.1%}), achieved {util:.3f} of R")
        beside = " / ".join(alt.values())
        add("B3", "headers hidden: achieved ÷ R", f"{util:.3f}", beside, f"{util:.3f}", "≥ 0.8", util >= 0.8)
        add(
            "B3",
            "headers hidden: requests answered 429",
            f"{refused} ({share:.1%})",
            beside,
            f"{share:.1%}",
            "≤ 5 %",
            share <= 0.05,
        )

        # B4 — requests_per_minute set by hand (headers hidden)
        rpm = R * 60 / WINDOW
        progress(f"B4: requests_per_minute={rpm:g} set by hand, headers hidden ...")
        sim.account_limit.clear()
        n = _lib.fetch_ours("bench_budget", 4, requests_per_minute=rpm)
        util, refused, admitted = _judge(sim)
        add(
            "B4",
            "requests_per_minute=R by hand, no headers: achieved ÷ R",
            f"{util:.3f}",
            "—",
            f"{util:.3f}",
            "info",
            None,
        )
        add("B4", "requests_per_minute=R by hand, no headers: 429s", str(refused), "—", "—", "info", None)
        sim.account_limit.headers = True
    finally:
        sim.stop()
    pages = math.ceil(contacts / (_lib.PAGE - 1))
    run.PLACEMENT["B1-B4"] = (
        "simulator in this process (its fixed-window account limit counts every client: threads and "
        f"processes); window scaled from 60 s to {WINDOW:g} s with R={R} requests per window kept."
    )
    run.note(
        f"B1-B4: achieved ÷ R = mean requests admitted per window ÷ R over the complete windows between "
        f"the first and last admitted request, counted by the server; B1/B3 fetch {contacts:,} contacts "
        f"(~{pages} requests, {WINDOWS} windows of R), B2 {per_process:,} per process. Exotel's sample "
        "loop and HttpOperator have no notion of the budget: they stop at the first 429 "
        "(`raise_for_status` / `check_response`), having fetched only what one window allowed."
    )
