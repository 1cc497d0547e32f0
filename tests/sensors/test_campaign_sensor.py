"""ExotelCampaignSensor and ExotelCampaignTrigger against the simulator (campaigns run on its clock)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred

from airflow_provider_exotel._campaign_check import ExotelCampaignFailedError
from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelRequestError, ExotelValidationError
from airflow_provider_exotel.hooks.campaigns import ExotelCampaignsHook
from airflow_provider_exotel.sensors.campaigns import ExotelCampaignSensor
from airflow_provider_exotel.triggers.campaigns import ExotelCampaignTrigger

FAST_HOOK = {"retry_limit": 0, "retry_delay": 0, "timeout": 5}
_ids = iter(range(10**9))


def campaign(sim, n: int = 10, **kw) -> dict:
    contacts = sim.seed_contacts(n)
    sim.create_list("L1", [c["sid"] for c in contacts])
    hook = ExotelCampaignsHook(retry_delay=0)
    made = hook.create_campaign(name="promo", caller_id="0801", list_sids=["L1"], read_via_text="Hi", **kw)
    sim.clear_requests()
    return made


def make_sensor(**kwargs) -> ExotelCampaignSensor:
    kwargs.setdefault("task_id", f"wait_{next(_ids)}")
    kwargs.setdefault("poke_interval", 0)
    kwargs.setdefault("timeout", 60)
    kwargs.setdefault("hook_params", FAST_HOOK)
    return ExotelCampaignSensor(**kwargs)


def make_trigger(**kwargs) -> ExotelCampaignTrigger:
    kwargs.setdefault("poll_interval", 0.01)
    kwargs.setdefault("hook_params", FAST_HOOK)
    return ExotelCampaignTrigger(**kwargs)


def first_event(trigger: ExotelCampaignTrigger, timeout: float = 60) -> dict:
    async def main():
        return await asyncio.wait_for(trigger.run().__anext__(), timeout)

    return asyncio.run(main()).payload


# ------------------------------------------------------------------------------------ sensor
def test_sensor_waits_until_the_campaign_completes_and_returns_it(exotel_simulator):
    made = campaign(exotel_simulator)
    sensor = make_sensor(campaign_id=made["id"])

    first = sensor.poke({})
    exotel_simulator.clock.advance(60)
    second = sensor.poke({})

    assert first.is_done is False
    assert second.is_done is True
    assert second.xcom_value["id"] == made["id"] and second.xcom_value["status"] == "completed"
    assert second.xcom_value["stats"]["dialled"] == 10
    assert exotel_simulator.request_count() == 2  # one request per check


@pytest.mark.parametrize("action", ["delete", "cancel"])
def test_a_failure_state_fails_the_task_with_id_name_status_and_stats(exotel_simulator, action):
    made = campaign(exotel_simulator, send_at="2099-01-01T00:00:00Z", end_at="2099-01-02T00:00:00Z")
    hook = ExotelCampaignsHook(retry_delay=0)
    if action == "delete":
        hook.delete_campaign(made["id"])
        status = "deleted"
    else:
        hook.campaign_action(made["id"], "pause")
        exotel_simulator.clock.advance(dt.timedelta(days=30000).total_seconds())  # past end_at
        status = "canceled"

    with pytest.raises(ExotelCampaignFailedError) as info:
        make_sensor(campaign_id=made["id"]).poke({})

    message = str(info.value)
    assert made["id"] in message and "'promo'" in message and status in message and "stats" in message


def test_success_and_failure_states_can_be_chosen_in_any_spelling(exotel_simulator):
    made = campaign(exotel_simulator)
    exotel_simulator.campaigns.status_spelling = "new"

    result = make_sensor(
        campaign_id=made["id"], success_states=["InProgress"], failure_states=["Failed"]
    ).poke({})

    assert result.is_done is True and result.xcom_value["status"] == "in-progress"


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"campaign_id": "a/b"}, "campaign_id"),
        ({"campaign_id": "c1", "success_states": []}, "success_states"),
        ({"campaign_id": "c1", "failure_states": ["exploded"]}, "failure_states"),
        ({"campaign_id": "c1", "failure_states": ["completed"]}, "share"),
        ({"campaign_id": "c1", "hook_params": {"retries": 3}}, "hook_params"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(exotel_simulator, kwargs, named):
    with pytest.raises(ExotelValidationError, match=named):
        make_sensor(**kwargs)
    assert exotel_simulator.requests == []


def test_an_unknown_campaign_and_bad_credentials_fail_at_once(exotel_simulator):
    with pytest.raises(ExotelRequestError) as info:
        make_sensor(campaign_id="nope").poke({})
    assert info.value.status == 404
    exotel_simulator.add_faults("401")
    with pytest.raises(ExotelAuthError):
        make_sensor(campaign_id="nope").poke({})


def test_transient_errors_are_checked_again_at_the_next_poke(exotel_simulator):
    made = campaign(exotel_simulator)
    exotel_simulator.add_faults("503")

    assert make_sensor(campaign_id=made["id"]).poke({}).is_done is False


# ------------------------------------------------------------------------------------ deferrable
def test_deferrable_sensor_returns_at_once_when_the_campaign_has_finished(exotel_simulator):
    made = campaign(exotel_simulator)
    exotel_simulator.campaigns.finish(made["id"])

    assert make_sensor(campaign_id=made["id"], deferrable=True).execute({})["status"] == "completed"


def test_deferrable_sensor_hands_the_wait_to_a_trigger_that_holds_no_secret(exotel_simulator):
    made = campaign(exotel_simulator)
    sensor = make_sensor(campaign_id=made["id"], deferrable=True, poke_interval=60, timeout=7200)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    trigger = deferred.value.trigger
    assert deferred.value.timeout == dt.timedelta(seconds=7200)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_exotel.triggers.campaigns.ExotelCampaignTrigger"
    assert set(kwargs) == {
        "campaign_id",
        "exotel_conn_id",
        "success_states",
        "failure_states",
        "poll_interval",
        "end_time",
        "hook_params",
    }
    assert kwargs["campaign_id"] == made["id"] and kwargs["poll_interval"] == 60
    text = json.dumps(kwargs)
    for secret in ("test-token", "test-key", "dGVzdC1rZXk6dGVzdC10b2tlbg=="):
        assert secret not in text
    assert ExotelCampaignTrigger(**kwargs).serialize() == (classpath, kwargs)  # round trip
    assert exotel_simulator.request_count() == 1


@pytest.mark.parametrize("fault", ["503", "429", "reset"])
def test_the_first_check_defers_at_once_on_a_transient_error(exotel_simulator, fault):
    made = campaign(exotel_simulator)
    exotel_simulator.add_faults(fault, retry_after=30)

    with pytest.raises(TaskDeferred):
        make_sensor(campaign_id=made["id"], deferrable=True, hook_params=None).execute({})

    assert exotel_simulator.request_count() == 1  # one attempt, no retry and no 429 wait in the worker


def test_execute_complete_returns_the_campaign_or_raises_what_the_trigger_reported():
    sensor = make_sensor(campaign_id="c1")
    done = {"id": "c1", "name": "x", "status": "completed"}

    assert sensor.execute_complete({}, {"status": "success", "campaign": done}) == done
    with pytest.raises(ExotelCampaignFailedError, match="failed"):
        sensor.execute_complete({}, {"status": "failed", "campaign": {**done, "status": "failed"}})
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute_complete({}, {"status": "error", "reason": "timeout", "message": "late"})
    with pytest.raises(ExotelAuthError):
        sensor.execute_complete({}, {"status": "error", "reason": "auth", "message": "401"})


# ------------------------------------------------------------------------------------ trigger
def test_trigger_fires_success_once_the_campaign_completes(exotel_simulator):
    made = campaign(exotel_simulator, n=5)
    exotel_simulator.on_nth_request(3, lambda sim: sim.clock.advance(60))

    event = first_event(make_trigger(campaign_id=made["id"]))

    assert event["status"] == "success" and event["campaign"]["status"] == "completed"
    assert (
        exotel_simulator.request_count() == 3
    )  # two checks saw it running; the clock moved before the third


def test_trigger_fires_failed_for_a_failure_state_and_error_for_permanent_errors(exotel_simulator):
    made = campaign(exotel_simulator, send_at="2099-01-01T00:00:00Z")
    ExotelCampaignsHook(retry_delay=0).delete_campaign(made["id"])

    failed = first_event(make_trigger(campaign_id=made["id"]))
    unknown = first_event(make_trigger(campaign_id="nope"))

    assert failed["status"] == "failed" and failed["campaign"]["status"] == "deleted"
    assert made["id"] in failed["message"]
    assert unknown["status"] == "error" and unknown["reason"] == "request"


def test_trigger_keeps_polling_through_transient_errors_and_times_out(exotel_simulator):
    made = campaign(exotel_simulator, send_at="2099-01-01T00:00:00Z")
    exotel_simulator.add_faults("503", "503")

    event = first_event(make_trigger(campaign_id=made["id"], end_time=0.0))
    assert event["status"] == "error" and event["reason"] == "timeout"
    event = first_event(make_trigger(campaign_id=made["id"], success_states=["created"]))
    assert event["status"] == "success"
