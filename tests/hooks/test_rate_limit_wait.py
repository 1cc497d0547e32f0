"""``rate_limit_wait`` bounds the elapsed time since a request's first 429, and 429s back off.

Against a server that answers 429 forever — with ``Retry-After: 0``, with none, through reads,
writes and the deferrable sensor's trigger — the hook gives up with :class:`ExotelRateLimitError`
once ``rate_limit_wait`` has passed and sends a handful of requests, never a hot loop (issue 21).
The policy itself (:class:`RateLimitWait` over :class:`RequestBudget`) is checked on an injected
clock, with no sleeping. Calls that could hang without the fix run in a thread joined with a bound,
so a regression fails instead of spinning.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import FakeClock, bounded, budget_on

from airflow_provider_exotel.exceptions import ExotelRateLimitError
from airflow_provider_exotel.hooks._budget import (
    BACKOFF_CAP,
    BudgetWaitTooLong,
    RateLimitWait,
    RequestBudget,
)
from airflow_provider_exotel.hooks._retry import parse_retry_after
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook
from airflow_provider_exotel.testing.simulator import Fault
from airflow_provider_exotel.triggers.contacts import ExotelContactsTrigger

#: Small enough for a test, long enough to see several re-sends.
WAIT = 3.0
#: At most this many requests a second against a wall of 429s ("a handful").
PER_SECOND = 3


def span(sim) -> float:
    """Seconds between the first and the last request the simulator received."""
    stamps = [r.timestamp for r in sim.requests]
    return stamps[-1] - stamps[0]


def waits_logged(caplog, capfd) -> list[float]:
    # Airflow 3 logs through structlog to stdout; Airflow 2 to logging (caplog) *and* stderr: one source
    pattern = r"waiting ([\d.]+) s for the account's request budget"
    captured = "".join(capfd.readouterr())
    found = re.findall(pattern, caplog.text) or re.findall(pattern, captured)
    caplog.clear()
    return [float(w) for w in found]


# ------------------------------------------------------------------------- a wall of 429s
@pytest.mark.parametrize(
    ("retry_after", "rate_limit_wait"), [(0, WAIT), (None, 6.0)], ids=["retry-after-0", "no-retry-after"]
)
def test_a_server_answering_429_forever_ends_in_a_rate_limit_error(
    exotel_simulator, caplog, capfd, retry_after, rate_limit_wait
):
    caplog.set_level(logging.WARNING)
    exotel_simulator.seed_contacts(30)
    exotel_simulator.fail_every_request(Fault("429", retry_after=retry_after))
    hook = ExotelContactsHook(rate_limit_wait=rate_limit_wait, retry_limit=0)
    try:
        box = bounded(lambda: list(hook.iter_contacts()), rate_limit_wait + 15)
    finally:
        exotel_simulator.clear_faults()  # lets a spinning hook (the bug) finish

    assert not box["alive"], f"still sending: {exotel_simulator.request_count()} requests"
    error = box.get("error")
    assert isinstance(error, ExotelRateLimitError), box
    assert error.status == 429 and error.error_code == 1008  # Exotel's code, from its RestException
    assert "Rate limit exceeded" in str(error) and f"rate_limit_wait={rate_limit_wait:g}" in str(error)
    sent = exotel_simulator.request_count()
    assert 2 <= sent <= PER_SECOND * rate_limit_wait, sent  # it re-sent, a few times, not 26,000
    assert span(exotel_simulator) >= 0.9 * rate_limit_wait  # it did wait out rate_limit_wait first
    waits = waits_logged(caplog, capfd)
    assert max(waits) > waits[0], waits  # consecutive 429s back off (the last pause may be cut short)


@pytest.mark.parametrize("write", ["create", "update", "delete"])
def test_writes_meet_a_wall_of_429s_the_same_way(exotel_simulator, write):
    contact = exotel_simulator.seed_contacts(1)[0]
    hook = ExotelContactsHook(rate_limit_wait=WAIT, retry_limit=0)
    calls = {
        "create": lambda: hook.create_contacts([{"number": "+919876543210"}]),
        "update": lambda: hook.bulk_update_contacts([{"sid": contact["sid"], "first_name": "X"}]),
        "delete": lambda: hook.delete_contact(contact["sid"]),
    }
    exotel_simulator.fail_every_request(Fault("429", retry_after=0))
    try:
        box = bounded(calls[write], WAIT + 15)
    finally:
        exotel_simulator.clear_faults()

    assert not box["alive"], exotel_simulator.request_count()
    if "error" in box:
        assert isinstance(box["error"], ExotelRateLimitError), box
    else:  # bulk writes report the rows the error stopped, with its code and message
        failed = box["result"].failed
        assert failed and all(f["code"] == 429 for f in failed), box
        assert all(f"rate_limit_wait={WAIT:g}" in f["message"] for f in failed)
    assert 2 <= exotel_simulator.request_count() <= PER_SECOND * WAIT
    assert exotel_simulator.get_contact(contact["sid"]) == contact  # nothing was applied


def test_the_deferrable_sensors_trigger_backs_off_a_wall_of_429s(exotel_simulator):
    exotel_simulator.seed_contacts(3)
    exotel_simulator.fail_every_request(Fault("429", retry_after=0))
    trigger = ExotelContactsTrigger(
        min_count=3,
        poke_interval=0.1,
        end_time=time.time() + 0.5,  # over after the first check: one rate_limit_wait
        hook_params={"rate_limit_wait": WAIT, "retry_limit": 0, "retry_delay": 0},
    )
    safety = threading.Timer(WAIT + 20, exotel_simulator.clear_faults)  # ends the bug's spin
    safety.start()

    async def first_event():
        return await asyncio.wait_for(trigger.run().__anext__(), WAIT + 40)

    try:
        event = asyncio.run(first_event()).payload
    finally:
        safety.cancel()

    assert event["status"] == "error" and event["reason"] == "timeout", event
    sent = exotel_simulator.request_count()
    assert 2 <= sent <= PER_SECOND * WAIT, sent
    assert exotel_simulator.count_status(429) == sent


# ------------------------------------------------------------------------- bursts and back-off
def test_a_burst_of_429s_then_success_completes_exactly_and_the_back_off_starts_over(
    exotel_simulator, caplog, capfd
):
    caplog.set_level(logging.WARNING)
    seeded = exotel_simulator.seed_contacts(45)
    hook = ExotelContactsHook(rate_limit_wait=60, concurrency=1, retry_limit=0)
    burst = [Fault("429", retry_after=0)] * 3

    exotel_simulator.add_faults(*burst, method="GET", path_endswith="contacts")
    first = list(hook.iter_contacts())
    first_waits = waits_logged(caplog, capfd)
    pages = exotel_simulator.count_status(200)
    exotel_simulator.add_faults(*burst[:2], method="GET", path_endswith="contacts")
    second = list(hook.iter_contacts())
    second_waits = waits_logged(caplog, capfd)

    assert [c["sid"] for c in first] == [c["sid"] for c in seeded] == [c["sid"] for c in second]
    assert exotel_simulator.request_count() == 2 * pages + 5  # every 429 re-sent once, nothing else
    # Retry-After: 0 still backs off, doubling; after a success it starts from the floor again
    assert first_waits == [0.2, 0.5, 1.0], first_waits
    assert second_waits == [0.2, 0.5], second_waits


def fake_budget() -> tuple[RequestBudget, FakeClock]:
    clock = FakeClock()
    return budget_on(clock), clock


REFUSED = {"Retry-After": "0"}


def test_consecutive_429s_double_from_the_floor_up_to_the_cap_and_a_success_resets_them():
    budget, _ = fake_budget()
    wait = RateLimitWait(budget, 10_000)
    pauses = []
    for _ in range(12):
        seq = wait.acquire()
        pauses.append(wait.on_429(seq, REFUSED))

    assert pauses[:5] == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert max(pauses) == BACKOFF_CAP and pauses[-1] == BACKOFF_CAP
    budget.observe(wait.acquire(), 200, {})  # a success: the next refusal starts over
    again = RateLimitWait(budget, 10_000)
    assert again.on_429(again.acquire(), REFUSED) == 0.25


def test_rate_limit_wait_counts_elapsed_time_not_only_sleeps():
    budget, clock = fake_budget()
    wait = RateLimitWait(budget, WAIT)
    sent = []
    with pytest.raises(BudgetWaitTooLong) as info:
        while True:
            seq = wait.acquire()
            sent.append(clock.now)
            clock.now += 0.1  # the answer takes a while: that counts too
            wait.on_429(seq, REFUSED)

    assert info.value.exhausted
    first_429 = sent[0] + 0.1
    assert sent[-1] - first_429 == pytest.approx(WAIT)  # a last try when it runs out, then no more
    assert clock.now - first_429 >= WAIT
    assert len(sent) <= PER_SECOND * WAIT


def test_in_flight_429s_of_one_refusal_count_once():
    budget, _ = fake_budget()
    waits = [RateLimitWait(budget, 600) for _ in range(4)]
    seqs = [w.acquire() for w in waits]  # four requests out together, all refused

    pauses = [w.on_429(s, REFUSED) for w, s in zip(waits, seqs, strict=True)]

    assert pauses == [0.25] * 4  # one refusal, not four consecutive ones


def test_a_retry_after_longer_than_what_is_left_raises_at_once_without_sleeping():
    budget, clock = fake_budget()
    wait = RateLimitWait(budget, 600)
    started = clock.now

    with pytest.raises(BudgetWaitTooLong, match="Retry-After") as info:
        wait.on_429(wait.acquire(), {"Retry-After": "3600"})

    assert info.value.wait == 3600 and clock.now == started


def test_a_retry_after_of_3600_with_rate_limit_wait_600_raises_at_once(exotel_simulator):
    exotel_simulator.seed_contacts(5)
    exotel_simulator.fail_every_request(Fault("429", retry_after=3600))
    hook = ExotelContactsHook(rate_limit_wait=600)

    box = bounded(lambda: list(hook.iter_contacts()), 20)

    assert not box["alive"], "slept on a Retry-After longer than rate_limit_wait"
    error = box.get("error")
    assert isinstance(error, ExotelRateLimitError) and error.status == 429, box
    assert "3600" in str(error) and "rate_limit_wait=600" in str(error)
    assert exotel_simulator.request_count() == 1


@pytest.mark.parametrize("header", ["1e400", "-5"])
def test_an_unusable_retry_after_is_ignored(exotel_simulator, caplog, capfd, header):
    caplog.set_level(logging.WARNING)
    seeded = exotel_simulator.seed_contacts(5)
    exotel_simulator.add_faults(Fault("429", retry_after=header))
    hook = ExotelContactsHook(rate_limit_wait=600)

    box = bounded(lambda: list(hook.iter_contacts()), 20)

    assert not box["alive"], f"slept on Retry-After: {header}"
    assert [c["sid"] for c in box["result"]] == [c["sid"] for c in seeded]
    assert waits_logged(caplog, capfd) == [1.0]  # as if absent: the default pause


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("2.5", 2.5),
        (" 7 ", 7.0),
        ("3600", 3600.0),
        ("1e400", None),
        ("inf", None),
        ("nan", None),
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: now
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


def test_an_http_date_retry_after_is_measured_on_the_servers_clock():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", "Wed, 21 Oct 2015 07:28:00 GMT") == 30.0


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.one_of(st.text(max_size=30), st.floats().map(repr), st.integers().map(str)))
def test_parse_retry_after_is_none_or_finite_and_not_negative(value):
    seconds = parse_retry_after(value)
    assert seconds is None or (0.0 <= seconds < float("inf"))
