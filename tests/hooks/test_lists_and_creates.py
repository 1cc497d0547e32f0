"""Creating contacts and managing lists with ExotelContactsHook, against the simulator over real sockets."""

from __future__ import annotations

import datetime as dt

import pytest
from support import make_hook, writes

from airflow_provider_exotel.exceptions import ExotelRequestError, ExotelValidationError
from airflow_provider_exotel.hooks.contacts import BulkCreateResult, BulkUpdateResult


def posts(sim, suffix="contacts"):
    return [r for r in sim.requests if r.method == "POST" and r.path.endswith(suffix)]


def numbers(n, start=0):
    return [f"+9180{i:08d}" for i in range(start, start + n)]


# ------------------------------------------------------------------------------------ create
def test_created_contacts_come_back_in_input_order_with_their_sids(exotel_simulator):
    rows = [{"number": n, "first_name": f"F{i}", "custom_field": {"k": i}} for i, n in enumerate(numbers(25))]

    result = make_hook().create_contacts(rows)

    assert isinstance(result, BulkCreateResult) and result.ok
    assert [c["number"] for c in result.created] == [r["number"] for r in rows]
    for created, row in zip(result.created, rows, strict=True):
        stored = exotel_simulator.get_contact(created["sid"])
        assert stored["number"] == row["number"]
        assert stored["first_name"] == row["first_name"]
        assert stored["custom_field"] == row["custom_field"]
    assert result.to_dict() == {"total": 25, "created": 25, "failed": 0, "failed_numbers": []}


def test_5001_contacts_are_created_in_two_requests_of_at_most_5000(exotel_simulator):
    rows = [{"number": n} for n in numbers(5001)]

    result = make_hook(concurrency=2).create_contacts(rows)

    assert sorted(r.batch_size for r in posts(exotel_simulator)) == [1, 5000]
    assert len(result.created) == 5001
    assert [c["number"] for c in result.created] == [r["number"] for r in rows]
    assert len(exotel_simulator) == 5001


def test_smaller_batch_size_splits_the_requests(exotel_simulator):
    make_hook(concurrency=1).create_contacts([{"number": n} for n in numbers(7)], batch_size=3)

    assert [r.batch_size for r in posts(exotel_simulator)] == [3, 3, 1]


def test_formatted_numbers_are_sent_normalised(exotel_simulator):
    result = make_hook().create_contacts(
        [{"number": "+91 98450-12345"}, {"number": "(080) 4567.8901"}, {"number": " 919876543210 "}]
    )

    assert [c["number"] for c in result.created] == ["+919845012345", "08045678901", "919876543210"]
    sent = posts(exotel_simulator)[0].json_body["contacts"]
    assert [c["number"] for c in sent] == ["+919845012345", "08045678901", "919876543210"]


def test_per_item_failures_are_reported_with_their_numbers(exotel_simulator):
    exotel_simulator.duplicate_numbers = "refuse"
    exotel_simulator.insert_contact(number="+918000000001")

    result = make_hook().create_contacts([{"number": n} for n in numbers(3)])

    assert [c["number"] for c in result.created] == ["+918000000000", "+918000000002"]
    assert result.failed_numbers == ["+918000000001"]
    assert result.failed[0]["code"] == 409
    assert result.to_dict() == {"total": 3, "created": 2, "failed": 1, "failed_numbers": ["+918000000001"]}
    assert not result.ok


def test_duplicate_numbers_make_a_second_contact_when_the_account_allows_it(exotel_simulator):
    exotel_simulator.insert_contact(number="+918000000000")

    result = make_hook().create_contacts([{"number": "+918000000000"}])

    assert result.ok
    assert len(exotel_simulator.contacts_with_number("+918000000000")) == 2


@pytest.mark.parametrize(
    ("contacts", "message"),
    [
        ([{"number": "+918000000000"}, {"first_name": "no number"}], "contacts[1] has no 'number'"),
        ([{"number": "12345"}], "contacts[0] needs a 'number'"),
        ([{"number": "+91 98450 1234x"}], "contacts[0] needs a 'number'"),
        ([{"number": "+1234567890123456"}], "6-15 digits"),
        ([{"number": 919845012345}], "contacts[0] needs a 'number'"),
        ([{"number": "", "first_name": "x"}], "contacts[0] needs a 'number'"),
        ([{"number": "+918000000000", "nickname": "x"}], "unknown field(s) ['nickname']"),
        ([{"number": "+918000000000", "sid": "abc"}], "unknown field(s) ['sid']"),
        ([{"number": "+918000000000", "custom_field": {"when": dt.datetime(2024, 1, 1)}}], "datetime"),
        ([{"number": "+918000000000", "tag": {"a", "b"}}], "set"),
        ([{"number": "+918000000000", "first_name": "bad \ud800"}], "lone surrogate"),
        ([{"number": "+918000000000", "custom_field": {"x": float("nan")}}], "which JSON cannot represent"),
        (["+918000000000"], "contacts[0] must be a mapping"),
        ([{"number": "+91 98450-12345"}, {"number": "+919845012345"}], "contacts[1] repeats number"),
        ({"number": "+918000000000"}, "must be a list of contact dicts"),
    ],
)
def test_bad_contacts_are_refused_before_any_request(exotel_simulator, contacts, message):
    with pytest.raises(ExotelValidationError) as err:
        make_hook().create_contacts(contacts)

    assert message in str(err.value)
    assert exotel_simulator.request_count() == 0


@pytest.mark.parametrize("batch_size", [0, 5001, "10", True])
def test_batch_size_outside_1_to_5000_is_refused(exotel_simulator, batch_size):
    with pytest.raises(ExotelValidationError, match="batch_size"):
        make_hook().create_contacts([{"number": "+918000000000"}], batch_size=batch_size)
    assert exotel_simulator.request_count() == 0


def test_create_whose_answer_is_lost_after_it_was_applied_is_not_sent_again(exotel_simulator):
    exotel_simulator.seed_contacts(50)
    exotel_simulator.add_faults("reset_after_apply", method="POST", path_endswith="/contacts")
    rows = [{"number": n} for n in numbers(30)]

    result = make_hook().create_contacts(rows)

    assert len(posts(exotel_simulator)) == 1  # looked up, not re-sent
    assert result.ok and len(result.created) == 30
    for created in result.created:
        assert [c["sid"] for c in exotel_simulator.contacts_with_number(created["number"])] == [
            created["sid"]
        ]
    lookups = [r for r in exotel_simulator.requests if r.method == "GET"]
    assert lookups and all(r.query.get("sort_by") == "date_created:desc" for r in lookups)


def test_create_whose_connection_dropped_before_it_was_applied_is_sent_again_once(exotel_simulator):
    exotel_simulator.add_faults("reset", method="POST", path_endswith="/contacts")

    result = make_hook().create_contacts([{"number": n} for n in numbers(3)])

    assert len(posts(exotel_simulator)) == 2
    assert result.ok
    assert all(len(exotel_simulator.contacts_with_number(n)) == 1 for n in numbers(3))


def test_create_after_a_503_resends_only_what_was_not_created(exotel_simulator):
    exotel_simulator.add_faults("503", method="POST", path_endswith="/contacts")

    result = make_hook().create_contacts([{"number": n} for n in numbers(2)])

    assert len(posts(exotel_simulator)) == 2
    assert result.ok and len(exotel_simulator) == 2


@pytest.mark.parametrize(
    "fault",
    ["429", "500", "502_html", "503", "504", "reset", "reset_after_apply", "truncated_json", "html_200"],
)
def test_every_contact_is_created_exactly_once_whatever_happens_to_the_first_answer(exotel_simulator, fault):
    exotel_simulator.seed_contacts(25)
    exotel_simulator.add_faults(fault, method="POST", path_endswith="/contacts")
    rows = [{"number": n} for n in numbers(10)]

    result = make_hook().create_contacts(rows)

    assert result.ok and [c["number"] for c in result.created] == [r["number"] for r in rows]
    for created in result.created:
        assert [c["sid"] for c in exotel_simulator.contacts_with_number(created["number"])] == [
            created["sid"]
        ]
    assert 1 <= len(posts(exotel_simulator)) <= 2


def test_create_lost_before_apply_is_sent_again_even_when_an_old_contact_has_that_number(exotel_simulator):
    old = exotel_simulator.insert_contact(number="+918000000000", date_created="2020-01-01T00:00:00Z")
    exotel_simulator.add_faults("reset", method="POST", path_endswith="/contacts")

    result = make_hook().create_contacts([{"number": "+918000000000"}])

    assert len(posts(exotel_simulator)) == 2  # the old contact is not taken for the new one
    assert result.ok and result.created[0]["sid"] != old["sid"]
    same = exotel_simulator.contacts_with_number("+918000000000")
    assert sorted(c["sid"] for c in same) == sorted([old["sid"], result.created[0]["sid"]])


def test_create_item_answered_5xx_is_sent_again_and_created_once(exotel_simulator):
    exotel_simulator.add_create_item_faults({"+918000000001": [503]})

    result = make_hook().create_contacts([{"number": n} for n in numbers(3)])

    assert [r.batch_size for r in posts(exotel_simulator)] == [3, 1]
    assert result.ok and [c["number"] for c in result.created] == numbers(3)
    assert all(len(exotel_simulator.contacts_with_number(n)) == 1 for n in numbers(3))


# ------------------------------------------------------------------------------------ one contact
@pytest.mark.parametrize("as_list", [False, True])
def test_get_contact_reads_one_object_answered_as_object_or_one_item_list(exotel_simulator, as_list):
    seeded = exotel_simulator.seed_contacts(3)
    exotel_simulator.one_object_as_list = as_list

    got = make_hook().get_contact(seeded[1]["sid"])

    assert got == seeded[1]


def test_get_contact_of_an_unknown_sid_raises_404(exotel_simulator):
    with pytest.raises(ExotelRequestError) as err:
        make_hook().get_contact("nope")
    assert err.value.status == 404


@pytest.mark.parametrize("sid", ["", " ", None, 5, ".."])
def test_bad_sids_are_refused_before_any_request(exotel_simulator, sid):
    hook = make_hook()
    for call in (hook.get_contact, hook.delete_contact, hook.delete_list):
        with pytest.raises(ExotelValidationError):
            call(sid)
    assert exotel_simulator.request_count() == 0


def test_sids_with_slashes_are_refused_before_any_request(exotel_simulator):
    # issue 9 item 3: a sid that would change the path is refused, not sent (even escaped)
    with pytest.raises(ExotelValidationError, match=r"sid must be a sid .*contains '/'"):
        make_hook().get_contact("a/../../lists")
    assert exotel_simulator.request_count() == 0


@pytest.mark.parametrize("as_list", [False, True])
def test_delete_contact_says_whether_it_existed(exotel_simulator, as_list):
    seeded = exotel_simulator.seed_contacts(2)
    exotel_simulator.one_object_as_list = as_list
    hook = make_hook()

    assert hook.delete_contact(seeded[0]["sid"]) is True
    assert hook.delete_contact(seeded[0]["sid"]) is False
    assert exotel_simulator.contact_sids == [seeded[1]["sid"]]


@pytest.mark.parametrize("what", ["contact", "list"])
def test_delete_whose_answer_was_lost_after_it_was_applied_reports_it_deleted(exotel_simulator, what):
    seeded = exotel_simulator.seed_contacts(2)
    lst = exotel_simulator.add_list("l", contact_sids=[seeded[0]["sid"]])
    exotel_simulator.add_faults("reset_after_apply", method="DELETE")
    hook = make_hook()

    if what == "contact":
        assert hook.delete_contact(seeded[0]["sid"]) is True
        assert exotel_simulator.get_contact(seeded[0]["sid"]) is None
    else:
        assert hook.delete_list(lst["sid"]) is True
        assert exotel_simulator.list_by_name("l") is None
    assert [r.status for r in exotel_simulator.requests if r.method == "DELETE"] == [None, 404]


def test_a_lost_delete_answer_counts_only_for_the_delete_it_belongs_to(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(1)
    exotel_simulator.add_faults("reset_after_apply", method="DELETE")
    hook = make_hook()

    assert hook.delete_contact(seeded[0]["sid"]) is True
    assert hook.delete_contact(seeded[0]["sid"]) is False  # a new delete, no lost answer: 404 is 404


@pytest.mark.parametrize("as_list", [False, True])
def test_delete_answered_200_with_a_404_failure_item_reports_it_did_not_exist(exotel_simulator, as_list):
    seeded = exotel_simulator.seed_contacts(2)
    lst = exotel_simulator.add_list("l", contact_sids=[seeded[0]["sid"]])
    exotel_simulator.delete_answer = "failure_item"
    exotel_simulator.one_object_as_list = as_list
    hook = make_hook()

    assert hook.delete_contact("ghost") is False
    assert hook.delete_list("ghost") is False
    removed = hook.remove_contacts_from_list(lst["sid"], [seeded[1]["sid"]])
    assert removed.failed_sids == [seeded[1]["sid"]] and removed.failed[0]["code"] == 404
    assert hook.delete_contact(seeded[1]["sid"]) is True
    assert all(r.status == 200 for r in exotel_simulator.requests)


def test_delete_answered_204_no_content_reports_it_deleted(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(3)
    lst = exotel_simulator.add_list("l", contact_sids=[seeded[0]["sid"]])
    exotel_simulator.delete_answer = "no_content"
    hook = make_hook()

    assert hook.remove_contacts_from_list(lst["sid"], [seeded[0]["sid"]]).succeeded == [seeded[0]["sid"]]
    assert hook.delete_contact(seeded[1]["sid"]) is True
    assert hook.delete_list(lst["sid"]) is True
    assert [r.status for r in exotel_simulator.requests] == [204, 204, 204]  # each sent once
    assert exotel_simulator.contact_sids == [seeded[0]["sid"], seeded[2]["sid"]]


# ------------------------------------------------------------------------------------ lists
def test_iter_lists_pages_at_most_20_and_yields_every_list(exotel_simulator):
    hook = make_hook()
    for i in range(45):
        exotel_simulator.add_list(f"campaign-{i:02d}", tag="t")

    got = list(hook.iter_lists())

    assert [lst["name"] for lst in got] == [f"campaign-{i:02d}" for i in range(45)]
    pages = [r for r in exotel_simulator.requests if r.path.endswith("/lists")]
    assert len(pages) >= 3 and all(int(r.query["limit"]) <= 20 for r in pages)


def test_iter_lists_filters_by_name_and_stops_at_max_records(exotel_simulator):
    for name in ("diwali", "diwali-2", "holi"):
        exotel_simulator.add_list(name)

    hook = make_hook()
    assert [lst["name"] for lst in hook.iter_lists(name="diwali")] == ["diwali", "diwali-2"]
    assert len(list(hook.iter_lists(max_records=1))) == 1


def test_create_list_returns_the_new_list_and_refuses_a_taken_name_with_409(exotel_simulator):
    hook = make_hook()

    created = hook.create_list("Diwali 2024", tag="festive")

    assert created["name"] == "Diwali 2024" and created["tag"] == "festive"
    assert exotel_simulator.list_by_name("Diwali 2024")["sid"] == created["sid"]
    with pytest.raises(ExotelRequestError) as err:
        hook.create_list("Diwali 2024")
    assert err.value.status == 409


def test_ensure_list_matches_the_exact_name_and_creates_it_only_once(exotel_simulator):
    exotel_simulator.add_list("Diwali 2024 - extra")
    hook = make_hook()

    first = hook.ensure_list("Diwali 2024")
    exotel_simulator.clear_requests()
    second = hook.ensure_list("Diwali 2024")

    assert first["name"] == "Diwali 2024" and second["sid"] == first["sid"]
    assert writes(exotel_simulator) == []
    names = [lst["name"] for lst in hook.iter_lists()]
    assert names.count("Diwali 2024") == 1


def test_create_list_whose_answer_was_lost_is_looked_up_not_created_twice(exotel_simulator):
    exotel_simulator.add_faults("reset_after_apply", method="POST", path_endswith="/lists")

    created = make_hook().create_list("Holi")

    assert created["sid"] == exotel_simulator.list_by_name("Holi")["sid"]
    assert len(posts(exotel_simulator, "/lists")) == 1


def test_delete_list_says_whether_it_existed_and_keeps_the_contacts(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(3)
    lst = exotel_simulator.add_list("gone", contact_sids=[c["sid"] for c in seeded])
    hook = make_hook()

    assert hook.delete_list(lst["sid"]) is True
    assert hook.delete_list(lst["sid"]) is False
    assert exotel_simulator.list_by_name("gone") is None
    assert len(exotel_simulator) == 3


@pytest.mark.parametrize("name", ["", "  ", None, 7])
def test_bad_list_names_are_refused_before_any_request(exotel_simulator, name):
    hook = make_hook()
    with pytest.raises(ExotelValidationError, match="name"):
        hook.create_list(name)
    with pytest.raises(ExotelValidationError, match="name"):
        hook.ensure_list(name)
    assert exotel_simulator.request_count() == 0


# ------------------------------------------------------------------------------------ members
def test_5001_contacts_are_added_to_a_list_in_two_requests(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(5001)
    lst = exotel_simulator.add_list("big")
    sids = [c["sid"] for c in seeded]

    result = make_hook().add_contacts_to_list(lst["sid"], sids)

    assert isinstance(result, BulkUpdateResult) and result.ok
    assert result.succeeded == sids
    assert sorted(r.batch_size for r in posts(exotel_simulator)) == [1, 5000]
    assert exotel_simulator.lists[lst["sid"]] == sids


def test_adding_unknown_contacts_to_a_list_reports_them_as_failed(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(2)
    lst = exotel_simulator.add_list("l")

    result = make_hook().add_contacts_to_list(lst["sid"], [seeded[0]["sid"], "ghost", seeded[1]["sid"]])

    assert result.succeeded == [seeded[0]["sid"], seeded[1]["sid"]]
    assert result.failed_sids == ["ghost"] and result.failed[0]["code"] == 404


@pytest.mark.parametrize(
    ("sids", "message"),
    [("abc", "list of contact sids"), (["a", "a"], "repeats sid"), (["a", ""], "contact_sids[1]")],
)
def test_bad_member_sids_are_refused_before_any_request(exotel_simulator, sids, message):
    hook = make_hook()
    with pytest.raises(ExotelValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        hook.add_contacts_to_list("l", sids)
    with pytest.raises(ExotelValidationError):
        hook.remove_contacts_from_list("l", sids)
    assert exotel_simulator.request_count() == 0


def test_remove_from_list_sends_one_delete_per_member_concurrently(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(12)
    lst = exotel_simulator.add_list("l", contact_sids=[c["sid"] for c in seeded])
    exotel_simulator.latency = 0.05
    gone = [c["sid"] for c in seeded[:8]]

    result = make_hook(concurrency=4).remove_contacts_from_list(lst["sid"], [*gone, "not-a-member"])

    deletes = [r for r in exotel_simulator.requests if r.method == "DELETE"]
    assert len(deletes) == 9
    assert exotel_simulator.max_in_flight >= 2
    assert result.succeeded == gone
    assert result.failed_sids == ["not-a-member"] and result.failed[0]["code"] == 404
    assert exotel_simulator.lists[lst["sid"]] == [c["sid"] for c in seeded[8:]]
    assert len(exotel_simulator) == 12  # removed from the list, not deleted


def test_removing_a_member_whose_answer_was_lost_reports_it_removed(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(3)
    lst = exotel_simulator.add_list("l", contact_sids=[c["sid"] for c in seeded])
    exotel_simulator.add_faults("reset_after_apply", method="DELETE")

    result = make_hook(concurrency=1).remove_contacts_from_list(lst["sid"], [seeded[0]["sid"]])

    assert result.ok and result.succeeded == [seeded[0]["sid"]]
    assert exotel_simulator.lists[lst["sid"]] == [c["sid"] for c in seeded[1:]]


def test_list_add_item_answered_5xx_is_sent_again(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(3)
    lst = exotel_simulator.add_list("l")
    exotel_simulator.add_list_item_faults({seeded[1]["sid"]: [500]})

    result = make_hook().add_contacts_to_list(lst["sid"], [c["sid"] for c in seeded])

    assert result.ok and [r.batch_size for r in posts(exotel_simulator)] == [3, 1]
    assert sorted(exotel_simulator.lists[lst["sid"]]) == sorted(c["sid"] for c in seeded)
