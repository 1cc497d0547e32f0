"""Export filtered contacts to object storage, and a second DAG scheduled on that export.

``example_exotel_export_contacts`` streams the contacts matching ``name`` / ``list_sids`` (newest
first) to ``EXPORT_URI`` as JSON Lines. Because ``output_path`` is a fixed URI, the operator declares
it as an Asset outlet, so ``example_exotel_export_consumer`` runs every time a new export lands.

``EXOTEL_EXAMPLE_EXPORT_URI`` may be any ObjectStoragePath URL: ``file://...`` (default, under
``EXOTEL_EXAMPLE_DATA_DIR``), or ``s3://bucket/exotel/contacts.jsonl`` with the Amazon provider
installed and an ``aws_default`` connection (``gs://``, ``abfs://`` likewise).
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pendulum
from airflow.providers.common.compat.sdk import Asset, ObjectStoragePath, Param, dag, task

from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator

DATA_DIR = os.environ.get("EXOTEL_EXAMPLE_DATA_DIR", "/tmp/exotel_example")
EXPORT_URI = os.environ.get("EXOTEL_EXAMPLE_EXPORT_URI", f"file://{DATA_DIR}/export/contacts.jsonl")


@dag(
    dag_id="example_exotel_export_contacts",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["exotel", "example"],
    # render "{{ params.list_sids }}" as a list and an empty name as None
    render_template_as_native_obj=True,
    params={
        "name": Param(None, type=["null", "string"], description="only contacts whose name matches"),
        "list_sids": Param(
            ["list0", "list1"], type=["null", "array"], description="only contacts in any of these lists"
        ),
        "sort_by": Param("date_created:desc", type="string"),
    },
    doc_md=__doc__,
)
def example_exotel_export_contacts():
    ExotelFetchContactsOperator(
        task_id="export_contacts",
        name="{{ params.name }}",
        list_sids="{{ params.list_sids }}",
        sort_by="{{ params.sort_by }}",
        output_path=EXPORT_URI,  # static, so it is declared as Asset(EXPORT_URI) automatically
    )


@dag(
    dag_id="example_exotel_export_consumer",
    schedule=[Asset(EXPORT_URI)],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["exotel", "example"],
    doc_md=__doc__,
)
def example_exotel_export_consumer():
    @task(multiple_outputs=False)  # one XCom, not one per key of the dict
    def summarise_export() -> dict:
        """Count the exported contacts per tag, reading the file as a stream."""
        tags: Counter[str] = Counter()
        with ObjectStoragePath(EXPORT_URI).open("r", encoding="utf-8") as fh:
            for line in iter(fh.readline, ""):  # (Airflow 2.x storage files are not iterable)
                tags[json.loads(line).get("tag") or "(none)"] += 1
        print(f"{sum(tags.values())} contacts exported; by tag: {dict(tags)}")
        return {"count": sum(tags.values()), "by_tag": dict(tags)}

    summarise_export()


example_exotel_export_contacts()
example_exotel_export_consumer()
