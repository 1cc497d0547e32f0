"""The campaign loop: audience in, calls out, outcomes back — and the people to call again.

    export_audience -> sync_audience -> list_sid -> launch -> wait -> export_calls -> report
                                                                                 -> sync_call_again

* ``export_audience`` — stands in for the warehouse query: the audience as JSON Lines.
* ``sync_audience`` — ExotelSyncContactsOperator makes the list ``params.list_name`` hold exactly
  that audience (a re-run sends no write when nothing changed).
* ``list_sid`` — the list's sid (one GET).
* ``launch`` — ExotelCreateCampaignOperator on that list. Its name is unique per run and
  ``if_exists="adopt"``: **a retried task or a re-run of this run adopts the campaign it made and
  never calls the audience twice.**
* ``wait`` — ExotelCampaignSensor, deferrable: waits in the triggerer (one request per
  ``poke_interval``), no worker slot held; a failed/canceled campaign fails here.
* ``export_calls`` — ExotelFetchCampaignCallDetailsOperator: one row per call, JSON Lines.
* ``report`` — counts the outcomes (printed in the task log) and writes the numbers that were
  busy or did not answer.
* ``sync_call_again`` — syncs those numbers into the list ``<list_name> - call again`` (members
  no longer to call are removed), ready for the next campaign.

Runs as-is against the bundled simulator (a fast dial pace finishes the campaign in seconds)::

    python -m airflow_provider_exotel.testing --port 8089 --contacts 300 --campaign-pace 20
    export AIRFLOW_CONN_EXOTEL_DEFAULT='<the JSON it prints>'
    airflow dags test example_exotel_campaign_loop

Environment (read at parse time): ``EXOTEL_EXAMPLE_DATA_DIR`` (default ``/tmp/exotel_example``),
``EXOTEL_EXAMPLE_POLL_SECONDS`` (the wait's poke interval, default 60).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pendulum
from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_exotel.operators.campaigns import (
    ExotelCreateCampaignOperator,
    ExotelFetchCampaignCallDetailsOperator,
)
from airflow_provider_exotel.operators.contacts import ExotelSyncContactsOperator
from airflow_provider_exotel.sensors.campaigns import ExotelCampaignSensor

DATA_DIR = os.environ.get("EXOTEL_EXAMPLE_DATA_DIR", "/tmp/exotel_example")
POLL_SECONDS = float(os.environ.get("EXOTEL_EXAMPLE_POLL_SECONDS", "60"))
# one folder per run; run ids contain ':' and '+', which some file systems dislike
RUN_DIR = DATA_DIR + "/campaign_loop/{{ run_id | replace(':', '') | replace('+', '') }}"
CAMPAIGN = "{{ ti.xcom_pull(task_ids='launch')['id'] }}"
CALL_AGAIN = ("busy", "no-answer")


@dag(
    dag_id="example_exotel_campaign_loop",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["exotel", "example", "campaign"],
    params={
        "list_name": Param("Campaign loop", type="string", minLength=1, description="Exotel list to call"),
        "audience": Param(50, type="integer", minimum=1, maximum=5000, description="numbers to call"),
        "caller_id": Param("08047112233", type="string", minLength=1, description="your ExoPhone"),
        "greeting": Param("Hello from Exotel! Your order has shipped.", type="string", minLength=1),
    },
    doc_md=__doc__,
)
def example_exotel_campaign_loop():
    @task
    def export_audience(audience_path: str, params=None) -> str:
        """Write today's audience as JSON Lines (a warehouse query in a real DAG)."""
        out = Path(audience_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for i in range(params["audience"]):
                fh.write(json.dumps({"number": f"+91 96{i:08d}", "tag": "campaign-loop"}) + "\n")
        return str(out)

    audience_path = export_audience(RUN_DIR + "/audience.jsonl")
    sync_audience = ExotelSyncContactsOperator(
        task_id="sync_audience",
        input_path=audience_path,
        list_name="{{ params.list_name }}",
        remove_missing=True,
    )

    @task
    def list_sid(params=None) -> str:
        """The sid of the synced list (one GET)."""
        from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

        hook = ExotelContactsHook()
        try:
            return hook.ensure_list(params["list_name"])["sid"]
        finally:
            hook.close()

    sid = list_sid()
    launch = ExotelCreateCampaignOperator(
        task_id="launch",
        name="{{ params.list_name }} {{ run_id }}",  # one campaign per run: a retry adopts it
        caller_id="{{ params.caller_id }}",
        list_sids=["{{ ti.xcom_pull(task_ids='list_sid') }}"],
        read_via_text="{{ params.greeting }}",
        call_retries={
            "number_of_retries": 1,
            "interval_mins": 30,
            "mechanism": "Linear",
            "on_status": ["busy"],
        },
        if_exists="adopt",
    )
    wait = ExotelCampaignSensor(
        task_id="wait", campaign_id=CAMPAIGN, deferrable=True, poke_interval=POLL_SECONDS, timeout=6 * 3600
    )
    export_calls = ExotelFetchCampaignCallDetailsOperator(
        task_id="export_calls", campaign_id=CAMPAIGN, output_path=RUN_DIR + "/calls.jsonl"
    )

    @task
    def report(export: dict, call_again_path: str) -> dict:
        """Count the outcomes; write the numbers to call again (busy, no answer) as JSON Lines."""
        outcomes: Counter[str] = Counter()
        again: dict[str, None] = {}
        with open(export["path"], encoding="utf-8") as fh:
            for line in fh:
                call = json.loads(line)
                outcomes[call["status"]] += 1
                if call["status"] in CALL_AGAIN:
                    again[call["number"]] = None
        with open(call_again_path, "w", encoding="utf-8") as fh:
            for number in again:
                fh.write(json.dumps({"number": number, "tag": "call-again"}) + "\n")
        summary = {
            "calls": sum(outcomes.values()),
            **dict(sorted(outcomes.items())),
            "call_again": len(again),
        }
        print(f"campaign report: {summary}")
        return summary

    summary = report(export_calls.output, RUN_DIR + "/call_again.jsonl")
    sync_call_again = ExotelSyncContactsOperator(
        task_id="sync_call_again",
        input_path=RUN_DIR + "/call_again.jsonl",
        list_name="{{ params.list_name }} - call again",
        remove_missing=True,
    )

    audience_path >> sync_audience >> sid >> launch >> wait >> export_calls
    summary >> sync_call_again


example_exotel_campaign_loop()
