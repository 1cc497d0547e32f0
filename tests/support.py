"""Helpers shared by the test modules: ``from support import read_jsonl, make_hook, ...``.

``tests/`` is on ``sys.path`` (pytest puts ``tests/conftest.py``'s folder there), like
``airflow_harness``. Fixtures live in ``tests/conftest.py``; plain functions live here.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_exotel.hooks._budget import RequestBudget
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

#: ``hook_params`` for a test against the simulator: no back-off between retries, a short timeout.
FAST: dict[str, Any] = {"retry_delay": 0.0, "timeout": 5.0}


# ------------------------------------------------------------------------------------------ hooks
def make_hook(**kwargs: Any) -> ExotelContactsHook:
    """An ``ExotelContactsHook`` with :data:`FAST` settings unless ``kwargs`` says otherwise."""
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

    return ExotelContactsHook(**{**FAST, **kwargs})


def writes(sim: Any) -> list[Any]:
    """The simulator's recorded requests that change something (POST, PUT, DELETE, PATCH)."""
    return [r for r in sim.requests if r.method in ("POST", "PUT", "DELETE", "PATCH")]


# ------------------------------------------------------------------------------------ JSON Lines
def read_jsonl(path: str | os.PathLike[str]) -> list[Any]:
    """Every non-blank line of a JSON Lines file, decoded."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """Write ``rows`` one per line (a ``str`` row as it is, anything else as JSON); return ``path``."""
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


# ------------------------------------------------------------------------------------- processes
def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a log file, headed by its name (for a failure message)."""
    if not path.exists():
        return f"({path.name}: no log)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- {path.name} ---\n" + "\n".join(text)


def simulator_cli(ready: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """Start ``python -m airflow_provider_exotel.testing --port 0 <args> --ready-file <ready>`` (text mode).

    :param popen: more :class:`subprocess.Popen` arguments (``stdout``, ``stderr``, ...).
    """
    argv = [sys.executable, "-m", "airflow_provider_exotel.testing", "--port", "0", *args]
    return subprocess.Popen([*argv, "--ready-file", str(ready)], text=True, **popen)


def wait_for_ready_file(proc: subprocess.Popen[Any], ready: Path, deadline_s: float = 60) -> str:
    """Wait until a started ``python -m airflow_provider_exotel.testing --ready-file`` wrote its URL."""
    deadline = time.monotonic() + deadline_s
    while not ready.exists():
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the simulator exited with {proc.returncode}:\n{out}\n{err}")
        assert time.monotonic() < deadline, "the simulator did not start"
        time.sleep(0.02)
    return ready.read_text().strip()


def sigkill_export_midway(sim: Any, target: Path, after_requests: int, **kwargs: Any) -> None:
    """Run ``ExotelFetchContactsOperator(output_path=target, **kwargs)`` in a subprocess and SIGKILL it
    once the simulator served ``after_requests`` GETs; nothing may be at ``target`` afterwards."""
    code = textwrap.dedent(
        f"""
        from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator
        op = ExotelFetchContactsOperator(task_id="f", output_path={str(target)!r}, **{kwargs!r})
        op.execute(context={{}})
        """
    )
    sim.clear_requests()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 90
        while sim.request_count(method="GET") < after_requests:
            assert proc.poll() is None, "the export ended before it could be killed"
            assert time.monotonic() < deadline, "the export did not get far enough"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()


def modules_imported_by(statement: str) -> str:
    """The modules a one-line import ``statement`` loads in a fresh interpreter that has already
    imported Airflow's operator base and the provider's exceptions: a printed sorted list."""
    code = (
        "import sys\n"
        "from airflow.providers.common.compat.sdk import BaseOperator, Asset\n"
        "import airflow_provider_exotel.exceptions\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return proc.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def interrupt_at_request(sim: Any, n: int, method: str, after_s: float = 0.02) -> Iterator[None]:
    """Ctrl-C the main thread mid-task: the ``n``-th ``method`` request arms a real SIGALRM that raises
    ``KeyboardInterrupt`` ``after_s`` later. Use around ``pytest.raises(KeyboardInterrupt)``."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    sim.on_nth_request(n, lambda s: signal.setitimer(signal.ITIMER_REAL, after_s), method=method)
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------------------- clocks, threads
#: the wall clock (Unix time) :func:`budget_on` puts an injected clock's zero at
WALL = 1_700_000_000.0


class FakeClock:
    """An injected monotonic clock: ``clock()`` reads it, ``clock.sleep(s)`` advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def budget_on(clock: FakeClock, wall: float = WALL) -> RequestBudget:
    """A :class:`RequestBudget` (no cap) that reads and sleeps on ``clock``; wall time ``wall + clock``."""
    from airflow_provider_exotel.hooks._budget import RequestBudget

    return RequestBudget(None, clock=clock, wall_clock=lambda: wall + clock.now, sleep=clock.sleep)


def bounded(call: Callable[[], Any], timeout: float) -> dict[str, Any]:
    """Run ``call`` in a thread for at most ``timeout`` s: ``{"result"|"error": ..., "alive": bool}``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    box["alive"] = thread.is_alive()
    return box


# ------------------------------------------------------------------- multi-process deployments
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


def wait_for(what: str, check: Any, deployment: Deployment, deadline: float) -> Any:
    """Poll ``check()`` until it returns something truthy; fail with the processes' logs."""
    import requests

    while True:
        deployment.check_alive()
        with contextlib.suppress(requests.RequestException):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{deployment.logs()}")
        time.sleep(0.25)


def start_simulator(deployment: Deployment, api_token: str, deadline: float, *args: str) -> str:
    """Start ``python -m airflow_provider_exotel.testing`` (key ``deploy-key``) in ``deployment``;
    its URL."""
    ready = deployment.work / "simulator.url"
    deployment.start(
        "simulator", "-m", "airflow_provider_exotel.testing", "--port", "0", *args,
        "--api-key", "deploy-key", "--api-token", api_token, "--ready-file", str(ready),
    )  # fmt: skip
    wait_for("the simulator", ready.exists, deployment, deadline)
    return ready.read_text().strip()


def start_airflow3(
    deployment: Deployment, sim_url: str, api_token: str, deadline: float, extra: dict[str, str]
) -> tuple[Any, str]:
    """Migrate a home in ``deployment.work`` and start api-server, scheduler (LocalExecutor),
    dag-processor and triggerer with the simulator's connection; a logged-in API session and its URL.

    :param extra: more environment (``work/dags`` is the DAGs folder).
    """
    import requests
    from airflow_harness import AirflowHarness

    work = deployment.work
    harness = AirflowHarness(work / "home")
    api_port = free_port()
    base_url = f"http://127.0.0.1:{api_port}"
    user, password = "deploy-admin", secrets.token_urlsafe(12)
    passwords_file = work / "passwords.json"
    passwords_file.write_text(json.dumps({user: password}))
    connection = {
        "conn_type": "exotel",
        "login": "deploy-key",
        "password": api_token,
        "host": "127.0.0.1",
        "port": int(sim_url.rsplit(":", 1)[1]),
        "schema": "http",
        "extra": {"account_sid": "acct1"},
    }
    deployment.env = harness.env(
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
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW_CONN_EXOTEL_DEFAULT": json.dumps(connection),
            "EXOTEL_EXAMPLE_DATA_DIR": str(work / "data"),  # storage every worker sees
            "NO_PROXY": "*",
            **extra,
        },
    )
    harness.migrate()
    deployment.start(
        "api-server", "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(api_port),
        "--workers", "1",
    )  # fmt: skip
    for name in ("scheduler", "dag-processor", "triggerer"):
        deployment.start(name, "-m", "airflow", name)
    api = requests.Session()
    api.trust_env = False
    wait_for(
        "the API server",
        lambda: api.get(f"{base_url}/api/v2/monitor/health", timeout=5).status_code == 200,
        deployment,
        deadline,
    )
    login = api.post(f"{base_url}/auth/token", json={"username": user, "password": password}, timeout=30)
    assert login.status_code == 201, login.text
    api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return api, base_url


def task_log(api: Any, run_url: str, task_id: str) -> str:
    """A task's log (its latest try) as the UI shows it, through the REST API."""
    task = api.get(f"{run_url}/taskInstances/{task_id}", timeout=10)
    task.raise_for_status()
    response = api.get(
        f"{run_url}/taskInstances/{task_id}/logs/{task.json()['try_number'] or 1}",
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


def run_finished(api: Any, run_url: str) -> str | None:
    """The DAG run's final state, or ``None`` while it runs."""
    state = api.get(run_url, timeout=10).json()["state"]
    return state if state in ("success", "failed") else None
