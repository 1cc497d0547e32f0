"""Test DAG: an export whose first try fails mid-way is finished by the task's retry, resumed."""

from __future__ import annotations

import datetime as dt
import os

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator

OUT = os.environ.get("EXOTEL_RESUME_PATH", "/tmp/exotel_resume/contacts.jsonl")

with DAG(
    dag_id="exotel_resume_retry",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["exotel", "test"],
):
    ExotelFetchContactsOperator(
        task_id="export",
        output_path=OUT,
        retries=1,
        retry_delay=dt.timedelta(seconds=0),
        hook_params={"concurrency": 1, "retry_limit": 0, "retry_delay": 0.0},
    )
