"""``X-RateLimit-Reset`` in epoch seconds, epoch milliseconds or seconds until the reset (issue 18 item 6).

Servers differ in what ``Reset`` carries; read as epoch seconds, milliseconds (a value above 10^11)
stood for a window thousands of seconds long and a delta (below 10^8) for a reset in 1970: the fetch
stalled (2 of 7 requests in 25 s). Over real sockets the simulator sends each form with a window
scaled down to 2 s; the policy is also checked on an injected clock with Exotel's 60 s windows.
"""

from __future__ import annotations

import math

import pytest
from support import WALL, FakeClock, bounded, budget_on

from airflow_provider_exotel.hooks._budget import BudgetWaitTooLong, RequestBudget, read_reset
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook


@pytest.mark.parametrize("form", ["epoch", "epoch_ms", "delta"])
def test_a_fetch_paces_itself_from_every_reset_form_without_stalling(
    exotel_simulator_factory, monkeypatch, form
):
    sim = exotel_simulator_factory(account_limit=20, account_window=2.0, rate_limit_reset_format=form)
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", sim.connection_json())
    seeded = sim.seed_contacts(800)

    hook = ExotelContactsHook(retry_delay=0.0, rate_limit_wait=30)
    box = bounded(lambda: list(hook.iter_contacts()), 120)  # ~5 s at the budget; a stall fails

    assert not box["alive"], f"stalled: {sim.request_count()} requests"
    assert [c["sid"] for c in box["result"]] == [c["sid"] for c in seeded]
    account = sim.account_limit
    assert sim.request_count() == account.admitted + account.refused
    assert account.refused <= 1  # paced from the headers, not from 429s
    assert account.utilisation() >= 0.8, account.window_counts()  # and never stalled
    assert 540 <= hook.request_budget() <= 660  # 20 per 2 s, whichever the form


def answer(budget: RequestBudget, remaining: int, reset: str) -> None:
    seq, _ = budget.acquire()
    budget.observe(
        seq,
        200,
        {"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": reset},
    )


@pytest.mark.parametrize(
    "reset",
    [str(int(WALL + 1000 + 20)), str(int((WALL + 1000 + 20) * 1000)), "20", "20.000"],
    ids=["epoch", "epoch-ms", "delta", "delta-fraction"],
)
def test_a_spent_window_waits_until_its_reset_in_every_form(reset):
    clock = FakeClock()
    budget = budget_on(clock)
    answer(budget, 0, reset)

    with pytest.raises(BudgetWaitTooLong) as info:
        budget.acquire(max_wait=5)
    assert 19 <= info.value.wait <= 21.5  # 20 s, not a 20,000 s window nor a reset in 1970
    budget.acquire(max_wait=25)  # and it goes out once the window has reset


def test_deltas_of_one_window_are_one_window_and_the_next_is_recognised():
    clock = FakeClock()
    budget = budget_on(clock)
    first_reset = clock.now + 45.3
    for remaining in (29, 28, 27, 26):  # whole seconds, rounded up as Exotel does: jitter
        answer(budget, remaining, str(math.ceil(first_reset - clock.now)))
        clock.now += 0.4
    assert 45 <= budget.window <= 46  # no window seen ending yet: the longest time-to-reset seen
    clock.now = first_reset + 0.5
    for remaining in (29, 28):
        answer(budget, remaining, str(math.ceil(first_reset + 60 - clock.now)))
        clock.now += 0.5

    assert 58.5 <= budget.window <= 61.5  # learned from the gap between two windows
    assert 28 <= budget.requests_per_minute_known() <= 31


@pytest.mark.parametrize(
    ("value", "raw", "expected_in"),
    [
        (WALL + 30, str(WALL + 30), 30.0),
        ((WALL + 30) * 1000, str(int((WALL + 30) * 1000)), 30.0),
        (30.0, "30", 30.0),
        (0.0, "0", 0.001),  # resets now: not "a window from now"
        (1e8 - 1, "99999999", 1e8 - 1),  # below 10^8 is a delta (a silly one, not believed later)
    ],
)
def test_read_reset_tells_the_three_forms_apart(value, raw, expected_in):
    _, reset_in, _ = read_reset(value, WALL, 0.0, raw)
    assert reset_in == pytest.approx(expected_in, abs=1e-3)
