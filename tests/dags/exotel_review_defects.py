"""Test DAGs for tests/operators/test_path_safety_and_interrupts.py: a bulk update given a ``datetime`` by an
upstream task, and a bulk update ended by its ``execution_timeout`` mid-way. The contacts' sids come
from ``EXOTEL_REVIEW_SIDS`` (a JSON list), files go to ``EXOTEL_REVIEW_DIR``."""

from __future__ import annotations

import datetime as dt
import json
import os

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_exotel.operators.contacts import ExotelBulkUpdateContactsOperator

SIDS = json.loads(os.environ.get("EXOTEL_REVIEW_SIDS", '["s1"]'))
OUT = os.environ.get("EXOTEL_REVIEW_DIR", "/tmp/exotel_review")
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

with DAG(
    dag_id="exotel_review_not_json",
    schedule=None,
    start_date=START,
    catchup=False,
    default_args={"retries": 0},
    tags=["exotel", "test"],
):

    @task
    def make_updates() -> list[dict]:
        updates: list[dict] = [{"sid": sid, "tag": "fine"} for sid in SIDS]
        updates[-1]["tag"] = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)  # not JSON
        return updates

    ExotelBulkUpdateContactsOperator(
        task_id="update",
        contacts=make_updates(),
        batch_size=1,
        failed_output_path=OUT + "/failed.jsonl",
        hook_params={"retry_limit": 0, "retry_delay": 0.0, "concurrency": 1},
    )

with DAG(
    dag_id="exotel_review_timeout",
    schedule=None,
    start_date=START,
    catchup=False,
    default_args={"retries": 0},
    tags=["exotel", "test"],
):
    ExotelBulkUpdateContactsOperator(
        task_id="update",
        contacts=[{"sid": sid, "tag": "timed-out"} for sid in SIDS],
        batch_size=1,
        failed_output_path=OUT + "/failed.jsonl",
        execution_timeout=dt.timedelta(seconds=2),
        hook_params={"retry_limit": 0, "retry_delay": 0.0, "concurrency": 1},
    )
