"""Campaign operators against the simulator over real sockets (``op.execute({})``; the simulator's
campaigns run on its clock, which the tests move instead of waiting)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_exotel._campaign_check import ExotelCampaignFailedError
from airflow_provider_exotel.exceptions import (
    ExotelAuthError,
    ExotelError,
    ExotelRequestError,
    ExotelValidationError,
)
from airflow_provider_exotel.operators.campaigns import (
    ExotelCampaignActionOperator,
    ExotelCreateCampaignOperator,
    ExotelFetchCampaignCallDetailsOperator,
)
from airflow_provider_exotel.testing._campaign_runs import outcome_of
from airflow_provider_exotel.triggers.campaigns import ExotelCampaignTrigger

FAST = {"retry_delay": 0.0, "timeout": 5.0}
_ids = iter(range(10**9))


def audience(sim, n: int, list_sid: str = "L1") -> list[dict]:
    contacts = sim.seed_contacts(n)
    sim.create_list(list_sid, [c["sid"] for c in contacts])
    return contacts


def create_op(**kw) -> ExotelCreateCampaignOperator:
    kw.setdefault("task_id", f"create_{next(_ids)}")
    kw.setdefault("name", "promo")
    kw.setdefault("caller_id", "08047112233")
    if "numbers" not in kw:
        kw.setdefault("list_sids", ["L1"])
    kw.setdefault("read_via_text", "Hello")
    kw.setdefault("hook_params", FAST)
    kw.setdefault("deferrable", False)
    return ExotelCreateCampaignOperator(**kw)


def posts(sim) -> list:
    return [r for r in sim.requests if r.method == "POST" and r.path.endswith("/campaigns")]


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# ------------------------------------------------------------------------------------ create
def test_create_returns_the_campaign_and_a_retried_task_adopts_it_without_a_post(exotel_simulator):
    audience(exotel_simulator, 5)

    first = create_op(task_id="launch").execute({})
    exotel_simulator.clear_requests()
    retried = create_op(task_id="launch").execute({})  # the next try of the same task

    assert retried["id"] == first["id"] and first["status"] == "in-progress"
    assert posts(exotel_simulator) == []  # adopt: zero POSTs
    assert len(exotel_simulator.campaigns.runs) == 1


def test_if_exists_fail_raises_and_create_makes_another(exotel_simulator):
    audience(exotel_simulator, 5)
    create_op().execute({})

    with pytest.raises(ExotelError, match="if_exists='fail'"):
        create_op(if_exists="fail").execute({})
    again = create_op(if_exists="create").execute({})

    assert len(exotel_simulator.campaigns.runs) == 2 and again["id"] in exotel_simulator.campaigns.runs


def test_adopt_matches_the_exact_name_only(exotel_simulator):
    audience(exotel_simulator, 5)
    create_op(name="promo-may").execute({})

    made = create_op(name="promo").execute({})

    assert made["name"] == "promo" and len(exotel_simulator.campaigns.runs) == 2


def test_wait_for_completion_polls_until_completed_and_returns_the_final_campaign(exotel_simulator):
    audience(exotel_simulator, 20)

    def time_passes(sim, request):  # each status check finds 10 more seconds of dialling
        if request.method == "GET" and "/campaigns/" in request.path:
            sim.clock.advance(10)

    exotel_simulator.before_request = time_passes
    final = create_op(wait_for_completion=True, poll_interval=0.001).execute({})

    checks = [r for r in exotel_simulator.requests if r.method == "GET" and "/campaigns/" in r.path]
    assert final["status"] == "completed" and final["stats"]["dialled"] == 20
    assert len(checks) == 2  # one request per poll: 21 s and 31 s after the start


def test_wait_fails_the_task_with_the_campaign_s_id_name_status_and_stats(exotel_simulator):
    exotel_simulator.seed_contacts(1)
    exotel_simulator.create_list("EMPTY", [])  # nobody to call: the campaign fails when it starts

    with pytest.raises(ExotelCampaignFailedError) as info:
        create_op(list_sids=["EMPTY"], wait_for_completion=True, poll_interval=0.001).execute({})

    campaign = next(iter(exotel_simulator.campaigns.runs))
    message = str(info.value)
    assert campaign in message and "'promo'" in message and "failed" in message and "stats" in message


def test_wait_times_out(exotel_simulator):
    audience(exotel_simulator, 5)

    with pytest.raises(ExotelError, match="Timed out"):
        create_op(
            send_at="2099-01-01T00:00:00Z", wait_for_completion=True, poll_interval=0.01, timeout=0.05
        ).execute({})


def test_deferrable_wait_defers_to_the_trigger_with_ids_and_settings_only(exotel_simulator):
    audience(exotel_simulator, 5)
    op = create_op(wait_for_completion=True, deferrable=True, poll_interval=60, timeout=dt.timedelta(hours=3))

    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})

    trigger = deferred.value.trigger
    assert isinstance(trigger, ExotelCampaignTrigger)
    assert deferred.value.timeout == dt.timedelta(hours=3)
    _, kwargs = trigger.serialize()
    assert kwargs["campaign_id"] == next(iter(exotel_simulator.campaigns.runs))
    assert kwargs["poll_interval"] == 60 and "test-token" not in json.dumps(kwargs)
    assert len(exotel_simulator.requests) == 2  # find (adopt check) + create: no status poll in the worker


def test_execute_complete_returns_the_final_campaign_or_fails():
    op = create_op()
    done = {"id": "c1", "name": "promo", "status": "completed", "stats": {}}

    assert op.execute_complete({}, {"status": "success", "campaign": done}) == done
    with pytest.raises(ExotelCampaignFailedError):
        op.execute_complete({}, {"status": "failed", "campaign": {**done, "status": "canceled"}})
    with pytest.raises(ExotelError, match="late"):
        op.execute_complete({}, {"status": "error", "reason": "timeout", "message": "late"})


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"if_exists": "replace"}, "if_exists"),
        ({"call_retries": {"number_of_retries": 9}}, "number_of_retries"),
        ({"list_sids": ["L1"] * 2}, "repeats"),
        ({"numbers": ["+919876543210"], "list_sids": ["L1"]}, "exactly one of list_sids"),
        ({"flow_url": "http://my.exotel.com/x"}, "exactly one of flow_url"),
        ({"extra": {"name": "other"}}, "extra"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"timeout": -1}, "timeout"),
        ({"wait_for_completion": "yes"}, "wait_for_completion"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(exotel_simulator, kwargs, named):
    with pytest.raises(ExotelValidationError, match=named):
        create_op(**kwargs)
    assert exotel_simulator.requests == []


def test_templated_arguments_are_checked_after_rendering_before_any_request(exotel_simulator):
    op = create_op(name="{{ params.name }}", list_sids="{{ params.lists }}")
    assert set(op.template_fields) >= {"name", "caller_id", "list_sids", "numbers", "send_at", "end_at"}
    audience(exotel_simulator, 3)

    op.name, op.list_sids = "rendered", "['L1']"  # what Jinja renders for a list
    assert op.execute({})["lists"] == ["L1"]

    exotel_simulator.clear_requests()
    op.list_sids = "['L1', 'L2', 'L3', 'L4', 'L5', 'L6']"
    with pytest.raises(ExotelValidationError, match="1 to 5"):
        op.execute({})
    assert exotel_simulator.requests == []


# ------------------------------------------------------------------------------------ actions
def test_action_operator_pauses_and_a_refused_action_names_the_status(exotel_simulator):
    audience(exotel_simulator, 5)
    made = create_op().execute({})

    paused = ExotelCampaignActionOperator(
        task_id="pause", campaign_id=made, action="pause", hook_params=FAST
    ).execute({})
    assert paused["status"] == "paused"
    with pytest.raises(ExotelRequestError, match="its status is paused"):
        ExotelCampaignActionOperator(task_id="again", campaign_id=made["id"], action="pause").execute({})
    with pytest.raises(ExotelValidationError, match="action"):
        ExotelCampaignActionOperator(task_id="bad", campaign_id=made["id"], action="stop")


# ------------------------------------------------------------------------------------ call details
def test_call_details_without_output_path_are_returned_and_capped_at_1000(exotel_simulator):
    contacts = audience(exotel_simulator, 30)
    made = create_op().execute({})
    exotel_simulator.campaigns.finish(made["id"])

    rows = ExotelFetchCampaignCallDetailsOperator(
        task_id="f", campaign_id=made["id"], hook_params=FAST
    ).execute({})
    busy = ExotelFetchCampaignCallDetailsOperator(
        task_id="b", campaign_id=made, status="busy", hook_params=FAST
    ).execute({})

    assert [r["number"] for r in rows] == [c["number"] for c in contacts]
    assert [r["number"] for r in busy] == [c["number"] for c in contacts if outcome_of(c["number"]) == "busy"]

    big = ExotelCreateCampaignOperator(
        task_id="big",
        name="big",
        caller_id="0801",
        numbers=[f"+9198{i:08d}" for i in range(1001)],
        read_via_text="Hi",
        hook_params=FAST,
    ).execute({})
    exotel_simulator.campaigns.finish(big["id"])
    with pytest.raises(ExotelError, match="more than 1000"):
        ExotelFetchCampaignCallDetailsOperator(task_id="g", campaign_id=big["id"], hook_params=FAST).execute(
            {}
        )


def test_call_details_export_writes_json_lines_and_a_failed_try_is_resumed(exotel_simulator, tmp_path):
    contacts = audience(exotel_simulator, 100)
    made = create_op().execute({})
    exotel_simulator.campaigns.finish(made["id"])
    target = tmp_path / "out" / "calls.jsonl"

    def op():
        return ExotelFetchCampaignCallDetailsOperator(
            task_id="export",
            campaign_id=made["id"],
            output_path=str(target),
            hook_params={**FAST, "concurrency": 1},
        )

    exotel_simulator.clear_requests()
    exotel_simulator.on_nth_request(4, lambda sim: sim.fail_every_request("401"))
    with pytest.raises(ExotelAuthError):
        op().execute({})
    assert not target.exists()
    exotel_simulator.clear_faults()
    exotel_simulator.clear_requests()

    result = op().execute({})

    rows = read_jsonl(target)
    assert result == {"path": str(target), "count": 100}
    assert [r["number"] for r in rows] == [c["number"] for c in contacts]
    first_offset = int(exotel_simulator.requests[0].query["offset"])
    assert first_offset > 0  # went on from the rows the failed try had written
    assert [p.name for p in target.parent.iterdir()] == ["calls.jsonl"]


def test_call_details_lineage_names_the_campaign_and_the_file(exotel_simulator, tmp_path):
    pytest.importorskip("airflow.providers.openlineage")
    op = ExotelFetchCampaignCallDetailsOperator(
        task_id="f", campaign_id="c9", output_path=str(tmp_path / "c.jsonl")
    )

    lineage = op.get_openlineage_facets_on_complete(None)

    assert [d.name for d in lineage.inputs] == ["accounts/acct1/campaigns/c9/call-details"]
    assert lineage.inputs[0].namespace.startswith("exotel://127.0.0.1")
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("file", str(tmp_path / "c.jsonl"))]
