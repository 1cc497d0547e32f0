# ruff: noqa: F811  (pytest fixtures imported from airflow_harness are redefined as arguments)
"""``example_exotel_daily_calls`` under ``airflow dags test``: each run exports its own day, exactly once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow_harness import airflow_harness  # noqa: F401  (session fixture)

EXAMPLE_DAGS = Path(__file__).resolve().parent.parent.parent / "example_dags"
DAGS = Path(__file__).resolve().parent.parent / "dags"


def _read(path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_daily_runs_export_their_own_day_exactly_once(airflow_harness, exotel_simulator, tmp_path):
    sim = exotel_simulator
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=3), today - timedelta(days=2), today - timedelta(days=1)]
    sim.seed_calls(400, start=days[0], end=today)
    for day in days:
        sim.add_call_record(date_created=day, sid=f"utc-midnight-{day:%d}")
        sim.add_call_record(date_created=day + timedelta(hours=18, minutes=30), sid=f"ist-midnight-{day:%d}")
    env = {
        "AIRFLOW_CONN_EXOTEL_DEFAULT": sim.connection_json(),
        "EXOTEL_EXAMPLE_DATA_DIR": str(tmp_path / "data"),
    }

    exported: dict[datetime, list[str]] = {}
    for run_after in days[1:]:  # a manual run at midnight covers the day that just ended
        result = airflow_harness.run_dag(
            "example_exotel_daily_calls",
            dags_folder=EXAMPLE_DAGS,
            env=env,
            logical_date=run_after.isoformat(),
        )
        result.assert_success()
        xcom = result.xcom("export_calls")
        path = Path(xcom["path"])
        assert path.parent == tmp_path / "data" / "calls"
        rows = _read(path)
        assert xcom["count"] == len(rows)
        exported[datetime.strptime(path.stem, "%Y-%m-%d").replace(tzinfo=UTC)] = [r["Sid"] for r in rows]

    assert len(exported) == 2
    for day, sids in exported.items():
        low = (day + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M:%S")
        high = (day + timedelta(days=1, hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M:%S")
        expected = {c["Sid"] for c in sim.call_records() if low <= c["DateCreated"] < high}
        assert set(sids) == expected and len(sids) == len(expected)
        assert {f"utc-midnight-{day:%d}", f"ist-midnight-{day:%d}"} <= expected
    first, second = exported.values()
    assert not set(first) & set(second)


def test_a_deferrable_export_waits_for_the_settle_time_in_the_triggerer(airflow_harness, exotel_simulator):
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    exotel_simulator.add_call_record(date_created=end - timedelta(minutes=1), sid="settled")

    result = airflow_harness.run_dag(
        "exotel_calls_deferrable",
        dags_folder=DAGS,
        env={"AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json()},
        conf={"start": (end - timedelta(days=1)).isoformat(), "end": end.isoformat()},
    )

    result.assert_success()
    assert [c["Sid"] for c in result.xcom("export_calls")] == ["settled"]
    log = result.task_log("export_calls")
    before, marker, _ = log.partition("running trigger in line")
    assert marker, "the task did not defer"
    assert "waiting in the triggerer" in before
    assert exotel_simulator.request_count() == 1  # nothing read before the trigger fired
