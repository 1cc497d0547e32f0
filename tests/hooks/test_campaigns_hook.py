"""ExotelCampaignsHook against the simulator over real sockets: the campaign contract of DESIGN.md."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_exotel.exceptions import ExotelRequestError, ExotelValidationError
from airflow_provider_exotel.hooks.campaigns import ExotelCampaignsHook
from airflow_provider_exotel.testing._campaign_runs import outcome_of

FLOW = "http://my.exotel.com/acct1/exoml/start_voice/926"


def make_hook(**kwargs) -> ExotelCampaignsHook:
    kwargs.setdefault("retry_delay", 0.0)
    kwargs.setdefault("timeout", 5.0)
    return ExotelCampaignsHook(**kwargs)


def audience(sim, n: int, list_sid: str = "L1") -> list[dict]:
    contacts = sim.seed_contacts(n)
    sim.create_list(list_sid, [c["sid"] for c in contacts])
    return contacts


def requests_to(sim, method: str, suffix: str = "campaigns") -> list:
    return [r for r in sim.requests if r.method == method and r.path.endswith(suffix)]


def create(hook, name="promo", **kw):
    kw.setdefault("caller_id", "08047112233")
    if "numbers" not in kw:
        kw.setdefault("list_sids", ["L1"])
    if "flow_url" not in kw:
        kw.setdefault("read_via_text", "Hello from Exotel")
    return hook.create_campaign(name=name, **kw)


# ------------------------------------------------------------------------------------ create
def test_a_campaign_on_a_list_starts_dialling_and_its_status_is_normalised(exotel_simulator):
    audience(exotel_simulator, 5)
    exotel_simulator.campaigns.status_spelling = "new"  # Exotel's newer pages: "InProgress"

    campaign = create(make_hook())

    assert campaign["status"] == "in-progress"
    assert campaign["name"] == "promo" and campaign["lists"] == ["L1"]
    (post,) = requests_to(exotel_simulator, "POST")
    sent = post.json_body["campaigns"][0]
    assert sent["flow_type"] == "greeting" and sent["read_via_text"] == "Hello from Exotel"
    assert make_hook().get_campaign(campaign["id"])["status"] == "in-progress"


def test_numbers_flow_schedule_retries_callbacks_and_extra_are_sent_as_exotel_expects(exotel_simulator):
    send_at = dt.datetime(2099, 1, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    campaign = make_hook().create_campaign(
        name="numbers",
        caller_id=" 08047112233 ",
        numbers=["+91 98765-43210", "(080) 4711 2233"],
        flow_url=FLOW,
        send_at=send_at,
        end_at="2099-01-01T18:00:00",
        retries={
            "number_of_retries": 2,
            "interval_mins": 30,
            "mechanism": "linear",
            "on_status": ["NoAnswer"],
        },
        status_callback="https://example.com/status",
        custom_field={"batch": 7},
        extra={"call_duplicate_numbers": False},
    )

    sent = requests_to(exotel_simulator, "POST")[0].json_body["campaigns"][0]
    assert sent["from"] == ["+919876543210", "08047112233"]
    assert sent["caller_id"] == "08047112233" and sent["url"] == FLOW
    assert sent["schedule"] == {"send_at": "2099-01-01T09:30:00+05:30", "end_at": "2099-01-01T18:00:00+00:00"}
    assert sent["retries"] == {
        "number_of_retries": 2,
        "interval_mins": 30,
        "mechanism": "Linear",
        "on_status": ["no-answer"],
    }
    assert sent["status_callback"] == "https://example.com/status"
    assert sent["custom_field"] == {"batch": 7} and sent["call_duplicate_numbers"] is False
    assert campaign["status"] == "created"  # it starts at send_at


BAD_CAMPAIGNS = {
    "no name": ({"name": ""}, "name"),
    "no caller_id": ({"caller_id": None}, "caller_id"),
    "both audiences": ({"numbers": ["+919876543210"]}, "exactly one of list_sids"),
    "neither audience": ({"list_sids": None}, "exactly one of list_sids"),
    "six lists": ({"list_sids": [f"L{i}" for i in range(6)]}, "1 to 5"),
    "dynamic with two lists": ({"list_sids": ["L1", "L2"], "campaign_type": "dynamic"}, "exactly 1"),
    "unknown campaign type": ({"campaign_type": "weekly"}, "campaign_type"),
    "5001 numbers": ({"list_sids": None, "numbers": [f"+9198{i:08d}" for i in range(5001)]}, "1 to 5000"),
    "an invalid number": (
        {"list_sids": None, "numbers": ["+919876543210", "12ab"]},
        r"numbers\[1\] must be a phone number",
    ),
    "both flows": ({"flow_url": FLOW}, "exactly one of flow_url"),
    "no flow": ({"read_via_text": None}, "exactly one of flow_url"),
    "flow not a URL": ({"read_via_text": None, "flow_url": "my.exotel.com/x"}, "flow_url"),
    "end before start": ({"send_at": "2099-01-02T00:00:00Z", "end_at": "2099-01-01T00:00:00Z"}, "end_at"),
    "end in the past": ({"end_at": "2001-01-01T00:00:00Z"}, "end_at"),
    "unparseable send_at": ({"send_at": "next tuesday"}, "send_at"),
    "four retries": ({"retries": {"number_of_retries": 4}}, "number_of_retries"),
    "unknown retry key": ({"retries": {"number_of_retries": 1, "backoff": 2}}, "unknown key"),
    "bad mechanism": ({"retries": {"number_of_retries": 1, "mechanism": "Random"}}, "mechanism"),
    "bad on_status": ({"retries": {"number_of_retries": 1, "on_status": ["completed"]}}, "on_status"),
    "callback not a URL": ({"status_callback": "ftp://x"}, "status_callback"),
    "extra repeats an argument": ({"extra": {"lists": ["L9"]}}, "extra"),
    "extra repeats a field": ({"extra": {"url": FLOW}}, "extra"),
    "custom_field not JSON": ({"custom_field": {"when": dt.datetime(2024, 1, 1)}}, "custom_field"),
}


@pytest.mark.parametrize("change, named", BAD_CAMPAIGNS.values(), ids=BAD_CAMPAIGNS.keys())
def test_bad_campaign_input_is_refused_before_any_request(exotel_simulator, change, named):
    kwargs = {"name": "promo", "caller_id": "0801", "list_sids": ["L1"], "read_via_text": "Hi", **change}

    with pytest.raises(ExotelValidationError, match=named):
        make_hook().create_campaign(**kwargs)

    assert exotel_simulator.requests == []


def test_a_create_whose_answer_is_lost_after_it_was_applied_is_never_sent_again(exotel_simulator):
    audience(exotel_simulator, 3)
    exotel_simulator.add_faults("reset_after_apply", method="POST", path_endswith="/campaigns")

    campaign = create(make_hook(retry_limit=5))

    assert len(requests_to(exotel_simulator, "POST")) == 1
    assert list(exotel_simulator.campaigns.runs) == [campaign["id"]]
    assert campaign["name"] == "promo"


@pytest.mark.parametrize("fault", ["reset", "503", "502_html"])
def test_a_create_that_failed_ambiguously_and_made_nothing_is_an_error_not_a_resend(exotel_simulator, fault):
    audience(exotel_simulator, 3)
    exotel_simulator.add_faults(fault, method="POST", path_endswith="/campaigns")

    with pytest.raises(ExotelRequestError, match="not re-sent"):
        create(make_hook(retry_limit=5))

    assert len(requests_to(exotel_simulator, "POST")) == 1
    assert exotel_simulator.campaigns.runs == {}


def test_a_garbled_answer_after_the_campaign_was_made_returns_that_campaign(exotel_simulator):
    audience(exotel_simulator, 3)
    exotel_simulator.add_faults("truncated_json", method="POST", path_endswith="/campaigns")

    campaign = create(make_hook())

    assert len(requests_to(exotel_simulator, "POST")) == 1
    assert list(exotel_simulator.campaigns.runs) == [campaign["id"]]


def test_a_lost_create_is_not_matched_to_an_older_campaign_of_the_same_name(exotel_simulator):
    audience(exotel_simulator, 3)
    hook = make_hook()
    old = create(hook)
    exotel_simulator.clock.advance(3600)
    exotel_simulator.add_faults("reset", method="POST", path_endswith="/campaigns")

    with pytest.raises(ExotelRequestError, match="no campaign named 'promo' was created since"):
        create(hook)

    assert list(exotel_simulator.campaigns.runs) == [old["id"]]


def test_a_429_before_the_create_was_accepted_is_waited_out_and_sent_again(exotel_simulator):
    audience(exotel_simulator, 3)
    exotel_simulator.add_faults("429", method="POST", path_endswith="/campaigns", retry_after=0)

    campaign = create(make_hook())

    assert [r.status for r in requests_to(exotel_simulator, "POST")] == [429, 200]
    assert list(exotel_simulator.campaigns.runs) == [campaign["id"]]


def test_a_refused_create_says_why(exotel_simulator):
    with pytest.raises(ExotelRequestError, match=r"List.* not found") as info:
        create(make_hook(), list_sids=["nope"])
    assert info.value.status == 400
    assert len(requests_to(exotel_simulator, "POST")) == 1


# ------------------------------------------------------------------------------------ read
def test_an_unknown_campaign_is_a_404(exotel_simulator):
    with pytest.raises(ExotelRequestError) as info:
        make_hook().get_campaign("no-such-campaign")
    assert info.value.status == 404


def test_find_campaign_matches_the_exact_name_and_takes_the_newest(exotel_simulator):
    audience(exotel_simulator, 2)
    hook = make_hook()
    create(hook, "promo-may")
    first = create(hook, "promo")
    exotel_simulator.clock.advance(60)
    second = create(hook, "promo")
    create(hook, "big promo")

    assert hook.find_campaign("promo")["id"] == second["id"] != first["id"]
    assert hook.find_campaign("prom") is None
    assert requests_to(exotel_simulator, "GET")[-1].query["name"] == "prom"  # filtered by Exotel too


def test_iter_campaigns_pages_by_20_and_filters_by_name_and_status(exotel_simulator):
    audience(exotel_simulator, 1)
    hook = make_hook()
    made = [create(hook, f"wave-{i}", send_at="2099-01-01T00:00:00Z") for i in range(45)]
    hook.campaign_action(made[3]["id"], "pause")

    everything = list(hook.iter_campaigns())
    paused = list(hook.iter_campaigns(status="Paused"))
    named = list(hook.iter_campaigns(name="wave-1", max_records=5))

    assert [c["id"] for c in everything] == [c["id"] for c in made]
    assert all(int(r.query["limit"]) <= 20 for r in requests_to(exotel_simulator, "GET"))
    assert [c["id"] for c in paused] == [made[3]["id"]] and paused[0]["status"] == "paused"
    assert len(named) == 5 and all("wave-1" in c["name"] for c in named)
    with pytest.raises(ExotelValidationError, match="status"):
        hook.iter_campaigns(status="sleeping")


# ------------------------------------------------------------------------------------ control
def test_pause_resume_complete_archive_follow_the_status_machine(exotel_simulator):
    audience(exotel_simulator, 10)
    hook = make_hook()
    campaign = create(hook)
    exotel_simulator.clock.advance(2)  # three calls made at 1 a second

    paused = hook.campaign_action(campaign["id"], "pause")
    exotel_simulator.clock.advance(100)  # paused time does not dial
    assert hook.get_campaign(campaign["id"])["stats"]["dialled"] == 3
    completed = hook.campaign_action(campaign["id"], "complete")
    archived = hook.campaign_action(campaign["id"], "archive")

    assert (paused["status"], completed["status"], archived["status"]) == ("paused", "completed", "archived")
    details = list(hook.iter_campaign_call_details(campaign["id"]))
    assert len(details) == 10
    assert [d["status"] for d in details[3:]] == ["failed"] * 7  # complete marks the rest failed


@pytest.mark.parametrize(
    "setup, action, current",
    [([], "resume", "in-progress"), ([], "archive", "in-progress"), (["pause"], "pause", "paused")],
)
def test_a_refused_action_says_the_campaign_s_current_status(exotel_simulator, setup, action, current):
    audience(exotel_simulator, 10)
    hook = make_hook()
    campaign = create(hook)
    for step in setup:
        hook.campaign_action(campaign["id"], step)

    with pytest.raises(ExotelRequestError, match=f"its status is {current}") as info:
        hook.campaign_action(campaign["id"], action)

    assert info.value.status == 400
    assert len(requests_to(exotel_simulator, "PUT", campaign["id"])) == len(setup) + 1  # never retried


def test_an_unknown_action_is_refused_before_any_request(exotel_simulator):
    with pytest.raises(ExotelValidationError, match="action"):
        make_hook().campaign_action("c1", "restart")
    assert exotel_simulator.requests == []


def test_an_action_whose_answer_was_lost_is_read_back_not_sent_again(exotel_simulator):
    audience(exotel_simulator, 10)
    hook = make_hook()
    campaign = create(hook)
    exotel_simulator.add_faults("reset_after_apply", method="PUT")

    paused = hook.campaign_action(campaign["id"], "pause")

    assert paused["status"] == "paused"
    assert len(requests_to(exotel_simulator, "PUT", campaign["id"])) == 1


def test_delete_works_only_before_the_start_and_says_false_for_an_unknown_campaign(exotel_simulator):
    audience(exotel_simulator, 3)
    hook = make_hook()
    later = create(hook, "later", send_at="2099-01-01T00:00:00Z")
    running = create(hook, "now")

    assert hook.delete_campaign(later["id"]) is True
    assert hook.get_campaign(later["id"])["status"] == "deleted"
    assert hook.delete_campaign("no-such-campaign") is False
    with pytest.raises(ExotelRequestError, match="its status is in-progress"):
        hook.delete_campaign(running["id"])


# ------------------------------------------------------------------------------------ call details
def test_call_details_rows_appended_while_paging_are_each_read_exactly_once(exotel_simulator):
    contacts = audience(exotel_simulator, 130)
    hook = make_hook(concurrency=1)
    campaign = create(hook)
    exotel_simulator.clock.advance(50)  # 51 calls made so far

    def dial_more(sim, request):  # every page read lets the campaign make 7 more calls
        if request.path.endswith("/call-details"):
            sim.clock.advance(7)

    exotel_simulator.before_request = dial_more
    rows = list(hook.iter_campaign_call_details(campaign["id"]))

    numbers = [r["number"] for r in rows]
    assert len(set(r["call_sid"] for r in rows)) == len(rows)
    assert numbers == [c["number"] for c in contacts][: len(rows)]
    assert len(rows) > 20
    assert all(int(r.query["limit"]) <= 20 for r in requests_to(exotel_simulator, "GET", "/call-details"))
    assert [r["status"] for r in rows] == [outcome_of(n) for n in numbers]
    assert "sid" not in rows[0]  # rows are Exotel's, as sent


def test_call_details_filter_by_outcome_and_normalise_statuses(exotel_simulator):
    contacts = audience(exotel_simulator, 40)
    hook = make_hook()
    campaign = create(hook)
    exotel_simulator.campaigns.finish(campaign["id"])

    no_answer = list(hook.iter_campaign_call_details(campaign["id"], status="NoAnswer"))

    expected = [c["number"] for c in contacts if outcome_of(c["number"]) == "no-answer"]
    assert [r["number"] for r in no_answer] == expected and expected
    assert requests_to(exotel_simulator, "GET", "/call-details")[-1].query["status"] == "no-answer"
    assert hook.get_campaign(campaign["id"])["stats"]["no-answer"] == len(expected)
