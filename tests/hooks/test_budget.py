"""The request budget: the hook lives within the account's real rate limit with no configuration.

Everything runs over real sockets against the simulator's Exotel-style account limit (a fixed
window with ``X-RateLimit-*`` headers, 429 + ``Retry-After`` + ``RestException`` past it), with the
window scaled down from 60 s to a couple of seconds so a test spans several windows. Assertions are
on what the server counted (requests admitted per window, 429s) — never on wall-clock time, except a
generous upper bound where the point is that the hook did NOT sleep for a long ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest
import requests
from support import FakeClock, budget_on

from airflow_provider_exotel.exceptions import (
    ExotelRateLimitError,
    ExotelRequestError,
    ExotelValidationError,
)
from airflow_provider_exotel.hooks._budget import BudgetWaitTooLong
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook


def sids(contacts):
    return [c["sid"] for c in contacts]


def limited(factory, monkeypatch, *, limit, window, headers=True, contacts=0):
    """A started simulator limiting the account to ``limit`` requests per ``window`` seconds."""
    sim = factory(account_limit=limit, account_window=window, rate_limit_headers=headers)
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", sim.connection_json())
    seeded = sim.seed_contacts(contacts) if contacts else []
    return sim, seeded


def logs_of(caplog, capfd) -> str:
    return caplog.text + "".join(capfd.readouterr())  # Airflow 3 logs through structlog to stdout


# ------------------------------------------------------------------------------------ the simulator
def test_simulator_announces_the_budget_on_every_answer_and_refuses_past_it(exotel_simulator):
    exotel_simulator.set_account_limit(3, window=60)
    session = requests.Session()
    session.auth = exotel_simulator.auth
    url = f"{exotel_simulator.base_url}/contacts"

    answers = [session.get(url, timeout=5) for _ in range(3)]
    refused = session.get(url, timeout=5)
    not_found = session.get(f"{url}/nope", timeout=5)

    assert [r.status_code for r in answers] == [200, 200, 200]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0"]
    assert {r.headers["X-RateLimit-Limit"] for r in answers} == {"3"}
    reset = int(answers[0].headers["X-RateLimit-Reset"])
    assert 0 < reset - time.time() <= 61 and reset % 60 == 0
    assert refused.status_code == 429 and not_found.status_code == 429
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    rest = refused.json()["RestException"]
    assert rest["Status"] == 429 and rest["Code"] == "RATE_LIMIT_EXCEEDED"
    assert rest["Message"].startswith("Rate limit exceeded. Try again in ")
    assert exotel_simulator.account_limit.admitted == 3 and exotel_simulator.account_limit.refused == 2


def test_simulator_can_hide_the_rate_limit_headers(exotel_simulator):
    exotel_simulator.set_account_limit(1, window=60, headers=False)
    session = requests.Session()
    session.auth = exotel_simulator.auth
    url = f"{exotel_simulator.base_url}/contacts"

    ok, refused = session.get(url, timeout=5), session.get(url, timeout=5)

    assert ok.status_code == 200 and refused.status_code == 429
    assert not [h for h in (*ok.headers, *refused.headers) if h.lower().startswith("x-ratelimit")]
    assert "Retry-After" in refused.headers and "RestException" in refused.json()


def test_simulator_cli_serves_an_account_limit_shared_by_every_client(tmp_path):
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "airflow_provider_exotel.testing", "--port", "0", "--contacts", "3"),
            *("--account-limit", "2", "--account-window", "60", "--ready-file", str(ready)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.05)
        url = f"{ready.read_text().strip()}/v2/accounts/acct1/contacts"
        # two separate clients (no shared connection): the server's counter is what limits them
        statuses = [requests.get(url, auth=("test-key", "test-token"), timeout=5) for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(10)

    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[1].headers["X-RateLimit-Remaining"] == "0"


# ------------------------------------------------------------------------------------ zero config
def test_zero_config_fetch_paces_itself_from_the_headers_without_429s(exotel_simulator_factory, monkeypatch):
    sim, seeded = limited(exotel_simulator_factory, monkeypatch, limit=20, window=2.0, contacts=1400)

    hook = ExotelContactsHook(retry_delay=0.0)
    got = list(hook.iter_contacts())

    assert sids(got) == sids(seeded)
    account = sim.account_limit
    assert account.refused <= 1
    assert account.utilisation() >= 0.85, account.window_counts()
    assert 540 <= hook.request_budget() <= 660  # 20 per 2 s, learned from the headers


def test_requests_per_minute_still_caps_below_the_announced_budget(exotel_simulator_factory, monkeypatch):
    sim, seeded = limited(exotel_simulator_factory, monkeypatch, limit=20, window=2.0, contacts=500)

    hook = ExotelContactsHook(requests_per_minute=300)  # 10 per 2 s window: the tighter applies
    got = list(hook.iter_contacts())

    assert sids(got) == sids(seeded)
    assert max(sim.account_limit.window_counts().values()) <= 11
    assert sim.account_limit.refused == 0
    assert hook.request_budget() == 300


_WORKER = textwrap.dedent(
    """
    import json, logging, sys
    logging.disable(logging.CRITICAL)
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook
    hook = ExotelContactsHook(retry_delay=0.0)
    print(json.dumps([c["sid"] for c in hook.iter_contacts()]))
    """
)


def test_three_processes_share_the_account_budget_through_the_servers_counters(
    exotel_simulator_factory, tmp_path
):
    sim = exotel_simulator_factory(account_limit=30, account_window=2.0)
    seeded = sim.seed_contacts(900)
    env = {**os.environ, "AIRFLOW_CONN_EXOTEL_DEFAULT": sim.connection_json()}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]

    assert [p.returncode for p in procs] == [0, 0, 0]
    for out in outputs:  # each process got the exact result
        assert json.loads(out.strip().splitlines()[-1]) == sids(seeded)
    account = sim.account_limit
    assert account.refused <= 3
    assert account.utilisation() >= 0.8, account.window_counts()


# ------------------------------------------------------------------------------------ 429s
def test_without_headers_the_hook_learns_the_limit_from_429s(exotel_simulator_factory, monkeypatch):
    sim, seeded = limited(
        exotel_simulator_factory, monkeypatch, limit=40, window=1.5, headers=False, contacts=3000
    )

    hook = ExotelContactsHook(retry_delay=0.0)
    got = list(hook.iter_contacts())

    assert sids(got) == sids(seeded)
    account = sim.account_limit
    assert account.refused <= 0.10 * (account.admitted + account.refused)
    learned = hook.request_budget()
    assert learned is not None and 0.5 * 1600 <= learned <= 1.5 * 1600  # 40 per 1.5 s = 1600/min


def test_a_fetch_with_retry_limit_zero_survives_several_429s(exotel_simulator_factory, monkeypatch):
    sim, seeded = limited(
        exotel_simulator_factory, monkeypatch, limit=8, window=1.0, headers=False, contacts=500
    )

    got = list(ExotelContactsHook(retry_limit=0, retry_delay=0.0).iter_contacts())

    assert sids(got) == sids(seeded)
    assert sim.account_limit.refused >= 2


def test_rate_limit_wait_raises_rate_limit_error_with_the_rest_exception(
    exotel_simulator_factory, monkeypatch, caplog, capfd
):
    # one request a minute, no headers: the second page meets a 429 with Retry-After up to 60 s
    limited(exotel_simulator_factory, monkeypatch, limit=1, window=60, headers=False, contacts=100)
    caplog.set_level(logging.WARNING)
    hook = ExotelContactsHook(rate_limit_wait=1, concurrency=1, retry_limit=0)

    started = time.monotonic()
    with pytest.raises(ExotelRateLimitError) as info:
        list(hook.iter_contacts())
    elapsed = time.monotonic() - started

    error = info.value
    assert isinstance(error, ExotelRequestError) and error.status == 429
    assert error.error_code == "RATE_LIMIT_EXCEEDED"
    assert "RATE_LIMIT_EXCEEDED" in str(error) and "Rate limit exceeded" in str(error)
    assert "rate_limit_wait=1" in str(error)
    assert elapsed < 10  # did not sleep out a Retry-After of up to 60 s
    logged = logs_of(caplog, capfd)
    assert "RATE_LIMIT_EXCEEDED" in logged and "Rate limit exceeded. Try again in" in logged


def test_a_spent_window_is_not_spent_again(exotel_simulator_factory, monkeypatch):
    # with headers the hook knows the window is spent: it raises without drawing a 429
    sim, _ = limited(exotel_simulator_factory, monkeypatch, limit=1, window=60, contacts=100)

    with pytest.raises(ExotelRateLimitError, match="X-RateLimit-Remaining is 0") as info:
        list(ExotelContactsHook(rate_limit_wait=2, concurrency=1).iter_contacts())

    assert info.value.status == 429
    assert info.value.error_code == "RATE_LIMIT_EXCEEDED"  # what Exotel would have answered
    assert "RATE_LIMIT_EXCEEDED" in str(info.value) and "Rate limit exceeded" in str(info.value)
    assert sim.account_limit.refused == 0


@pytest.mark.parametrize("value", [-1, "soon", None, True, float("nan")])
def test_rate_limit_wait_is_validated(value):
    with pytest.raises(ExotelValidationError, match="rate_limit_wait"):
        ExotelContactsHook(rate_limit_wait=value)


# ------------------------------------------------------------------------------------ clocks
def test_a_server_clock_an_hour_ahead_does_not_stall_the_hook():
    clock = FakeClock()
    wall = 1_700_000_000.0
    budget = budget_on(clock, wall)
    server_now = wall + clock.now + 3600
    seq, _ = budget.acquire()
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(server_now))
    budget.observe(
        seq,
        200,
        {
            "X-RateLimit-Limit": "30",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(server_now) + 20),
            "Date": date,
        },
    )

    with pytest.raises(BudgetWaitTooLong) as info:
        budget.acquire(max_wait=5)
    assert 15 <= info.value.wait <= 25  # the window's 20 s, not an hour and 20 s
    budget.acquire(max_wait=30)  # and it goes out once the window has reset


def test_a_reset_in_the_past_falls_back_to_the_window_and_keeps_sending():
    clock = FakeClock()
    wall = 1_700_000_000.0
    budget = budget_on(clock, wall)
    seq, _ = budget.acquire()
    budget.observe(seq, 200, {"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": str(int(wall) - 100)})

    seq2, waited = budget.acquire(max_wait=0)  # 5 remaining: spread over a window, not refused

    assert seq2 == 2 and waited == 0


# ------------------------------------------------------------------------------------ progress
def test_fetch_progress_shows_an_eta_at_the_accounts_budget(exotel_simulator_factory, monkeypatch, tmp_path):
    from airflow_provider_exotel.operators import _progress as progress_module
    from airflow_provider_exotel.operators import contacts as operators
    from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator

    limited(exotel_simulator_factory, monkeypatch, limit=10, window=1.0, contacts=300)
    monkeypatch.setattr(progress_module, "PROGRESS_INTERVAL", 0.0)
    lines: list[str] = []
    monkeypatch.setattr(operators._Progress, "_emit", lambda self, line: lines.append(line), raising=False)

    result = ExotelFetchContactsOperator(task_id="f", output_path=str(tmp_path / "c.jsonl")).execute({})

    assert result["count"] == 300
    # 10 requests a second = 600/min, announced in the headers (learned within the first windows)
    pattern = r"fetched [\d,]+ / 300 contacts \(\d+%\), [\d.,]+/s, ETA \d+s \(budget 600/min\)"
    assert any(re.fullmatch(pattern, line) for line in lines), lines[-5:]


def test_progress_line_reads_like_the_users_plan():
    from airflow_provider_exotel.operators.contacts import _Progress

    progress = _Progress(logging.getLogger("test"), "fetched", 100_000, lambda: 30.0)
    progress.count = 4_000
    progress.started = time.monotonic() - 4_000 / 9.8  # 9.8 contacts a second so far

    line = progress._line()

    # the slower of the current pace (96,000 at 9.8/s: 2h 43m) and the budget (96,000 / 19 new
    # contacts a page = 5,053 pages at 30/min: 2h 48m)
    assert line == "fetched 4,000 / 100,000 contacts (4%), 9.8/s, ETA 2h 48m (budget 30/min)"
