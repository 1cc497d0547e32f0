"""``make airflow``: a newcomer's one command for a real local deployment, end to end.

Runs ``make airflow`` as a user does (in its own session, like a terminal), with a temporary home and
free ports, and checks what the README promises: within 2 minutes the API server answers on the URL
it printed, with the login it printed; the example DAGs are listed; the ``exotel_default`` connection
exists and its Test button (``POST /api/v2/connections/test`` with the connection as the Edit form
sends it, password redacted) is green. Also, in that real deployment: the connection form's metadata
is what the provider declares; the Providers page links to a page that exists; a run of the
incremental example triggered without a logical date fails at once (first try, no retry). Then
Ctrl-C (SIGINT to the process group) stops every process it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent.parent
#: From ``make airflow`` to an answering API server with the DAGs listed and the connection set.
READY_WITHIN_S = 120.0
#: The script's clean stop: SIGTERM, up to 20 s, then SIGKILL (and make's own exit).
STOP_WITHIN_S = 60.0
EXAMPLE_DAG_IDS = {
    "example_exotel_campaign_audience",
    "example_exotel_export_consumer",
    "example_exotel_export_contacts",
    "example_exotel_incremental_export",
    "example_exotel_mapped_lists",
    "example_exotel_sync_contacts",
}

pytestmark = [
    pytest.mark.skipif(Version(AIRFLOW_VERSION).major < 3, reason="make airflow runs Airflow 3 processes"),
    pytest.mark.skipif(shutil.which("make") is None, reason="make is part of the documented set-up"),
    pytest.mark.timeout(READY_WITHIN_S + STOP_WITHIN_S + 120),
]


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


class MakeAirflow:
    def __init__(self, tmp_path: Path) -> None:
        self.ready_file = tmp_path / "ready.json"
        self.out = tmp_path / "make-airflow.out"
        args = f"--home {tmp_path / 'home'} --port 0 --simulator-port 0 --ready-file {self.ready_file}"
        self.started = time.monotonic()
        with self.out.open("wb") as out:
            # STAMP= BIN=: this interpreter's venv is the one `make venv` built
            self.proc = subprocess.Popen(
                ["make", "-C", str(ROOT), "airflow", "STAMP=", f"BIN={Path(sys.executable).parent}",
                 f"ARGS={args}"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_ready(self) -> dict[str, Any]:
        while not self.ready_file.exists():
            assert self.proc.poll() is None, f"make airflow exited early:\n{self.output()[-4000:]}"
            elapsed = time.monotonic() - self.started
            assert elapsed < READY_WITHIN_S, f"not ready after {elapsed:.0f} s:\n{self.output()[-4000:]}"
            time.sleep(0.5)
        return json.loads(self.ready_file.read_text())

    def pids(self) -> list[int]:
        if not self.ready_file.exists():
            return []
        return list(json.loads(self.ready_file.read_text())["pids"].values())

    def kill(self) -> None:
        for pid in [self.proc.pid, *self.pids()]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def make_airflow(tmp_path: Path) -> Iterator[MakeAirflow]:
    started = MakeAirflow(tmp_path)
    try:
        yield started
    finally:
        started.kill()  # only matters when the test failed before its own Ctrl-C


def _api(info: dict[str, Any]) -> requests.Session:
    api = requests.Session()
    api.trust_env = False
    token = api.post(
        f"{info['url']}/auth/token",
        json={"username": info["username"], "password": info["password"]},
        timeout=30,
    )
    assert token.status_code == 201, token.text
    api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return api


def _test_button(api: requests.Session, url: str) -> dict[str, Any]:
    conn = api.get(f"{url}/api/v2/connections/exotel_default", timeout=30).json()
    assert conn["password"] == "***"  # what the Edit form holds; the server merges the stored one
    fields = ("connection_id", "conn_type", "host", "port", "schema", "login", "password", "extra")
    response = api.post(f"{url}/api/v2/connections/test", json={k: conn[k] for k in fields}, timeout=60)
    assert response.status_code == 200, response.text
    assert set(json.loads(conn["extra"])) == {"account_sid", "region", "timezone"}  # Edit shows all three
    return response.json()


def _run_without_logical_date(api: requests.Session, url: str) -> dict[str, Any]:
    dag_url = f"{url}/api/v2/dags/example_exotel_incremental_export"
    api.patch(dag_url, json={"is_paused": False}, timeout=30).raise_for_status()
    run = api.post(f"{dag_url}/dagRuns", json={"logical_date": None}, timeout=30)
    assert run.status_code == 200, run.text
    run_url = f"{dag_url}/dagRuns/{run.json()['dag_run_id']}"
    deadline = time.monotonic() + 120
    state = None
    while state not in ("success", "failed"):
        assert time.monotonic() < deadline, f"the run did not finish (last state {state})"
        time.sleep(1.0)
        with contextlib.suppress(requests.Timeout):  # a busy API server (SQLite) may answer late
            state = api.get(run_url, timeout=30).json()["state"]
    return api.get(f"{run_url}/taskInstances/export_new_contacts", timeout=60).json()


def test_make_airflow_serves_the_examples_with_a_working_connection_and_stops_on_ctrl_c(make_airflow):
    info = make_airflow.wait_ready()
    url = info["url"]
    printed = make_airflow.output()
    assert f"Airflow is up: {url}   login: {info['username']} / {info['password']}" in printed
    assert "Press Ctrl-C to stop everything." in printed
    assert requests.get(f"{url}/api/v2/monitor/health", timeout=30).ok
    api = _api(info)

    # ready means parsed: every example file's DAGs are listed, no import error
    dags = api.get(f"{url}/api/v2/dags", params={"limit": 100}, timeout=30).json()["dags"]
    assert EXAMPLE_DAG_IDS <= {d["dag_id"] for d in dags}
    assert {Path(d["fileloc"]).name for d in dags} == {
        p.name for p in (ROOT / "example_dags").glob("example_*.py")
    }
    assert api.get(f"{url}/api/v2/importErrors", timeout=30).json()["total_entries"] == 0
    result = _test_button(api, url)
    assert result["status"] is True, result
    assert "Connected to Exotel account acct1" in result["message"]
    assert time.monotonic() - make_airflow.started < READY_WITHIN_S  # the README's "within 2 minutes"

    meta = {m["connection_type"]: m for m in api.get(f"{url}/ui/connections/hook_meta", timeout=30).json()}
    extra = meta["exotel"]["extra_fields"]
    assert extra["region"]["value"] == "singapore" and extra["timezone"]["value"] == "Asia/Kolkata"
    assert "examples" not in extra["account_sid"]["schema"]

    providers = api.get(f"{url}/api/v2/providers", timeout=30).json()["providers"]
    (ours,) = [p for p in providers if p["package_name"] == "airflow-provider-exotel"]
    assert ours["documentation_url"] == "https://pypi.org/project/airflow-provider-exotel/"  # item 11

    task = _run_without_logical_date(api, url)  # issue 18 item 9, in the real deployment
    assert (task["state"], task["try_number"]) == ("failed", 1), task  # at once: no retry of 3
    assert task["max_tries"] == 3

    pids = make_airflow.pids()
    assert len(pids) == 5  # simulator, api-server, scheduler, dag-processor, triggerer
    os.killpg(make_airflow.proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
    make_airflow.proc.wait(STOP_WITHIN_S)
    printed = make_airflow.output()
    assert "SIGINT: stopping" in printed
    assert "Stopped: simulator, api-server, scheduler, dag-processor, triggerer" in printed
    alive = [pid for pid in pids if _group_alive(pid)]  # every process and what it spawned
    assert alive == [], f"still running after Ctrl-C: {alive}\n{printed[-3000:]}"
