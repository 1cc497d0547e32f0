# ruff: noqa: F811  (pytest fixtures imported from airflow_harness are redefined as arguments)
"""OpenLineage: each Exotel operator reports the Exotel datasets and files it read and wrote.

The facets come from the operators' ``get_openlineage_facets_on_complete`` after a real run against
the simulator; one test runs a real DAG with the OpenLineage provider's listener writing its events
to a file, as a deployment's OpenLineage backend would receive them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from airflow_harness import AirflowHarness, airflow_harness  # noqa: F401  (the session fixture)
from support import FAST, write_jsonl

from airflow_provider_exotel.operators.contacts import (
    ExotelBulkUpdateContactsOperator,
    ExotelCreateContactsOperator,
    ExotelFetchContactsOperator,
    ExotelFetchListContactsOperator,
    ExotelSyncContactsOperator,
)

pytest.importorskip(
    "airflow.providers.openlineage", reason="apache-airflow-providers-openlineage (dev extra)"
)


def datasets(lineage) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    return (
        [(d.namespace, d.name) for d in lineage.inputs],
        [(d.namespace, d.name) for d in lineage.outputs],
    )


def exotel(sim) -> str:
    return f"exotel://127.0.0.1:{sim.port}"


def test_fetch_reports_the_accounts_contacts_read_and_the_file_written(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(3)
    out = tmp_path / "contacts.jsonl"
    op = ExotelFetchContactsOperator(task_id="fetch", output_path=str(out), hook_params=FAST)
    op.execute({})

    inputs, outputs = datasets(op.get_openlineage_facets_on_complete(None))

    assert inputs == [(exotel(exotel_simulator), "accounts/acct1/contacts")]
    assert outputs == [("file", str(out))]


def test_fetch_of_a_list_reports_that_lists_contacts(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(3)
    exotel_simulator.create_list("L1", exotel_simulator.contact_sids[:2])
    op = ExotelFetchListContactsOperator(task_id="fetch", list_sid="L1", hook_params=FAST)
    op.execute({})

    inputs, outputs = datasets(op.get_openlineage_facets_on_complete(None))

    assert inputs == [(exotel(exotel_simulator), "accounts/acct1/lists/L1/contacts")]
    assert outputs == []  # returned through XCom: no file


def test_fetch_to_a_storage_url_reports_the_storage_namespace_and_key(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(2)
    op = ExotelFetchContactsOperator(task_id="fetch", output_path=f"file://{tmp_path}/c.jsonl")
    op.execute({})
    on_s3 = ExotelFetchContactsOperator(task_id="fetch_s3", output_path="s3://exports/run1/c.jsonl")

    _, outputs = datasets(op.get_openlineage_facets_on_complete(None))
    _, s3_outputs = datasets(on_s3.get_openlineage_facets_on_complete(None))  # named, not written

    assert outputs == [("file", f"{tmp_path}/c.jsonl")]
    assert s3_outputs == [("s3://exports", "run1/c.jsonl")]


@pytest.mark.parametrize(
    ("extra", "namespace"),
    [
        ({}, "exotel://api.exotel.com"),
        ({"region": "singapore"}, "exotel://api.exotel.com"),
        ({"region": "mumbai"}, "exotel://api.in.exotel.com"),
    ],
)
def test_the_exotel_namespace_is_the_api_host_of_the_connection(monkeypatch, extra, namespace):
    conn = {
        "conn_type": "exotel",
        "login": "lineage-key",
        "password": "lineage-token-7d2e",
        "extra": {"account_sid": "acme", **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_REAL", json.dumps(conn))
    op = ExotelFetchListContactsOperator(task_id="fetch", exotel_conn_id="exotel_real", list_sid="L7")

    inputs, _ = datasets(op.get_openlineage_facets_on_complete(None))  # no request is sent

    assert inputs == [(namespace, "accounts/acme/lists/L7/contacts")]


def test_bulk_update_reports_the_file_read_and_the_contacts_written(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(2)
    source = write_jsonl(tmp_path / "updates.jsonl", [{"sid": c["sid"], "tag": "x"} for c in seeded])
    op = ExotelBulkUpdateContactsOperator(task_id="update", input_path=str(source), hook_params=FAST)
    op.execute({})

    inputs, outputs = datasets(op.get_openlineage_facets_on_complete(None))

    assert inputs == [("file", str(source))]
    assert outputs == [(exotel(exotel_simulator), "accounts/acct1/contacts")]


def test_a_dry_run_reports_no_exotel_output(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(1)
    op = ExotelBulkUpdateContactsOperator(
        task_id="update", contacts=[{"sid": seeded[0]["sid"], "tag": "x"}], dry_run=True
    )
    op.execute({})

    inputs, outputs = datasets(op.get_openlineage_facets_on_complete(None))

    assert (inputs, outputs) == ([], [])


def test_create_reports_the_contacts_and_list_written_and_its_output_file(exotel_simulator, tmp_path):
    lst = exotel_simulator.add_list("new")
    out = tmp_path / "created.jsonl"
    op = ExotelCreateContactsOperator(
        task_id="create",
        contacts=[{"number": "+919845012340"}],
        list_sid=lst["sid"],
        output_path=str(out),
        hook_params=FAST,
    )
    op.execute({})

    inputs, outputs = datasets(op.get_openlineage_facets_on_complete(None))

    ns = exotel(exotel_simulator)
    assert inputs == []
    assert outputs == [
        (ns, "accounts/acct1/contacts"),
        (ns, f"accounts/acct1/lists/{lst['sid']}/contacts"),
        ("file", str(out)),
    ]


def test_sync_reports_the_list_it_found_by_name(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(2)
    source = write_jsonl(tmp_path / "audience.jsonl", [{"number": c["number"]} for c in seeded])
    op = ExotelSyncContactsOperator(
        task_id="sync", input_path=str(source), list_name="Diwali", hook_params=FAST
    )
    op.execute({})
    list_sid = exotel_simulator.list_by_name("Diwali")["sid"]

    inputs, outputs = datasets(op.get_openlineage_facets_on_complete(None))

    ns = exotel(exotel_simulator)
    members = (ns, f"accounts/acct1/lists/{list_sid}/contacts")
    assert inputs == [(ns, "accounts/acct1/contacts"), members, ("file", str(source))]
    assert outputs == [(ns, "accounts/acct1/contacts"), members]


def test_lineage_never_fails_a_task_whose_connection_is_gone(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXOTEL_BROKEN", json.dumps({"conn_type": "exotel", "login": "lineage-key"})
    )
    op = ExotelFetchContactsOperator(
        task_id="fetch", exotel_conn_id="exotel_broken", output_path="/tmp/x.jsonl"
    )

    inputs, outputs = datasets(op.get_openlineage_facets_on_complete(None))

    assert inputs == []  # the Exotel side cannot be named; the file still is
    assert outputs == [("file", "/tmp/x.jsonl")]


def test_operator_modules_do_not_import_openlineage():
    code = (
        "import sys\n"
        "import airflow_provider_exotel.operators.contacts\n"
        "import airflow_provider_exotel.operators._lineage\n"
        "print(sorted(m for m in sys.modules if m.startswith('openlineage')"
        " or (m.startswith('airflow.providers.openlineage.') and not m.endswith('.get_provider_info'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


DAG = """
import pendulum
from airflow.providers.common.compat.sdk import dag
from airflow_provider_exotel.operators.contacts import ExotelFetchListContactsOperator


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def exotel_lineage():
    ExotelFetchListContactsOperator(task_id="fetch", list_sid="list0", output_path="{out}")


exotel_lineage()
"""


def test_a_real_dag_run_emits_the_exotel_and_file_datasets_to_openlineage(
    airflow_harness: AirflowHarness, exotel_simulator, tmp_path
):
    exotel_simulator.seed_contacts(10)
    exotel_simulator.seed_lists(1, 4)
    dags = tmp_path / "dags"
    dags.mkdir()
    out = tmp_path / "list0.jsonl"
    (dags / "exotel_lineage.py").write_text(DAG.replace("{out}", str(out)))
    events = tmp_path / "openlineage.jsonl"

    result = airflow_harness.run_dag(
        "exotel_lineage",
        dags_folder=dags,
        env={
            "AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json(),
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "exotel-tests",
        },
    )

    result.assert_success()
    assert events.exists(), result.output[-3000:]
    emitted = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    complete = [
        e for e in emitted if e.get("eventType") == "COMPLETE" and e["job"]["name"].endswith(".fetch")
    ]
    assert complete, [(e.get("eventType"), e["job"]["name"]) for e in emitted]
    event = complete[-1]
    assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [
        (exotel(exotel_simulator), "accounts/acct1/lists/list0/contacts")
    ]
    assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [("file", str(out))]
    assert exotel_simulator.api_token not in events.read_text()
