"""ExotelContactsTrigger: its async run() driven directly with asyncio against the simulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import socket
import threading
import time

import pytest

from airflow_provider_exotel.exceptions import ExotelValidationError
from airflow_provider_exotel.triggers.contacts import ExotelContactsTrigger

FAST_HOOK = {"retry_limit": 0, "retry_delay": 0, "timeout": 5}


def make_trigger(**kwargs) -> ExotelContactsTrigger:
    kwargs.setdefault("poke_interval", 0.01)
    kwargs.setdefault("hook_params", FAST_HOOK)
    return ExotelContactsTrigger(**kwargs)


def first_event(trigger: ExotelContactsTrigger, timeout: float = 60) -> dict:
    """Run the trigger like the triggerer does until its first event; return the payload."""

    async def main():
        return await asyncio.wait_for(trigger.run().__anext__(), timeout)

    return asyncio.run(main()).payload


# ----------------------------------------------------------------------------------------- firing
def test_trigger_fires_at_once_when_contacts_are_already_there(exotel_simulator):
    exotel_simulator.seed_contacts(5)

    assert first_event(make_trigger(min_count=5)) == {"status": "success", "count": 5}
    assert exotel_simulator.request_count() == 1


def test_trigger_fires_when_contacts_arrive_while_it_waits(exotel_simulator):
    exotel_simulator.seed_contacts(2)
    arrived = exotel_simulator.on_nth_request(4, lambda sim: sim.insert_contact(first_name="Late"))

    assert first_event(make_trigger(min_count=3)) == {"status": "success", "count": 3}
    assert arrived.is_set()
    assert exotel_simulator.request_count() == 4  # three checks saw 2 contacts, the fourth saw 3


def test_trigger_fires_when_a_contact_is_inserted_from_another_thread(exotel_simulator):
    exotel_simulator.seed_contacts(2)
    trigger = make_trigger(min_count=3, poke_interval=0.02)
    seen_waiting = threading.Event()
    exotel_simulator.before_request = lambda sim, _r: seen_waiting.set()

    def insert_once_the_trigger_is_polling():
        seen_waiting.wait(30)
        exotel_simulator.insert_contact(first_name="FromThread")

    inserter = threading.Thread(target=insert_once_the_trigger_is_polling)
    inserter.start()
    try:
        assert first_event(trigger) == {"status": "success", "count": 3}
    finally:
        inserter.join()


def test_trigger_counts_only_the_contacts_of_list_sid(exotel_simulator):
    contacts = exotel_simulator.seed_contacts(6)
    exotel_simulator.create_list("L1", [c["sid"] for c in contacts[:2]])
    exotel_simulator.on_nth_request(2, lambda sim: sim.create_list("L1", [contacts[4]["sid"]]))

    assert first_event(make_trigger(list_sid="L1", min_count=3)) == {"status": "success", "count": 3}
    assert all(r.path.endswith("/lists/L1/contacts") for r in exotel_simulator.requests)


def test_trigger_waits_for_a_contact_created_strictly_after_created_after(exotel_simulator):
    exotel_simulator.seed_contacts(3)  # newest created 2024-01-01T00:00:02Z
    exotel_simulator.on_nth_request(5, lambda sim: sim.insert_contact(date_created="2024-01-01T00:00:03Z"))

    event = first_event(make_trigger(min_count=1, created_after="2024-01-01T00:00:02Z"))

    assert event == {"status": "success", "count": 4}
    # two checks of (count, newest) saw only the equal timestamp; the third saw the new contact
    assert exotel_simulator.request_count() == 6


# ----------------------------------------------------------------------------------------- errors
def test_trigger_reports_bad_credentials_at_once(exotel_simulator):
    exotel_simulator.seed_contacts(5)
    exotel_simulator.add_faults("401")

    event = first_event(make_trigger(min_count=5))

    assert event["status"] == "error"
    assert event["reason"] == "auth"
    assert "401" in event["message"]
    assert "test-token" not in event["message"]
    assert exotel_simulator.request_count() == 1


def test_trigger_reports_a_misconfigured_connection_at_once(exotel_simulator, monkeypatch):
    conn = json.loads(exotel_simulator.connection_json())
    conn["extra"] = {}
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_BROKEN", json.dumps(conn))

    event = first_event(make_trigger(exotel_conn_id="exotel_broken"))

    assert event["status"] == "error"
    assert event["reason"] == "invalid"
    assert "account_sid" in event["message"]
    assert exotel_simulator.requests == []


@pytest.mark.parametrize("faults", [("500",), ("429",), ("500", "429", "503", "reset")])
def test_trigger_keeps_polling_through_transient_errors(exotel_simulator, faults):
    exotel_simulator.seed_contacts(3)
    exotel_simulator.add_faults(*faults)

    assert first_event(make_trigger(min_count=3)) == {"status": "success", "count": 3}
    assert exotel_simulator.request_count() == len(faults) + 1


def test_trigger_gives_up_with_a_timeout_event_after_end_time(exotel_simulator):
    exotel_simulator.seed_contacts(1)

    event = first_event(make_trigger(min_count=2, end_time=time.time() + 0.2))

    assert event["status"] == "error"
    assert event["reason"] == "timeout"
    assert event["count"] == 1
    assert "at least 2 contact(s)" in event["message"]
    assert exotel_simulator.request_count() >= 1


def test_trigger_checks_once_even_when_end_time_has_passed(exotel_simulator):
    exotel_simulator.seed_contacts(2)

    assert first_event(make_trigger(min_count=2, end_time=time.time() - 10)) == {
        "status": "success",
        "count": 2,
    }


def test_trigger_times_out_while_exotel_keeps_failing(exotel_simulator):
    exotel_simulator.fail_every_request("503")

    event = first_event(make_trigger(end_time=time.time() + 0.2))

    assert (event["status"], event["reason"]) == ("error", "timeout")


# ---------------------------------------------------------------------------------- serialization
def test_serialize_round_trips_and_carries_no_credentials(exotel_simulator):
    trigger = ExotelContactsTrigger(
        exotel_conn_id="exotel_default",
        list_sid="L1",
        min_count=3,
        created_after=dt.datetime(2024, 5, 1, 10, 0),  # naive: UTC
        poke_interval=30,
        end_time=1_900_000_000.5,
        hook_params={"retry_limit": 2},
    )

    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))

    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "exotel_conn_id": "exotel_default",
        "list_sid": "L1",
        "min_count": 3,
        "created_after": "2024-05-01T10:00:00+00:00",
        "poke_interval": 30.0,
        "end_time": 1_900_000_000.5,
        "hook_params": {"retry_limit": 2},
    }
    text = json.dumps(kwargs)
    assert exotel_simulator.api_token not in text
    assert exotel_simulator.api_key not in text


def test_trigger_kwargs_survive_airflow_serde():
    serde = pytest.importorskip("airflow.sdk.serde")  # what `dags test` and the triggerer use
    trigger = make_trigger(min_count=2, created_after="2024-05-01T10:00:00Z", end_time=1.5e9)
    classpath, kwargs = trigger.serialize()

    rebuilt = ExotelContactsTrigger(**serde.deserialize(serde.serialize(kwargs)))

    assert rebuilt.serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"min_count": -1}, "min_count"),
        ({"list_sid": ""}, "list_sid"),
        ({"created_after": "not a date"}, "created_after"),
    ],
)
def test_trigger_rejects_bad_arguments(kwargs, named):
    with pytest.raises(ExotelValidationError, match=named):
        ExotelContactsTrigger(**kwargs)


# ------------------------------------------------------------- inside the Airflow 3 triggerer
def test_trigger_reads_its_connection_through_the_triggerer_supervisor(exotel_simulator, monkeypatch):
    """In Airflow 3 a trigger has no database: connections come from the triggerer's supervisor
    over a socket, through TriggerCommsDecoder. The check (and its connection look-up) runs in a
    worker thread; this drives that real path with a fake supervisor answering on a socketpair."""
    runner = pytest.importorskip("airflow.jobs.triggerer_job_runner")
    comms = pytest.importorskip("airflow.sdk.execution_time.comms")
    task_runner = pytest.importorskip("airflow.sdk.execution_time.task_runner")
    import msgspec

    exotel_simulator.seed_contacts(4)
    conn = json.loads(exotel_simulator.connection_json())
    monkeypatch.delenv("AIRFLOW_CONN_EXOTEL_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_EXOTEL_VIA_SUPERVISOR", raising=False)
    server, client = socket.socketpair()
    asked: list[str] = []

    def supervisor() -> None:
        with server:
            while True:
                head = server.recv(4, socket.MSG_WAITALL)
                if len(head) < 4:
                    return
                data = server.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)
                frame = msgspec.msgpack.decode(data, type=comms._RequestFrame)
                asked.append(frame.body["type"])
                body = None
                if frame.body["type"] == "GetConnection":
                    body = comms.ConnectionResult(
                        conn_id=frame.body["conn_id"],
                        conn_type="exotel",
                        host=conn["host"],
                        port=conn["port"],
                        schema=conn["schema"],
                        login=conn["login"],
                        password=conn["password"],
                        extra=json.dumps(conn["extra"]),
                    ).model_dump(by_alias=True)
                server.sendall(comms._ResponseFrame(id=frame.id, body=body).as_bytes())

    thread = threading.Thread(target=supervisor, daemon=True)
    thread.start()

    async def main():
        reader, writer = await asyncio.open_connection(sock=client)
        decoder = runner.TriggerCommsDecoder(async_writer=writer, async_reader=reader, socket=client)
        await decoder.start_reader()
        monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", decoder, raising=False)
        try:
            trigger = make_trigger(exotel_conn_id="exotel_via_supervisor", min_count=4)
            return await asyncio.wait_for(trigger.run().__anext__(), 60)
        finally:
            writer.close()

    event = asyncio.run(main())
    thread.join(10)

    assert event.payload == {"status": "success", "count": 4}
    assert "GetConnection" in asked, asked
