"""The simulator's loopback-only control endpoint (``/_control/``): a running simulator changed from
outside its process, over a real socket, as a demo or a deployment test drives it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from support import simulator_cli, wait_for_ready_file

from airflow_provider_exotel.hooks.contacts import ExotelContactsHook
from airflow_provider_exotel.testing import ExotelSimulator
from airflow_provider_exotel.testing.control import serve_control


def control(sim: ExotelSimulator, method: str, path: str, body: object = None) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.request(method, f"{sim.url}/_control{path}", json=body, timeout=10)


def test_control_endpoint_adds_contacts_that_the_api_then_serves(exotel_simulator):
    answer = control(exotel_simulator, "POST", "/contacts", {"contacts": [{"first_name": "Asha"}]})

    assert answer.status_code == 200, answer.text
    sid = answer.json()["contacts"][0]["sid"]
    contacts = list(ExotelContactsHook(retry_limit=0).iter_contacts())
    assert [(c["sid"], c["first_name"]) for c in contacts] == [(sid, "Asha")]


def test_control_endpoint_seeds_contacts_into_a_list_the_sensor_counts(exotel_simulator):
    hook = ExotelContactsHook(retry_limit=0)

    answer = control(exotel_simulator, "POST", "/contacts", {"count": 3, "list_sid": "L9"})

    assert answer.status_code == 200, answer.text
    assert len(answer.json()["contacts"]) == 3
    assert hook.count_contacts(list_sid="L9") == 3
    assert control(exotel_simulator, "GET", "/state").json()["lists"] == {"L9": 3}


def test_control_endpoint_changes_list_membership(exotel_simulator):
    a, b, c = (x["sid"] for x in exotel_simulator.seed_contacts(3))
    hook = ExotelContactsHook(retry_limit=0)

    added = control(exotel_simulator, "POST", "/lists/L1/contacts", {"contact_sids": [a, b, c]})
    removed = control(exotel_simulator, "DELETE", f"/lists/L1/contacts/{b}")
    again = control(exotel_simulator, "DELETE", f"/lists/L1/contacts/{b}")

    assert added.json() == {"list_sid": "L1", "size": 3}
    assert removed.json() == {"removed": True}
    assert again.json() == {"removed": False}
    assert [x["sid"] for x in hook.iter_list_contacts("L1")] == [a, c]
    assert [x["sid"] for x in hook.iter_contacts(list_sids=["L1"])] == [a, c]


def test_control_endpoint_deletes_a_contact(exotel_simulator):
    sid = exotel_simulator.seed_contacts(2)[0]["sid"]

    assert control(exotel_simulator, "DELETE", f"/contacts/{sid}").json() == {"deleted": True}
    assert control(exotel_simulator, "DELETE", f"/contacts/{sid}").json() == {"deleted": False}
    assert ExotelContactsHook(retry_limit=0).count_contacts() == 1


def test_control_endpoint_injects_faults_the_api_then_answers(exotel_simulator):
    exotel_simulator.seed_contacts(1)
    hook = ExotelContactsHook(retry_limit=0)

    answer = control(exotel_simulator, "POST", "/faults", {"faults": ["403"], "method": "GET"})
    assert answer.json() == {"pending_faults": 1}
    with pytest.raises(Exception, match="403"):
        hook.count_contacts()
    assert hook.count_contacts() == 1  # the queued fault was used up

    control(exotel_simulator, "POST", "/faults", {"every": "503"})
    with pytest.raises(Exception, match="503"):
        hook.count_contacts()
    control(exotel_simulator, "DELETE", "/faults")
    assert hook.count_contacts() == 1


def test_control_endpoint_reads_the_request_log_without_headers(exotel_simulator):
    exotel_simulator.seed_contacts(1)
    hook = ExotelContactsHook(retry_limit=0)
    hook.count_contacts()

    log = control(exotel_simulator, "GET", "/requests?since=0").json()

    assert log["total"] == 1  # control requests are not logged
    entry = log["requests"][0]
    assert (entry["method"], entry["status"]) == ("GET", 200)
    assert entry["path"].endswith("/contacts")
    assert exotel_simulator.api_token not in json.dumps(log)
    assert "Authorization" not in json.dumps(log)
    assert control(exotel_simulator, "GET", "/requests?since=1").json()["requests"] == []
    control(exotel_simulator, "DELETE", "/requests")
    assert control(exotel_simulator, "GET", "/state").json()["requests"] == 0


def test_control_endpoint_needs_no_api_credentials_and_lists_its_endpoints(exotel_simulator):
    answer = control(exotel_simulator, "GET", "")

    assert answer.status_code == 200
    paths = {e["path"] for e in answer.json()["endpoints"]}
    assert {"/_control/contacts", "/_control/faults", "/_control/state"} <= paths


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/nothing", None, 404),
        ("GET", "/contacts", None, 405),
        ("POST", "/contacts", {"contacts": "x"}, 400),
        ("POST", "/contacts", {"contacts": [{"colour": "red"}]}, 400),
        ("POST", "/faults", {"faults": ["teapot"]}, 400),
        ("POST", "/lists/L1/contacts", {"contact_sids": ["unknown"]}, 404),
        ("GET", "/requests?since=-1", None, 400),
    ],
)
def test_control_endpoint_answers_bad_requests_with_an_error(exotel_simulator, method, path, body, status):
    answer = control(exotel_simulator, method, path, body)

    assert answer.status_code == status
    assert answer.json()["error"]
    assert len(exotel_simulator) == 0  # nothing half-applied


def test_control_endpoint_refuses_a_browser_page(exotel_simulator):
    session = requests.Session()
    session.trust_env = False
    answer = session.post(
        f"{exotel_simulator.url}/_control/contacts",
        json={"count": 1},
        headers={"Origin": "http://evil.example"},
        timeout=10,
    )
    assert answer.status_code == 403
    assert len(exotel_simulator) == 0


@pytest.mark.parametrize("client", ["10.1.2.3", "192.168.0.7", "2001:db8::1", "0.0.0.0"])
def test_control_endpoint_refuses_clients_that_are_not_on_loopback(client):
    sim = ExotelSimulator()  # not started: serve_control is what the socket handler calls

    status, answer = serve_control(sim, "POST", "/_control/contacts", {}, b'{"count": 3}', client, {})

    assert status == 403
    assert "127.0.0.1" in answer["error"]
    assert len(sim) == 0


def _non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (None when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_control_endpoint_refuses_a_real_client_from_another_interface(exotel_simulator_factory):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    sim = exotel_simulator_factory(host="0.0.0.0")  # listening everywhere, like --host 0.0.0.0
    session = requests.Session()
    session.trust_env = False

    outside = session.post(f"http://{address}:{sim.port}/_control/contacts", json={"count": 2}, timeout=10)
    inside = session.post(f"http://127.0.0.1:{sim.port}/_control/contacts", json={"count": 2}, timeout=10)

    assert outside.status_code == 403
    assert inside.status_code == 200
    assert len(sim) == 2


def test_standalone_simulator_is_changed_through_its_control_endpoint(tmp_path: Path):
    """``python -m airflow_provider_exotel.testing``: the documented CLI, then the control endpoint."""
    ready = tmp_path / "ready"
    proc = simulator_cli(
        ready, "--contacts", "4", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        url = wait_for_ready_file(proc, ready, deadline_s=60)
        session = requests.Session()
        session.trust_env = False
        added = session.post(f"{url}/_control/contacts", json={"count": 2, "list_sid": "list0"}, timeout=10)
        state = session.get(f"{url}/_control/state", timeout=10).json()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert added.status_code == 200
    assert state["contacts"] == 6
    assert state["lists"] == {"list0": 2}
    assert "/_control" in out  # the CLI tells where the control endpoint is


def test_cli_help_documents_the_control_endpoint():
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_provider_exotel.testing", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert "/_control/faults" in proc.stdout
    assert "127.0.0.1" in proc.stdout
