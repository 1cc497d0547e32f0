"""Secrets audit: a real ``airflow dags test`` run against a simulator that echoes request headers in
every error body must not show the API token or the base64 ``Authorization`` value anywhere — task
logs, process output, exceptions, XCom, rendered template fields. Plus: TLS verification stays on,
and credentials go only to the configured host."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from airflow_harness import get_harness

from airflow_provider_exotel.exceptions import ExotelRequestError
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

TEST_DAGS = Path(__file__).parent.parent / "dags"
KEY, TOKEN = "audit-key", "TOKEN-d6f1c9e2-never-show-me"
B64 = base64.b64encode(f"{KEY}:{TOKEN}".encode()).decode()


def db_text(db_path: Path) -> str:
    """Every row of every table of the metadata DB, as text."""
    with sqlite3.connect(db_path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        chunks = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                chunks.append(repr(row))
                chunks.extend(v.decode("utf-8", "replace") for v in row if isinstance(v, bytes))
    return "\n".join(chunks)


def test_no_secret_in_logs_output_xcom_or_rendered_fields_when_every_request_fails(
    exotel_simulator_factory, tmp_path
):
    sim = exotel_simulator_factory(api_key=KEY, api_token=TOKEN, echo_headers_in_errors=True)
    sim.seed_contacts(30)
    sim.seed_lists(1, 10)
    sim.fail_every_request("500")
    echoed = requests.get(f"{sim.url}/v2/accounts/acct1/contacts", auth=(KEY, TOKEN), timeout=5)
    assert echoed.status_code == 500 and B64 in echoed.text  # the leak the provider must contain
    harness = get_harness()

    result = harness.run_dag(
        "exotel_secrets_audit",
        dags_folder=TEST_DAGS,
        env={"AIRFLOW_CONN_EXOTEL_DEFAULT": sim.connection_json(), "EXOTEL_AUDIT_DIR": str(tmp_path)},
    )

    states = result.task_states()
    assert states == {"fetch_all": "failed", "fetch_list": "failed", "update": "failed", "wait": "failed"}
    assert "HTTP 500" in result.output  # the failure itself is visible
    assert sim.request_count() >= 6  # the tasks really talked to the simulator
    log_files = [p for p in (harness.home / "logs").rglob("*") if p.is_file()]
    places = {
        "process output": result.output,
        "log files": "\n".join(p.read_text(errors="replace") for p in log_files),
        "metadata DB (XCom, rendered fields, task instances)": db_text(harness.db_path),
        "output files": "\n".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()),
    }
    # the scanned DB text really holds the rendered template fields (output_path rendered with ds)
    assert str(tmp_path / "all-") in places["metadata DB (XCom, rendered fields, task instances)"]
    for where, text in places.items():
        assert TOKEN not in text, f"API token found in {where}"
        assert B64 not in text, f"base64 Authorization value found in {where}"


def test_tls_verification_is_on_by_default(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXOTEL_DEFAULT",
        json.dumps({"conn_type": "exotel", "login": "k", "password": "tk-x9", "extra": {"account_sid": "a"}}),
    )
    hook = ExotelContactsHook()
    assert hook.get_conn().verify is True
    assert hook.base_url.startswith("https://")


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []
    redirect_to = ""

    def do_GET(self):
        type(self).seen.append(dict(self.headers))
        if type(self).redirect_to:
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to + self.path)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _serve(handler):
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_credentials_go_only_to_the_configured_host(monkeypatch):
    other = type("Other", (_Recorder,), {"seen": [], "redirect_to": ""})
    configured = type("Configured", (_Recorder,), {"seen": []})
    other_server = _serve(other)
    configured.redirect_to = f"http://localhost:{other_server.server_port}"
    configured_server = _serve(configured)
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXOTEL_DEFAULT",
        json.dumps(
            {
                "conn_type": "exotel",
                "login": KEY,
                "password": TOKEN,
                "host": "127.0.0.1",
                "port": configured_server.server_port,
                "schema": "http",
                "extra": {"account_sid": "a"},
            }
        ),
    )
    try:
        with pytest.raises(ExotelRequestError, match="HTTP 302"):
            ExotelContactsHook(retry_delay=0).count_contacts()
    finally:
        other_server.shutdown()
        configured_server.shutdown()

    assert len(configured.seen) == 1 and configured.seen[0]["Authorization"] == f"Basic {B64}"
    assert other.seen == []  # the redirect was not followed: the other host saw nothing


@pytest.mark.parametrize(
    ("verify", "expected"), [("false", False), (False, False), ("true", True), ("/etc/ca.pem", "/etc/ca.pem")]
)
def test_verify_extra_accepts_booleans_and_a_ca_bundle(monkeypatch, verify, expected):
    conn = {
        "conn_type": "exotel",
        "login": "k",
        "password": "tk-x9",
        "extra": {"account_sid": "a", "verify": verify},
    }
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", json.dumps(conn))
    assert ExotelContactsHook().get_conn().verify == expected
