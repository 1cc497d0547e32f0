# ruff: noqa: F811  (pytest fixtures imported from airflow_harness are redefined as arguments)
"""example_exotel_campaign_loop runs green in ``airflow dags test`` against the simulator.

The simulator runs in this process (its campaigns dial fast so the campaign finishes while the
deferred sensor waits); the DAG runs in an ``airflow dags test`` subprocess.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from airflow_harness import airflow_harness  # noqa: F401  (session fixture)

from airflow_provider_exotel.testing._campaign_runs import outcome_of

EXAMPLE_DAGS = Path(__file__).resolve().parent.parent.parent / "example_dags"


def test_campaign_loop_syncs_calls_waits_exports_and_lists_who_to_call_again(
    airflow_harness, exotel_simulator, tmp_path
):
    exotel_simulator.seed_contacts(300)
    exotel_simulator.campaigns.pace = 5.0  # 50 calls in 10 s: still running when the wait starts
    env = {
        "AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json(),
        "EXOTEL_EXAMPLE_DATA_DIR": str(tmp_path / "data"),
        "EXOTEL_EXAMPLE_POLL_SECONDS": "1",
    }

    result = airflow_harness.run_dag(
        "example_exotel_campaign_loop", dags_folder=EXAMPLE_DAGS, env=env, logical_date="2024-06-01"
    )

    result.assert_success()
    assert set(result.task_states().values()) == {"success"}
    assert len(exotel_simulator.campaigns.runs) == 1
    assert result.xcom("wait")["status"] == "completed"
    assert "in-progress" in result.task_log("wait")  # it found the campaign running and waited
    numbers = [f"+9196{i:08d}" for i in range(50)]
    outcomes = Counter(outcome_of(n) for n in numbers)
    report = result.xcom("report")
    assert report == {
        "calls": 50,
        **dict(sorted(outcomes.items())),
        "call_again": outcomes["busy"] + outcomes["no-answer"],
    }
    assert "campaign report:" in result.task_log("report")
    with open(result.xcom("export_calls")["path"], encoding="utf-8") as fh:
        assert [json.loads(line)["number"] for line in fh] == numbers
    again = exotel_simulator.list_by_name("Campaign loop - call again")
    members = {c["number"] for c in exotel_simulator.list_contacts(again["sid"])}
    assert members == {n for n in numbers if outcome_of(n) in ("busy", "no-answer")}

    launches = [r for r in exotel_simulator.requests if r.method == "POST" and r.path.endswith("/campaigns")]
    assert len(launches) == 1  # adopt on a retried launch: tests/operators/test_campaign_operators.py
