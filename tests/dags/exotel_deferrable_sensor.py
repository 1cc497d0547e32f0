"""Test DAG: wait for Exotel contacts with the deferrable sensor, then use its XCom downstream.

Run by ``tests/sensors/test_contacts_sensor.py`` with ``airflow dags test`` against the bundled simulator
(``AIRFLOW_CONN_EXOTEL_DEFAULT`` points at it). ``params.min_count`` sets how many contacts to wait for.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_exotel.sensors.contacts import ExotelContactsSensor

with DAG(
    dag_id="exotel_deferrable_contacts_sensor",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"min_count": Param(1, type="integer", minimum=0)},
    tags=["exotel", "test"],
):
    wait_for_contacts = ExotelContactsSensor(
        task_id="wait_for_contacts",
        min_count="{{ params.min_count }}",
        created_after="2023-12-31T00:00:00Z",
        deferrable=True,
        poke_interval=0.2,
        timeout=120,
    )

    @task
    def report(result: dict) -> int:
        return result["count"]

    report(wait_for_contacts.output)
