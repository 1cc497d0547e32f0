"""Fault matrix for the hook: every fault kind the simulator injects, for fetch (sequential and
parallel), count and bulk update. Each either completes with the exact result or fails with a clear
error after the retry budget — never a silent partial result."""

from __future__ import annotations

import functools

import pytest
from support import make_hook

from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelRequestError
from airflow_provider_exotel.testing import Fault

#: (id, fault) — every kind, 429 with and without Retry-After.
FAULTS = [
    ("429-retry-after", Fault("429", retry_after=1)),
    ("429-no-retry-after", Fault("429", retry_after=None)),
    ("500", Fault("500")),
    ("502-html", Fault("502_html")),
    ("503", Fault("503")),
    ("504", Fault("504")),
    ("reset", Fault("reset")),
    ("slow-past-timeout", Fault("slow", delay=3.0)),
    ("truncated-json", Fault("truncated_json")),
    ("html-200", Fault("html_200")),
]
IDS = [f[0] for f in FAULTS]
#: Faults where the simulator applies a PUT and then garbles or delays its answer past the timeout.
ANSWER_LOST_AFTER_APPLYING = {"slow", "truncated_json", "html_200"}


hook = functools.partial(make_hook, retry_delay=0.01, timeout=1.0)


@pytest.mark.parametrize("concurrency", [1, 4], ids=["sequential", "parallel"])
@pytest.mark.parametrize("fault", [f[1] for f in FAULTS], ids=IDS)
def test_fetch_under_a_burst_of_faults_returns_every_contact_once(exotel_simulator, fault, concurrency):
    seeded = exotel_simulator.seed_contacts(130)
    exotel_simulator.add_faults(fault, fault, fault, method="GET")  # three in a row: a burst

    got = list(hook(concurrency=concurrency).iter_contacts())

    assert [c["sid"] for c in got] == [c["sid"] for c in seeded]
    assert sum(1 for r in exotel_simulator.requests if r.fault) == 3


#: 429s are not retries: they are waited out under ``rate_limit_wait`` (tests/test_budget.py).
NOT_429 = [f for f in FAULTS if f[1].kind != "429"]


@pytest.mark.parametrize("fault", [f[1] for f in NOT_429], ids=[f[0] for f in NOT_429])
def test_fetch_fails_clearly_when_the_fault_outlasts_the_retry_budget(exotel_simulator, fault):
    exotel_simulator.seed_contacts(50)
    exotel_simulator.add_faults(*[fault] * 3, method="GET")

    got = []
    with pytest.raises(ExotelRequestError, match="gave up after 3 attempts"):
        for contact in hook(retry_limit=2, concurrency=1).iter_contacts():
            got.append(contact)
    assert got == []  # the very first page failed: nothing was yielded, nothing half-done


@pytest.mark.parametrize("fault", [f[1] for f in FAULTS], ids=IDS)
def test_bulk_update_under_faults_applies_every_update_once(exotel_simulator, fault):
    seeded = exotel_simulator.seed_contacts(40)
    updates = [{"sid": c["sid"], "tag": "after-fault"} for c in seeded]
    exotel_simulator.add_faults(fault, method="PUT")

    result = hook(concurrency=2).bulk_update_contacts(updates, batch_size=15)

    assert result.ok and result.succeeded == [c["sid"] for c in seeded]
    assert all(exotel_simulator.get_contact(c["sid"])["tag"] == "after-fault" for c in seeded)
    counts = set(exotel_simulator.update_counts.values())
    if fault.kind in ANSWER_LOST_AFTER_APPLYING:
        assert counts <= {1, 2}  # the batch hit by the fault was applied, its answer lost, re-sent
    else:
        assert counts == {1}  # refused before applying: each update applied exactly once


def test_a_lost_put_response_is_resent_and_reported_as_success(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(20)
    exotel_simulator.add_faults("reset_after_apply", method="PUT")

    result = hook().bulk_update_contacts([{"sid": c["sid"], "first_name": "Z"} for c in seeded])

    assert result.ok and len(result.succeeded) == 20
    # applied by the lost request and again by the retry: a PUT of the same fields is idempotent
    assert set(exotel_simulator.update_counts.values()) == {2}
    assert all(exotel_simulator.get_contact(c["sid"])["first_name"] == "Z" for c in seeded)


def test_a_401_in_the_middle_of_a_parallel_fetch_fails_fast(exotel_simulator):
    exotel_simulator.seed_contacts(400)
    iterator = hook(concurrency=4, retry_limit=5).iter_contacts()
    first = next(iterator)
    exotel_simulator.fail_every_request("401")

    with pytest.raises(ExotelAuthError, match="HTTP 401"):
        list(iterator)
    assert first["sid"]
    # no retries of a 401: at most the pages already in flight
    assert exotel_simulator.count_status(401) <= 8


def test_a_429_pauses_every_thread_of_the_hook(exotel_simulator):
    exotel_simulator.seed_contacts(300)
    exotel_simulator.add_faults(Fault("429", retry_after=1), method="GET", path_endswith="contacts")

    got = list(hook(concurrency=4).iter_contacts())

    assert len(got) == 300
    rate_limited = next(r for r in exotel_simulator.requests if r.status == 429)
    later = [r for r in exotel_simulator.requests if r.timestamp > rate_limited.timestamp + 0.05]
    # nothing else was sent until Retry-After had passed (a lower bound: slow machines only add)
    assert later and min(r.timestamp for r in later) - rate_limited.timestamp >= 0.9


@pytest.mark.parametrize("fault", [f[1] for f in FAULTS], ids=IDS)
def test_count_under_faults_is_exact(exotel_simulator, fault):
    exotel_simulator.seed_contacts(21)
    exotel_simulator.add_faults(fault, fault)
    assert hook().count_contacts() == 21


def test_per_contact_failures_are_resent_only_when_transient(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(5)
    exotel_simulator.add_item_faults({seeded[1]["sid"]: [503, 500]})

    result = hook().bulk_update_contacts(
        [{"sid": c["sid"], "tag": "t"} for c in seeded] + [{"sid": "ghost", "tag": "t"}]
    )

    assert result.succeeded == [c["sid"] for c in seeded]
    assert result.failed == [{"sid": "ghost", "code": 404, "message": "Not Found: Contact not found"}]
    puts = [r.batch_size for r in exotel_simulator.requests if r.method == "PUT"]
    assert puts == [6, 1, 1]  # the 404 is permanent: never re-sent


def test_per_contact_transient_failures_that_persist_are_reported(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(3)
    exotel_simulator.add_item_faults({seeded[0]["sid"]: [500, 500, 500]})

    result = hook(retry_limit=2).bulk_update_contacts([{"sid": c["sid"], "tag": "t"} for c in seeded])

    assert result.succeeded == [seeded[1]["sid"], seeded[2]["sid"]]
    assert [(f["sid"], f["code"]) for f in result.failed] == [(seeded[0]["sid"], 500)]
    assert exotel_simulator.get_contact(seeded[0]["sid"])["tag"] != "t"


# ------------------------------------------------------------------------------ sensor and trigger
@pytest.mark.parametrize("fault", [f[1] for f in FAULTS], ids=IDS)
def test_sensor_poke_under_faults_sees_the_exact_count(exotel_simulator, fault):
    from airflow_provider_exotel.sensors.contacts import ExotelContactsSensor

    exotel_simulator.seed_contacts(12)
    exotel_simulator.add_faults(fault, fault)
    sensor = ExotelContactsSensor(task_id="wait", min_count=12, created_after="2020-01-01T00:00:00Z")
    sensor.hook = hook()

    result = sensor.poke({})

    assert result.is_done and result.xcom_value == {"count": 12}


@pytest.mark.parametrize("fault", [f[1] for f in FAULTS], ids=IDS)
def test_trigger_under_faults_fires_with_the_exact_count(exotel_simulator, fault):
    import asyncio

    from airflow_provider_exotel.triggers.contacts import ExotelContactsTrigger

    exotel_simulator.seed_contacts(9)
    exotel_simulator.add_faults(fault, fault)
    trigger = ExotelContactsTrigger(
        min_count=9, poke_interval=0.01, hook_params={"retry_delay": 0.01, "timeout": 1.0}
    )

    async def first_event():
        return await asyncio.wait_for(trigger.run().__anext__(), 60)

    assert asyncio.run(first_event()).payload == {"status": "success", "count": 9}
