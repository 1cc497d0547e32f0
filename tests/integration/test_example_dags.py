# ruff: noqa: F811  (pytest fixtures imported from airflow_harness are redefined as arguments)
"""The example DAGs import cleanly and run to success with ``airflow dags test`` against the simulator.

The simulator runs in this (pytest) process so its state can be checked afterwards; the DAG runs in
an ``airflow dags test`` subprocess that reaches it through ``AIRFLOW_CONN_EXOTEL_DEFAULT``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from airflow_harness import airflow_harness  # noqa: F401  (session fixture)
from support import read_jsonl

EXAMPLE_DAGS = Path(__file__).resolve().parent.parent.parent / "example_dags"
EXAMPLE_DAG_IDS = [
    "example_exotel_campaign_audience",
    "example_exotel_campaign_loop",
    "example_exotel_daily_calls",
    "example_exotel_export_consumer",
    "example_exotel_export_contacts",
    "example_exotel_incremental_export",
    "example_exotel_mapped_lists",
    "example_exotel_sync_contacts",
]


@pytest.fixture
def seeded_simulator(exotel_simulator):
    """What ``python -m airflow_provider_exotel.testing --contacts 300 --lists 3 --list-size 50`` serves."""
    exotel_simulator.seed_contacts(300)
    exotel_simulator.seed_lists(3, 50)
    return exotel_simulator


@pytest.fixture
def dag_env(seeded_simulator, tmp_path):
    return {
        "AIRFLOW_CONN_EXOTEL_DEFAULT": seeded_simulator.connection_json(),
        "EXOTEL_EXAMPLE_DATA_DIR": str(tmp_path / "data"),
    }


def test_example_dags_import_without_errors(airflow_harness):
    dag_ids, errors = airflow_harness.import_errors(EXAMPLE_DAGS)

    assert errors == {}
    assert dag_ids == EXAMPLE_DAG_IDS


# ------------------------------------------------------------------------------------------ sync
def test_sync_dag_tags_every_list_contact_and_reports_unknown_sids(
    airflow_harness, seeded_simulator, dag_env
):
    members = seeded_simulator.lists["list0"]

    result = airflow_harness.run_dag(
        "example_exotel_sync_contacts",
        dags_folder=EXAMPLE_DAGS,
        env=dag_env,
        conf={"tag": "synced-by-test", "extra_sids": ["no-such-sid-1", "no-such-sid-2"]},
    )

    result.assert_success()
    assert result.xcom("wait_for_contacts") == {"count": 50}
    fetched = result.xcom("fetch_list_contacts")
    assert fetched["count"] == 50
    assert [c["sid"] for c in read_jsonl(fetched["path"])] == members
    assert result.xcom("update_contacts") == {
        "total": 52,
        "succeeded": 50,
        "failed": 2,
        "failed_sids": ["no-such-sid-1", "no-such-sid-2"],
    }
    assert {seeded_simulator.get_contact(sid)["tag"] for sid in members} == {"synced-by-test"}
    report = result.xcom("report")
    assert [c["sid"] for c in read_jsonl(report["failed_path"])] == ["no-such-sid-1", "no-such-sid-2"]
    assert "failed: no-such-sid-1: 404" in result.task_log("report")


def test_sync_dag_fails_when_too_many_updates_fail_but_keeps_them_for_replay(
    airflow_harness, seeded_simulator, dag_env
):
    bogus = [f"bogus-{i}" for i in range(11)]  # the DAG allows 10

    result = airflow_harness.run_dag(
        "example_exotel_sync_contacts",
        dags_folder=EXAMPLE_DAGS,
        env=dag_env,
        conf={"extra_sids": bogus},
    )

    states = result.task_states()
    assert states["update_contacts"] == "failed"
    assert states["report"] == "failed"
    assert result.state == "failed"
    failed_files = list(Path(dag_env["EXOTEL_EXAMPLE_DATA_DIR"]).glob("sync/*/failed.jsonl"))
    assert len(failed_files) == 1
    assert [c["sid"] for c in read_jsonl(failed_files[0])] == bogus
    assert "11 of 61 contacts failed to update (max_failures=10)" in result.task_log("update_contacts")


def test_sync_dag_with_deferrable_sensor_waits_for_the_list_to_grow(
    airflow_harness, seeded_simulator, dag_env
):
    counts = {"n": 0}

    def grow_list_after_first_check(sim, rec):
        if (
            rec.method == "GET"
            and rec.path.endswith("/lists/list0/contacts")
            and rec.query.get("limit") == "1"
        ):
            counts["n"] += 1
            if counts["n"] == 2:  # the sensor's first check saw 50; the trigger's sees 51
                new = sim.insert_contact(first_name="  late   arrival ", last_name="x")
                sim.create_list("list0", [new["sid"]])

    seeded_simulator.before_request = grow_list_after_first_check

    result = airflow_harness.run_dag(
        "example_exotel_sync_contacts",
        dags_folder=EXAMPLE_DAGS,
        env={**dag_env, "EXOTEL_EXAMPLE_DEFERRABLE": "1"},
        conf={"min_count": 51},
    )

    result.assert_success()
    log = result.task_log("wait_for_contacts").lower()
    assert "defer" in log or "running trigger in line" in log  # Airflow 3 / Airflow 2 wording
    assert result.xcom("wait_for_contacts") == {"count": 51}
    assert result.xcom("fetch_list_contacts")["count"] == 51
    late = [c for c in seeded_simulator.list_contacts("list0") if c["last_name"] == "X"]
    assert [(c["first_name"], c["tag"]) for c in late] == [("Late Arrival", "synced")]


# ---------------------------------------------------------------------------------------- export
def _asset_rows(db: Path, sql_asset: str, sql_dataset: str, params: tuple) -> list[tuple]:
    """Query Airflow 3 ``asset*`` tables, or Airflow 2 ``dataset*`` ones."""
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute(sql_asset, params).fetchall()
        except sqlite3.OperationalError:
            return conn.execute(sql_dataset, params).fetchall()


def test_export_dag_writes_filtered_contacts_as_an_asset_its_consumer_reads(
    airflow_harness, seeded_simulator, dag_env
):
    export_path = Path(dag_env["EXOTEL_EXAMPLE_DATA_DIR"]) / "export" / "contacts.jsonl"
    uri = f"file://{export_path}"

    result = airflow_harness.run_dag(
        "example_exotel_export_contacts",
        dags_folder=EXAMPLE_DAGS,
        env=dag_env,
        conf={"list_sids": ["list1"], "name": None, "sort_by": "date_created:desc"},
    )

    result.assert_success()
    assert result.xcom("export_contacts") == {"path": uri, "count": 50}
    exported = read_jsonl(export_path)
    expected = sorted(seeded_simulator.list_contacts("list1"), key=lambda c: c["date_created"], reverse=True)
    assert [c["sid"] for c in exported] == [c["sid"] for c in expected]
    events = _asset_rows(
        airflow_harness.db_path,
        "SELECT e.source_task_id FROM asset_event e JOIN asset a ON a.id = e.asset_id "
        "WHERE a.uri = ? AND e.source_run_id = ?",
        "SELECT e.source_task_id FROM dataset_event e JOIN dataset a ON a.id = e.dataset_id "
        "WHERE a.uri = ? AND e.source_run_id = ?",
        (uri, result.run_id),
    )
    assert events == [("export_contacts",)]
    consumers = _asset_rows(
        airflow_harness.db_path,
        "SELECT r.dag_id FROM dag_schedule_asset_reference r JOIN asset a ON a.id = r.asset_id "
        "WHERE a.uri = ?",
        "SELECT r.dag_id FROM dag_schedule_dataset_reference r JOIN dataset a ON a.id = r.dataset_id "
        "WHERE a.uri = ?",
        (uri,),
    )
    assert consumers == [("example_exotel_export_consumer",)]

    consumer = airflow_harness.run_dag(
        "example_exotel_export_consumer", dags_folder=EXAMPLE_DAGS, env=dag_env
    )

    consumer.assert_success()
    assert consumer.xcom("summarise_export")["count"] == 50


# ---------------------------------------------------------------------------------------- mapped
def test_mapped_dag_fetches_each_list_to_its_own_file(airflow_harness, seeded_simulator, dag_env):
    result = airflow_harness.run_dag("example_exotel_mapped_lists", dags_folder=EXAMPLE_DAGS, env=dag_env)

    result.assert_success()
    fetched = result.mapped_xcoms("fetch_list")
    assert [Path(f["path"]).name for f in fetched] == ["list0.jsonl", "list1.jsonl", "list2.jsonl"]
    for list_sid, f in zip(["list0", "list1", "list2"], fetched, strict=True):
        assert f["count"] == 50
        assert [c["sid"] for c in read_jsonl(f["path"])] == seeded_simulator.lists[list_sid]
    assert result.xcom("summarise")["total"] == 150


def _rendered_map_indexes(result, task_id: str) -> dict[str, str | None]:
    rows = result._query(
        "SELECT map_index, rendered_map_index, state FROM task_instance "
        "WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index >= 0 ORDER BY map_index",
        (result.dag_id, result.run_id, task_id),
    )
    return {rendered: state for _, rendered, state in rows}


def test_mapped_fetches_are_named_after_their_list_and_a_failed_one_says_which(
    airflow_harness, seeded_simulator, dag_env
):
    """``map_index_template="{{ task.list_sid }}"``: the UI names each mapped instance by its list."""
    env = {**dag_env, "EXOTEL_EXAMPLE_LIST_SIDS": "list0,no_such_list,list2"}
    result = airflow_harness.run_dag("example_exotel_mapped_lists", dags_folder=EXAMPLE_DAGS, env=env)

    assert _rendered_map_indexes(result, "fetch_list") == {
        "list0": "success",
        "no_such_list": "failed",  # Exotel answered 404 for that list: the failed instance names it
        "list2": "success",
    }


# ---------------------------------------------------------------------------------------- audience
def test_audience_dag_plans_checks_then_syncs_the_audience_into_a_new_list(
    airflow_harness, seeded_simulator, dag_env
):
    result = airflow_harness.run_dag(
        "example_exotel_campaign_audience",
        dags_folder=EXAMPLE_DAGS,
        env=dag_env,
        conf={"existing": 40, "new": 10},
    )

    result.assert_success()
    expected = {
        "created": 10,
        "updated": 40,
        "unchanged": 0,
        "added_to_list": 50,
        "removed_from_list": 0,
        "failed": 0,
    }
    assert result.xcom("plan_sync") == {**expected, "dry_run": True}
    assert result.xcom("sync_audience") == {**expected, "dry_run": False}
    lst = seeded_simulator.list_by_name("Example campaign")
    members = seeded_simulator.list_contacts(lst["sid"])
    assert len(members) == 50 and {m["tag"] for m in members} == {"campaign"}
    assert seeded_simulator.contacts_with_number("+919700000003")[0]["first_name"] == "Prospect3"
    assert result.xcom("report")["failed_path"] is None
    assert "to create, first 5: +919700000000" in result.task_log("plan_sync")


def test_audience_dag_stops_before_writing_when_the_plan_would_empty_the_list(
    airflow_harness, seeded_simulator, dag_env
):
    seeded_simulator.add_list("Example campaign", contact_sids=seeded_simulator.contact_sids[:200])
    seeded_simulator.clear_requests()

    result = airflow_harness.run_dag(
        "example_exotel_campaign_audience",
        dags_folder=EXAMPLE_DAGS,
        env=dag_env,
        conf={"existing": 20, "new": 0, "max_removals": 100},
    )

    states = result.task_states()
    assert states["check_plan"] == "failed"
    assert states["sync_audience"] == "upstream_failed"
    assert result.xcom("plan_sync")["removed_from_list"] == 180
    assert {r.method for r in seeded_simulator.requests} == {"GET"}
    assert len(seeded_simulator.lists[seeded_simulator.list_by_name("Example campaign")["sid"]]) == 200


# ----------------------------------------------------------------------------------- incremental
def test_incremental_dag_exports_consecutive_days_exactly_once(airflow_harness, exotel_simulator, tmp_path):
    from datetime import UTC, datetime, timedelta

    start = datetime(2024, 3, 1, tzinfo=UTC)
    created = [start - timedelta(days=1) + timedelta(minutes=37 * i) for i in range(200)]  # ~5 days
    created += [start + timedelta(days=d) for d in (0, 0, 1, 1, 1, 2)]  # ties on the midnights
    for moment in created:
        exotel_simulator.insert_contact(date_created=moment)
    env = {
        "AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json(),
        "EXOTEL_EXAMPLE_DATA_DIR": str(tmp_path / "data"),
    }

    files = []
    for day in ("2024-03-02", "2024-03-03"):  # two consecutive runs, as a backfill would make
        result = airflow_harness.run_dag(
            "example_exotel_incremental_export", dags_folder=EXAMPLE_DAGS, env=env, logical_date=day
        )
        result.assert_success()
        files.append(Path(result.xcom("export_new_contacts")["path"]))

    def interval(path: Path) -> tuple[datetime, datetime]:
        a, b = path.stem.split("_")
        return tuple(datetime.strptime(x, "%Y%m%dT%H%M%S").replace(tzinfo=UTC) for x in (a, b))

    (s1, e1), (s2, e2) = interval(files[0]), interval(files[1])
    assert e1 - s1 == timedelta(days=1) and e1 == s2 and e2 - s2 == timedelta(days=1)
    by_sid = {c["sid"]: c["date_created"] for c in exotel_simulator.contacts}

    def window(lo: datetime, hi: datetime) -> list[str]:
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        return [
            sid
            for sid in reversed(list(by_sid))  # newest first, ties in server order
            if lo <= datetime.strptime(by_sid[sid], fmt).replace(tzinfo=UTC) < hi
        ]

    first, second = ([c["sid"] for c in read_jsonl(f)] for f in files)
    assert first == window(s1, e1) and second == window(s2, e2)
    assert len(first) > 30 and len(second) > 30
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(window(s1, e2))
