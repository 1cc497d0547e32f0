"""The simulator's Voice v1 Calls: Exotel's quirks, its own budget, the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from airflow_provider_exotel.testing.__main__ import _parser
from airflow_provider_exotel.testing._calls_facade import apply_calls_arguments


def _get(sim, path, **params):
    return requests.get(
        f"{sim.url}/v1/Accounts/{sim.account_sid}/{path}", params=params, auth=sim.auth, timeout=10
    )


def _ist(moment: datetime) -> str:
    return (moment + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture
def sim(exotel_simulator):
    return exotel_simulator


def test_without_json_the_answer_is_xml(sim):
    sim.add_call_record(date_created=datetime.now(UTC) - timedelta(hours=2), sid="c1")
    listed = _get(sim, "Calls")
    one = _get(sim, "Calls/c1")
    assert listed.headers["Content-Type"].startswith("application/xml")
    assert "<TwilioResponse>" in listed.text and "<Sid>c1</Sid>" in listed.text
    assert one.headers["Content-Type"].startswith("application/xml") and "<Call><Sid>c1</Sid>" in one.text
    assert _get(sim, "Calls.json").headers["Content-Type"].startswith("application/json")


def test_ranges_over_a_month_and_older_than_six_months_are_refused_in_v1_shape(sim):
    now = datetime.now(UTC)
    too_long = _get(sim, "Calls.json", DateCreated=f"gte:{_ist(now - timedelta(days=40))};lte:{_ist(now)}")
    too_old = _get(
        sim,
        "Calls.json",
        DateCreated=f"gte:{_ist(now - timedelta(days=190))};lte:{_ist(now - timedelta(days=180))}",
    )
    month = _get(sim, "Calls.json", DateCreated=f"gte:{_ist(now - timedelta(days=31))};lte:{_ist(now)}")
    assert too_long.status_code == too_old.status_code == 400
    assert too_long.json()["RestException"]["Message"] == "DateCreated range cannot be more than 1 month"
    assert "6 months" in too_old.json()["RestException"]["Message"]
    assert month.status_code == 200


@pytest.mark.parametrize(
    "params",
    [{"PageSize": "101"}, {"PageSize": "0"}, {"SortBy": "Sid:asc"}, {"Status": "ringing"}, {"After": "@@"}],
)
def test_bad_parameters_are_a_400(sim, params):
    assert _get(sim, "Calls.json", **params).status_code == 400


def test_the_cursor_chain_lists_every_call_once_in_either_order(sim):
    now = datetime.now(UTC)
    seeded = {c["Sid"] for c in sim.seed_calls(230, days=3)}
    window = f"gte:{_ist(now - timedelta(days=4))};lte:{_ist(now)}"
    for order in ("DateCreated:asc", "DateCreated:desc"):
        seen: list[dict] = []
        answer = _get(sim, "Calls.json", DateCreated=window, PageSize=100, SortBy=order).json()
        pages = 1
        while True:
            seen += answer["Calls"]
            assert answer["Metadata"]["Total"] == 230
            if answer["Metadata"]["NextPageUri"] is None:
                break
            answer = requests.get(
                sim.url + answer["Metadata"]["NextPageUri"], auth=sim.auth, timeout=10
            ).json()
            pages += 1
        assert pages == 3
        assert {c["Sid"] for c in seen} == seeded and len(seen) == 230
        stamps = [c["DateCreated"] for c in seen]
        assert stamps == sorted(stamps, reverse=order.endswith("desc"))


def test_default_page_size_is_50_and_filters_apply(sim):
    sim.seed_calls(120, days=2)
    answer = _get(sim, "Calls.json", Status="busy,failed", Direction="inbound").json()
    assert answer["Metadata"]["PageSize"] == 50
    assert answer["Calls"] and all(
        c["Status"] in ("busy", "failed") and c["Direction"] == "inbound" for c in answer["Calls"]
    )


def test_calls_in_progress_are_hidden_and_late_fields_fill_in_on_the_sim_clock(sim):
    sim.late_fields_delay = 120
    now = sim.clock.now()
    sim.add_call_record(date_created=now - 10, duration=60, sid="live", ring_seconds=0)
    listed = lambda: [c["Sid"] for c in _get(sim, "Calls.json").json()["Calls"]]  # noqa: E731

    assert listed() == []
    assert _get(sim, "Calls/live.json").json()["Call"]["Status"] == "in-progress"

    sim.clock.advance(55)  # ended 5 s ago: listed, late fields still empty
    call = _get(sim, "Calls/live.json").json()["Call"]
    assert listed() == ["live"]
    assert (call["Status"], call["Duration"], call["Price"], call["EndTime"]) == (
        "completed",
        None,
        None,
        None,
    )

    sim.clock.advance(120)  # 125 s after the end: settled
    call = _get(sim, "Calls/live.json").json()["Call"]
    assert call["Duration"] == "60" and call["Price"] is not None
    assert call["EndTime"] == datetime.fromtimestamp(now + 50, UTC).astimezone(
        ZoneInfo("Asia/Kolkata")
    ).strftime("%Y-%m-%d %H:%M:%S")


def test_timestamps_have_no_offset_and_follow_the_account_zone(sim):
    moment = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)  # midnight in India
    sim.clock.advance(max(0.0, moment.timestamp() + 3600 - sim.clock.now()))
    sim.add_call_record(date_created=moment, sid="m")
    assert _get(sim, "Calls/m.json").json()["Call"]["DateCreated"] == "2026-12-02 00:00:00"
    sim.calls_timezone = "UTC"
    assert _get(sim, "Calls/m.json").json()["Call"]["DateCreated"] == "2026-12-01 18:30:00"


def test_the_voice_budget_is_its_own_family(sim):
    voice = sim.set_voice_limit(2, window=60)
    sim.set_account_limit(1, window=60)
    statuses = [_get(sim, "Calls.json").status_code for _ in range(3)]
    contacts = requests.get(f"{sim.base_url}/contacts", auth=sim.auth, timeout=10)
    assert statuses == [200, 200, 429] and contacts.status_code == 200
    assert voice.refused == 1 and sim.account_limit.admitted == 1
    assert _get(sim, "Calls.json").headers["X-RateLimit-Limit"] == "2"
    assert sim.set_voice_limit().limit == 200


def test_unknown_call_is_a_404(sim):
    answer = _get(sim, "Calls/nope.json")
    assert answer.status_code == 404 and answer.json()["RestException"]["Status"] == 404


def test_cli_options_seed_calls_and_set_the_zone_and_budget(sim):
    args = _parser().parse_args(
        ["--calls", "40", "--calls-days", "2", "--calls-timezone", "UTC", "--voice-limit", "5"]
    )
    apply_calls_arguments(sim, args)
    answer = _get(sim, "Calls.json")
    assert answer.json()["Metadata"]["Total"] == 40
    assert answer.headers["X-RateLimit-Limit"] == "5"
    assert sim.calls_timezone == "UTC"
