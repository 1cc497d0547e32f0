"""Campaign audience sync benchmarks (registered in run.py).

A1  sync 10,000 input rows against an account of 10,000 (1 % changed, 1 % new) into a new list:
    writes (goal ≤ 5) and reads, time at 50 ms latency
A2  the same input synced again: writes (goal 0)
A3  the second sync with ``current_path`` (an earlier fetch) vs re-reading the account: reads saved,
    and what that is at Exotel's default 30 requests/min
A4  plan memory per account contact: the sync's index vs keeping the contact dicts
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _lib

ACCOUNT = 10_000
CHANGED = 100
NEW = 100
LATENCY = 0.050
CONCURRENCY = 4
CAMPAIGN_RPM = 30
MEMORY_CONTACTS = 100_000


def _requests(sim: Any) -> tuple[int, int]:
    reqs = sim.requests
    writes = sum(1 for r in reqs if r.method in ("POST", "PUT", "DELETE", "PATCH"))
    return len(reqs) - writes, writes


def _sync(path: Path, **kwargs: Any) -> tuple[float, dict[str, Any]]:
    from airflow_provider_exotel.operators.contacts import ExotelSyncContactsOperator

    op = ExotelSyncContactsOperator(
        task_id="bench_sync",
        exotel_conn_id="bench_audience",
        input_path=str(path),
        list_name="bench audience",
        hook_params={"concurrency": CONCURRENCY, "retry_delay": 0.1},
        **kwargs,
    )
    started = time.perf_counter()
    result = op.execute(context={})
    return time.perf_counter() - started, result


def _minutes(requests: int) -> str:
    return f"{requests / CAMPAIGN_RPM:,.1f} min"


def bench(tmp: Path, add: Callable[..., None], progress: Callable[[str], None]) -> None:
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

    work = tmp / "audience"
    work.mkdir(parents=True, exist_ok=True)
    sim = _lib.in_process_simulator(latency=LATENCY).start()
    try:
        _lib.set_connection("bench_audience", sim.host, sim.port)
        seeded = sim.seed_contacts(ACCOUNT)
        progress(f"A1: account of {ACCOUNT:,}; input {ACCOUNT:,} rows ({CHANGED} changed, {NEW} new)")
        path = work / "audience.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for i, contact in enumerate(seeded[: ACCOUNT - NEW]):
                row = {"number": contact["number"], "first_name": contact["first_name"]}
                if i < CHANGED:
                    row["first_name"] = f"Changed{i}"
                fh.write(json.dumps(row) + "\n")
            for i in range(NEW):
                fh.write(json.dumps({"number": f"+91 97 {i:08d}", "first_name": f"New{i}"}) + "\n")

        sim.clear_requests()
        first_s, first = _sync(path)
        reads, writes = _requests(sim)
        expected = {"created": NEW, "updated": CHANGED, "added_to_list": ACCOUNT}
        if any(first[k] != v for k, v in expected.items()) or first["failed"]:
            raise AssertionError(f"first sync returned {first}, expected {expected}")
        add(
            "A1",
            f"sync {ACCOUNT:,} rows (1 % changed, 1 % new) into a new list: write requests",
            f"{writes} writes",
            f"{CHANGED + NEW + ACCOUNT:,} (one per change)",
            f"{writes} writes + {reads} reads",
            "≤ 5 writes",
            writes <= 5,
        )
        add(
            "A1",
            f"same sync: time at {LATENCY * 1000:.0f} ms latency, concurrency {CONCURRENCY}",
            _fmt(first_s),
            f"{_minutes(reads + writes)} at {CAMPAIGN_RPM}/min",
            f"{reads + writes} requests",
            "reads ≈ account/19",
            None,
        )

        progress("A2: the same input again")
        sim.clear_requests()
        again_s, again = _sync(path)
        reads2, writes2 = _requests(sim)
        add(
            "A2",
            "same input synced again: write requests",
            f"{writes2} writes",
            f"{writes} writes (first sync)",
            f"{reads2} reads, {_fmt(again_s)}",
            "0 writes",
            writes2 == 0 and again["unchanged"] == ACCOUNT,
        )

        progress("A3: current_path (an earlier fetch) instead of re-reading the account")
        current = work / "current.jsonl"
        hook = ExotelContactsHook("bench_audience", concurrency=CONCURRENCY)
        with current.open("w", encoding="utf-8") as fh:
            for contact in hook.iter_contacts():
                fh.write(json.dumps(contact) + "\n")
        hook.close()
        sim.clear_requests()
        cp_s, cp = _sync(path, current_path=str(current))
        reads3, writes3 = _requests(sim)
        if cp != again:
            raise AssertionError(f"sync with current_path returned {cp}, re-reading returned {again}")
        account_reads = reads2 - reads3
        add(
            "A3",
            "second sync with current_path vs re-reading the account: read requests",
            f"{reads3} reads ({_fmt(cp_s)}; incl. the contacts created since the file)",
            f"{reads2} reads ({_fmt(again_s)})",
            f"{account_reads} saved = {_minutes(account_reads)} at {CAMPAIGN_RPM}/min",
            "account reads (≈ N/19) all saved",
            account_reads >= ACCOUNT // 20 and writes3 == 0,
        )
        add(
            "A3",
            "plan reads of the list's members (current_path does not replace them)",
            f"{sum(1 for r in sim.requests if r.method == 'GET' and '/lists/' in r.path)} reads",
            "—",
            f"{ACCOUNT:,} members / 19 per page",
            "—",
            None,
        )
    finally:
        sim.stop()

    progress(f"A4: plan memory for {MEMORY_CONTACTS:,} account contacts")
    index_bytes, dict_bytes = _plan_memory(seeded[0])
    add(
        "A4",
        "plan memory per account contact: sync index vs contact dicts",
        f"{index_bytes:,.0f} B",
        f"{dict_bytes:,.0f} B",
        f"{dict_bytes / index_bytes:.1f}x smaller",
        "≥ 4x smaller",
        dict_bytes / index_bytes >= 4,
    )


def _plan_memory(template: dict[str, Any]) -> tuple[float, float]:
    from airflow_provider_exotel.operators._sync_plan import AccountIndex as _AccountIndex

    def contacts() -> Any:  # as they arrive: parsed from JSON, every value its own object
        for i in range(MEMORY_CONTACTS):
            line = json.dumps(
                {**template, "sid": f"{i:032x}", "number": f"+9195{i:08d}", "first_name": f"F{i}"}
            )
            yield json.loads(line)

    tracemalloc.start()
    index = _AccountIndex()
    for c in contacts():
        index.add(c)
    index_bytes = tracemalloc.get_traced_memory()[0] / MEMORY_CONTACTS
    tracemalloc.stop()
    del index
    tracemalloc.start()
    kept = list(contacts())
    dict_bytes = tracemalloc.get_traced_memory()[0] / MEMORY_CONTACTS
    tracemalloc.stop()
    del kept
    return index_bytes, dict_bytes


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f} s"
