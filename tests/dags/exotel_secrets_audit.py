"""Test DAG for the secrets audit: every Exotel task talks to a simulator that fails every request with
a 500 echoing the request headers (``Authorization`` included).

Run by ``tests/integration/test_secrets.py``."""

from __future__ import annotations

import datetime as dt
import os

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_exotel.operators.contacts import (
    ExotelBulkUpdateContactsOperator,
    ExotelFetchContactsOperator,
    ExotelFetchListContactsOperator,
)
from airflow_provider_exotel.sensors.contacts import ExotelContactsSensor

OUT = os.environ.get("EXOTEL_AUDIT_DIR", "/tmp/exotel_audit")
FAST = {"retry_limit": 1, "retry_delay": 0.0, "timeout": 5.0}

with DAG(
    dag_id="exotel_secrets_audit",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 0},
    tags=["exotel", "test"],
):
    ExotelFetchContactsOperator(
        task_id="fetch_all",
        name="{{ params.get('name', 'A') }}",
        output_path=OUT + "/all-{{ ds }}.jsonl",
        hook_params=FAST,
    )
    ExotelFetchListContactsOperator(task_id="fetch_list", list_sid="list0", hook_params=FAST)
    ExotelBulkUpdateContactsOperator(
        task_id="update",
        contacts=[{"sid": "s1", "tag": "{{ ds }}"}],
        failed_output_path=OUT + "/failed.jsonl",
        hook_params=FAST,
    )
    ExotelContactsSensor(task_id="wait", min_count=1, poke_interval=0.5, timeout=2, mode="poke")
