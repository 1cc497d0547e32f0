# ruff: noqa: F811  (pytest fixtures imported from airflow_harness are redefined as arguments)
"""The sync example sends only real changes, and the examples' ``@task`` dicts are one XCom each.

A second run of ``example_exotel_sync_contacts`` over a list the first run already cleaned up sends
no PUT at all; ``report`` (a ``@task`` returning a dict) pushes one ``return_value`` XCom, not one
XCom per key (``multiple_outputs`` is inferred from ``-> dict`` on some Airflow versions).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from airflow_harness import airflow_harness  # noqa: F401  (session fixture)

EXAMPLE_DAGS = Path(__file__).resolve().parent.parent.parent / "example_dags"


def _xcom_keys(result, task_id: str) -> set[str]:
    with sqlite3.connect(result.db_path) as conn:
        rows = conn.execute(
            "SELECT key FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ?",
            (result.dag_id, result.run_id, task_id),
        ).fetchall()
    return {key for (key,) in rows}


def test_sync_example_rerun_over_an_up_to_date_list_sends_no_update(
    airflow_harness, exotel_simulator, tmp_path
):
    exotel_simulator.seed_contacts(60)
    exotel_simulator.seed_lists(1, 25)
    members = exotel_simulator.lists["list0"]
    env = {
        "AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json(),
        "EXOTEL_EXAMPLE_DATA_DIR": str(tmp_path / "data"),
    }

    def run() -> object:
        result = airflow_harness.run_dag(
            "example_exotel_sync_contacts", dags_folder=EXAMPLE_DAGS, env=env, conf={"tag": "synced-twice"}
        )
        result.assert_success()
        return result

    first = run()
    assert first.xcom("update_contacts")["succeeded"] == 25  # the seeded tags differ: all change
    puts_after_first = exotel_simulator.request_count("PUT")
    assert puts_after_first >= 1
    assert {exotel_simulator.get_contact(sid)["tag"] for sid in members} == {"synced-twice"}

    second = run()
    assert second.xcom("update_contacts") == {"total": 0, "succeeded": 0, "failed": 0, "failed_sids": []}
    assert exotel_simulator.request_count("PUT") == puts_after_first  # nothing sent
    assert "wrote 0 updates" in second.task_log("transform")
    assert "25 contact(s) already up to date" in second.task_log("transform")

    # one XCom for the dict the report task returns, not one per key
    assert _xcom_keys(second, "report") == {"return_value"}
    assert second.xcom("report")["total"] == 0
