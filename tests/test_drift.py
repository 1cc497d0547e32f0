"""Drift-safe paging: contacts inserted or deleted while a fetch pages through them."""

from __future__ import annotations

from collections import Counter

import pytest

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


def test_a_stable_fetch_reads_each_page_once_with_a_one_contact_overlap(exotel_simulator):
    exotel_simulator.seed_contacts(100)
    list(ExotelContactsHook(retry_delay=0, concurrency=3).iter_contacts())
    offsets = sorted(int(r.query["offset"]) for r in exotel_simulator.requests)
    assert offsets == [0, 19, 38, 57, 76, 95]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_an_account_that_keeps_growing_at_the_end_exports_without_re_reads(exotel_simulator, concurrency):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(300)]
    counter = {"n": 0}

    def keep_appending(sim, request):
        counter["n"] += 1
        if counter["n"] % 2 == 0:  # one new contact every other request: far more than normal growth
            sim.insert_contact(first_name="Appended")

    exotel_simulator.before_request = keep_appending
    hook = ExotelContactsHook(retry_delay=0, concurrency=concurrency)

    got = list(hook.iter_contacts())

    assert_exactly_once(got, seeded, allowed_extra=set(exotel_simulator.contact_sids) - set(seeded))
    offsets = [int(r.query["offset"]) for r in exotel_simulator.requests]
    assert len(offsets) == len(set(offsets))  # no page read twice
    assert hook._pager.progress is not None and hook._pager.progress.rereads == 0
