"""Create and sync operators against the simulator, over real sockets (``op.execute(context={})``)."""

from __future__ import annotations

import json

import pytest
from support import FAST, modules_imported_by, read_jsonl, write_jsonl, writes

from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelError, ExotelValidationError
from airflow_provider_exotel.operators.contacts import (
    ExotelCreateContactsOperator,
    ExotelSyncContactsOperator,
)

SYNC_KEYS = {"created", "updated", "unchanged", "added_to_list", "removed_from_list", "failed", "dry_run"}


def sync(**kwargs):
    kwargs.setdefault("task_id", "sync")
    kwargs.setdefault("hook_params", FAST)
    return ExotelSyncContactsOperator(**kwargs).execute(context={})


def audience(sim, n=20):
    """``n`` contacts in the account; returns the rows of a warehouse audience matching them."""
    seeded = sim.seed_contacts(n)
    return seeded, [
        {"number": c["number"], "first_name": c["first_name"], "last_name": c["last_name"], "tag": c["tag"]}
        for c in seeded
    ]


# ------------------------------------------------------------------------------------ create
def test_create_operator_creates_writes_number_and_sid_and_adds_them_to_the_list(exotel_simulator, tmp_path):
    lst = exotel_simulator.add_list("new-customers")
    rows = [{"number": f"+91 98450-1234{i}", "first_name": f"N{i}"} for i in range(5)]
    out = tmp_path / "created.jsonl"

    result = ExotelCreateContactsOperator(
        task_id="create", contacts=rows, list_sid=lst["sid"], output_path=str(out), hook_params=FAST
    ).execute(context={})

    assert result == {"total": 5, "created": 5, "failed": 0, "failed_numbers": [], "path": str(out)}
    written = read_jsonl(out)
    assert [w["number"] for w in written] == [f"+91984501234{i}" for i in range(5)]
    assert exotel_simulator.lists[lst["sid"]] == [w["sid"] for w in written]
    assert [exotel_simulator.get_contact(w["sid"])["first_name"] for w in written] == [
        f"N{i}" for i in range(5)
    ]


def test_create_operator_reads_json_lines_in_batches(exotel_simulator, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"number": f"+9180{i:08d}"} for i in range(7)])

    result = ExotelCreateContactsOperator(
        task_id="create", input_path=str(path), batch_size=3, hook_params={**FAST, "concurrency": 1}
    ).execute(context={})

    assert result["created"] == 7
    assert [r.batch_size for r in writes(exotel_simulator)] == [3, 3, 1]


def test_create_operator_dead_letters_refused_rows_and_fails_past_max_failures(exotel_simulator, tmp_path):
    exotel_simulator.duplicate_numbers = "refuse"
    exotel_simulator.insert_contact(number="+918000000001")
    rows = [
        {"number": "+91 8000000000"},
        {"number": "+91 8000000001", "tag": "x"},
        {"number": "+918000000002"},
    ]
    failed = tmp_path / "failed.jsonl"

    with pytest.raises(ExotelError, match="1 of 3 contacts failed"):
        ExotelCreateContactsOperator(
            task_id="create", contacts=rows, failed_output_path=str(failed), hook_params=FAST
        ).execute(context={})

    dead = read_jsonl(failed)
    assert [{k: v for k, v in d.items() if k != "error"} for d in dead] == [rows[1]]  # the row as given
    assert dead[0]["error"]["code"] == 409 and dead[0]["error"]["stage"] == "create"
    assert len(exotel_simulator) == 3  # the others were created

    result = ExotelCreateContactsOperator(
        task_id="create", contacts=rows, max_failures=3, hook_params=FAST
    ).execute(context={})
    assert result["failed_numbers"] == ["+918000000000", "+918000000001", "+918000000002"]


def test_create_operator_dead_letters_contacts_it_could_not_add_to_the_list(exotel_simulator, tmp_path):
    lst = exotel_simulator.add_list("l")
    rows = [{"number": f"+91800000000{i}"} for i in range(3)]
    failed = tmp_path / "failed.jsonl"

    def delete_second(sim):
        sim.delete_contact(sim.contacts_with_number("+918000000001")[0]["sid"])

    exotel_simulator.on_nth_request(2, delete_second, method="POST")  # just before the list POST

    result = ExotelCreateContactsOperator(
        task_id="create", contacts=rows, list_sid=lst["sid"], failed_output_path=str(failed), max_failures=1
    ).execute(context={})

    assert result["created"] == 3 and result["failed_numbers"] == ["+918000000001"]
    dead = read_jsonl(failed)
    assert [d["number"] for d in dead] == ["+918000000001"]
    assert dead[0]["error"]["stage"] == "list_add" and dead[0]["error"]["code"] == 404
    assert dead[0]["error"]["contact_sid"]
    assert len(exotel_simulator.lists[lst["sid"]]) == 2


def test_create_operator_dry_run_validates_and_sends_nothing(exotel_simulator):
    result = ExotelCreateContactsOperator(
        task_id="create", contacts=[{"number": "+918000000000"}], dry_run=True
    ).execute(context={})

    assert result["dry_run"] is True and result["total"] == 1
    assert exotel_simulator.request_count() == 0


def test_create_operator_refuses_a_bad_row_naming_its_line_before_any_request(exotel_simulator, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"number": "+918000000000"}, {"number": "call me"}])

    with pytest.raises(ExotelValidationError, match="line 2"):
        ExotelCreateContactsOperator(task_id="create", input_path=str(path)).execute(context={})
    assert exotel_simulator.request_count() == 0


# ------------------------------------------------------------------------------------ sync
def test_sync_creates_updates_and_fills_the_list_then_a_second_sync_sends_no_write(exotel_simulator):
    seeded, rows = audience(exotel_simulator, 20)
    rows[3]["first_name"] = "Changed"
    rows[4]["custom_field"] = {"segment": "Z"}
    rows += [{"number": "+91 99999 00001", "first_name": "New"}, {"number": "+919999900002"}]
    lst = exotel_simulator.add_list("audience")

    first = sync(contacts=rows, list_sid=lst["sid"])

    assert first == {
        "created": 2,
        "updated": 2,
        "unchanged": 18,
        "added_to_list": 22,
        "removed_from_list": 0,
        "failed": 0,
        "dry_run": False,
    }
    assert exotel_simulator.get_contact(seeded[3]["sid"])["first_name"] == "Changed"
    assert exotel_simulator.get_contact(seeded[4]["sid"])["custom_field"] == {"segment": "Z"}
    assert exotel_simulator.contacts_with_number("+919999900001")[0]["first_name"] == "New"
    assert len(exotel_simulator.lists[lst["sid"]]) == 22
    update = next(r for r in writes(exotel_simulator) if r.method == "PUT").json_body["contacts"]
    assert update == [
        {"sid": seeded[3]["sid"], "first_name": "Changed"},
        {"sid": seeded[4]["sid"], "custom_field": {"segment": "Z"}},
    ]

    exotel_simulator.clear_requests()
    second = sync(contacts=rows, list_sid=lst["sid"])

    assert writes(exotel_simulator) == []
    assert second == {**first, "created": 0, "updated": 0, "unchanged": 22, "added_to_list": 0}


def test_sync_matches_formatted_numbers_to_the_stored_ones(exotel_simulator):
    exotel_simulator.insert_contact(number="+919845012345", first_name="Asha")

    result = sync(contacts=[{"number": "+91 98450-12345", "first_name": "Asha"}])

    assert result["unchanged"] == 1 and result["created"] == 0
    assert writes(exotel_simulator) == []


def test_sync_leaves_fields_absent_from_a_row_alone(exotel_simulator):
    c = exotel_simulator.insert_contact(number="+919845012345", first_name="Asha", email="a@x.in", tag="old")

    sync(contacts=[{"number": "+919845012345", "tag": "new"}])

    stored = exotel_simulator.get_contact(c["sid"])
    assert (stored["first_name"], stored["email"], stored["tag"]) == ("Asha", "a@x.in", "new")


def test_sync_matches_the_oldest_of_several_contacts_with_one_number(exotel_simulator):
    old = exotel_simulator.insert_contact(number="+919845012345", date_created="2023-01-01T00:00:00Z")
    new = exotel_simulator.insert_contact(number="+91 98450 12345", date_created="2024-01-01T00:00:00Z")

    result = sync(contacts=[{"number": "+919845012345", "tag": "vip"}])

    assert result["updated"] == 1
    assert exotel_simulator.get_contact(old["sid"])["tag"] == "vip"
    assert exotel_simulator.get_contact(new["sid"])["tag"] is None


def test_sync_refuses_numbers_repeated_in_the_input_before_any_request(exotel_simulator, tmp_path):
    path = write_jsonl(
        tmp_path / "in.jsonl",
        [{"number": "+919845012345"}, {"number": "+918000000000"}, {"number": "+91 (98450) 12345"}],
    )

    with pytest.raises(
        ExotelValidationError, match=r"line 3 repeats number '\+919845012345' \(first in .*line 1\)"
    ):
        sync(input_path=str(path))
    assert exotel_simulator.request_count() == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"number": "+919845012345", "sid": "abc"}, "unknown field(s) ['sid']"),
        ({"first_name": "no number"}, "has no 'number'"),
        ({"number": "98-45"}, "needs a 'number'"),
    ],
)
def test_sync_refuses_bad_rows_naming_them_before_any_request(exotel_simulator, row, message):
    with pytest.raises(ExotelValidationError) as err:
        sync(contacts=[{"number": "+918000000000"}, row])
    assert "contacts[1]" in str(err.value) and message in str(err.value)
    assert exotel_simulator.request_count() == 0


def test_sync_dry_run_sends_only_gets_and_predicts_the_real_run(exotel_simulator, capsys, caplog):
    seeded, rows = audience(exotel_simulator, 30)
    rows[0]["tag"] = "changed"
    rows.append({"number": "+919999900001"})
    lst = exotel_simulator.add_list("aud", contact_sids=[seeded[0]["sid"], seeded[29]["sid"]])
    stray = exotel_simulator.insert_contact(number="+917000000000")
    exotel_simulator.create_list(lst["sid"], [stray["sid"]])

    with caplog.at_level("INFO"):
        planned = sync(contacts=rows, list_name="aud", remove_missing=True, dry_run=True)
    captured = capsys.readouterr()
    log = caplog.text + captured.out + captured.err  # structlog (3.x) or logging (2.x)

    assert {r.method for r in exotel_simulator.requests} == {"GET"}
    assert planned == {
        "created": 1,
        "updated": 1,
        "unchanged": 29,
        "added_to_list": 29,
        "removed_from_list": 1,
        "failed": 0,
        "dry_run": True,
    }
    assert "1 to create, 1 to update, 29 unchanged, 29 to add to the list, 1 to remove" in log
    assert "to create, first 1: +919999900001" in log and "+919600000000 (tag)" in log

    done = sync(contacts=rows, list_name="aud", remove_missing=True)

    assert done == {**planned, "dry_run": False}


def test_sync_list_name_creates_the_list_once(exotel_simulator):
    _, rows = audience(exotel_simulator, 5)

    sync(contacts=rows, list_name="Diwali 2024")
    lst = exotel_simulator.list_by_name("Diwali 2024")
    exotel_simulator.clear_requests()
    again = sync(contacts=rows, list_name="Diwali 2024")

    assert len(exotel_simulator.lists[lst["sid"]]) == 5
    assert writes(exotel_simulator) == []
    assert again["added_to_list"] == 0


def test_sync_dry_run_with_a_missing_list_name_creates_nothing(exotel_simulator):
    _, rows = audience(exotel_simulator, 3)

    result = sync(contacts=rows, list_name="not yet", dry_run=True)

    assert result["added_to_list"] == 3
    assert exotel_simulator.list_by_name("not yet") is None
    assert {r.method for r in exotel_simulator.requests} == {"GET"}


def test_sync_remove_missing_removes_only_members_absent_from_the_input(exotel_simulator):
    seeded, rows = audience(exotel_simulator, 10)
    lst = exotel_simulator.add_list("aud", contact_sids=[c["sid"] for c in seeded])
    keep = rows[:6]

    result = sync(contacts=keep, list_sid=lst["sid"], remove_missing=True)

    assert result["removed_from_list"] == 4
    assert exotel_simulator.lists[lst["sid"]] == [c["sid"] for c in seeded[:6]]
    assert len(exotel_simulator) == 10  # removed from the list, not deleted
    deletes = [r for r in exotel_simulator.requests if r.method == "DELETE"]
    assert sorted(r.path.rsplit("/", 1)[1] for r in deletes) == sorted(c["sid"] for c in seeded[6:])


def test_sync_without_remove_missing_keeps_other_members(exotel_simulator):
    seeded, rows = audience(exotel_simulator, 4)
    lst = exotel_simulator.add_list("aud", contact_sids=[c["sid"] for c in seeded])

    result = sync(contacts=rows[:1], list_sid=lst["sid"])

    assert result["removed_from_list"] == 0
    assert len(exotel_simulator.lists[lst["sid"]]) == 4


def test_contact_deleted_between_plan_and_apply_is_dead_lettered_at_update_and_fails_the_task(
    exotel_simulator, tmp_path
):
    seeded, rows = audience(exotel_simulator, 5)
    rows[2]["first_name"] = "Changed"
    rows[3]["first_name"] = "Changed too"
    failed = tmp_path / "failed.jsonl"
    exotel_simulator.on_nth_request(1, lambda sim: sim.delete_contact(seeded[2]["sid"]), method="PUT")

    with pytest.raises(ExotelError, match="1 of 5 rows failed to sync"):
        sync(contacts=rows, failed_output_path=str(failed))

    dead = read_jsonl(failed)
    assert len(dead) == 1
    assert dead[0]["number"] == rows[2]["number"] and dead[0]["first_name"] == "Changed"
    assert dead[0]["error"]["stage"] == "update" and dead[0]["error"]["code"] == 404
    assert exotel_simulator.contacts_with_number(rows[2]["number"]) == []  # not re-created
    assert exotel_simulator.get_contact(seeded[3]["sid"])["first_name"] == "Changed too"

    # the dead-letter file replays as input: the number is gone now, so it is created
    exotel_simulator.before_request = None
    replay = sync(input_path=str(failed))
    assert replay["created"] == 1 and replay["failed"] == 0
    assert exotel_simulator.contacts_with_number(rows[2]["number"])[0]["first_name"] == "Changed"


def test_sync_within_max_failures_reports_the_failure_and_succeeds(exotel_simulator, tmp_path):
    seeded, rows = audience(exotel_simulator, 5)
    rows[2]["first_name"] = "Changed"
    exotel_simulator.on_nth_request(1, lambda sim: sim.delete_contact(seeded[2]["sid"]), method="PUT")

    result = sync(contacts=rows, max_failures=1)

    assert result["failed"] == 1 and result["updated"] == 1 and result["unchanged"] == 4


def test_list_add_failures_are_dead_lettered_with_their_stage(exotel_simulator, tmp_path):
    seeded, rows = audience(exotel_simulator, 4)
    lst = exotel_simulator.add_list("aud")
    failed = tmp_path / "failed.jsonl"
    exotel_simulator.on_nth_request(1, lambda sim: sim.delete_contact(seeded[1]["sid"]), method="POST")

    result = sync(contacts=rows, list_sid=lst["sid"], failed_output_path=str(failed), max_failures=1)

    assert result["added_to_list"] == 3 and result["failed"] == 1
    dead = read_jsonl(failed)
    assert dead[0]["number"] == rows[1]["number"]
    assert dead[0]["error"]["stage"] == "list_add" and dead[0]["error"]["code"] == 404


def test_sync_refuses_to_empty_a_list_from_an_empty_input(exotel_simulator, tmp_path):
    seeded, _ = audience(exotel_simulator, 3)
    lst = exotel_simulator.add_list("aud", contact_sids=[c["sid"] for c in seeded])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")

    with pytest.raises(ExotelValidationError, match="empty and remove_missing=True"):
        sync(input_path=str(empty), list_sid=lst["sid"], remove_missing=True)
    assert exotel_simulator.request_count() == 0


def test_plan_keeps_an_index_not_the_contacts():
    import tracemalloc

    from airflow_provider_exotel.operators._sync_plan import AccountIndex as _AccountIndex

    rows = [
        json.dumps(
            {
                "sid": f"{i:032x}",
                "number": f"+9195{i:08d}",
                "first_name": f"First{i}",
                "last_name": f"Last{i}",
                "email": f"user{i}@example.com",
                "custom_field": {"segment": "A", "score": i},
                "date_created": "2024-01-01T00:00:00Z",
                "uri": f"/v2/accounts/acct1/contacts/{i:032x}",
            }
        )
        for i in range(20_000)
    ]
    tracemalloc.start()
    try:
        index = _AccountIndex()
        for line in rows:
            index.add(json.loads(line))
        per_contact = tracemalloc.get_traced_memory()[0] / len(rows)
    finally:
        tracemalloc.stop()

    assert index.get("+919500000007")[0] == f"{7:032x}"
    assert per_contact < 400  # a parsed contact dict alone is over 1,500 bytes


def test_credentials_revoked_mid_sync_stop_the_writes_and_dead_letter_every_row_left(
    exotel_simulator, tmp_path
):
    _, rows = audience(exotel_simulator, 6)
    rows[0]["tag"] = "changed"
    rows.append({"number": "+919999900001"})
    lst = exotel_simulator.add_list("aud")
    failed = tmp_path / "failed.jsonl"
    exotel_simulator.fail_every_request("401", method="PUT")

    with pytest.raises(ExotelAuthError):
        sync(contacts=rows, list_sid=lst["sid"], failed_output_path=str(failed), max_failures=100)

    dead = read_jsonl(failed)
    stages = {d["number"]: d["error"]["stage"] for d in dead}
    assert stages[rows[0]["number"]] == "update"
    # created before the PUT failed, but not added to the list once the sync stopped
    assert stages["+919999900001"] == "list_add"
    assert len(dead) == 7 and exotel_simulator.lists[lst["sid"]] == []
    assert all(d["error"]["code"] == 401 for d in dead)
    assert not [r for r in writes(exotel_simulator) if "/lists/" in r.path]


def test_current_path_replaces_reading_the_account(exotel_simulator, tmp_path):
    seeded, rows = audience(exotel_simulator, 45)
    current = write_jsonl(tmp_path / "current.jsonl", seeded)
    rows[0]["tag"] = "changed"

    result = sync(contacts=rows, current_path=str(current))

    reads = [r for r in exotel_simulator.requests if r.method == "GET"]
    # not the whole account (3 pages): the contacts created since the file, newest first (a probe
    # and one page), and a fresh read of the one contact the file says needs an update
    listing = [r for r in reads if r.path.endswith("/contacts")]
    assert len(listing) <= 2 and all(r.query.get("sort_by") == "date_created:desc" for r in listing)
    assert len(reads) - len(listing) == 1
    assert result["updated"] == 1 and result["unchanged"] == 44


def test_sync_of_5001_new_rows_creates_them_in_two_requests(exotel_simulator, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"number": f"+9180{i:08d}"} for i in range(5001)])

    result = sync(input_path=str(path))

    assert result["created"] == 5001
    creates = [r for r in writes(exotel_simulator) if r.path.endswith("/contacts")]
    assert sorted(r.batch_size for r in creates) == [1, 5000]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"contacts": [], "list_sid": "a", "list_name": "b"}, "at most one of list_sid or list_name"),
        ({"contacts": [], "remove_missing": True}, "remove_missing=True needs a list"),
        ({"contacts": [], "remove_missing": "yes", "list_sid": "a"}, "remove_missing"),
        ({}, "exactly one of contacts"),
        ({"contacts": [{"number": "x"}]}, "contacts[0]"),
        ({"contacts": [], "max_failures": -1}, "max_failures"),
        ({"contacts": [], "dry_run": "no"}, "dry_run"),
        ({"contacts": [], "list_name": ""}, "list_name"),
    ],
)
def test_bad_sync_arguments_are_refused_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(ExotelValidationError) as err:
        ExotelSyncContactsOperator(task_id="s", **kwargs)
    assert message in str(err.value)


def test_audience_module_imports_no_http_stack():
    new = modules_imported_by(
        "from airflow_provider_exotel.operators.contacts import ExotelSyncContactsOperator"
    )
    assert "operators._audience" in new
    for heavy in ("airflow_provider_exotel.hooks", "requests", "tenacity", "airflow.providers.http"):
        assert f"'{heavy}" not in new


# ------------------------------------------------------------------------------------ replay
def test_sync_matches_the_oldest_contact_even_when_current_path_lists_the_newer_one_first(
    exotel_simulator, tmp_path
):
    old = exotel_simulator.insert_contact(number="+919845012345", date_created="2023-01-01T00:00:00Z")
    new = exotel_simulator.insert_contact(number="+919845012345", date_created="2024-01-01T00:00:00Z")
    current = write_jsonl(tmp_path / "current.jsonl", reversed(exotel_simulator.contacts))  # newest first

    result = sync(contacts=[{"number": "+919845012345", "tag": "vip"}], current_path=str(current))

    assert result["updated"] == 1
    assert exotel_simulator.get_contact(old["sid"])["tag"] == "vip"
    assert exotel_simulator.get_contact(new["sid"])["tag"] is None


def _failed_pruning_sync(sim, tmp_path):
    """A sync with remove_missing=True into a list of 10 whose update of one contact fails."""
    seeded, rows = audience(sim, 10)
    sync(contacts=rows, list_name="aud", remove_missing=True)
    lst = sim.list_by_name("aud")
    failed = tmp_path / "failed.jsonl"
    sim.on_nth_request(1, lambda s: s.delete_contact(seeded[0]["sid"]), method="PUT")
    with pytest.raises(
        ExotelError, match=r"1 of 10 rows failed.*replay with input_path= and remove_missing=False"
    ):
        sync(
            contacts=[{**r, "tag": "t2"} for r in rows],
            list_name="aud",
            remove_missing=True,
            failed_output_path=str(failed),
        )
    sim.before_request = None
    sim.clear_requests()
    return lst, failed


@pytest.mark.parametrize("as_contacts", [False, True])
def test_replaying_failed_rows_with_remove_missing_is_refused_before_it_empties_the_list(
    exotel_simulator, tmp_path, as_contacts
):
    lst, failed = _failed_pruning_sync(exotel_simulator, tmp_path)
    source = {"contacts": read_jsonl(failed)} if as_contacts else {"input_path": str(failed)}

    with pytest.raises(ExotelValidationError, match=r"remove_missing=True.*remove_missing=False"):
        sync(list_name="aud", remove_missing=True, **source)

    assert exotel_simulator.request_count() == 0
    assert len(exotel_simulator.lists[lst["sid"]]) == 9


def test_the_readme_replay_recipe_redoes_the_failed_rows_and_keeps_the_list(exotel_simulator, tmp_path):
    lst, failed = _failed_pruning_sync(exotel_simulator, tmp_path)
    number = read_jsonl(failed)[0]["number"]

    result = sync(input_path=str(failed), list_name="aud", remove_missing=False)

    assert result == {**result, "created": 1, "added_to_list": 1, "removed_from_list": 0, "failed": 0}
    members = exotel_simulator.lists[lst["sid"]]
    assert len(members) == 10
    assert exotel_simulator.contacts_with_number(number)[0]["sid"] in members


def _failed_list_removal(sim, tmp_path):
    """A pruning sync whose DELETEs all fail: one member with a number, one without."""
    seeded = sim.seed_contacts(3)
    no_number = sim.insert_contact(first_name="No number")
    lst = sim.add_list("aud", contact_sids=[seeded[0]["sid"], seeded[1]["sid"], no_number["sid"]])
    failed = tmp_path / "failed.jsonl"
    sim.fail_every_request("500", method="DELETE")
    with pytest.raises(ExotelError, match="2 of 3 rows failed"):
        sync(
            contacts=[{"number": seeded[0]["number"]}],
            list_sid=lst["sid"],
            remove_missing=True,
            failed_output_path=str(failed),
        )
    sim.clear_faults()
    sim.clear_requests()
    return seeded, no_number, lst, failed


def test_list_remove_dead_letters_replay_as_removals_not_as_audience_rows(exotel_simulator, tmp_path):
    seeded, no_number, lst, failed = _failed_list_removal(exotel_simulator, tmp_path)
    dead = {d["error"]["contact_sid"]: d for d in read_jsonl(failed)}
    assert dead[seeded[1]["sid"]]["number"] == seeded[1]["number"]
    assert "number" not in dead[no_number["sid"]]  # not a made-up "" that fails validation
    assert {d["error"]["stage"] for d in dead.values()} == {"list_remove"}

    plan = sync(input_path=str(failed), list_sid=lst["sid"], dry_run=True)
    result = sync(input_path=str(failed), list_sid=lst["sid"])

    expected = {"created": 0, "updated": 0, "unchanged": 0, "added_to_list": 0, "removed_from_list": 2}
    assert plan == {**expected, "failed": 0, "dry_run": True}
    assert result == {**expected, "failed": 0, "dry_run": False}
    assert exotel_simulator.lists[lst["sid"]] == [seeded[0]["sid"]]
    assert {r.method for r in writes(exotel_simulator)} == {"DELETE"}  # nobody is added back
    assert len(exotel_simulator) == 4  # removed from the list, not deleted

    exotel_simulator.clear_requests()
    again = sync(input_path=str(failed), list_sid=lst["sid"])
    assert again["removed_from_list"] == 0 and writes(exotel_simulator) == []


def test_list_remove_dead_letters_that_fail_again_are_dead_lettered_again(exotel_simulator, tmp_path):
    seeded, no_number, lst, failed = _failed_list_removal(exotel_simulator, tmp_path)
    again = tmp_path / "again.jsonl"
    exotel_simulator.fail_every_request("500", method="DELETE")

    with pytest.raises(ExotelError, match="2 of 2 rows failed"):
        sync(input_path=str(failed), list_sid=lst["sid"], failed_output_path=str(again))

    assert sorted(d["error"]["contact_sid"] for d in read_jsonl(again)) == sorted(
        [seeded[1]["sid"], no_number["sid"]]
    )
    assert [{k: v for k, v in d.items() if k != "error"} for d in read_jsonl(again)] == [
        {k: v for k, v in d.items() if k != "error"} for d in read_jsonl(failed)
    ]


def test_list_remove_dead_letters_without_a_list_are_refused_before_any_request(exotel_simulator, tmp_path):
    _, _, _, failed = _failed_list_removal(exotel_simulator, tmp_path)

    with pytest.raises(ExotelValidationError, match="list_sid or list_name"):
        sync(input_path=str(failed))
    assert exotel_simulator.request_count() == 0


def test_sync_pruning_a_member_whose_delete_answer_was_lost_succeeds(exotel_simulator):
    seeded, rows = audience(exotel_simulator, 3)
    lst = exotel_simulator.add_list("aud", contact_sids=[c["sid"] for c in seeded])
    exotel_simulator.add_faults("reset_after_apply", method="DELETE")

    result = sync(
        contacts=rows[:1], list_sid=lst["sid"], remove_missing=True, hook_params={**FAST, "concurrency": 1}
    )

    assert result["removed_from_list"] == 2 and result["failed"] == 0
    assert exotel_simulator.lists[lst["sid"]] == [seeded[0]["sid"]]
