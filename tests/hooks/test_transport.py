"""The transport and the base hook: settings resolved once, per-family URLs and budgets, the server
clock, and what a failed connection says — against the simulator over real sockets."""

from __future__ import annotations

import dataclasses
import json
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from conftest import exotel_connection

from airflow_provider_exotel.exceptions import ExotelRequestError, ExotelValidationError
from airflow_provider_exotel.hooks._base import Settings
from airflow_provider_exotel.hooks._transport import ServerClock
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook


def make_hook(**kwargs) -> ExotelContactsHook:
    kwargs.setdefault("retry_delay", 0.0)
    kwargs.setdefault("timeout", 5.0)
    return ExotelContactsHook(**kwargs)


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------ settings
def test_settings_are_resolved_once_and_cannot_be_changed(exotel_simulator):
    hook = make_hook()
    settings = hook.settings

    assert hook.settings is settings
    assert settings.account_sid == exotel_simulator.account_sid
    assert settings.timezone == "Asia/Kolkata"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.timeout = 1.0  # type: ignore[misc]
    assert "Basic" not in repr(settings)  # the Authorization value stays out of reprs and logs


def test_timezone_extra_is_read_and_a_bad_one_is_named(monkeypatch, exotel_simulator):
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_TZ", exotel_simulator.connection_json(timezone="Europe/Berlin"))
    assert make_hook(exotel_conn_id="exotel_tz").settings.timezone == "Europe/Berlin"

    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_TZ", exotel_simulator.connection_json(timezone="Mars/Olympus"))
    with pytest.raises(ExotelValidationError, match="timezone"):
        make_hook(exotel_conn_id="exotel_tz").count_contacts()
    assert exotel_simulator.request_count() == 0


def test_a_single_attempt_hook_has_its_own_settings_and_leaves_the_hook_alone(monkeypatch, exotel_simulator):
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_SLOW", exotel_simulator.connection_json(timeout=120))
    hook = ExotelContactsHook("exotel_slow")
    before = hook.settings

    probe = hook.single_attempt(5.0)

    assert probe is not hook
    assert (probe.settings.timeout, probe.settings.retry_limit, probe.settings.rate_limit_wait) == (
        5.0,
        0,
        0.0,
    )
    assert hook.settings is before and before.timeout == 120 and before.retry_limit == 5
    ok, message = hook.test_connection()
    assert ok, message
    assert hook.settings is before  # the Test button never touched the live hook


def test_family_decides_the_base_and_a_leading_slash_is_a_path_on_the_origin():
    settings = Settings(origin="https://api.exotel.com", account_sid="ac/1", authorization="Basic x")

    assert settings.url("contacts") == "https://api.exotel.com/v2/accounts/ac%2F1/contacts"
    assert settings.url("Calls.json", "voice") == "https://api.exotel.com/v1/Accounts/ac%2F1/Calls.json"
    assert settings.url("/v1/Accounts/a/Calls.json?After=x", "voice") == (
        "https://api.exotel.com/v1/Accounts/a/Calls.json?After=x"
    )
    with pytest.raises(ValueError, match="family"):
        settings.url("x", "sms")


# ------------------------------------------------------------------------------------ budgets
def test_headers_pace_only_the_family_whose_answer_carried_them(exotel_simulator):
    exotel_simulator.set_account_limit(100, window=60.0)
    hook = make_hook()
    path = f"/v2/accounts/{exotel_simulator.account_sid}/contacts"

    body = hook._request("GET", path, params={"offset": 0, "limit": 1}, family="voice")

    assert body["metadata"]["total"] == 0
    assert hook.request_budget("voice") is not None  # learned from X-RateLimit-* headers
    assert hook.request_budget("campaign") is None  # nothing learned for the campaign family
    assert exotel_simulator.requests[-1].path == path


# ------------------------------------------------------------------------------------ server clock
def test_server_clock_follows_the_latest_date_header():
    wall = [1_000_000.0]
    clock = ServerClock(lambda: wall[0])
    assert clock.now() == 1_000_000.0 and not clock.known  # local time until a Date is seen

    ahead = datetime.fromtimestamp(1_000_600, UTC)  # the server runs 10 minutes ahead
    clock.observe(format_datetime(ahead, usegmt=True))
    wall[0] += 5.0
    assert clock.known and clock.now() == pytest.approx(1_000_605.0)
    assert clock.now(1_000_000.0) == pytest.approx(1_000_600.0)
    clock.observe("not a date")  # ignored
    assert clock.now() == pytest.approx(1_000_605.0)


def test_server_time_comes_from_the_simulators_date_header(exotel_simulator):
    hook = make_hook()
    hook.count_contacts()

    assert abs(hook._server_time() - datetime.now(UTC).timestamp()) < 5


def test_a_lost_create_never_claims_a_contact_created_before_it_was_sent(exotel_simulator):
    """Issue 18 item 3: a number created a moment ago, created again, the POST's connection reset
    before Exotel applied it: the older contact is not reported as created (a 600 s margin did)."""
    moment_ago = datetime.now(UTC) - timedelta(seconds=30)
    old = exotel_simulator.insert_contact(number="+918000000000", date_created=moment_ago)
    exotel_simulator.add_faults("reset", method="POST", path_endswith="/contacts")

    result = make_hook().create_contacts([{"number": "+918000000000"}])

    posts = [r for r in exotel_simulator.requests if r.method == "POST"]
    assert len(posts) == 2  # looked up, not found, sent again
    assert result.ok and result.created[0]["sid"] != old["sid"]
    same = exotel_simulator.contacts_with_number("+918000000000")
    assert sorted(c["sid"] for c in same) == sorted([old["sid"], result.created[0]["sid"]])


# ------------------------------------------------------------------------------------ wording
def test_a_refused_connection_says_connection_refused_and_one_attempt(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_CLOSED", json.dumps(exotel_connection(closed_port())))
    hook = make_hook(exotel_conn_id="exotel_closed", retry_limit=0)

    with pytest.raises(ExotelRequestError) as info:
        hook.count_contacts()

    message = str(info.value)
    assert "connection refused" in message and "ConnectionError" not in message
    assert message.endswith("(gave up after 1 attempt)")


def test_retries_are_counted_in_the_plural(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_CLOSED", json.dumps(exotel_connection(closed_port())))
    hook = make_hook(exotel_conn_id="exotel_closed", retry_limit=1)

    with pytest.raises(ExotelRequestError, match=r"connection refused.*\(gave up after 2 attempts\)$"):
        hook.count_contacts()


def test_a_reset_connection_says_it_was_reset(exotel_simulator):
    exotel_simulator.add_faults("reset")

    with pytest.raises(ExotelRequestError) as info:
        make_hook(retry_limit=0).count_contacts()

    assert "connection reset by the server" in str(info.value)
    assert "gave up after 1 attempt)" in str(info.value)
