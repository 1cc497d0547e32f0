"""Incremental fetches (``created_from`` / ``created_to``) against the bundled simulator, over real sockets.

The window is half-open like Airflow's data intervals: ``created_from`` inclusive, ``created_to``
exclusive. Contacts come newest first; the cost is about ``k/19 + 2·log2(N) + 3`` requests for k of N.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_exotel.exceptions import ExotelValidationError
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook
from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator

BASE = datetime(2024, 1, 1, tzinfo=UTC)
FAST = {"retry_delay": 0.0, "timeout": 5.0}


def ts(seconds: int) -> datetime:
    return BASE + timedelta(seconds=seconds)


def seed_at(sim, offsets: list[int]) -> list[dict]:
    """One contact per entry, created ``BASE + offset`` seconds (repeats make ties)."""
    return [sim.insert_contact(date_created=ts(s), first_name=f"c{i}") for i, s in enumerate(offsets)]


def expected(sim, start: datetime | None, end: datetime | None, **flt) -> list[str]:
    """The window computed from the simulator's own state, newest first (server order for ties)."""
    rows = sim.contacts  # date_created ascending, ties in insertion order
    out = []
    for c in reversed(rows):
        moment = datetime.fromisoformat(c["date_created"].replace("Z", "+00:00"))
        if (start is None or moment >= start) and (end is None or moment < end):
            out.append(c["sid"])
    return out


def budget(k: int, n: int) -> float:
    """The documented cost, plus slack for the page the pager reads beyond the window's end."""
    return k / 19 + 2 * math.log2(max(n, 2)) + 3 + 1


def fetch(sim, **kwargs) -> list[str]:
    hook = ExotelContactsHook(**FAST)
    try:
        return [c["sid"] for c in hook.iter_contacts(**kwargs)]
    finally:
        hook.close()


def test_window_is_inclusive_from_exclusive_to_with_ties_on_both_bounds(exotel_simulator):
    # five contacts share the created_from second, four share the created_to second
    offsets = [0, 10, 20, 30, 30, 30, 30, 30, 40, 50, 60, 60, 60, 60, 70, 80]
    seed_at(exotel_simulator, offsets)

    got = fetch(exotel_simulator, created_from=ts(30), created_to=ts(60))

    names = [exotel_simulator.get_contact(s)["first_name"] for s in got]
    assert names == ["c9", "c8", "c7", "c6", "c5", "c4", "c3"]  # 50, 40, then the five at 30, newest first
    assert got == expected(exotel_simulator, ts(30), ts(60))


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (1000, 1500),  # in the middle
        (0, 37),  # the oldest contacts
        (1900, 2000),  # the newest ones
        (1999, None),  # only a lower bound
        (None, 25),  # only an upper bound
        (-500, -100),  # entirely before the first contact
        (5000, 6000),  # entirely after the last one
        (1234, 1235),  # exactly one second
    ],
)
def test_window_is_exact_and_costs_within_the_documented_formula(exotel_simulator, start, end):
    exotel_simulator.seed_contacts(2000)  # one contact per second from 2024-01-01T00:00:00Z
    lower = ts(start) if start is not None else None
    upper = ts(end) if end is not None else None
    want = expected(exotel_simulator, lower, upper)
    exotel_simulator.clear_requests()

    got = fetch(exotel_simulator, created_from=lower, created_to=upper)

    assert got == want
    assert exotel_simulator.request_count(method="GET") <= budget(len(want), 2000)


def test_one_day_out_of_a_year_reads_a_small_fraction_of_the_account(exotel_simulator):
    # 20,000 contacts over ~a year, 55 a day: a daily export is a few dozen requests, not 1,000
    offsets = [i * 1577 for i in range(20000)]
    for s in offsets:
        exotel_simulator.insert_contact(date_created=ts(s))
    day = BASE + timedelta(days=200)
    want = expected(exotel_simulator, day, day + timedelta(days=1))
    exotel_simulator.clear_requests()

    got = fetch(exotel_simulator, created_from=day, created_to=day + timedelta(days=1))

    assert got == want and 50 <= len(got) <= 60
    requests = exotel_simulator.request_count(method="GET")
    assert requests <= budget(len(want), 20000)
    assert requests <= 0.04 * 20000 / 20


@pytest.mark.parametrize("seed", range(12))
def test_random_windows_over_random_timestamps_with_ties_are_exact(exotel_simulator, seed):
    rng = random.Random(seed)
    n = rng.choice([1, 2, 5, 40, 150, 400])
    offsets = sorted(rng.randrange(0, max(n // 3, 2)) for _ in range(n))  # many ties
    seed_at(exotel_simulator, offsets)
    hook = ExotelContactsHook(concurrency=rng.choice([1, 2, 4]), **FAST)
    try:
        for _ in range(6):
            a, b = sorted(rng.randrange(-2, max(n // 3, 2) + 2) for _ in range(2))
            lower = ts(a) if rng.random() < 0.85 else None
            upper = ts(b) if rng.random() < 0.85 or lower is None else None
            want = expected(exotel_simulator, lower, upper)
            exotel_simulator.clear_requests()

            got = [c["sid"] for c in hook.iter_contacts(created_from=lower, created_to=upper)]

            assert got == want, (lower, upper)
            assert exotel_simulator.request_count(method="GET") <= budget(len(want), n) + 4
    finally:
        hook.close()


def test_bounds_accept_iso_strings_offsets_and_naive_datetimes_as_utc(exotel_simulator):
    exotel_simulator.seed_contacts(100)
    want = expected(exotel_simulator, ts(10), ts(20))

    assert fetch(exotel_simulator, created_from="2024-01-01T00:00:10Z", created_to=ts(20)) == want
    assert fetch(exotel_simulator, created_from="2024-01-01T05:30:10+05:30", created_to=ts(20)) == want
    assert fetch(exotel_simulator, created_from=datetime(2024, 1, 1, 0, 0, 10), created_to=ts(20)) == want
    spaced = fetch(exotel_simulator, created_from="2024-01-01 00:00:10", created_to="2024-01-01T00:00:20")
    assert spaced == want


def test_equal_bounds_select_nothing_without_a_request(exotel_simulator):
    exotel_simulator.seed_contacts(50)

    assert fetch(exotel_simulator, created_from=ts(10), created_to="2024-01-01T00:00:10+00:00") == []
    assert exotel_simulator.request_count() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"created_from": ts(20), "created_to": ts(10)}, "must not be later than created_to"),
        ({"created_from": "yesterday"}, "created_from must be a datetime or an ISO-8601"),
        ({"created_to": "2024-13-45"}, "created_to must be a datetime or an ISO-8601"),
        ({"created_to": 1704067200}, "created_to must be a datetime or an ISO-8601"),
        ({"created_from": ""}, "created_from must be a datetime or an ISO-8601"),
        ({"created_from": ts(0), "sort_by": "name:asc"}, "sort_by cannot be combined"),
    ],
)
def test_bad_bounds_are_refused_before_any_request(exotel_simulator, kwargs, message):
    exotel_simulator.seed_contacts(10)
    hook = ExotelContactsHook(**FAST)

    with pytest.raises(ExotelValidationError, match=message):
        hook.iter_contacts(**kwargs)
    with pytest.raises(ExotelValidationError, match=message):
        ExotelFetchContactsOperator(task_id="f", **kwargs)
    assert exotel_simulator.request_count() == 0


def test_templated_bad_bound_is_refused_at_run_time_before_any_request(exotel_simulator):
    op = ExotelFetchContactsOperator(task_id="f", created_from="{{ params.start }}")
    op.created_from = "not a date"  # what the template rendered to

    with pytest.raises(ExotelValidationError, match="created_from"):
        op.execute(context={})
    assert exotel_simulator.request_count() == 0


def test_window_combines_with_name_and_list_filters(exotel_simulator):
    exotel_simulator.seed_contacts(300)
    exotel_simulator.seed_lists(1, 120)
    members = set(exotel_simulator.lists["list0"])
    window = expected(exotel_simulator, ts(50), ts(250))

    by_list = fetch(exotel_simulator, created_from=ts(50), created_to=ts(250), list_sids=["list0"])
    by_name = fetch(exotel_simulator, created_from=ts(50), created_to=ts(250), name="First1")

    assert by_list == [s for s in window if s in members]
    assert by_name == [
        s for s in window if exotel_simulator.get_contact(s)["first_name"].casefold().startswith("first1")
    ]
    assert by_list and by_name


@pytest.mark.parametrize("at_request", [4, 8, 12, 16])  # during the bisection, then during the read
def test_contacts_deleted_above_the_window_while_it_is_located_are_not_a_gap(exotel_simulator, at_request):
    seeded = exotel_simulator.seed_contacts(1000)
    want = expected(exotel_simulator, ts(100), ts(600))
    newest = [c["sid"] for c in seeded[-60:]]  # all newer than the window

    def delete_newest(sim):
        for sid in newest:
            sim.delete_contact(sid)

    exotel_simulator.on_nth_request(at_request, delete_newest, method="GET")

    got = fetch(exotel_simulator, created_from=ts(100), created_to=ts(600))

    assert got == want


@pytest.mark.parametrize("concurrency", [1, 4])
def test_contacts_created_during_a_fetch_never_appear_twice(exotel_simulator, concurrency):
    exotel_simulator.seed_contacts(1000)
    want = expected(exotel_simulator, ts(100), ts(900))

    def insert_some(sim):
        for _ in range(30):
            sim.insert_contact()  # newest: shifts every offset of the desc order by 30

    exotel_simulator.on_nth_request(15, insert_some, method="GET")  # mid-read

    hook = ExotelContactsHook(concurrency=concurrency, **FAST)
    got = [c["sid"] for c in hook.iter_contacts(created_from=ts(100), created_to=ts(900))]

    assert got == want


def test_operator_exports_the_window_newest_first(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(500)
    want = expected(exotel_simulator, ts(100), ts(200))
    exotel_simulator.clear_requests()
    out = tmp_path / "window.jsonl"

    result = ExotelFetchContactsOperator(
        task_id="f",
        created_from="2024-01-01T00:01:40+00:00",
        created_to="2024-01-01T00:03:20+00:00",
        output_path=str(out),
    ).execute(context={})

    assert result == {"path": str(out), "count": 100}
    assert [line.split('"sid":"')[1][:32] for line in out.read_text().splitlines()] == want
    assert exotel_simulator.request_count(method="GET") <= budget(100, 500)


@pytest.mark.parametrize("at_request", [6, 12, 14])
def test_contacts_deleted_at_the_window_boundary_mid_fetch_leave_no_gap(exotel_simulator, at_request):
    seeded = exotel_simulator.seed_contacts(1000)
    want = expected(exotel_simulator, ts(100), ts(600))
    around = [c["sid"] for c in seeded[590:610]]  # the anchor just before the window, and neighbours

    def delete_around(sim):
        for sid in around:
            sim.delete_contact(sid)

    exotel_simulator.on_nth_request(at_request, delete_around, method="GET")

    got = fetch(exotel_simulator, created_from=ts(100), created_to=ts(600))

    assert len(got) == len(set(got))
    assert set(want) - set(around) <= set(got) <= set(want)
    assert got == [s for s in want if s in set(got)]  # newest first


@pytest.mark.parametrize("at_request", [11, 12, 13, 14])
def test_many_contacts_created_during_a_fetch_push_the_window_further_and_nothing_is_missed(
    exotel_simulator, at_request
):
    exotel_simulator.seed_contacts(1000)
    want = expected(exotel_simulator, ts(850), ts(900))

    def insert_many(sim):
        for _ in range(200):  # newest: the window moves 200 places further than the probes saw it
            sim.insert_contact()

    exotel_simulator.on_nth_request(at_request, insert_many, method="GET")
    hook = ExotelContactsHook(concurrency=1, **FAST)

    got = [c["sid"] for c in hook.iter_contacts(created_from=ts(850), created_to=ts(900))]

    assert got == want
    assert exotel_simulator.request_count(method="GET") <= budget(len(want), 1200) + 12
