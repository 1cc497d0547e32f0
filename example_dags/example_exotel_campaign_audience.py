"""Campaign audience: make an Exotel list hold exactly today's audience from the warehouse, safely.

    export_audience  ->  plan_sync (dry run)  ->  check_plan  ->  sync_audience  ->  report

* ``export_audience`` — stands in for the warehouse/CRM query: writes the audience as JSON Lines
  (``number`` plus names, tag, custom fields; numbers as people type them, e.g. ``+91 96000-00001``).
* ``plan_sync`` — ExotelSyncContactsOperator with ``dry_run=True``: reads the account and the list
  (GET requests only) and returns what the sync would do, logging the first rows of each kind.
* ``check_plan`` — a guard rail: refuses to go on when the plan would remove more members from the
  list than ``max_removals`` (a half-empty export must not empty a campaign list).
* ``sync_audience`` — the real sync: creates missing contacts, updates changed fields, adds everyone
  to the list (created when missing) and removes members no longer in the audience
  (``remove_missing=True``). Rows that fail go to ``failed.jsonl``: replay them with the same sync
  and ``input_path=`` that file, ``remove_missing=False`` (the file is not the whole audience). A
  re-run sends no write when nothing changed.
* ``report`` — always runs; logs the counts and the failed rows.

Runs as-is against the bundled simulator::

    python -m airflow_provider_exotel.testing --port 8089 --contacts 300
    export AIRFLOW_CONN_EXOTEL_DEFAULT='<the JSON it prints>'
    airflow dags test example_exotel_campaign_audience

Environment: ``EXOTEL_EXAMPLE_DATA_DIR`` (default ``/tmp/exotel_example``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum
from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_exotel.operators.contacts import ExotelSyncContactsOperator

DATA_DIR = os.environ.get("EXOTEL_EXAMPLE_DATA_DIR", "/tmp/exotel_example")
MAX_FAILURES = 5
# one folder per run; run ids contain ':' and '+', which some file systems dislike
RUN_DIR = DATA_DIR + "/audience/{{ run_id | replace(':', '') | replace('+', '') }}"


@dag(
    dag_id="example_exotel_campaign_audience",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["exotel", "example"],
    params={
        "list_name": Param("Example campaign", type="string", minLength=1, description="Exotel list"),
        "existing": Param(40, type="integer", minimum=0, description="audience rows already in Exotel"),
        "new": Param(10, type="integer", minimum=0, description="audience rows new to Exotel"),
        "max_removals": Param(100, type="integer", minimum=0, description="refuse plans removing more"),
    },
    doc_md=__doc__,
)
def example_exotel_campaign_audience():
    @task
    def export_audience(audience_path: str, params=None) -> str:
        """Write today's audience as JSON Lines (a warehouse query in a real DAG)."""
        out = Path(audience_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for i in range(params["existing"]):  # the simulator's seeded numbers, typed with spaces
                digits = f"{i:08d}"
                row = {"number": f"+91 96{digits[:3]} {digits[3:]}", "tag": "campaign"}
                fh.write(json.dumps(row) + "\n")
            for i in range(params["new"]):
                row = {"number": f"+91-97-{i:08d}", "first_name": f"Prospect{i}", "tag": "campaign"}
                fh.write(json.dumps(row) + "\n")
        print(f"wrote {params['existing'] + params['new']} audience rows to {out}")
        return str(out)

    audience_path = export_audience(RUN_DIR + "/audience.jsonl")

    plan_sync = ExotelSyncContactsOperator(
        task_id="plan_sync",
        input_path=audience_path,
        list_name="{{ params.list_name }}",
        remove_missing=True,
        dry_run=True,
    )

    # multiple_outputs=False: one XCom (the dict), not one per key (inferred from "-> dict" on some versions)
    @task(multiple_outputs=False)
    def check_plan(plan: dict, params=None) -> dict:
        """Guard rail between the dry run and the real sync."""
        print(f"plan: {plan}")
        if plan["removed_from_list"] > params["max_removals"]:
            raise RuntimeError(
                f"the sync would remove {plan['removed_from_list']} members from the list "
                f"(max_removals={params['max_removals']}); is the audience export complete?"
            )
        return plan

    checked = check_plan(plan_sync.output)

    sync_audience = ExotelSyncContactsOperator(
        task_id="sync_audience",
        input_path=audience_path,
        list_name="{{ params.list_name }}",
        remove_missing=True,
        failed_output_path=RUN_DIR + "/failed.jsonl",
        max_failures=MAX_FAILURES,
    )

    @task(trigger_rule="all_done", multiple_outputs=False)
    def report(failed_path: str, ti=None) -> dict:
        """Log the outcome; fail the run if the sync did not complete."""
        result = ti.xcom_pull(task_ids="sync_audience")
        failed = []
        if Path(failed_path).exists():
            with open(failed_path, encoding="utf-8") as fh:
                failed = [json.loads(line) for line in fh if line.strip()]
        for row in failed:
            error = row["error"]
            who = row.get("number") or f"contact {error.get('contact_sid')}"  # list_remove: maybe no number
            print(f"failed at {error['stage']}: {who}: {error['code']} {error['message']}")
        if result is None:
            raise RuntimeError(
                f"sync_audience did not complete; {len(failed)} failed row(s) in {failed_path} "
                "(replay them with ExotelSyncContactsOperator(input_path=<that file>, "
                "list_name=<the same list>, remove_missing=False))"
            )
        print(
            f"created {result['created']}, updated {result['updated']}, unchanged {result['unchanged']}, "
            f"added to list {result['added_to_list']}, removed {result['removed_from_list']}, "
            f"failed {result['failed']}"
        )
        return {**result, "failed_path": failed_path if failed else None}

    checked >> sync_audience >> report(RUN_DIR + "/failed.jsonl")


example_exotel_campaign_audience()
