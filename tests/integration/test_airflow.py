"""What an Airflow user sees of the provider once it is installed: the CLI, the connection form and
the connection form's Test button.

* Both versions: ``airflow providers list`` / ``airflow providers hooks`` (real CLI, temporary home).
* Airflow 3.x: a real ``airflow api-server`` (SimpleAuthManager, a user logging in through
  ``POST /auth/token``) answers the UI's ``GET /ui/connections/hook_meta`` and the Test button's
  ``POST /api/v2/connections/test``, the latter against the simulator running in this process.
* Airflow 2.x: the same facts through ``ProvidersManager`` (what the Flask connection form reads) and
  ``Connection.test_connection()`` exactly as 2.x's ``/api/v1/connections/test`` calls it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow import __version__ as AIRFLOW_VERSION
from airflow_harness import AirflowHarness, get_harness
from conftest import exotel_connection
from packaging.version import Version
from support import free_port, tail

import airflow_provider_exotel

AIRFLOW_3 = Version(AIRFLOW_VERSION).major >= 3
only_airflow_3 = pytest.mark.skipif(not AIRFLOW_3, reason="Airflow 3.x API server")
only_airflow_2 = pytest.mark.skipif(AIRFLOW_3, reason="Airflow 2.x ProvidersManager form widgets")

RELABELED = {"login": "API key", "password": "API token", "host": "API host (optional)"}
WRONG_TOKEN = "wrong-token-3f9c1d7e"


def _json_from_cli(stdout: str) -> Any:
    """The JSON document an ``airflow ... -o json`` command printed (ignoring any log lines)."""
    start = stdout.find("[")
    if start < 0:
        raise AssertionError(f"no JSON in CLI output:\n{stdout[-3000:]}")
    return json.loads(stdout[start:])


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> AirflowHarness:
    """``airflow`` of this interpreter, in a fresh home (no DB needed for ``providers``)."""
    return AirflowHarness(tmp_path_factory.mktemp("cli-home"))


def _run_cli(cli: AirflowHarness, *args: str) -> Any:
    proc = cli.airflow(*args, "-o", "json", timeout=300)
    assert proc.returncode == 0, f"airflow {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return _json_from_cli(proc.stdout)


# --------------------------------------------------------------------------------------------------
# CLI (both versions)
# --------------------------------------------------------------------------------------------------
def test_providers_list_shows_the_exotel_provider(cli: AirflowHarness) -> None:
    providers = {p["package_name"]: p for p in _run_cli(cli, "providers", "list")}
    assert "airflow-provider-exotel" in providers, sorted(providers)
    assert providers["airflow-provider-exotel"]["version"] == airflow_provider_exotel.__version__


def test_providers_hooks_lists_the_exotel_connection_type(cli: AirflowHarness) -> None:
    hooks = {h["connection_type"]: h for h in _run_cli(cli, "providers", "hooks")}
    assert "exotel" in hooks, sorted(hooks)
    exotel = hooks["exotel"]
    assert exotel["class"] == "airflow_provider_exotel.hooks.contacts.ExotelContactsHook"
    assert exotel["hook_name"] == "Exotel"
    assert exotel["conn_id_attribute_name"] == "exotel_conn_id"
    assert exotel["package_name"] == "airflow-provider-exotel"


# --------------------------------------------------------------------------------------------------
# Airflow 3.x: the real API server
# --------------------------------------------------------------------------------------------------
@dataclass
class ApiServer:
    base_url: str
    session: requests.Session
    log_path: Path

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=60)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=60)

    def log_tail(self) -> str:
        return tail(self.log_path, 80)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server and its workers (its own process group), killing it if it lingers."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with contextlib.suppress(ProcessLookupError):  # workers left behind by a dead parent
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_until_healthy(proc: subprocess.Popen[bytes], url: str, log_path: Path, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    probe = requests.Session()
    probe.trust_env = False
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"airflow api-server exited with {proc.returncode}:\n{tail(log_path, 80)}")
        with contextlib.suppress(requests.RequestException):
            if probe.get(url, timeout=5).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"airflow api-server not healthy after {deadline_s:.0f} s:\n{tail(log_path)}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A real ``airflow api-server`` on 127.0.0.1 (migrated SQLite home), a user logged in."""
    harness = get_harness()  # a migrated SQLite AIRFLOW_HOME, shared with the DAG tests
    work = tmp_path_factory.mktemp("api-server")
    user, password = "exotel-admin", secrets.token_urlsafe(12)
    passwords_file = work / "passwords.json"
    passwords_file.write_text(json.dumps({user: password}))
    log_path = work / "api-server.log"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = harness.env(
        extra={
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__BASE_URL": base_url,
        }
    )
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow",
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--apps",
                "core",
            ],
            env=env,
            cwd=harness.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so _stop reaches the uvicorn workers
        )
        try:
            _wait_until_healthy(proc, f"{base_url}/api/v2/monitor/health", log_path, deadline_s=60)
            session = requests.Session()
            session.trust_env = False  # never send 127.0.0.1 traffic through a proxy
            login = session.post(
                f"{base_url}/auth/token", json={"username": user, "password": password}, timeout=60
            )
            assert login.status_code == 201, f"login failed: {login.status_code} {login.text}"
            session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            yield ApiServer(base_url=base_url, session=session, log_path=log_path)
        finally:
            _stop(proc)


def _exotel_meta(api_server: ApiServer) -> dict[str, Any]:
    response = api_server.get("/ui/connections/hook_meta")
    assert response.status_code == 200, f"{response.status_code} {response.text}\n{api_server.log_tail()}"
    by_type = {m["connection_type"]: m for m in response.json()}
    assert "exotel" in by_type, sorted(t for t in by_type if t)
    return by_type["exotel"]


def _connection_body(sim: Any, *, connection_id: str = "exotel_ui", **overrides: Any) -> dict[str, Any]:
    """What the connection form sends: the simulator's connection, ``extra`` as a JSON string."""
    conn = json.loads(sim.connection_json())
    body = {
        "connection_id": connection_id,
        "conn_type": "exotel",
        "host": conn["host"],
        "port": conn["port"],
        "schema": conn["schema"],
        "login": conn["login"],
        "password": conn["password"],
        "extra": json.dumps(conn["extra"]),
    }
    body.update(overrides)
    return body


@only_airflow_3
def test_connection_form_relabels_login_password_and_host(api_server: ApiServer) -> None:
    meta = _exotel_meta(api_server)
    assert meta["hook_name"] == "Exotel"
    assert meta["hook_class_name"] == "airflow_provider_exotel.hooks.contacts.ExotelContactsHook"
    fields = meta["standard_fields"]
    assert {name: (fields[name] or {}).get("title") for name in RELABELED} == RELABELED
    assert not any((f or {}).get("hidden") for f in fields.values())


@only_airflow_3
def test_connection_form_asks_for_account_sid_and_region(api_server: ApiServer) -> None:
    extra = _exotel_meta(api_server)["extra_fields"]
    assert extra["account_sid"]["schema"]["title"] == "Account SID"
    assert "Required" in extra["account_sid"]["description"]  # a hint; nullable, so not red while empty
    assert extra["region"]["schema"]["title"] == "Region"
    assert {"singapore", "mumbai"} <= set(extra["region"]["schema"]["enum"])


@only_airflow_3
def test_test_button_connects_to_a_reachable_exotel(api_server: ApiServer, exotel_simulator) -> None:
    exotel_simulator.seed_contacts(7)
    response = api_server.post("/api/v2/connections/test", _connection_body(exotel_simulator))
    assert response.status_code == 200, f"{response.status_code} {response.text}\n{api_server.log_tail()}"
    result = response.json()
    assert result["status"] is True, result
    assert exotel_simulator.account_sid in result["message"]
    assert "7 contacts" in result["message"]
    # the API server really asked the simulator, with the form's credentials
    assert exotel_simulator.request_count("GET") >= 1
    assert (exotel_simulator.requests[-1].header("Authorization") or "").startswith("Basic ")


@only_airflow_3
def test_test_button_reports_a_wrong_token_without_showing_it(
    api_server: ApiServer, exotel_simulator_factory
) -> None:
    sim = exotel_simulator_factory(echo_headers_in_errors=True)  # the error body echoes our headers
    response = api_server.post("/api/v2/connections/test", _connection_body(sim, password=WRONG_TOKEN))
    assert response.status_code == 200, f"{response.status_code} {response.text}\n{api_server.log_tail()}"
    result = response.json()
    assert result["status"] is False, result
    assert "401" in result["message"]
    basic = base64.b64encode(f"{sim.api_key}:{WRONG_TOKEN}".encode()).decode()
    assert WRONG_TOKEN not in result["message"]
    assert basic not in result["message"]
    assert sim.request_count() >= 1  # the failure came from Exotel, not from a refused request


@only_airflow_3
def test_test_button_names_a_missing_account_sid(api_server: ApiServer, exotel_simulator) -> None:
    body = _connection_body(exotel_simulator, extra=json.dumps({}))
    result = api_server.post("/api/v2/connections/test", body).json()
    assert result["status"] is False, result
    assert "account_sid" in result["message"]
    assert exotel_simulator.request_count() == 0


@only_airflow_3
def test_connection_form_region_offers_singapore_and_mumbai_with_singapore_preselected(
    api_server: ApiServer,
) -> None:
    region = _exotel_meta(api_server)["extra_fields"]["region"]
    assert region["schema"]["enum"] == ["singapore", "mumbai"]  # no null option
    assert region["schema"]["type"] == "string"  # not nullable: the form never offers "null"
    assert region["value"] == "singapore"  # preselected, so the form saves "singapore", not null
    assert set(region["schema"]["values_display"]) == {"singapore", "mumbai"}


@only_airflow_3
def test_connection_form_account_sid_is_plain_text_with_a_hint(api_server: ApiServer) -> None:
    # ``examples`` would make it a suggestion box whose suggestion can be saved as the value;
    # ui-field-behaviour placeholders only reach the standard fields, so the hint is the description
    account_sid = _exotel_meta(api_server)["extra_fields"]["account_sid"]
    assert "examples" not in account_sid["schema"]
    assert "API settings" in account_sid["description"]


@only_airflow_3
def test_test_button_answers_within_seconds_on_a_closed_port(api_server: ApiServer) -> None:
    port = free_port()  # nothing listens there
    body = {
        "connection_id": "exotel_closed",
        "conn_type": "exotel",
        "host": "127.0.0.1",
        "port": port,
        "schema": "http",
        "login": "key",
        "password": "token",
        "extra": json.dumps({"account_sid": "acct1"}),
    }
    started = time.monotonic()
    result = api_server.post("/api/v2/connections/test", body).json()
    elapsed = time.monotonic() - started

    assert result["status"] is False, result
    assert "connection refused" in result["message"]
    assert "1 attempt)" in result["message"]  # one attempt, no retries
    # the full retry budget takes 30 s or more (1+2+4+8+16 s of backoff); a loaded machine adds some
    assert elapsed < 20, f"the Test button took {elapsed:.1f} s"


@only_airflow_3
def test_test_button_tries_once_when_exotel_keeps_failing(
    api_server: ApiServer, exotel_simulator_factory
) -> None:
    sim = exotel_simulator_factory()
    sim.fail_every_request("503")
    result = api_server.post("/api/v2/connections/test", _connection_body(sim)).json()
    assert result["status"] is False, result
    assert "503" in result["message"]
    assert sim.request_count() == 1


@only_airflow_3
def test_test_button_says_this_connection_not_a_temporary_id(api_server: ApiServer, exotel_simulator) -> None:
    body = _connection_body(exotel_simulator, extra=json.dumps({"region": "singapore"}))
    result = api_server.post("/api/v2/connections/test", body).json()
    assert result["status"] is False, result
    assert result["message"].startswith("this connection needs extra 'account_sid'"), result
    assert "exotel_ui" not in result["message"]  # nor any other id: Airflow tests a random one


def test_hook_test_connection_makes_one_short_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both Airflow versions: the hook behind the Test button tries once, within seconds."""
    from airflow_provider_exotel.hooks.contacts import TEST_CONNECTION_TIMEOUT, ExotelContactsHook

    conn = exotel_connection(free_port(), timeout=120)
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_CLOSED", json.dumps(conn))
    hook = ExotelContactsHook("exotel_closed", retry_limit=5, retry_delay=1.0)
    started = time.monotonic()
    ok, message = hook.test_connection()
    elapsed = time.monotonic() - started

    assert ok is False
    assert "gave up after 1 attempt)" in message
    assert elapsed < 15, f"test_connection took {elapsed:.1f} s"
    # the hook keeps its own settings for real work afterwards
    assert hook.retry_limit == 5
    assert hook.timeout == 120
    assert TEST_CONNECTION_TIMEOUT <= 10


def _silent_connection(port: int) -> dict[str, Any]:
    return exotel_connection(port, timeout=120)  # the Test button must not wait this long


@pytest.mark.timeout(90)  # without the cap the request waits for the extra's 120 s
def test_hook_test_connection_gives_up_quickly_when_exotel_never_answers(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both Airflow versions: a connection extra ``timeout`` of 120 s is capped for the Test button."""
    from airflow_provider_exotel.hooks.contacts import TEST_CONNECTION_TIMEOUT, ExotelContactsHook

    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_SILENT", json.dumps(_silent_connection(silent_port)))
    hook = ExotelContactsHook("exotel_silent")
    started = time.monotonic()
    ok, message = hook.test_connection()
    elapsed = time.monotonic() - started

    assert ok is False
    assert f"no answer within {TEST_CONNECTION_TIMEOUT:g} s" in message, message
    assert "gave up after 1 attempt)" in message, message
    assert elapsed < 20, f"test_connection took {elapsed:.1f} s"
    assert hook.timeout == 120  # restored for real work


@only_airflow_3
@pytest.mark.timeout(90)
def test_test_button_answers_within_seconds_when_exotel_never_answers(
    api_server: ApiServer, silent_port: int
) -> None:
    conn = _silent_connection(silent_port)
    body = {**conn, "connection_id": "exotel_silent", "extra": json.dumps(conn["extra"])}
    started = time.monotonic()
    result = api_server.post("/api/v2/connections/test", body).json()
    elapsed = time.monotonic() - started

    assert result["status"] is False, result
    assert "no answer within" in result["message"], result
    assert "gave up after 1 attempt)" in result["message"], result
    assert elapsed < 20, f"the Test button took {elapsed:.1f} s"


def test_hook_test_connection_answers_a_429_at_once_instead_of_waiting(exotel_simulator) -> None:
    """A spent rate budget is the answer to a Test, not something to wait out (up to 15 min)."""
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

    exotel_simulator.fail_every_request("429")
    hook = ExotelContactsHook()
    started = time.monotonic()
    ok, message = hook.test_connection()

    assert ok is False
    assert "429" in message
    assert exotel_simulator.request_count() == 1
    assert time.monotonic() - started < 15
    assert hook.rate_limit_wait == 900.0  # restored for real work


# --------------------------------------------------------------------------------------------------
# Airflow 2.x: ProvidersManager (what the Flask connection form is built from) and the Test button
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def providers_manager() -> Any:
    from airflow.providers_manager import ProvidersManager

    return ProvidersManager()


@only_airflow_2
def test_connection_form_2x_asks_for_account_sid_and_region(providers_manager: Any) -> None:
    widgets = providers_manager.connection_form_widgets
    labels = {
        key: str(widgets[key].field.args[0])
        for key in ("extra__exotel__account_sid", "extra__exotel__region")
        if key in widgets
    }
    assert labels == {"extra__exotel__account_sid": "Account SID", "extra__exotel__region": "Region"}
    assert widgets["extra__exotel__account_sid"].package_name == "airflow-provider-exotel"


@only_airflow_2
def test_connection_form_2x_relabels_login_password_and_host(providers_manager: Any) -> None:
    behaviour = providers_manager.field_behaviours.get("exotel")
    assert behaviour is not None, "Airflow rejected the exotel field behaviour (see its log)"
    assert behaviour["relabeling"] == RELABELED
    assert behaviour["hidden_fields"] == []


@only_airflow_2
def test_connection_form_2x_still_saves_other_connection_types() -> None:
    from airflow.www.forms import create_connection_form_class
    from flask import Flask
    from flask_babel import Babel
    from werkzeug.datastructures import MultiDict

    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", WTF_CSRF_ENABLED=False)
    Babel(app)
    form_class = create_connection_form_class()
    with app.test_request_context(method="POST"):
        # what the browser posts for an HTTP connection: the hidden Exotel inputs come back empty
        form = form_class(
            formdata=MultiDict(
                {
                    "conn_id": "my_http",
                    "conn_type": "http",
                    "host": "example.com",
                    "extra__exotel__account_sid": "",
                    "extra__exotel__region": "",
                }
            ),
            meta={"csrf": False},
        )
        assert form.validate(), form.errors
        assert "required" not in form.extra__exotel__account_sid()  # no HTML5 'required' either


def _test_button_2x(body: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[bool, str]:
    """What Airflow 2.x's ``POST /api/v1/connections/test`` does with the form's values."""
    from airflow.models.connection import Connection

    conn_id = "exotel_transient_" + secrets.token_hex(4)
    data = {k: v for k, v in body.items() if k != "connection_id"}
    conn = Connection(conn_id=conn_id, **data)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn.get_uri())
    return conn.test_connection()


@only_airflow_2
def test_test_button_2x_connects_to_a_reachable_exotel(exotel_simulator, monkeypatch) -> None:
    exotel_simulator.seed_contacts(7)
    status, message = _test_button_2x(_connection_body(exotel_simulator), monkeypatch)
    assert status is True, message
    assert exotel_simulator.account_sid in message
    assert "7 contacts" in message


@only_airflow_2
def test_test_button_2x_reports_a_wrong_token_without_showing_it(
    exotel_simulator_factory, monkeypatch
) -> None:
    sim = exotel_simulator_factory(echo_headers_in_errors=True)
    status, message = _test_button_2x(_connection_body(sim, password=WRONG_TOKEN), monkeypatch)
    assert status is False
    assert "401" in message
    assert WRONG_TOKEN not in message
    assert base64.b64encode(f"{sim.api_key}:{WRONG_TOKEN}".encode()).decode() not in message
    assert sim.request_count() >= 1
