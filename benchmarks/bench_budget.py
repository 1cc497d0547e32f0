"""The request budget: what the hook achieves against an account's rate limit (first in `make bench`).

bench(tmp, add, progress)   # called by run.py
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import _lib

RPM = 1200
WINDOW = 5.0
CONTACTS = 6_000
LATENCY = 0.050


def bench(tmp: Path, add: Callable[..., None], progress: Callable[[str], None]) -> None:
    """Rate-limited fetch with ``requests_per_minute`` set: achieved ÷ R and 429s."""
    sim = _lib.WindowedSimulator(window=WINDOW, latency=LATENCY, rate_limit_per_minute=RPM).start()
    try:
        sim.seed_contacts(CONTACTS)
        _lib.set_connection("bench_budget_rpm", sim.host, sim.port)
        pages = math.ceil(CONTACTS / _lib.PAGE)
        progress(f"budget: requests_per_minute=R={RPM}, {pages} pages (~{pages * 60 / RPM:.0f} s)")
        started = time.perf_counter()
        n = _lib.fetch_ours("bench_budget_rpm", 4, requests_per_minute=RPM)
        seconds = time.perf_counter() - started
        if n != CONTACTS:
            raise AssertionError(f"fetched {n} contacts, expected {CONTACTS}")
        ok200 = sim.count_status(200)
        got429 = sim.count_status(429)
        ratio = ok200 / seconds * 60 / RPM
        add(
            "budget",
            f"requests_per_minute=R: achieved ÷ R (R={RPM})",
            f"{ok200 / seconds * 60:.0f}/min",
            f"{RPM}/min",
            f"{ratio:.3f}",
            "≥ 0.9",
            ratio >= 0.9,
        )
        add("budget", "requests_per_minute=R: 429 responses", str(got429), "0", "—", "= 0", got429 == 0)
    finally:
        sim.stop()
