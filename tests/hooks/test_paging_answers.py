"""Answers that cannot be right: retried like a garbled body, never a silent partial result.

A page shorter than its limit before the end, an empty page in the middle, a page repeating another,
a failure item, a negative or non-integer total, a 200 without the envelope and a contact without a
string sid are produced by the simulator (``testing/_drift.py``) over real sockets.
"""

from __future__ import annotations

import pytest
from support import make_hook

from airflow_provider_exotel.exceptions import ExotelRequestError

WRONG_PAGES = [
    "repeat_page",
    "empty_page",
    "short_page",
    "failure_item",
    "null_data",
    "negative_total",
    "bool_total",
    "string_total",
    "no_envelope",
    "sid_list",
    "sid_dict",
    "no_sid",
]


hook = make_hook


@pytest.mark.parametrize("cap", [10, 19])
@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_server_capping_pages_below_20_fails_instead_of_returning_part_of_the_account(
    exotel_simulator, cap, concurrency
):
    exotel_simulator.seed_contacts(100)
    exotel_simulator.max_page_size = cap

    with pytest.raises(ExotelRequestError, match="expected 20") as info:
        list(hook(concurrency=concurrency, retry_limit=2).iter_contacts())

    assert "3 attempts" in str(info.value)
    assert exotel_simulator.request_count() == 3  # the first page, retried, never accepted


@pytest.mark.parametrize("kind", WRONG_PAGES)
@pytest.mark.parametrize("concurrency", [1, 4])
def test_one_wrong_page_in_the_middle_is_read_again_and_the_export_is_exact(
    exotel_simulator, kind, concurrency
):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(130)]
    exotel_simulator.on_nth_request(3, lambda sim: sim.add_faults(kind, method="GET"), method="GET")

    got = [c["sid"] for c in hook(concurrency=concurrency).iter_contacts()]

    assert got == seeded
    assert [r.fault for r in exotel_simulator.requests if r.fault] == [kind]
    # seven pages, one read twice; a repeated page also costs one read of the page it repeats
    # (still there: the answer was wrong, not the data moved)
    assert exotel_simulator.request_count() == 7 + 1 + (kind == "repeat_page")


@pytest.mark.parametrize("kind", WRONG_PAGES)
def test_a_wrong_page_that_persists_fails_the_fetch_with_exotel_request_error(exotel_simulator, kind):
    exotel_simulator.seed_contacts(130)
    exotel_simulator.on_nth_request(2, lambda sim: sim.fail_every_request(kind, method="GET"), method="GET")
    got = []

    with pytest.raises(ExotelRequestError, match="gave up after 3 attempts"):
        for contact in hook(concurrency=2, retry_limit=2).iter_contacts():
            got.append(contact)

    assert len(got) <= 20 * 3  # nothing past the wrong page was yielded as if it were complete


@pytest.mark.parametrize("kind", ["sid_list", "sid_dict"])
def test_a_list_or_dict_sid_is_a_request_error_not_a_type_error(exotel_simulator, kind):
    exotel_simulator.seed_contacts(5)
    exotel_simulator.fail_every_request(kind, method="GET")

    with pytest.raises(ExotelRequestError, match="no string sid"):
        list(hook(retry_limit=1).iter_contacts())


def test_the_first_page_answering_less_than_asked_before_the_end_is_retried(exotel_simulator):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(45)]
    exotel_simulator.add_faults("short_page", method="GET")

    got = [c["sid"] for c in hook(concurrency=1).iter_contacts()]

    assert got == seeded
    assert [int(r.query["offset"]) for r in exotel_simulator.requests] == [0, 0, 19, 38]


def test_a_count_whose_answer_lacks_the_envelope_is_retried(exotel_simulator):
    exotel_simulator.seed_contacts(33)
    exotel_simulator.add_faults("no_envelope", "negative_total")

    assert hook().count_contacts() == 33
    assert exotel_simulator.request_count() == 3


def test_a_count_with_a_negative_total_that_persists_fails(exotel_simulator):
    exotel_simulator.seed_contacts(3)
    exotel_simulator.fail_every_request("negative_total")

    with pytest.raises(ExotelRequestError, match="non-negative integer"):
        hook(retry_limit=1).count_contacts()


def test_an_empty_account_is_not_a_wrong_answer(exotel_simulator):
    assert list(hook().iter_contacts()) == []
    assert exotel_simulator.request_count() == 1
