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
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow import __version__ as AIRFLOW_VERSION
from airflow_harness import AirflowHarness
from packaging.version import Version
from support import free_port, tail

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


class Deployment:
    """The processes of one deployment: started in their own process groups, all stopped at the end."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work = work
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=self.env,
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches its children too
        )
        log.close()
        self.procs[name] = proc
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(tail(self.work / f"{name}.log") for name in self.procs)

    def log_text(self, *names: str) -> str:
        return "\n".join((self.work / f"{name}.log").read_text(errors="replace") for name in names)

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            alive = [p for p in self.procs.values() if p.poll() is None]
            for proc in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            deadline = time.monotonic() + grace
            for proc in alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():  # children left behind by a parent that died first
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def _wait_for(what: str, check: Callable[[], Any], deployment: Deployment, deadline: float) -> Any:
    """Poll ``check()`` until it returns something truthy; fail with the processes' logs."""
    while True:
        deployment.check_alive()
        with contextlib.suppress(requests.RequestException):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{deployment.logs()}")
        time.sleep(0.25)


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
    ready = work / "simulator.url"
    deployment.start(
        "simulator",
        "-m",
        "airflow_provider_exotel.testing",
        "--port",
        "0",
        "--contacts",
        "20",
        "--lists",
        "1",
        "--list-size",
        "3",
        "--api-key",
        "deploy-key",
        "--api-token",
        api_token,
        "--ready-file",
        str(ready),
    )
    _wait_for("the simulator", ready.exists, deployment, deadline)
    sim_url = ready.read_text().strip()
    sim = requests.Session()
    sim.trust_env = False
    port = int(sim_url.rsplit(":", 1)[1])
    connection = {
        "conn_type": "exotel",
        "login": "deploy-key",
        "password": api_token,
        "host": "127.0.0.1",
        "port": port,
        "schema": "http",
        "extra": {"account_sid": "acct1"},
    }

    # ---- Airflow: one home, one DB, the same configuration and connection for every process
    dags = work / "dags"
    dags.mkdir()
    shutil.copy(SYNC_DAG, dags / SYNC_DAG.name)
    harness = AirflowHarness(work / "home")
    api_port = free_port()
    base_url = f"http://127.0.0.1:{api_port}"
    user, password = "deploy-admin", secrets.token_urlsafe(12)
    passwords_file = work / "passwords.json"
    passwords_file.write_text(json.dumps({user: password}))
    env = harness.env(
        dags_folder=dags,
        extra={
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW_CONN_EXOTEL_DEFAULT": json.dumps(connection),
            "EXOTEL_EXAMPLE_DEFERRABLE": "1",
            "EXOTEL_EXAMPLE_DATA_DIR": str(work / "data"),  # storage every worker sees
            "NO_PROXY": "*",
        },
    )
    harness.migrate()
    deployment.env = env
    deployment.start(
        "api-server", "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(api_port),
        "--workers", "1",
    )  # fmt: skip
    deployment.start("scheduler", "-m", "airflow", "scheduler")
    deployment.start("dag-processor", "-m", "airflow", "dag-processor")
    deployment.start("triggerer", "-m", "airflow", "triggerer")

    api = requests.Session()
    api.trust_env = False

    def healthy() -> bool:
        return api.get(f"{base_url}/api/v2/monitor/health", timeout=5).status_code == 200

    _wait_for("the API server", healthy, deployment, deadline)
    login = api.post(f"{base_url}/auth/token", json={"username": user, "password": password}, timeout=30)
    assert login.status_code == 201, login.text
    api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    dag_url = f"{base_url}/api/v2/dags/{DAG_ID}"

    _wait_for("the DAG processor to parse the sync example", lambda: api.get(dag_url, timeout=10).ok,
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

    _wait_for("the sensor to defer", sensor_deferred, deployment, deadline)
    assert api.get(run_url, timeout=10).json()["state"] == "running"

    def count_checks() -> int:  # the sensor's checks, as Exotel (the simulator) saw them
        log = sim.get(f"{sim_url}/_control/requests", timeout=10).json()["requests"]
        return sum(1 for r in log if r["method"] == "GET" and r["query"].get("limit") == "1")

    # one check in the worker, then the triggerer's: it finds the list still too small
    _wait_for("the trigger to check", lambda: count_checks() >= 2, deployment, deadline)
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

    def run_finished() -> str | None:
        state = api.get(run_url, timeout=10).json()["state"]
        return state if state in ("success", "failed") else None

    final = _wait_for("the run to finish", run_finished, deployment, deadline)
    tasks = api.get(f"{run_url}/taskInstances", timeout=10).json()["task_instances"]
    states = {t["task_id"]: t["state"] for t in tasks}
    assert final == "success", f"run {final}, tasks {states}\n{deployment.logs()}"
    assert states == dict.fromkeys(
        ["wait_for_contacts", "fetch_list_contacts", "transform", "update_contacts", "report"], "success"
    )

    # ---- the task logs, as the UI shows them: progress lines and no secret
    def task_log(task_id: str) -> str:
        try_number = task(task_id)["try_number"] or 1
        response = api.get(
            f"{run_url}/taskInstances/{task_id}/logs/{try_number}",
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

    logs = {t: task_log(t) for t in states}
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
