"""Drift-safe paging: contacts inserted or deleted while a fetch pages through them."""

from __future__ import annotations

from collections import Counter

import pytest

from airflow_provider_exotel.exceptions import ExotelRequestError
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook


def assert_exactly_once(got, survivors, allowed_extra=()):
    counts = Counter(c["sid"] for c in got)
    assert [sid for sid, n in counts.items() if n > 1] == []  # nothing repeated
    assert set(survivors) - set(counts) == set()  # nothing that stayed the whole time is missing
    assert set(counts) - set(survivors) <= set(allowed_extra)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_contacts_deleted_mid_fetch_do_not_hide_others(exotel_simulator, concurrency):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(203)]
    deleted = seeded[3:8]  # on page 1, already read: shifts every later contact 5 places left
    exotel_simulator.on_nth_request(
        3, method="GET", action=lambda s: [s.delete_contact(sid) for sid in deleted]
    )

    got = list(ExotelContactsHook(retry_delay=0, concurrency=concurrency).iter_contacts())

    survivors = [sid for sid in seeded if sid not in deleted]
    assert_exactly_once(got, survivors, allowed_extra=deleted)
    assert set(deleted) <= {c["sid"] for c in got}  # read before they went


@pytest.mark.parametrize("concurrency", [1, 4])
def test_contacts_inserted_mid_fetch_are_not_repeated(exotel_simulator, concurrency):
    seeded = exotel_simulator.seed_contacts(150)
    inserted = []

    def insert_early(sim):
        for i in range(3):  # created "before" everything: shifts every contact 3 places right
            inserted.append(
                sim.insert_contact(date_created=f"2000-01-01T00:00:0{i}Z", first_name="New")["sid"]
            )

    exotel_simulator.on_nth_request(4, method="GET", action=insert_early)

    got = list(ExotelContactsHook(retry_delay=0, concurrency=concurrency).iter_contacts())

    assert_exactly_once(got, [c["sid"] for c in seeded], allowed_extra=inserted)


def test_list_fetch_is_drift_safe_too(exotel_simulator):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(100)]
    exotel_simulator.create_list("L", seeded)
    exotel_simulator.on_nth_request(2, method="GET", action=lambda s: s.delete_contact(seeded[0]))

    got = list(ExotelContactsHook(retry_delay=0, concurrency=2).iter_list_contacts("L"))

    assert_exactly_once(got, seeded[1:], allowed_extra=[seeded[0]])


def test_a_stable_fetch_makes_a_single_sweep(exotel_simulator):
    exotel_simulator.seed_contacts(100)
    list(ExotelContactsHook(retry_delay=0, concurrency=3).iter_contacts())
    assert exotel_simulator.request_count(method="GET") == 5


def test_a_fetch_whose_data_never_settles_fails_instead_of_returning_a_partial_result(exotel_simulator):
    exotel_simulator.seed_contacts(60)
    counter = {"n": 0}

    def keep_inserting(sim, request):
        counter["n"] += 1
        if request.method == "GET" and counter["n"] % 2 == 0:
            sim.insert_contact(first_name="Churn")

    exotel_simulator.before_request = keep_inserting
    with pytest.raises(ExotelRequestError, match="kept changing"):
        list(ExotelContactsHook(retry_delay=0, concurrency=1).iter_contacts())
