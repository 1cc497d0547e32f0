"""A real multi-process Airflow 3 deployment runs the campaign loop example; the wait passes through
``deferred``.

Same set-up as ``test_deployment.py`` (api-server, scheduler with LocalExecutor, dag-processor and
triggerer as separate processes; the simulator as its own process, changed only through its control
endpoint and CLI). The simulator's campaigns dial slowly, so the ``wait`` sensor finds the campaign
running and defers; the test then finishes the campaign with the simulator's CLI
(``campaign finish <id>``) and checks that the run succeeded, the report is in the task log, and no
secret shows anywhere.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version
from support import Deployment, run_finished, start_airflow3, start_simulator, task_log, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
LOOP_DAG = ROOT / "example_dags" / "example_exotel_campaign_loop.py"
DAG_ID = "example_exotel_campaign_loop"
BUDGET_S = 300.0

pytestmark = [
    pytest.mark.skipif(Version(AIRFLOW_VERSION).major < 3, reason="Airflow 2.11 keeps `airflow dags test`"),
    pytest.mark.timeout(BUDGET_S + 60),
]


@pytest.fixture
def deployment(tmp_path: Path):
    deployment = Deployment(tmp_path, {})
    try:
        yield deployment
    finally:
        deployment.stop()


def test_campaign_loop_in_a_multi_process_deployment_defers_then_succeeds(deployment, tmp_path: Path) -> None:
    started = time.monotonic()
    deadline = started + BUDGET_S
    work = tmp_path
    api_token = "tok-" + secrets.token_hex(12)
    basic = base64.b64encode(f"deploy-key:{api_token}".encode()).decode()

    deployment.env = dict(os.environ)
    sim_url = start_simulator(deployment, api_token, deadline, "--contacts", "300", "--campaign-pace", "0.2")
    sim = requests.Session()
    sim.trust_env = False

    (work / "dags").mkdir()
    shutil.copy(LOOP_DAG, work / "dags" / LOOP_DAG.name)
    api, base_url = start_airflow3(
        deployment, sim_url, api_token, deadline, {"EXOTEL_EXAMPLE_POLL_SECONDS": "2"}
    )
    dag_url = f"{base_url}/api/v2/dags/{DAG_ID}"
    wait_for("the DAG to be parsed", lambda: api.get(dag_url, timeout=10).ok, deployment, deadline)
    api.patch(dag_url, json={"is_paused": False}, timeout=30).raise_for_status()
    triggered = api.post(f"{dag_url}/dagRuns", json={"logical_date": None}, timeout=30)
    assert triggered.status_code == 200, triggered.text
    run_url = f"{dag_url}/dagRuns/{triggered.json()['dag_run_id']}"

    def task(task_id: str) -> dict[str, Any]:
        response = api.get(f"{run_url}/taskInstances/{task_id}", timeout=10)
        response.raise_for_status()
        return response.json()

    def wait_deferred() -> bool:
        state = task("wait")["state"]
        if state in ("failed", "success", "upstream_failed"):
            tasks = api.get(f"{run_url}/taskInstances", timeout=10).json()["task_instances"]
            states = {t["task_id"]: t["state"] for t in tasks}
            failed = [t for t, s in states.items() if s == "failed"]
            detail = "\n".join(task_log(api, run_url, t)[-3000:] for t in failed)
            raise AssertionError(f"wait {state} before deferring: {states}\n{detail}\n{deployment.logs()}")
        return state == "deferred"

    wait_for("the campaign wait to defer", wait_deferred, deployment, deadline)
    campaigns = sim.get(f"{sim_url}/_control/campaigns", timeout=10).json()["campaigns"]
    assert [c["status"] for c in campaigns] == ["in-progress"]
    finished = subprocess.run(
        [sys.executable, "-m", "airflow_provider_exotel.testing", "campaign", "finish", campaigns[0]["id"],
         "--url", sim_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr

    final = wait_for("the run to finish", lambda: run_finished(api, run_url), deployment, deadline)
    tasks = api.get(f"{run_url}/taskInstances", timeout=10).json()["task_instances"]
    states = {t["task_id"]: t["state"] for t in tasks}
    assert final == "success", f"run {final}, tasks {states}\n{deployment.logs()}"
    assert set(states.values()) == {"success"}

    logs = {t: task_log(api, run_url, t) for t in states}
    assert "DEFERRED" in logs["wait"] and "in-progress" in logs["wait"] and "completed" in logs["wait"]
    assert "campaign report: {'calls': 50" in logs["report"], logs["report"][-2000:]
    everything = "\n".join(logs.values()) + deployment.log_text(
        "api-server", "scheduler", "dag-processor", "triggerer"
    )
    assert api_token not in everything and basic not in everything
    posts = [
        r
        for r in sim.get(f"{sim_url}/_control/requests", timeout=10).json()["requests"]
        if r["method"] == "POST" and r["path"].endswith("/campaigns")
    ]
    assert len(posts) == 1
    assert time.monotonic() - started < BUDGET_S
