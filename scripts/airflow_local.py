"""``make airflow``: a local multi-process Airflow 3 on the example DAGs, against the bundled simulator.

Starts, each as its own process (logs in ``<home>/logs/``):

* the Exotel simulator (``python -m airflow_provider_exotel.testing``; 500 contacts, lists list0..2);
* ``airflow api-server`` (UI + REST API + execution API), ``scheduler`` (LocalExecutor),
  ``dag-processor`` (``example_dags/``) and ``triggerer`` — one ``AIRFLOW_HOME`` (``.airflow-local/``,
  SQLite) and one configuration for all of them, as a deployment needs;

sets the ``exotel_default`` connection (in the metadata DB, so the UI lists it and its Test button
works), prints the URL and the login, and on Ctrl-C (SIGINT) or SIGTERM stops every process it
started. Secrets (JWT secret, Fernet key, the login's password) are made once and kept in
``<home>/local-settings.json`` so a restart keeps the same login and database.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
CONN_ID = "exotel_default"
USER = "admin"
PROCESS_NAMES = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Waiting for a process to come up, and for processes to stop after SIGTERM (then SIGKILL).
START_TIMEOUT_S = 180.0
STOP_GRACE_S = 20.0


class Stop(Exception):
    """Raised by the SIGINT/SIGTERM handler: stop everything and exit."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--home", type=Path, default=ROOT / ".airflow-local", help="AIRFLOW_HOME (kept between runs)"
    )
    p.add_argument("--port", type=int, default=8080, help="API server / UI port; 0 picks a free one")
    p.add_argument("--simulator-port", type=int, default=8089, help="simulator port; 0 picks a free one")
    p.add_argument("--contacts", type=int, default=500, help="contacts the simulator starts with")
    p.add_argument("--ready-file", type=Path, help="write URL, login and process ids here once ready")
    return p.parse_args(argv)


def free_port(port: int) -> int:
    """``port`` if it can be bound on 127.0.0.1 (a free one for 0); a clear error when it is taken."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"port {port} is in use; pick another: make airflow ARGS='--port N'") from None
        return s.getsockname()[1]


def local_settings(home: Path) -> dict[str, str]:
    """The secrets of this home, made on first use and kept (mode 0600) so restarts keep them."""
    path = home / "local-settings.json"
    if path.exists():
        return json.loads(path.read_text())
    from cryptography.fernet import Fernet

    settings = {
        "jwt_secret": secrets.token_hex(32),
        "api_secret_key": secrets.token_hex(32),
        "fernet_key": Fernet.generate_key().decode(),
        "password": secrets.token_urlsafe(12),
        "exotel_api_token": "local-" + secrets.token_hex(8),
    }
    path.write_text(json.dumps(settings, indent=2))
    path.chmod(0o600)
    return settings


def airflow_env(home: Path, base_url: str, settings: dict[str, str]) -> dict[str, str]:
    """One configuration for every Airflow process (the README's "Running in a deployment" list)."""
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USER: settings["password"]}))
    passwords.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # no stray set-up
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__FERNET_KEY": settings["fernet_key"],
            # where workers reach the execution API (task state, XComs, connections): the API server
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__SECRET_KEY": settings["api_secret_key"],
            # the same JWT secret in every process: the API server signs task tokens, workers send them
            "AIRFLOW__API_AUTH__JWT_SECRET": settings["jwt_secret"],
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the connection form's Test button
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "EXOTEL_EXAMPLE_DATA_DIR": str(home / "data"),  # every process sees the same files
            "EXOTEL_EXAMPLE_DEFERRABLE": "1",  # the sync example's sensor waits in the triggerer
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class Processes:
    """Child processes, each in its own process group (so stopping one reaches its children)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, *args],
                env=env,
                cwd=self.logs.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check(self) -> None:
        """Fail (with the log's tail) when a process exited on its own."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-30:]
                raise RuntimeError(f"{name} exited with code {proc.returncode}:\n" + "\n".join(tail))

    def stop(self) -> None:
        """SIGTERM every process group, wait up to STOP_GRACE_S, then SIGKILL what is left."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            alive = [p for p in self.procs.values() if p.poll() is None]
            for proc in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            deadline = time.monotonic() + STOP_GRACE_S
            for proc in alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():  # children a parent left behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def wait_for(what: str, check: Any, processes: Processes, timeout: float = START_TIMEOUT_S) -> Any:
    """Poll ``check()`` every half second until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        processes.check()
        with contextlib.suppress(requests.RequestException, OSError, ValueError):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}; see {processes.logs}/")
        time.sleep(0.5)


def start_simulator(processes: Processes, args: argparse.Namespace, settings: dict[str, str]) -> dict:
    """Start the simulator; return the connection that points at it (all the form's extras set)."""
    ready = args.home / "simulator.url"
    ready.unlink(missing_ok=True)
    port = free_port(args.simulator_port)
    processes.start(
        "simulator",
        ["-m", "airflow_provider_exotel.testing", "--port", str(port), "--contacts", str(args.contacts),
         "--lists", "3", "--list-size", "50", "--api-token", settings["exotel_api_token"],
         "--ready-file", str(ready)],
        dict(os.environ),
    )  # fmt: skip
    url = wait_for("the simulator", lambda: ready.exists() and ready.read_text().strip(), processes)
    return {
        "connection_id": CONN_ID,
        "conn_type": "exotel",
        "description": f"The bundled Exotel simulator ({url}), started by make airflow",
        "host": "127.0.0.1",
        "port": int(url.rsplit(":", 1)[1]),
        "schema": "http",
        "login": "test-key",
        "password": settings["exotel_api_token"],
        # every extra the form shows: Airflow 3's Edit form only shows the extras the connection has
        "extra": json.dumps({"account_sid": "acct1", "region": "singapore", "timezone": "Asia/Kolkata"}),
    }


def set_connection(api: requests.Session, base_url: str, connection: dict[str, Any]) -> None:
    """Create ``exotel_default`` in the metadata DB, or update it (the simulator's port may change)."""
    response = api.post(f"{base_url}/api/v2/connections", json=connection, timeout=30)
    if response.status_code == 409:
        response = api.patch(f"{base_url}/api/v2/connections/{CONN_ID}", json=connection, timeout=30)
    response.raise_for_status()


def start_airflow(processes: Processes, env: dict[str, str], port: int) -> None:
    print("airflow db migrate (the first start creates the database) ...", flush=True)
    with (processes.logs / "db-migrate.log").open("ab") as log:
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed; see {processes.logs / 'db-migrate.log'}")
    api = ["-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    processes.start("api-server", api, env)
    for name in PROCESS_NAMES[1:]:
        processes.start(name, ["-m", "airflow", name], env)


def login(base_url: str, password: str) -> requests.Session:
    api = requests.Session()
    api.trust_env = False  # 127.0.0.1 never through a proxy
    token = api.post(f"{base_url}/auth/token", json={"username": USER, "password": password}, timeout=30)
    token.raise_for_status()
    api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return api


def parsed_example_dags(api: requests.Session, base_url: str) -> int:
    """How many DAGs are listed once every ``example_dags/example_*.py`` is parsed; 0 before that.

    A file counts as parsed when a DAG of it is listed or it has an import error (shown in the UI).
    """
    files = {path.name for path in (ROOT / "example_dags").glob("example_*.py")}
    dags = api.get(f"{base_url}/api/v2/dags", params={"limit": 1000}, timeout=10).json()["dags"]
    errors = api.get(f"{base_url}/api/v2/importErrors", params={"limit": 1000}, timeout=10).json()
    seen = {Path(d["fileloc"]).name for d in dags}
    seen |= {Path(e["filename"]).name for e in errors["import_errors"]}
    return len(dags) if files <= seen else 0


def run(args: argparse.Namespace, processes: Processes) -> None:
    home = args.home.resolve()
    args.home = home
    processes.logs.mkdir(parents=True, exist_ok=True)
    settings = local_settings(home)
    port = free_port(args.port)
    base_url = f"http://127.0.0.1:{port}"
    print(f"Starting the Exotel simulator and Airflow in {home} (logs: {processes.logs}) ...", flush=True)
    connection = start_simulator(processes, args, settings)
    env = airflow_env(home, base_url, settings)
    start_airflow(processes, env, port)
    print(f"Started {', '.join(processes.procs)}; waiting for the API server and the DAGs ...", flush=True)
    probe = requests.Session()
    probe.trust_env = False
    wait_for(
        "the API server", lambda: probe.get(f"{base_url}/api/v2/monitor/health", timeout=5).ok, processes
    )
    api = wait_for("the login", lambda: login(base_url, settings["password"]), processes)
    wait_for("the connection", lambda: set_connection(api, base_url, connection) or True, processes)
    dags = wait_for("the example DAGs", lambda: parsed_example_dags(api, base_url), processes)
    pids = {name: proc.pid for name, proc in processes.procs.items()}
    if args.ready_file:
        info = {"url": base_url, "username": USER, "password": settings["password"], "pids": pids}
        args.ready_file.write_text(json.dumps(info))
    print(
        f"\nAirflow is up: {base_url}   login: {USER} / {settings['password']}\n"
        f"  {dags} example DAGs (example_dags/); connection {CONN_ID!r} -> Exotel simulator on port "
        f"{connection['port']} (Admin > Connections > {CONN_ID} > Test)\n"
        f"  logs: {processes.logs}/   files the DAGs write: {home / 'data'}/\n"
        "Press Ctrl-C to stop everything.",
        flush=True,
    )
    while True:
        processes.check()
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from airflow import __version__ as airflow_version

    if int(airflow_version.split(".")[0]) < 3:
        print(f"make airflow needs Airflow 3 (this venv has {airflow_version}); use `airflow standalone`.")
        return 2

    def stop(signum: int, _frame: Any) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    processes = Processes(args.home.resolve() / "logs")
    code = 0
    try:
        run(args, processes)
    except Stop as why:
        print(f"\n{why}: stopping ...", flush=True)
    except RuntimeError as error:
        print(f"\nmake airflow failed: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        processes.stop()
    print("Stopped: " + ", ".join(processes.procs) if processes.procs else "Nothing was started.", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
