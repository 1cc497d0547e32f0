"""Fetch several Exotel lists in parallel with dynamic task mapping.

One ``fetch_list`` task instance per list sid (``.partial(...).expand(list_sid=...)``); each writes
``<data dir>/lists/<run>/<list_sid>.jsonl``. ``summarise`` then adds up the counts.

Environment: ``EXOTEL_EXAMPLE_DATA_DIR`` (default ``/tmp/exotel_example``),
``EXOTEL_EXAMPLE_LIST_SIDS`` (comma-separated, default ``list0,list1,list2`` — the lists the bundled
simulator seeds with ``--lists 3``).
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_exotel.operators.contacts import ExotelFetchListContactsOperator

DATA_DIR = os.environ.get("EXOTEL_EXAMPLE_DATA_DIR", "/tmp/exotel_example")
LIST_SIDS = [
    s.strip() for s in os.environ.get("EXOTEL_EXAMPLE_LIST_SIDS", "list0,list1,list2").split(",") if s.strip()
]
RUN_DIR = DATA_DIR + "/lists/{{ run_id | replace(':', '') | replace('+', '') }}"


@dag(
    dag_id="example_exotel_mapped_lists",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["exotel", "example"],
    doc_md=__doc__,
)
def example_exotel_mapped_lists():
    fetched = ExotelFetchListContactsOperator.partial(
        task_id="fetch_list",
        output_path=RUN_DIR + "/{{ task.list_sid }}.jsonl",
        map_index_template="{{ task.list_sid }}",
        hook_params={"concurrency": 2},
    ).expand(list_sid=LIST_SIDS)

    @task(multiple_outputs=False)  # one XCom, not one per key of the dict
    def summarise(results: list[dict]) -> dict:
        """Total contacts fetched across the lists, and where each list went."""
        results = list(results)
        total = sum(r["count"] for r in results)
        for r in results:
            print(f"{r['count']:>6} contacts -> {r['path']}")
        print(f"{total} contacts from {len(results)} lists")
        return {"total": total, "files": [r["path"] for r in results]}

    summarise(fetched.output)


example_exotel_mapped_lists()
