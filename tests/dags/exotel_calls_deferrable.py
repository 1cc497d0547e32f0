"""Test DAG: export call records with the deferrable ExotelFetchCallsOperator (settle wait in the triggerer).

Run by ``tests/integration/test_daily_calls_dag.py`` with ``airflow dags test`` against the bundled
simulator. ``params.start`` / ``params.end`` are the interval (in the past). The task's clock reads
``end`` when it starts — before ``end + settle`` — so it defers to a ``DateTimeTrigger``, which, the
moment being past in real time, fires at once: the real defer/resume path, without waiting.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_exotel.operators.calls import ExotelFetchCallsOperator


class ExportAtIntervalEnd(ExotelFetchCallsOperator):
    """Its clock reads ``created_to`` (an injected time): the settle time has not passed yet."""

    def _now(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.created_to)


with DAG(
    dag_id="exotel_calls_deferrable",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"start": Param("", type="string"), "end": Param("", type="string")},
    tags=["exotel", "test"],
):
    ExportAtIntervalEnd(
        task_id="export_calls",
        created_from="{{ params.start }}",
        created_to="{{ params.end }}",
        settle=dt.timedelta(minutes=5),
        deferrable=True,
    )
