"""Sync one Exotel list: wait for contacts, export them, clean them up, write the changes back.

    wait_for_contacts  ->  fetch_list_contacts  ->  transform  ->  update_contacts  ->  report

* ``wait_for_contacts`` — ExotelContactsSensor: the list has at least ``min_count`` contacts.
* ``fetch_list_contacts`` — streams the list's contacts to ``<data dir>/sync/<run>/contacts.jsonl``.
* ``transform`` — normalises names (trimmed, title case), sets ``tag`` and writes only the contacts
  whose fields actually change to ``updates.jsonl`` (plus any ``extra_sids``, e.g. sids that no
  longer exist, to see failures): a second run over an up-to-date list updates nothing.
* ``update_contacts`` — bulk update from that file; contacts Exotel rejects go to ``failed.jsonl``
  (replayable with ``input_path=``); the task fails when more than ``MAX_FAILURES`` were rejected.
* ``report`` — always runs; logs what was updated and what failed, and fails the run when the
  update did not complete.

Runs as-is against the bundled simulator::

    python -m airflow_provider_exotel.testing --port 8089 --contacts 500 --lists 3 --list-size 50
    export AIRFLOW_CONN_EXOTEL_DEFAULT='<the JSON it prints>'
    airflow dags test example_exotel_sync_contacts

Environment, read when the DAG file is parsed (so set it for the dag-processor and every worker):
``EXOTEL_EXAMPLE_DATA_DIR`` (default ``/tmp/exotel_example``), ``EXOTEL_EXAMPLE_LIST_SID`` (default
``list0``), ``EXOTEL_EXAMPLE_DEFERRABLE`` (``1`` to wait in the triggerer, ``0`` in a worker; unset:
Airflow's ``[operators] default_deferrable`` decides).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum
from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_exotel.operators.contacts import (
    ExotelBulkUpdateContactsOperator,
    ExotelFetchListContactsOperator,
)
from airflow_provider_exotel.sensors.contacts import ExotelContactsSensor

DATA_DIR = os.environ.get("EXOTEL_EXAMPLE_DATA_DIR", "/tmp/exotel_example")
LIST_SID = os.environ.get("EXOTEL_EXAMPLE_LIST_SID", "list0")
_DEFERRABLE = os.environ.get("EXOTEL_EXAMPLE_DEFERRABLE", "").strip().lower()
# only when set: otherwise the sensor's own default, [operators] default_deferrable, applies
SENSOR_MODE = {"deferrable": _DEFERRABLE in ("1", "true", "yes")} if _DEFERRABLE else {}
MAX_FAILURES = 10
# one folder per run; run ids contain ':' and '+', which some file systems dislike
RUN_DIR = DATA_DIR + "/sync/{{ run_id | replace(':', '') | replace('+', '') }}"


@dag(
    dag_id="example_exotel_sync_contacts",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["exotel", "example"],
    params={
        "list_sid": Param(LIST_SID, type="string", minLength=1, description="Exotel list to sync"),
        "min_count": Param(1, type="integer", minimum=0, description="contacts to wait for"),
        "tag": Param("synced", type="string", description="tag set on every contact of the list"),
        "extra_sids": Param(
            [], type="array", description="extra sids to update (unknown ones show up as failures)"
        ),
    },
    doc_md=__doc__,
)
def example_exotel_sync_contacts():
    wait_for_contacts = ExotelContactsSensor(
        task_id="wait_for_contacts",
        list_sid="{{ params.list_sid }}",
        min_count="{{ params.min_count }}",
        poke_interval=10,
        timeout=600,
        **SENSOR_MODE,
    )

    fetch_list_contacts = ExotelFetchListContactsOperator(
        task_id="fetch_list_contacts",
        list_sid="{{ params.list_sid }}",
        output_path=RUN_DIR + "/contacts.jsonl",
    )

    @task
    def transform(fetched: dict, updates_path: str, params=None) -> str:
        """Normalise names and tag the contacts; write only the real changes as JSON Lines."""
        out = Path(updates_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        count = unchanged = 0
        with open(fetched["path"], encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
            for line in src:
                contact = json.loads(line)
                wanted = {"tag": params["tag"]}
                for field in ("first_name", "last_name"):
                    if isinstance(contact.get(field), str):
                        wanted[field] = " ".join(contact[field].split()).title()
                # only the fields that differ: a re-run over an up-to-date list sends no update at all
                changes = {field: value for field, value in wanted.items() if contact.get(field) != value}
                if not changes:
                    unchanged += 1
                    continue
                dst.write(json.dumps({"sid": contact["sid"], **changes}) + "\n")
                count += 1
            for sid in params["extra_sids"]:
                dst.write(json.dumps({"sid": sid, "tag": params["tag"]}) + "\n")
                count += 1
        print(f"wrote {count} updates to {out}; {unchanged} contact(s) already up to date")
        return str(out)

    updates_path = transform(fetch_list_contacts.output, RUN_DIR + "/updates.jsonl")

    update_contacts = ExotelBulkUpdateContactsOperator(
        task_id="update_contacts",
        input_path=updates_path,
        failed_output_path=RUN_DIR + "/failed.jsonl",
        max_failures=MAX_FAILURES,
        batch_size=1000,
    )

    # multiple_outputs=False: one XCom (the dict), not one per key (inferred from "-> dict" on some versions)
    @task(trigger_rule="all_done", multiple_outputs=False)
    def report(failed_path: str, ti=None) -> dict:
        """Log the outcome; fail the run if the update did not complete."""
        result = ti.xcom_pull(task_ids="update_contacts")
        failed = []
        if Path(failed_path).exists():
            with open(failed_path, encoding="utf-8") as fh:
                failed = [json.loads(line) for line in fh if line.strip()]
        for contact in failed:
            print(f"failed: {contact['sid']}: {contact['error']['code']} {contact['error']['message']}")
        if result is None:
            raise RuntimeError(
                f"update_contacts did not complete; {len(failed)} failed contact(s) in {failed_path} "
                "(replay them with ExotelBulkUpdateContactsOperator(input_path=...))"
            )
        print(f"updated {result['succeeded']} of {result['total']} contacts; {result['failed']} failed")
        return {**result, "failed_path": failed_path if failed else None}

    wait_for_contacts >> fetch_list_contacts
    update_contacts >> report(RUN_DIR + "/failed.jsonl")


example_exotel_sync_contacts()
