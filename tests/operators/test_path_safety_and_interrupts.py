# ruff: noqa: F811  (pytest fixtures imported from airflow_harness are redefined as arguments)
"""Defects an adversarial review found (issue 9, items 3, 5, 6, 7, 8), each pinned over real sockets
against the bundled simulator: refused input reaches no request, dead letters survive any ending,
and a bulk update reports exactly what Exotel applied."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from airflow_harness import airflow_harness  # noqa: F401  (the session fixture)
from support import interrupt_at_request, read_jsonl

from airflow_provider_exotel._contacts_check import check_contacts
from airflow_provider_exotel._validation import check_path_segment
from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelValidationError
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook
from airflow_provider_exotel.operators.contacts import (
    ExotelBulkUpdateContactsOperator,
    ExotelFetchContactsOperator,
    ExotelFetchListContactsOperator,
)
from airflow_provider_exotel.sensors.contacts import ExotelContactsSensor
from airflow_provider_exotel.triggers.contacts import ExotelContactsTrigger

DAGS = Path(__file__).parent.parent / "dags"


def run_review_dag(harness, dag_id: str, sim, seeded: list[dict], tmp_path: Path):
    """Run ``tests/dags/<dag_id>`` against ``sim`` on the ``seeded`` sids, writing to ``tmp_path``."""
    env = {
        "AIRFLOW_CONN_EXOTEL_DEFAULT": sim.connection_json(),
        "EXOTEL_REVIEW_SIDS": json.dumps([c["sid"] for c in seeded]),
        "EXOTEL_REVIEW_DIR": str(tmp_path),
    }
    return harness.run_dag(dag_id, dags_folder=DAGS, env=env)


# --------------------------------------------------------------------------------------------------
# Item 3: a list sid never changes the path it is put in
# --------------------------------------------------------------------------------------------------
HOSTILE_SIDS = [
    "..",
    " .. ",
    ".",
    "...",
    "../contacts",
    "l1/../..",
    "a\\b",
    "l1?limit=20",
    "l1#x",
    "%2e%2e",
    "l1%2F",
    "l\n1",
    "l\x00",
    "l\x1b1",
    "l 1",
    "l1,l2",
    "l\u200b1",
    "\ud800",
    "",
    "   ",
]


@pytest.fixture
def account(exotel_simulator):
    exotel_simulator.seed_contacts(30)
    exotel_simulator.create_list("l1", exotel_simulator.contact_sids[:5])
    exotel_simulator.clear_requests()
    return exotel_simulator


@pytest.mark.parametrize("sid", HOSTILE_SIDS, ids=repr)
def test_a_list_sid_that_would_change_the_url_path_is_refused_everywhere_before_any_request(account, sid):
    hook = ExotelContactsHook(retry_delay=0)
    attempts = [
        lambda: hook.iter_list_contacts(sid),
        lambda: hook.count_contacts(list_sid=sid),
        lambda: hook.newest_contact(list_sid=sid),
        lambda: hook.iter_contacts(list_sids=[sid]),
        lambda: hook.count_contacts(list_sids=["l1", sid]),
        lambda: check_contacts(hook, list_sid=sid, min_count=1, created_after=None),
        lambda: ExotelFetchListContactsOperator(task_id="f", list_sid=sid),
        lambda: ExotelFetchContactsOperator(task_id="f", list_sids=[sid]),
        lambda: ExotelContactsSensor(task_id="w", list_sid=sid),
        lambda: ExotelContactsTrigger(exotel_conn_id="exotel_default", list_sid=sid, min_count=1),
    ]
    for attempt in attempts:
        with pytest.raises(ExotelValidationError, match=r"list_sid"):
            attempt()
    assert account.request_count() == 0


def test_a_templated_list_sid_rendering_to_dot_dot_does_not_export_the_whole_account(account, tmp_path):
    op = ExotelFetchListContactsOperator(
        task_id="f", list_sid="{{ params.sid }}", output_path=str(tmp_path / "out.jsonl")
    )
    op.render_template_fields({"params": {"sid": ".."}})
    with pytest.raises(ExotelValidationError, match=r"list_sid .*'\.\.' is only dots"):
        op.execute(context={})
    assert account.request_count() == 0
    assert not (tmp_path / "out.jsonl").exists()


def test_a_list_sid_with_surrounding_spaces_is_trimmed_before_it_is_sent(account):
    hook = ExotelContactsHook(retry_delay=0)
    assert hook.count_contacts(list_sid="  l1 ") == 5
    assert len(list(hook.iter_list_contacts("\tl1\n"))) == 5
    paths = [r.path for r in account.requests]
    assert paths and all(p.endswith("/lists/l1/contacts") for p in paths)


def test_the_path_segment_check_names_the_argument_and_says_what_is_expected():
    with pytest.raises(ExotelValidationError, match=r"^contact_sid must be a sid .*'a/b' contains '/'"):
        check_path_segment("contact_sid", "a/b")
    with pytest.raises(ExotelValidationError, match=r"^list_sid must be a non-empty string"):
        check_path_segment("list_sid", 7)
    assert check_path_segment("list_sid", " Lx-1_a.b~ ") == "Lx-1_a.b~"


# --------------------------------------------------------------------------------------------------
# Item 5: values that are not JSON are refused before any request, naming the contact and field
# --------------------------------------------------------------------------------------------------
NOT_JSON = [
    ("a datetime", dt.datetime(2024, 5, 1, 10, 0), r"field 'tag' is a datetime .*not a JSON value"),
    ("a set", {"a", "b"}, r"field 'tag' is a set "),
    ("bytes", b"vip", r"field 'tag' is a bytes "),
    ("a lone surrogate", "vip\ud800", r"field 'tag' is a string with a lone surrogate"),
    ("NaN", float("nan"), r"field 'tag' is nan, which JSON cannot represent"),
    ("infinity", float("inf"), r"field 'tag' is inf, which JSON cannot represent"),
    ("a nested date", {"when": dt.date(2024, 5, 1)}, r"field 'tag' \['when'\] is a date "),
    ("a non-string key", {1: "x"}, r"field 'tag' has a non-string key 1 \(int\)"),
]


@pytest.mark.parametrize(("value", "pattern"), [c[1:] for c in NOT_JSON], ids=[c[0] for c in NOT_JSON])
def test_a_value_that_is_not_json_is_refused_before_any_update_naming_contact_and_field(
    exotel_simulator, value, pattern
):
    seeded = exotel_simulator.seed_contacts(3)
    contacts = [{"sid": c["sid"], "tag": "ok"} for c in seeded]
    contacts[2]["tag"] = value
    exotel_simulator.clear_requests()
    where = rf"contacts\[2\] \(sid '{seeded[2]['sid']}'\) "
    with pytest.raises(ExotelValidationError, match=where + pattern):
        ExotelContactsHook(retry_delay=0, concurrency=1).bulk_update_contacts(contacts, batch_size=1)
    with pytest.raises(ExotelValidationError, match=where + pattern):
        ExotelBulkUpdateContactsOperator(task_id="u", contacts=contacts)
    assert exotel_simulator.request_count() == 0
    assert all(c["tag"] != "ok" for c in exotel_simulator.contacts)  # nothing half-applied


def test_a_datetime_from_an_upstream_task_is_refused_before_any_update(
    airflow_harness, exotel_simulator, tmp_path
):
    seeded = exotel_simulator.seed_contacts(4)
    result = run_review_dag(airflow_harness, "exotel_review_not_json", exotel_simulator, seeded, tmp_path)
    assert result.task_states()["update"] == "failed"
    log = result.task_log("update")
    assert "ExotelValidationError" in log and "contacts[3]" in log and "'tag'" in log, log[-3000:]
    assert "TypeError" not in log
    assert exotel_simulator.request_count(method="PUT") == 0


# --------------------------------------------------------------------------------------------------
# Item 6: the dead-letter file survives whatever ends the task
# --------------------------------------------------------------------------------------------------
def test_execution_timeout_mid_update_still_writes_every_contact_not_updated_to_the_dead_letter_file(
    airflow_harness, exotel_simulator, tmp_path
):
    seeded = exotel_simulator.seed_contacts(40)
    exotel_simulator.latency = 0.3  # 40 single-contact batches: far longer than the 2 s timeout
    result = run_review_dag(airflow_harness, "exotel_review_timeout", exotel_simulator, seeded, tmp_path)
    assert result.task_states()["update"] == "failed"
    assert "Timeout" in result.task_log("update")
    exotel_simulator.latency = 0
    not_updated = {c["sid"] for c in exotel_simulator.contacts if c.get("tag") != "timed-out"}
    rows = read_jsonl(tmp_path / "failed.jsonl")
    dead = [r["sid"] for r in rows]
    assert len(dead) == len(set(dead))
    assert not_updated <= set(dead)  # nothing lost
    # only the batch in flight when the timeout hit may have been applied after all
    assert len(set(dead) - not_updated) <= 1
    assert sum("not sent" in r["error"]["message"] for r in rows) >= 20
    assert all(r["tag"] == "timed-out" for r in rows)  # rows replay as given


def test_an_interrupt_mid_update_at_concurrency_2_keeps_the_report_and_the_dead_letter_file_exact(
    exotel_simulator, tmp_path
):
    seeded = exotel_simulator.seed_contacts(40)
    failed_path = tmp_path / "failed.jsonl"
    op = ExotelBulkUpdateContactsOperator(
        task_id="u",
        contacts=[{"sid": c["sid"], "tag": "new"} for c in seeded],
        batch_size=2,
        failed_output_path=str(failed_path),
        hook_params={"retry_limit": 0, "retry_delay": 0, "concurrency": 2},
    )

    # the 6th PUT arms a real signal; it interrupts the task's main thread mid-update
    exotel_simulator.latency = 0.05
    with interrupt_at_request(exotel_simulator, 6, "PUT"), pytest.raises(KeyboardInterrupt):
        op.execute(context={})
    time.sleep(0.5)  # let batches that were in flight end on the server

    not_updated = {c["sid"] for c in exotel_simulator.contacts if c.get("tag") != "new"}
    dead = [r["sid"] for r in read_jsonl(failed_path)]
    assert not_updated <= set(dead)
    assert len(set(dead) - not_updated) <= 2 * 2  # at most the batches in flight (2 of 2 contacts)
    assert len(not_updated) >= 20  # it stopped sending


# --------------------------------------------------------------------------------------------------
# Item 7: PUT results are matched by sid; a 401 mid-update at concurrency >= 2 is reported exactly
# --------------------------------------------------------------------------------------------------
def test_a_missing_contact_is_never_reported_updated_when_results_come_back_reordered(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(4)
    exotel_simulator.reorder_put_results = True
    contacts = [{"sid": "missing-1", "tag": "x"}] + [{"sid": c["sid"], "tag": "x"} for c in seeded]
    contacts.insert(3, {"sid": "missing-2", "tag": "x"})

    result = ExotelContactsHook(retry_delay=0).bulk_update_contacts(contacts)

    assert result.succeeded == [c["sid"] for c in seeded]
    assert [(f["sid"], f["code"]) for f in result.failed] == [("missing-1", 404), ("missing-2", 404)]
    assert exotel_simulator.request_count(method="PUT") == 1


def test_results_without_sids_are_matched_by_position(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(3)
    exotel_simulator.put_results_without_data = True
    contacts = [{"sid": seeded[0]["sid"]}, {"sid": "missing"}, {"sid": seeded[2]["sid"], "tag": "z"}]

    result = ExotelContactsHook(retry_delay=0).bulk_update_contacts(contacts)

    assert result.succeeded == [seeded[0]["sid"], seeded[2]["sid"]]
    assert [(f["sid"], f["code"]) for f in result.failed] == [("missing", 404)]


def test_reordered_results_with_a_transient_item_failure_resend_only_that_contact(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(5)
    exotel_simulator.reorder_put_results = True
    exotel_simulator.add_item_faults({seeded[1]["sid"]: [503]})

    result = ExotelContactsHook(retry_delay=0).bulk_update_contacts(
        [{"sid": c["sid"], "tag": "y"} for c in seeded]
    )

    assert result.ok and result.succeeded == [c["sid"] for c in seeded]
    assert [r.batch_size for r in exotel_simulator.requests if r.method == "PUT"] == [5, 1]


def revoke_after(completed):
    """A simulator action: once ``completed`` PUTs have been answered, every request gets a 401."""

    def revoke(sim):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if sum(r.method == "PUT" and r.status is not None for r in sim.requests) >= completed:
                break
            time.sleep(0.01)
        sim.fail_every_request("401")

    return revoke


@pytest.mark.parametrize("concurrency", [2, 4])
def test_credentials_revoked_mid_parallel_update_report_exactly_what_was_updated(
    exotel_simulator, tmp_path, concurrency
):
    seeded = exotel_simulator.seed_contacts(60)
    exotel_simulator.latency = 0.02
    exotel_simulator.on_nth_request(4, revoke_after(3), method="PUT")
    hook = ExotelContactsHook(retry_delay=0, retry_limit=1, concurrency=concurrency)

    with pytest.raises(ExotelAuthError) as err:
        hook.bulk_update_contacts([{"sid": c["sid"], "tag": "new"} for c in seeded], batch_size=5)

    updated = [c["sid"] for c in seeded if exotel_simulator.get_contact(c["sid"])["tag"] == "new"]
    partial = err.value.partial_result
    assert len(updated) >= 15  # the three batches before the 401 (and any that raced it)
    assert partial.total == 60
    assert partial.succeeded == updated  # exact, in input order
    assert {f["sid"] for f in partial.failed} == {c["sid"] for c in seeded} - set(updated)
    assert {f["code"] for f in partial.failed} == {401}

    # the operator counts them the same way and dead-letters only the others
    exotel_simulator.clear_faults()
    exotel_simulator.clear_requests()
    exotel_simulator.on_nth_request(2, revoke_after(1), method="PUT")
    failed_path = tmp_path / "failed.jsonl"
    op = ExotelBulkUpdateContactsOperator(
        task_id="u",
        contacts=[{"sid": c["sid"], "tag": "newer"} for c in seeded],
        batch_size=5,
        failed_output_path=str(failed_path),
        hook_params={"retry_delay": 0, "retry_limit": 1, "concurrency": concurrency},
    )
    with pytest.raises(ExotelAuthError):
        op.execute(context={})
    updated = {c["sid"] for c in exotel_simulator.contacts if c.get("tag") == "newer"}
    assert len(updated) >= 5  # the first batch went through
    assert {r["sid"] for r in read_jsonl(failed_path)} == {c["sid"] for c in seeded} - updated


# --------------------------------------------------------------------------------------------------
# Item 8: input accepted before, refused or understood now
# --------------------------------------------------------------------------------------------------
def test_templated_list_sids_rendering_to_a_list_literal_fetch_the_contacts_of_those_lists(account):
    account.create_list("l2", account.contact_sids[10:13])
    op = ExotelFetchContactsOperator(task_id="f", list_sids="{{ params.lists }}")
    op.render_template_fields({"params": {"lists": ["l1", "l2"]}})
    assert op.list_sids == "['l1', 'l2']"  # what Jinja renders a list to

    got = op.execute(context={})

    assert len(got) == 8
    assert {r.query.get("list_sids") for r in account.requests} == {"l1,l2"}


def test_hook_params_accept_exactly_the_hooks_own_arguments():
    import inspect

    from airflow_provider_exotel._validation import HOOK_ARGUMENTS

    signature = inspect.signature(ExotelContactsHook.__init__).parameters
    own = {n for n, p in signature.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert own == HOOK_ARGUMENTS
    op = ExotelFetchContactsOperator(task_id="f", hook_params={"concurrency": 32, "timeout": 3600})
    assert op.hook.concurrency == 32


def test_an_interrupted_create_keeps_the_rows_that_already_failed_in_the_dead_letter_file(
    exotel_simulator, tmp_path
):
    from airflow_provider_exotel.operators.contacts import ExotelCreateContactsOperator

    seeded = exotel_simulator.seed_contacts(2)
    exotel_simulator.duplicate_numbers = "refuse"  # the first two rows get a 409
    rows = [{"number": c["number"], "first_name": "Dup"} for c in seeded]
    rows += [{"number": f"+9197{i:08d}", "first_name": "New"} for i in range(30)]
    failed_path = tmp_path / "failed.jsonl"
    op = ExotelCreateContactsOperator(
        task_id="c",
        contacts=rows,
        batch_size=2,
        failed_output_path=str(failed_path),
        hook_params={"retry_limit": 0, "retry_delay": 0, "concurrency": 1},
    )

    exotel_simulator.latency = 0.05
    with interrupt_at_request(exotel_simulator, 4, "POST"), pytest.raises(KeyboardInterrupt):
        op.execute(context={})

    dead = read_jsonl(failed_path)
    assert [(r["number"], r["error"]["code"]) for r in dead[:2]] == [(c["number"], 409) for c in seeded]


@pytest.mark.parametrize("argument", ["name", "sort_by"])
def test_a_lone_surrogate_in_a_query_parameter_is_refused_naming_it_before_any_request(
    exotel_simulator, argument
):
    hook = ExotelContactsHook(retry_delay=0)
    with pytest.raises(ExotelValidationError, match=argument):
        list(hook.iter_contacts(**{argument: "As\udc80ha"}))
    if argument == "name":
        with pytest.raises(ExotelValidationError, match="name"):
            hook.count_contacts(name="As\udc80ha")
    assert exotel_simulator.request_count() == 0


@pytest.mark.parametrize("list_sid", ["..", " .. ", "a/b", "%2e%2e"])
@pytest.mark.parametrize("operator", ["create", "sync"])
def test_audience_operators_refuse_a_path_changing_list_sid_when_the_dag_is_parsed(list_sid, operator):
    from airflow_provider_exotel.operators.contacts import (
        ExotelCreateContactsOperator,
        ExotelSyncContactsOperator,
    )

    cls = ExotelCreateContactsOperator if operator == "create" else ExotelSyncContactsOperator
    with pytest.raises(ExotelValidationError, match="list_sid"):
        cls(task_id="t", contacts=[{"number": "+919845012345"}], list_sid=list_sid)
