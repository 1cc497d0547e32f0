"""A real multi-process Airflow 3 deployment runs the sync example with the deferrable sensor.

``airflow api-server``, ``scheduler`` (LocalExecutor), ``dag-processor`` and ``triggerer`` run as
separate processes on a temporary ``AIRFLOW_HOME`` (SQLite), with the Exotel connection given to
every one of them as an environment variable — as in a deployment, where each process must see it.
The bundled simulator runs as its own process (``python -m airflow_provider_exotel.testing``) and
is changed only through its control endpoint. Through the REST API the test triggers
``example_exotel_sync_contacts``, sees the sensor deferred while the list is too small, adds contacts
(control endpoint), and checks that the sensor then succeeded, the run succeeded, and the task logs
show a progress line (percentage and ETA: the list's pages are made slow so the export spans more
than one progress interval) and no secret.

The whole test — simulator, database migration, process start-up, the run — must finish within
``BUDGET_S`` (the issue asks for <= 3 min); pytest's timeout adds only the processes' shutdown
(at most 25 s: SIGTERM, then SIGKILL) and a margin.

Airflow 2.11 keeps ``airflow dags test`` (tests/integration/test_example_dags.py); this test is skipped there.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version
from support import Deployment, run_finished, start_airflow3, start_simulator, task_log, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
SYNC_DAG = ROOT / "example_dags" / "example_exotel_sync_contacts.py"
DAG_ID = "example_exotel_sync_contacts"
#: The whole test, from its first line (DB migration included), must finish within this (<= 3 min).
BUDGET_S = 180.0
#: Deployment.stop(): SIGTERM, up to 15 s, then SIGKILL, up to 10 s.
STOP_GRACE_S = 25.0
#: Contacts the run adds to list0 (3 seeded) to release the sensor: three overlapping pages.
ADDED = 40
MEMBERS = 3 + ADDED
#: A periodic progress line of the fetch, e.g. ``fetched 21 / 43 contacts (48%), 2.1/s, ETA 10s``.
PROGRESS_LINE = re.compile(rf"fetched [\d,]+ / {MEMBERS} contacts \(\d+%\), [\d.,]+/s, ETA \d+[hms]")

pytestmark = [
    pytest.mark.skipif(Version(AIRFLOW_VERSION).major < 3, reason="Airflow 2.11 keeps `airflow dags test`"),
    # a backstop only: the test's own deadline (BUDGET_S) fails it first, with the processes' logs
    pytest.mark.timeout(BUDGET_S + STOP_GRACE_S + 35),
]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    work = tmp_path
    deployment = Deployment(work, dict(os.environ))
    try:
        yield deployment
    finally:
        deployment.stop()


def test_sync_example_in_a_multi_process_deployment_defers_then_succeeds(
    deployment: Deployment, tmp_path: Path
) -> None:
    started = time.monotonic()  # the budget covers everything, migration and start-up included
    deadline = started + BUDGET_S
    work = tmp_path
    api_token = "tok-" + secrets.token_hex(12)  # the secret that must not show anywhere
    basic = base64.b64encode(f"deploy-key:{api_token}".encode()).decode()

    # ---- the simulator, a process of its own, changed only through its control endpoint
    sim_url = start_simulator(
        deployment, api_token, deadline, "--contacts", "20", "--lists", "1", "--list-size", "3"
    )
    sim = requests.Session()
    sim.trust_env = False

    # ---- Airflow: one home, one DB, the same configuration and connection for every process
    dags = work / "dags"
    dags.mkdir()
    shutil.copy(SYNC_DAG, dags / SYNC_DAG.name)
    api, base_url = start_airflow3(
        deployment, sim_url, api_token, deadline, {"EXOTEL_EXAMPLE_DEFERRABLE": "1"}
    )
    dag_url = f"{base_url}/api/v2/dags/{DAG_ID}"

    wait_for("the DAG processor to parse the sync example", lambda: api.get(dag_url, timeout=10).ok,
              deployment, deadline)  # fmt: skip
    api.patch(dag_url, json={"is_paused": False}, timeout=30).raise_for_status()
    triggered = api.post(
        f"{dag_url}/dagRuns", json={"logical_date": None, "conf": {"min_count": 5}}, timeout=30
    )
    assert triggered.status_code == 200, triggered.text
    run_id = triggered.json()["dag_run_id"]
    run_url = f"{dag_url}/dagRuns/{run_id}"

    def task(task_id: str) -> dict[str, Any]:
        response = api.get(f"{run_url}/taskInstances/{task_id}", timeout=10)
        response.raise_for_status()
        return response.json()

    # ---- list0 holds 3 contacts, the run asks for 5: the sensor must wait, in the triggerer
    def sensor_deferred() -> bool:
        state = task("wait_for_contacts")["state"]
        assert state not in ("failed", "success", "upstream_failed"), f"sensor {state} before the wait"
        return state == "deferred"

    wait_for("the sensor to defer", sensor_deferred, deployment, deadline)
    assert api.get(run_url, timeout=10).json()["state"] == "running"

    def count_checks() -> int:  # the sensor's checks, as Exotel (the simulator) saw them
        log = sim.get(f"{sim_url}/_control/requests", timeout=10).json()["requests"]
        return sum(1 for r in log if r["method"] == "GET" and r["query"].get("limit") == "1")

    # one check in the worker, then the triggerer's: it finds the list still too small
    wait_for("the trigger to check", lambda: count_checks() >= 2, deployment, deadline)
    assert task("wait_for_contacts")["state"] == "deferred"
    # From now on every read of list0 takes 5 s (the simulator's "slow" fault): the export's pages
    # (offsets 0, then 19 and 38) arrive 5 and 10 s after it starts, past the 5 s progress interval,
    # so a periodic progress line is logged while contacts are still missing.
    slow = sim.post(
        f"{sim_url}/_control/faults",
        json={"every": "slow", "method": "GET", "path_endswith": "/lists/list0/contacts"},
        timeout=10,
    )
    assert slow.status_code == 200, slow.text
    added = sim.post(f"{sim_url}/_control/contacts", json={"count": ADDED, "list_sid": "list0"}, timeout=10)
    assert added.status_code == 200, added.text

    final = wait_for("the run to finish", lambda: run_finished(api, run_url), deployment, deadline)
    tasks = api.get(f"{run_url}/taskInstances", timeout=10).json()["task_instances"]
    states = {t["task_id"]: t["state"] for t in tasks}
    assert final == "success", f"run {final}, tasks {states}\n{deployment.logs()}"
    assert states == dict.fromkeys(
        ["wait_for_contacts", "fetch_list_contacts", "transform", "update_contacts", "report"], "success"
    )

    # ---- the task logs, as the UI shows them: progress lines and no secret
    logs = {t: task_log(api, run_url, t) for t in states}
    sensor_log = logs["wait_for_contacts"]
    # the worker's check, the deferral, the triggerer's checks (its log is part of the task's), the resume
    assert sensor_log.count("Exotel contacts of list list0: 3 (need 5) — waiting") >= 2, sensor_log[-4000:]
    assert "DEFERRED" in sensor_log
    assert f"Exotel contacts of list list0: {MEMBERS} (need 5) — done" in sensor_log
    assert f"Exotel contacts condition met: {MEMBERS} contact(s)" in sensor_log
    fetch_log = logs["fetch_list_contacts"]
    assert f"Fetching contacts of list list0 ({MEMBERS} contacts)" in fetch_log, fetch_log[-3000:]
    assert PROGRESS_LINE.search(fetch_log), fetch_log[-3000:]  # periodic, with % and ETA
    assert f"Fetched {MEMBERS} contacts" in fetch_log, fetch_log[-3000:]
    assert f"Bulk update done: {MEMBERS} submitted, {MEMBERS} updated, 0 failed" in logs["update_contacts"]
    # the simulator prints the connection it serves; Airflow's processes must never show the token
    everything = "\n".join(logs.values()) + deployment.log_text(
        "api-server", "scheduler", "dag-processor", "triggerer"
    )
    assert api_token not in everything
    assert basic not in everything

    # ---- and Exotel saw the writes: every list member is tagged by the run
    requests_log = sim.get(f"{sim_url}/_control/requests", timeout=10).json()["requests"]
    puts = [r for r in requests_log if r["method"] == "PUT"]
    assert sum(r["batch_size"] for r in puts) == MEMBERS
    assert time.monotonic() - started < BUDGET_S
