"""Shared pieces of the benchmark: simulators (in-process or as a subprocess) and the clients compared.

Clients, all fetching every contact of the account:

* ours: ``ExotelContactsHook(concurrency=C).iter_contacts()`` (or the fetch operator);
* Exotel's own Python sample (``requests.request("GET", url, headers=...)``) looped over offsets;
* ``HttpOperator`` from apache-airflow-providers-http with a ``pagination_function`` and a
  ``response_filter``, on an ``http`` connection (basic auth) pointing at the simulator;
* a raw ``requests.Session`` loop (the CPU floor for P4).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from airflow_provider_exotel.testing import ExotelSimulator

API_KEY = "bench-key"
API_TOKEN = "bench-token"
ACCOUNT_SID = "benchacct"
PAGE = 20


def quiet_logs() -> None:
    """Silence Airflow's task/hook log lines (structlog and stdlib) so progress lines stay readable."""
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("airflow", "airflow.task", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    except Exception:  # pragma: no cover - structlog is an Airflow 3 dependency
        pass


# --------------------------------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------------------------------
def set_connection(conn_id: str, host: str, port: int, conn_type: str = "exotel", **extra: Any) -> None:
    """Point ``conn_id`` at a simulator through ``AIRFLOW_CONN_<ID>`` (this process and its children)."""
    conn: dict[str, Any] = {
        "conn_type": conn_type,
        "login": API_KEY,
        "password": API_TOKEN,
        "host": host,
        "port": port,
        "schema": "http",
    }
    if conn_type == "exotel":
        conn["extra"] = {"account_sid": ACCOUNT_SID, **extra}
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)


# --------------------------------------------------------------------------------------------------
# Simulators
# --------------------------------------------------------------------------------------------------
def in_process_simulator(**kwargs: Any) -> ExotelSimulator:
    return ExotelSimulator(api_key=API_KEY, api_token=API_TOKEN, account_sid=ACCOUNT_SID, **kwargs)


class SimulatorProcess:
    """``python -m airflow_provider_exotel.testing`` in its own process (no GIL shared with the client)."""

    def __init__(self, workdir: Path, *, contacts: int, latency_ms: float = 0.0) -> None:
        self.workdir = workdir
        self.contacts = contacts
        self.latency_ms = latency_ms
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self.port = 0

    def __enter__(self) -> SimulatorProcess:
        fd, ready = tempfile.mkstemp(prefix="sim-ready-", dir=self.workdir)
        os.close(fd)
        os.unlink(ready)
        self.log_path = Path(ready + ".log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "airflow_provider_exotel.testing",
                    "--port",
                    "0",
                    "--ready-file",
                    ready,
                    "--contacts",
                    str(self.contacts),
                    "--latency-ms",
                    str(self.latency_ms),
                    "--api-key",
                    API_KEY,
                    "--api-token",
                    API_TOKEN,
                    "--account-sid",
                    ACCOUNT_SID,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"simulator did not start; see {self.log_path}")
            time.sleep(0.05)
        url = Path(ready).read_text().strip()
        self.host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
        self.port = int(port)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


# --------------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------------
def fetch_ours(conn_id: str, concurrency: int, **hook_kwargs: Any) -> int:
    """Ours: iterate every contact through the hook; returns how many."""
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

    hook = ExotelContactsHook(conn_id, concurrency=concurrency, **hook_kwargs)
    try:
        return sum(1 for _ in hook.iter_contacts())
    finally:
        hook.close()


def fetch_exotel_sample_loop(base_url: str) -> int:
    """Exotel's Python sample (``requests.request`` per call, Basic header) looped over every page."""
    encoding = base64.b64encode(f"{API_KEY}:{API_TOKEN}".encode()).decode()
    headers = {"Authorization": "Basic " + encoding}
    offset = count = 0
    while True:
        url = f"{base_url}/v2/accounts/{ACCOUNT_SID}/contacts?offset={offset}&limit={PAGE}"
        response = requests.request("GET", url, headers=headers, data={}, timeout=30)
        response.raise_for_status()
        body = response.json()
        contacts = [item["data"] for item in body["response"]]
        count += len(contacts)
        offset += len(contacts)
        if not contacts or offset >= body["metadata"]["total"]:
            return count


def fetch_session_loop(session: requests.Session, base_url: str) -> int:
    """The leanest sequential client: one keep-alive ``requests.Session``, one page after another."""
    url = f"{base_url}/v2/accounts/{ACCOUNT_SID}/contacts"
    offset = count = 0
    while True:
        response = session.get(url, params={"offset": offset, "limit": PAGE}, timeout=30)
        response.raise_for_status()
        body = response.json()
        contacts = [item["data"] for item in body["response"]]
        for _contact in contacts:
            count += 1
        offset += len(contacts)
        if not contacts or offset >= body["metadata"]["total"]:
            return count


def raw_session() -> requests.Session:
    session = requests.Session()
    session.auth = (API_KEY, API_TOKEN)
    return session


def exotel_pagination(response: requests.Response) -> dict[str, Any] | None:
    """``pagination_function`` for Exotel's limit/offset paging: next offset until ``total``."""
    metadata = response.json()["metadata"]
    next_offset = metadata["offset"] + metadata["count"]
    if metadata["count"] == 0 or next_offset >= metadata["total"]:
        return None
    return {"data": {"offset": next_offset, "limit": PAGE}}


def collect_contacts(responses: list[requests.Response]) -> list[dict[str, Any]]:
    """``response_filter``: the contacts of every page, in order."""
    return [item["data"] for response in responses for item in response.json()["response"]]


def http_operator(http_conn_id: str, task_id: str = "fetch_contacts_http") -> Any:
    """HttpOperator as a user would write it for this API (GET, offset paging, contacts out)."""
    from airflow.providers.http.operators.http import HttpOperator

    return HttpOperator(
        task_id=task_id,
        http_conn_id=http_conn_id,
        method="GET",
        endpoint=f"v2/accounts/{ACCOUNT_SID}/contacts",
        data={"offset": 0, "limit": PAGE},
        pagination_function=exotel_pagination,
        response_filter=collect_contacts,
    )


def fetch_http_operator(http_conn_id: str) -> list[dict[str, Any]]:
    """Run the HttpOperator outside a DAG run (``execute`` with a minimal context)."""
    return http_operator(http_conn_id).execute(context={})  # type: ignore[arg-type]
