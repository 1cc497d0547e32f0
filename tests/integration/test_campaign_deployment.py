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
import json
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
from airflow_harness import AirflowHarness
from packaging.version import Version
from support import free_port
from test_deployment import Deployment, _wait_for

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


def _airflow_env(
    work: Path, port: int, api_token: str, api_port: int
) -> tuple[AirflowHarness, dict, str, str]:
    harness = AirflowHarness(work / "home")
    base_url = f"http://127.0.0.1:{api_port}"
    user, password = "deploy-admin", secrets.token_urlsafe(12)
    (work / "passwords.json").write_text(json.dumps({user: password}))
    connection = {
        "conn_type": "exotel",
        "login": "deploy-key",
        "password": api_token,
        "host": "127.0.0.1",
        "port": port,
        "schema": "http",
        "extra": {"account_sid": "acct1"},
    }
    env = harness.env(
        dags_folder=work / "dags",
        extra={
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(work / "passwords.json"),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW_CONN_EXOTEL_DEFAULT": json.dumps(connection),
            "EXOTEL_EXAMPLE_DATA_DIR": str(work / "data"),
            "EXOTEL_EXAMPLE_POLL_SECONDS": "2",
            "NO_PROXY": "*",
        },
    )
    return harness, env, user, password


def test_campaign_loop_in_a_multi_process_deployment_defers_then_succeeds(deployment, tmp_path: Path) -> None:
    started = time.monotonic()
    deadline = started + BUDGET_S
    work = tmp_path
    api_token = "tok-" + secrets.token_hex(12)
    basic = base64.b64encode(f"deploy-key:{api_token}".encode()).decode()

    ready = work / "simulator.url"
    deployment.env = dict(os.environ)
    deployment.start(
        "simulator", "-m", "airflow_provider_exotel.testing", "--port", "0", "--contacts", "300",
        "--campaign-pace", "0.2", "--api-key", "deploy-key", "--api-token", api_token,
        "--ready-file", str(ready),
    )  # fmt: skip
    _wait_for("the simulator", ready.exists, deployment, deadline)
    sim_url = ready.read_text().strip()
    sim = requests.Session()
    sim.trust_env = False

    (work / "dags").mkdir()
    shutil.copy(LOOP_DAG, work / "dags" / LOOP_DAG.name)
    api_port = free_port()
    harness, env, user, password = _airflow_env(work, int(sim_url.rsplit(":", 1)[1]), api_token, api_port)
    harness.migrate()
    deployment.env = env
    base_url = f"http://127.0.0.1:{api_port}"
    deployment.start(
        "api-server", "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(api_port),
        "--workers", "1",
    )  # fmt: skip
    for name in ("scheduler", "dag-processor", "triggerer"):
        deployment.start(name, "-m", "airflow", name)

    api = requests.Session()
    api.trust_env = False
    _wait_for(
        "the API server",
        lambda: api.get(f"{base_url}/api/v2/monitor/health", timeout=5).status_code == 200,
        deployment,
        deadline,
    )
    login = api.post(f"{base_url}/auth/token", json={"username": user, "password": password}, timeout=30)
    assert login.status_code == 201, login.text
    api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    dag_url = f"{base_url}/api/v2/dags/{DAG_ID}"
    _wait_for("the DAG to be parsed", lambda: api.get(dag_url, timeout=10).ok, deployment, deadline)
    api.patch(dag_url, json={"is_paused": False}, timeout=30).raise_for_status()
    triggered = api.post(f"{dag_url}/dagRuns", json={"logical_date": None}, timeout=30)
    assert triggered.status_code == 200, triggered.text
    run_url = f"{dag_url}/dagRuns/{triggered.json()['dag_run_id']}"

    def task(task_id: str) -> dict[str, Any]:
        response = api.get(f"{run_url}/taskInstances/{task_id}", timeout=10)
        response.raise_for_status()
        return response.json()

    def task_log(task_id: str) -> str:
        response = api.get(
            f"{run_url}/taskInstances/{task_id}/logs/{task(task_id)['try_number'] or 1}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
            timeout=30,
        )
        response.raise_for_status()
        content = response.json()["content"]
        lines = content if isinstance(content, list) else [content]
        return "\n".join(
            line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines
        )

    def wait_deferred() -> bool:
        state = task("wait")["state"]
        if state in ("failed", "success", "upstream_failed"):
            tasks = api.get(f"{run_url}/taskInstances", timeout=10).json()["task_instances"]
            states = {t["task_id"]: t["state"] for t in tasks}
            failed = [t for t, s in states.items() if s == "failed"]
            detail = "\n".join(task_log(t)[-3000:] for t in failed)
            raise AssertionError(f"wait {state} before deferring: {states}\n{detail}\n{deployment.logs()}")
        return state == "deferred"

    _wait_for("the campaign wait to defer", wait_deferred, deployment, deadline)
    campaigns = sim.get(f"{sim_url}/_control/campaigns", timeout=10).json()["campaigns"]
    assert [c["status"] for c in campaigns] == ["in-progress"]
    finished = subprocess.run(
        [sys.executable, "-m", "airflow_provider_exotel.testing", "campaign", "finish", campaigns[0]["id"],
         "--url", sim_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr

    def run_finished() -> str | None:
        state = api.get(run_url, timeout=10).json()["state"]
        return state if state in ("success", "failed") else None

    final = _wait_for("the run to finish", run_finished, deployment, deadline)
    tasks = api.get(f"{run_url}/taskInstances", timeout=10).json()["task_instances"]
    states = {t["task_id"]: t["state"] for t in tasks}
    assert final == "success", f"run {final}, tasks {states}\n{deployment.logs()}"
    assert set(states.values()) == {"success"}

    logs = {t: task_log(t) for t in states}
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
