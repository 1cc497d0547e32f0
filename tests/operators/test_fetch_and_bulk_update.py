# ruff: noqa: F811  (pytest fixtures imported from airflow_harness are redefined as arguments)
"""Fetch and bulk-update operators against the bundled simulator, over real sockets.

Most tests call ``op.execute(context={})`` directly (the ``exotel_simulator`` fixture points
``AIRFLOW_CONN_EXOTEL_DEFAULT`` at the simulator); the XComArg/templating path runs a real DAG.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from airflow_harness import airflow_harness  # noqa: F401  (session fixture)
from support import FAST, modules_imported_by, read_jsonl, sigkill_export_midway, write_jsonl

from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelError, ExotelValidationError
from airflow_provider_exotel.operators import _progress as progress_module
from airflow_provider_exotel.operators import contacts as contacts_module
from airflow_provider_exotel.operators.contacts import (
    ExotelBulkUpdateContactsOperator,
    ExotelBulkUpdateFailedError,
    ExotelFetchContactsOperator,
    ExotelFetchListContactsOperator,
)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def puts(sim):
    return [r for r in sim.requests if r.method == "PUT"]


# --------------------------------------------------------------------------------------- fetch
def test_fetch_list_streams_exact_contacts_to_json_lines(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(300)
    exotel_simulator.seed_lists(1, 137)
    out = tmp_path / "out" / "list0.jsonl"

    op = ExotelFetchListContactsOperator(task_id="fetch", list_sid="list0", output_path=str(out))
    result = op.execute(context={})

    assert result == {"path": str(out), "count": 137}
    assert read_jsonl(out) == exotel_simulator.list_contacts("list0")
    assert leftovers(out.parent) == ["list0.jsonl"]  # no temporary sibling left behind


def test_fetch_all_contacts_sends_filters_and_writes_them_in_server_order(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(200)
    exotel_simulator.seed_lists(2, 30)
    out = tmp_path / "export.jsonl"

    op = ExotelFetchContactsOperator(
        task_id="export",
        sort_by="date_created:desc",
        list_sids=["list0", "list1"],
        show_list=True,
        output_path=f"file://{out}",
    )
    result = op.execute(context={})

    members = set(exotel_simulator.lists["list0"]) | set(exotel_simulator.lists["list1"])
    got = read_jsonl(out)
    assert result == {"path": f"file://{out}", "count": len(members)}
    assert {c["sid"] for c in got} == members
    created = [c["date_created"] for c in got]
    assert created == sorted(created, reverse=True)
    pages = [r for r in exotel_simulator.requests if r.path.endswith("/contacts") and r.method == "GET"]
    assert all(r.query.get("list_sids") == "list0,list1" for r in pages)
    assert any(
        r.query.get("sort_by") == "date_created:desc" and r.query.get("filter") == "show_list" for r in pages
    )


def test_fetch_by_name_returns_only_matching_contacts(exotel_simulator):
    exotel_simulator.seed_contacts(50)
    exotel_simulator.insert_contact(first_name="Zaphod", last_name="Beeblebrox")

    got = ExotelFetchContactsOperator(task_id="f", name="zaphod").execute(context={})

    assert [c["first_name"] for c in got] == ["Zaphod"]


def test_fetch_without_output_path_returns_the_contacts(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(45)

    got = ExotelFetchContactsOperator(task_id="f").execute(context={})

    assert got == seeded


def test_fetch_returns_exactly_1000_contacts_through_xcom(exotel_simulator):
    exotel_simulator.seed_contacts(1000)

    got = ExotelFetchContactsOperator(task_id="f").execute(context={})

    assert len(got) == 1000


def test_fetch_refuses_more_than_1000_contacts_without_output_path_and_stops_early(exotel_simulator):
    exotel_simulator.seed_contacts(3000)

    with pytest.raises(ExotelError, match="output_path") as info:
        ExotelFetchContactsOperator(task_id="f").execute(context={})

    assert "more than 1000" in str(info.value)
    # 1001 contacts are 53 pages of 20 overlapping by one; all 3000 would be 158
    page_requests = [
        r for r in exotel_simulator.requests if r.method == "GET" and int(r.query.get("limit", 0)) > 1
    ]
    assert len(page_requests) <= 53


def test_fetch_max_records_limits_the_output(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(100)

    result = ExotelFetchContactsOperator(
        task_id="f", max_records=33, output_path=str(tmp_path / "c.jsonl")
    ).execute(context={})

    assert result["count"] == 33
    assert read_jsonl(tmp_path / "c.jsonl") == seeded[:33]


def test_fetch_failing_mid_run_with_401_leaves_nothing_at_output_path_only_a_hidden_partial(
    exotel_simulator, tmp_path
):
    exotel_simulator.seed_contacts(400)
    exotel_simulator.on_nth_request(6, lambda s: s.fail_every_request("401"), method="GET")
    out = tmp_path / "out" / "contacts.jsonl"

    op = ExotelFetchContactsOperator(
        task_id="f", output_path=str(out), hook_params={**FAST, "concurrency": 1}
    )
    with pytest.raises(ExotelAuthError):
        op.execute(context={})

    assert exotel_simulator.count_status(200) >= 5  # pages were written before it failed
    assert not out.exists()
    # what was written is kept, hidden, for the next try to resume (tests/operators/test_resumable_export.py)
    assert [name for name in leftovers(out.parent) if not name.startswith(".exotel-")] == []


def test_fetch_giving_up_after_retries_leaves_no_file_and_keeps_the_previous_one(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(400)
    out = tmp_path / "contacts.jsonl"
    out.write_text("previous export\n")
    exotel_simulator.on_nth_request(5, lambda s: s.fail_every_request("503"), method="GET")

    op = ExotelFetchContactsOperator(
        task_id="f", output_path=str(out), hook_params={**FAST, "retry_limit": 2}
    )
    with pytest.raises(ExotelError, match="gave up"):
        op.execute(context={})

    assert out.read_text() == "previous export\n"
    assert [name for name in leftovers(tmp_path) if not name.startswith(".exotel-")] == ["contacts.jsonl"]


def test_static_output_path_is_declared_as_an_asset_outlet(tmp_path):
    from airflow.providers.common.compat.sdk import Asset

    local = ExotelFetchListContactsOperator(task_id="a", list_sid="l", output_path=str(tmp_path / "x.jsonl"))
    url = ExotelFetchContactsOperator(task_id="b", output_path="s3://bucket/exotel/contacts.jsonl")
    templated = ExotelFetchContactsOperator(task_id="c", output_path="/data/{{ ds }}/contacts.jsonl")
    own = Asset("s3://bucket/other")
    mixed = ExotelFetchContactsOperator(task_id="d", output_path="s3://bucket/x.jsonl", outlets=[own])

    assert [o.uri for o in local.outlets] == [(tmp_path / "x.jsonl").as_uri()]
    assert [o.uri for o in url.outlets] == ["s3://bucket/exotel/contacts.jsonl"]
    assert templated.outlets == []
    assert [o.uri for o in mixed.outlets] == ["s3://bucket/other", "s3://bucket/x.jsonl"]


def test_progress_lines_show_count_total_and_rate(exotel_simulator, tmp_path, monkeypatch):
    exotel_simulator.seed_contacts(60)
    monkeypatch.setattr(progress_module, "PROGRESS_INTERVAL", 0.0)
    op = ExotelFetchContactsOperator(task_id="f", output_path=str(tmp_path / "c.jsonl"))
    lines: list[str] = []
    monkeypatch.setattr(
        contacts_module._Progress, "_emit", lambda self, line: lines.append(line), raising=False
    )

    op.execute(context={})

    assert any(re.fullmatch(r"fetched 20 / 60 contacts \(33%\), [\d.,]+/s, ETA \d+s", line) for line in lines)
    assert any(line.startswith("fetched 60 / 60 contacts (100%)") for line in lines)


# ------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("factory", "argument"),
    [
        (lambda: ExotelBulkUpdateContactsOperator(task_id="u", contacts=[], batch_size=0), "batch_size"),
        (lambda: ExotelBulkUpdateContactsOperator(task_id="u", contacts=[], batch_size=5001), "batch_size"),
        (lambda: ExotelBulkUpdateContactsOperator(task_id="u", contacts=[], max_failures=-1), "max_failures"),
        (
            lambda: ExotelBulkUpdateContactsOperator(task_id="u", contacts=[], input_path="x.jsonl"),
            "input_path",
        ),
        (lambda: ExotelBulkUpdateContactsOperator(task_id="u"), "contacts"),
        (lambda: ExotelBulkUpdateContactsOperator(task_id="u", contacts={"sid": "a"}), "contacts"),
        (lambda: ExotelBulkUpdateContactsOperator(task_id="u", contacts=[], dry_run="yes"), "dry_run"),
        (lambda: ExotelFetchListContactsOperator(task_id="f", list_sid=""), "list_sid"),
        (lambda: ExotelFetchContactsOperator(task_id="f", max_records=-1), "max_records"),
        (lambda: ExotelFetchContactsOperator(task_id="f", list_sids=[]), "list_sids"),
        (lambda: ExotelFetchContactsOperator(task_id="f", show_list="yes"), "show_list"),
        (lambda: ExotelFetchContactsOperator(task_id="f", exotel_conn_id=""), "exotel_conn_id"),
        (lambda: ExotelFetchContactsOperator(task_id="f", output_path=42), "output_path"),
        (lambda: ExotelFetchContactsOperator(task_id="f", hook_params=["x"]), "hook_params"),
    ],
)
def test_bad_arguments_are_rejected_when_the_dag_is_parsed(factory, argument):
    with pytest.raises(ExotelValidationError, match=argument):
        factory()


def test_templated_arguments_are_checked_when_the_task_runs_before_any_request(exotel_simulator):
    op = ExotelFetchListContactsOperator(task_id="f", list_sid="{{ params.list_sid }}")
    op.render_template_fields({"params": {"list_sid": "  "}})

    with pytest.raises(ExotelValidationError, match="list_sid"):
        op.execute(context={})
    assert exotel_simulator.requests == []


def test_template_fields_render_paths_ids_and_payloads(tmp_path):
    fetch = ExotelFetchContactsOperator(
        task_id="f",
        exotel_conn_id="{{ params.conn }}",
        name="{{ params.name }}",
        sort_by="{{ params.sort }}",
        list_sids=["{{ params.list }}"],
        output_path=str(tmp_path) + "/{{ ds }}.jsonl",
    )
    update = ExotelBulkUpdateContactsOperator(
        task_id="u",
        contacts=[{"sid": "{{ params.sid }}", "tag": "{{ params.tag }}"}],
        failed_output_path=str(tmp_path) + "/{{ ds }}-failed.jsonl",
    )
    context = {
        "ds": "2024-05-01",
        "params": {
            "conn": "exotel_eu",
            "name": "Ann",
            "sort": "name:asc",
            "list": "list7",
            "sid": "abc",
            "tag": "vip",
        },
    }
    fetch.render_template_fields(context)
    update.render_template_fields(context)

    assert (fetch.exotel_conn_id, fetch.name, fetch.sort_by, fetch.list_sids) == (
        "exotel_eu",
        "Ann",
        "name:asc",
        ["list7"],
    )
    assert fetch.output_path == f"{tmp_path}/2024-05-01.jsonl"
    assert update.contacts == [{"sid": "abc", "tag": "vip"}]
    assert update.failed_output_path == f"{tmp_path}/2024-05-01-failed.jsonl"


def test_operator_module_imports_no_http_stack():
    new = modules_imported_by("import airflow_provider_exotel.operators.contacts")
    for heavy in ("airflow_provider_exotel.hooks", "requests", "tenacity", "airflow.providers.http"):
        assert f"'{heavy}" not in new


# ---------------------------------------------------------------------------------- bulk update
def test_bulk_update_from_a_list_updates_the_contacts(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(30)
    updates = [{"sid": c["sid"], "tag": "gold", "first_name": f"N{i}"} for i, c in enumerate(seeded)]

    result = ExotelBulkUpdateContactsOperator(task_id="u", contacts=updates).execute(context={})

    assert result == {"total": 30, "succeeded": 30, "failed": 0, "failed_sids": []}
    assert all(exotel_simulator.get_contact(u["sid"])["tag"] == "gold" for u in updates)
    assert exotel_simulator.get_contact(seeded[7]["sid"])["first_name"] == "N7"


def test_bulk_update_from_a_json_lines_url_is_sent_in_batches(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(250)
    path = write_jsonl(tmp_path / "in.jsonl", ({"sid": c["sid"], "tag": "batched"} for c in seeded))

    result = ExotelBulkUpdateContactsOperator(
        task_id="u", input_path=f"file://{path}", batch_size=100, hook_params={"concurrency": 2}
    ).execute(context={})

    assert result["succeeded"] == 250
    assert sorted(r.batch_size for r in puts(exotel_simulator)) == [50, 100, 100]
    assert {exotel_simulator.get_contact(c["sid"])["tag"] for c in seeded} == {"batched"}


def test_partial_failure_fails_the_task_after_dead_lettering_failed_contacts(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(20)
    exotel_simulator.add_item_faults({seeded[3]["sid"]: [400]})
    updates = [{"sid": c["sid"], "email": f"x{i}@example.com"} for i, c in enumerate(seeded)]
    updates.append({"sid": "no-such-contact", "tag": "ghost"})
    failed_path = tmp_path / "dead" / "failed.jsonl"

    op = ExotelBulkUpdateContactsOperator(
        task_id="u",
        contacts=updates,
        max_failures=1,
        failed_output_path=str(failed_path),
        hook_params=FAST,
    )
    with pytest.raises(ExotelBulkUpdateFailedError, match=r"2 of 21 contacts failed.*max_failures=1") as info:
        op.execute(context={})

    assert str(failed_path) in str(info.value)
    failed = sorted(read_jsonl(failed_path), key=lambda c: c["sid"])
    expected = sorted([updates[3], updates[-1]], key=lambda c: c["sid"])
    assert [{k: v for k, v in f.items() if k != "error"} for f in failed] == expected
    codes = {f["sid"]: f["error"]["code"] for f in failed}
    assert codes == {seeded[3]["sid"]: 400, "no-such-contact": 404}
    assert all(f["error"]["message"] for f in failed)
    assert exotel_simulator.get_contact(seeded[0]["sid"])["email"] == "x0@example.com"
    assert exotel_simulator.get_contact(seeded[3]["sid"])["email"] != "x3@example.com"


def test_failures_within_max_failures_succeed_and_report_failed_sids(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(5)
    updates = [{"sid": c["sid"], "tag": "t"} for c in seeded] + [{"sid": "gone", "tag": "t"}]

    result = ExotelBulkUpdateContactsOperator(
        task_id="u", contacts=updates, max_failures=1, failed_output_path=f"file://{tmp_path}/f.jsonl"
    ).execute(context={})

    assert result == {"total": 6, "succeeded": 5, "failed": 1, "failed_sids": ["gone"]}
    assert [c["sid"] for c in read_jsonl(tmp_path / "f.jsonl")] == ["gone"]


def test_failed_output_is_an_empty_file_when_nothing_failed(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(3)
    failed_path = tmp_path / "failed.jsonl"
    failed_path.write_text('{"sid": "stale from an earlier run"}\n')

    ExotelBulkUpdateContactsOperator(
        task_id="u",
        contacts=[{"sid": c["sid"], "tag": "t"} for c in seeded],
        failed_output_path=str(failed_path),
    ).execute(context={})

    assert failed_path.read_text() == ""


def test_malformed_json_line_is_named_and_nothing_is_sent(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(3)
    path = write_jsonl(
        tmp_path / "in.jsonl",
        [{"sid": seeded[0]["sid"], "tag": "a"}, "", '{"sid": "x", "tag": ', {"sid": seeded[1]["sid"]}],
    )

    with pytest.raises(ExotelValidationError, match=r"line 3 is not valid JSON"):
        ExotelBulkUpdateContactsOperator(task_id="u", input_path=str(path)).execute(context={})

    assert exotel_simulator.requests == []


def test_invalid_contact_in_file_names_its_line(exotel_simulator, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"sid": "a", "tag": "x"}, {"sid": "b", "colour": "red"}])

    with pytest.raises(ExotelValidationError, match=r"line 2 .*unknown field.*colour"):
        ExotelBulkUpdateContactsOperator(task_id="u", input_path=str(path)).execute(context={})

    assert exotel_simulator.requests == []


def test_duplicate_sid_in_file_is_rejected_before_any_request(exotel_simulator, tmp_path):
    rows = [{"sid": f"s{i}", "tag": "x"} for i in range(10)] + [{"sid": "s4", "tag": "again"}]
    path = write_jsonl(tmp_path / "in.jsonl", rows)

    with pytest.raises(ExotelValidationError, match=r"line 11 repeats sid 's4' \(first on line 5\)"):
        ExotelBulkUpdateContactsOperator(task_id="u", input_path=str(path)).execute(context={})

    assert exotel_simulator.requests == []


def test_dry_run_validates_and_reports_batches_without_sending(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(120)
    path = write_jsonl(tmp_path / "in.jsonl", ({"sid": c["sid"], "tag": "dry"} for c in seeded))

    result = ExotelBulkUpdateContactsOperator(
        task_id="u", input_path=str(path), batch_size=50, dry_run=True
    ).execute(context={})

    assert result["dry_run"] is True
    assert (result["total"], result["batches"], result["succeeded"], result["failed"]) == (120, 3, 0, 0)
    assert exotel_simulator.requests == []
    assert exotel_simulator.get_contact(seeded[0]["sid"])["tag"] != "dry"


def test_dry_run_still_rejects_invalid_input(exotel_simulator):
    with pytest.raises(ExotelValidationError, match="sid"):
        ExotelBulkUpdateContactsOperator(task_id="u", contacts=[{"tag": "x"}], dry_run=True).execute(
            context={}
        )


def test_input_path_rendering_to_nothing_is_a_clear_error(exotel_simulator):
    op = ExotelBulkUpdateContactsOperator(task_id="u", input_path="{{ params.path }}")
    op.render_template_fields({"params": {"path": ""}})

    with pytest.raises(ExotelValidationError, match=r"exactly one of contacts .* or input_path"):
        op.execute(context={})
    assert exotel_simulator.requests == []


# ------------------------------------------------------------------- through real Airflow (XComArg)
XCOM_DAG = """
import pendulum
from airflow.providers.common.compat.sdk import dag, task
from airflow_provider_exotel.operators.contacts import (
    ExotelBulkUpdateContactsOperator, ExotelFetchContactsOperator,
)

@dag(dag_id="xcom_contacts_dag", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
     params={"tag": "from-xcom"})
def xcom_contacts_dag():
    fetched = ExotelFetchContactsOperator(task_id="fetch", max_records=7)

    @task
    def make_updates(contacts, params=None):
        return [{"sid": c["sid"], "tag": params["tag"]} for c in contacts]

    ExotelBulkUpdateContactsOperator(
        task_id="update",
        contacts=make_updates(fetched.output),
        failed_output_path="{{ params.out_dir }}/failed-{{ ti.task_id }}.jsonl",
    )

xcom_contacts_dag()
"""


def test_contacts_from_an_upstream_task_xcomarg_are_updated(airflow_harness, exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(20)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "xcom_contacts_dag.py").write_text(XCOM_DAG)

    result = airflow_harness.run_dag(
        "xcom_contacts_dag",
        dags_folder=dags,
        env={"AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json()},
        conf={"tag": "from-xcom", "out_dir": str(tmp_path)},
    )

    result.assert_success()
    assert result.xcom("update") == {"total": 7, "succeeded": 7, "failed": 0, "failed_sids": []}
    assert [exotel_simulator.get_contact(c["sid"])["tag"] for c in seeded[:8]] == ["from-xcom"] * 7 + [
        seeded[7]["tag"]
    ]
    assert (tmp_path / "failed-update.jsonl").read_text() == ""
    assert "Bulk update done: 7 submitted, 7 updated, 0 failed" in result.task_log("update")


def test_dry_run_flag_keeps_airflows_dry_run_method_working(exotel_simulator):
    op = ExotelBulkUpdateContactsOperator(task_id="u", contacts=[{"sid": "a", "tag": "x"}], dry_run=True)

    op.dry_run()  # Airflow's own "render templates only" method, e.g. for `airflow tasks test --dry-run`

    assert op.validate_only is True
    assert exotel_simulator.requests == []


def test_bad_contacts_given_statically_are_rejected_when_the_dag_is_parsed():
    with pytest.raises(ExotelValidationError, match=r"contacts\[1\] .*unknown field\(s\) \['colour'\]"):
        ExotelBulkUpdateContactsOperator(task_id="u", contacts=[{"sid": "a"}, {"sid": "b", "colour": "red"}])
    with pytest.raises(ExotelValidationError, match=r"contacts\[1\] repeats sid 'a'"):
        ExotelBulkUpdateContactsOperator(task_id="u", contacts=[{"sid": "a"}, {"sid": "a"}])


def test_credentials_revoked_mid_update_dead_letter_every_contact_not_updated(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(30)
    exotel_simulator.on_nth_request(2, lambda s: s.fail_every_request("401"), method="PUT")
    failed_path = tmp_path / "failed.jsonl"
    op = ExotelBulkUpdateContactsOperator(
        task_id="u",
        contacts=[{"sid": c["sid"], "tag": "new"} for c in seeded],
        batch_size=10,
        failed_output_path=str(failed_path),
        hook_params={**FAST, "concurrency": 1},
    )

    with pytest.raises(ExotelAuthError, match="HTTP 401"):
        op.execute(context={})

    updated = [c["sid"] for c in seeded if exotel_simulator.get_contact(c["sid"])["tag"] == "new"]
    assert updated == [c["sid"] for c in seeded[:10]]
    failed = read_jsonl(failed_path)
    assert [f["sid"] for f in failed] == [c["sid"] for c in seeded[10:]]  # nothing lost
    assert all(f["tag"] == "new" and f["error"]["code"] == 401 for f in failed)


def test_templated_output_path_is_reported_as_an_asset_event_through_an_alias(
    airflow_harness, exotel_simulator, tmp_path
):
    import sqlite3

    exotel_simulator.seed_contacts(7)
    result = airflow_harness.run_dag(
        "exotel_asset_alias_export",
        dags_folder=Path(__file__).parent.parent / "dags",
        env={
            "AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json(),
            "EXOTEL_ALIAS_DIR": str(tmp_path),
        },
        logical_date="2024-03-05",
    )
    result.assert_success()

    written = tmp_path / "contacts-20240305.jsonl"
    assert len(read_jsonl(written)) == 7
    with sqlite3.connect(airflow_harness.db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        asset, event = ("asset", "asset_event") if "asset_event" in tables else ("dataset", "dataset_event")
        uris = [
            r[0] for r in conn.execute(f"SELECT a.uri FROM {event} e JOIN {asset} a ON a.id = e.{asset}_id")
        ]
    assert written.resolve().as_uri() in uris


def test_dead_letter_file_can_be_replayed_as_input_path(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(5)
    exotel_simulator.add_item_faults({seeded[2]["sid"]: [500] * 6})
    failed_path = tmp_path / "failed.jsonl"
    first = ExotelBulkUpdateContactsOperator(
        task_id="u",
        contacts=[{"sid": c["sid"], "email": "x@y.z"} for c in seeded],
        failed_output_path=str(failed_path),
        hook_params={**FAST, "retry_limit": 5},
    )
    with pytest.raises(ExotelBulkUpdateFailedError):
        first.execute(context={})
    assert [f["sid"] for f in read_jsonl(failed_path)] == [seeded[2]["sid"]]

    replay = ExotelBulkUpdateContactsOperator(task_id="r", input_path=str(failed_path), hook_params=FAST)
    assert replay.execute(context={}) == {"total": 1, "succeeded": 1, "failed": 0, "failed_sids": []}
    assert exotel_simulator.get_contact(seeded[2]["sid"])["email"] == "x@y.z"


def test_an_export_killed_mid_write_leaves_nothing_at_output_path(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(3000)
    exotel_simulator.latency = 0.02
    target = tmp_path / "out" / "contacts.jsonl"

    # SIGKILLed well into the export; no partial file where readers look, only a hidden temp sibling
    sigkill_export_midway(exotel_simulator, target, 10, hook_params={"concurrency": 1})
    assert all(p.name.startswith(".") for p in target.parent.iterdir())
