"""ExotelCallsHook against the simulator's Voice v1 Calls: time zone, windows, cursors, budgets."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_exotel.exceptions import (
    ExotelRateLimitError,
    ExotelRequestError,
    ExotelValidationError,
)
from airflow_provider_exotel.hooks.calls import ExotelCallsHook
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

IST = timedelta(hours=5, minutes=30)


def _midnight(days_ago: int) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def _local(moment: datetime, offset: timedelta = IST) -> str:
    return (moment + offset).strftime("%Y-%m-%d %H:%M:%S")


def _list_requests(sim):
    return [r for r in sim.requests if r.path.endswith("/Calls.json")]


@pytest.fixture
def hook(exotel_simulator):
    h = ExotelCallsHook(retry_delay=0.0)
    yield h
    h.close()


def test_interval_is_sent_in_the_account_time_zone_with_an_inclusive_lte(exotel_simulator, hook):
    start = _midnight(3)
    end = start + timedelta(days=1)
    sim = exotel_simulator
    first = sim.add_call_record(date_created=start, sid="at-start")["Sid"]
    sim.add_call_record(date_created=end - timedelta(seconds=1), sid="last-second")
    sim.add_call_record(date_created=end, sid="at-end")
    sim.add_call_record(date_created=start - timedelta(seconds=1), sid="before")

    calls = list(hook.iter_calls(created_from=start, created_to=end))

    assert [c["Sid"] for c in calls] == [first, "last-second"]
    (request,) = _list_requests(sim)
    assert request.query["DateCreated"] == f"gte:{_local(start)};lte:{_local(end - timedelta(seconds=1))}"
    assert request.query["PageSize"] == "100"
    assert request.query["SortBy"] == "DateCreated:asc"
    assert calls[0]["DateCreated"] == _local(start)  # no offset: the account's wall clock


def test_iso_strings_and_naive_datetimes_are_utc(exotel_simulator, hook):
    start = _midnight(2)
    list(
        hook.iter_calls(
            created_from=start.replace(tzinfo=None), created_to=(start + timedelta(hours=1)).isoformat()
        )
    )
    (request,) = _list_requests(exotel_simulator)
    assert request.query["DateCreated"].startswith(f"gte:{_local(start)};")


def test_connection_timezone_extra_is_the_account_zone(exotel_simulator_factory, monkeypatch):
    sim = exotel_simulator_factory()
    sim.calls_timezone = "America/New_York"
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", sim.connection_json(timezone="America/New_York"))
    start = _midnight(2)
    sim.add_call_record(date_created=start, sid="a")
    hook = ExotelCallsHook()
    calls = list(hook.iter_calls(created_from=start, created_to=start + timedelta(hours=1)))
    assert [c["Sid"] for c in calls] == ["a"]
    offset = start.astimezone(ZoneInfo("America/New_York")).utcoffset()
    assert _list_requests(sim)[0].query["DateCreated"].startswith(f"gte:{_local(start, offset)};")
    assert hook.call_created_at(calls[0]) == start


def test_a_bad_timezone_is_a_clear_error_before_any_request(exotel_simulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXOTEL_DEFAULT", exotel_simulator.connection_json(timezone="Mars/Olympus")
    )
    with pytest.raises(ExotelValidationError, match=r"timezone.*Mars/Olympus.*IANA"):
        list(ExotelCallsHook().iter_calls(created_from=_midnight(2), created_to=_midnight(1)))
    assert exotel_simulator.request_count() == 0


def test_intervals_over_a_month_are_split_into_contiguous_windows_oldest_first(exotel_simulator, hook):
    sim = exotel_simulator
    start = _midnight(100)
    end = start + timedelta(days=70)
    seeded = sim.seed_calls(900, start=start, end=end)

    calls = list(hook.iter_calls(created_from=start, created_to=end))

    requests = _list_requests(sim)
    windows = [r.query["DateCreated"] for r in requests if "After" not in r.query]
    assert windows == [
        f"gte:{_local(start)};lte:{_local(start + timedelta(days=31, seconds=-1))}",
        f"gte:{_local(start + timedelta(days=31))};lte:{_local(start + timedelta(days=62, seconds=-1))}",
        f"gte:{_local(start + timedelta(days=62))};lte:{_local(end - timedelta(seconds=1))}",
    ]
    assert sorted(c["Sid"] for c in calls) == sorted(c["Sid"] for c in seeded)
    assert [c["DateCreated"] for c in calls] == sorted(c["DateCreated"] for c in calls)
    # the minimum: one request per full page plus the last (partial) page of each window
    per_window = [
        sum(1 for c in calls if w.split(";")[0][4:] <= c["DateCreated"] <= w.split(";")[1][4:])
        for w in windows
    ]
    assert len(requests) == sum(n // 100 + 1 for n in per_window)


def test_created_from_more_than_six_months_back_is_refused(exotel_simulator, hook):
    with pytest.raises(ExotelValidationError, match=r"6 months \(183 days\)"):
        hook.iter_calls(created_from=datetime.now(UTC) - timedelta(days=184), created_to=_midnight(170))
    assert exotel_simulator.request_count() == 0
    assert (
        list(hook.iter_calls(created_from=datetime.now(UTC) - timedelta(days=182), created_to=_midnight(170)))
        == []
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"created_from": None}, "created_from is required"),
        ({"created_to": "yesterday"}, "created_to"),
        ({"status": "answered"}, "status must be one of"),
        ({"direction": ["inbound", "sideways"]}, "direction must be one of"),
        ({"max_records": -1}, "max_records"),
        ({"created_from": _midnight(1), "created_to": _midnight(2)}, "must not be later"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(exotel_simulator, hook, kwargs, match):
    args = {"created_from": _midnight(2), "created_to": _midnight(1), **kwargs}
    with pytest.raises(ExotelValidationError, match=match):
        hook.iter_calls(**args)
    assert exotel_simulator.request_count() == 0


def test_filters_are_sent_and_applied(exotel_simulator, hook):
    sim = exotel_simulator
    start = _midnight(2)
    sim.add_call_record(date_created=start, status="busy", direction="inbound", duration=0, sid="x")
    sim.add_call_record(date_created=start, status="completed", direction="inbound", sid="y")
    sim.add_call_record(date_created=start, status="busy", direction="outbound-api", duration=0, sid="z")
    calls = list(
        hook.iter_calls(
            created_from=start, created_to=start + timedelta(hours=1), status="busy", direction=["Inbound"]
        )
    )
    assert [c["Sid"] for c in calls] == ["x"]
    assert _list_requests(sim)[0].query["Status"] == "busy"
    assert _list_requests(sim)[0].query["Direction"] == "inbound"


def test_equal_bounds_select_nothing_without_a_request(exotel_simulator, hook):
    assert list(hook.iter_calls(created_from=_midnight(2), created_to=_midnight(2))) == []
    assert exotel_simulator.request_count() == 0


def test_the_cursor_chain_is_followed_and_a_repeated_page_is_not_yielded_twice(exotel_simulator, hook):
    sim = exotel_simulator
    start = _midnight(2)
    sim.seed_calls(350, start=start, end=start + timedelta(hours=20))
    sim.add_calls_faults("none", "repeat_page")  # the second answer repeats the first page

    calls = list(hook.iter_calls(created_from=start, created_to=start + timedelta(days=1)))

    assert len(calls) == 350 == len({c["Sid"] for c in calls})
    requests = _list_requests(sim)
    assert len(requests) == 5  # 4 pages + the repeated one
    assert [("After" in r.query) for r in requests] == [False, True, True, True, True]
    assert requests[1].query["After"] == requests[2].query["After"]  # same cursor asked again


@pytest.mark.parametrize("kind", ["short_page", "no_metadata", "outside_window"])
def test_a_page_that_cannot_be_right_is_retried(exotel_simulator, hook, kind):
    sim = exotel_simulator
    start = _midnight(2)
    sim.seed_calls(250, start=start, end=start + timedelta(hours=20))
    sim.add_calls_faults("none", kind)

    calls = list(hook.iter_calls(created_from=start, created_to=start + timedelta(days=1)))

    assert len(calls) == 250 == len({c["Sid"] for c in calls})
    assert len(_list_requests(sim)) == 4  # 3 pages + one retry


def test_a_garbled_body_is_retried(exotel_simulator, hook):
    sim = exotel_simulator
    start = _midnight(2)
    sim.seed_calls(150, start=start, end=start + timedelta(hours=20))
    sim.add_faults("truncated_json", path_endswith="Calls.json")
    assert len(list(hook.iter_calls(created_from=start, created_to=start + timedelta(days=1)))) == 150
    assert len(_list_requests(sim)) == 3


def test_a_persistently_wrong_page_fails_instead_of_a_partial_result(exotel_simulator):
    sim = exotel_simulator
    start = _midnight(2)
    sim.seed_calls(150, start=start, end=start + timedelta(hours=20))
    sim.add_calls_faults("short_page", "short_page", "short_page")
    hook = ExotelCallsHook(retry_delay=0.0, retry_limit=2)
    with pytest.raises(ExotelRequestError, match="PageSize 100"):
        list(hook.iter_calls(created_from=start, created_to=start + timedelta(days=1)))


def test_max_records_stops_early(exotel_simulator, hook):
    start = _midnight(2)
    exotel_simulator.seed_calls(250, start=start, end=start + timedelta(hours=20))
    calls = list(hook.iter_calls(created_from=start, created_to=start + timedelta(days=1), max_records=120))
    assert len(calls) == 120
    assert len(_list_requests(exotel_simulator)) == 2


def test_get_call_and_unknown_call(exotel_simulator, hook):
    record = exotel_simulator.add_call_record(date_created=_midnight(1), sid="abc123", duration=17)
    assert hook.get_call("abc123") == record
    assert exotel_simulator.requests[-1].path == "/v1/Accounts/acct1/Calls/abc123.json"
    with pytest.raises(ExotelRequestError) as err:
        hook.get_call("nope")
    assert err.value.status == 404
    with pytest.raises(ExotelValidationError, match="call_sid"):
        hook.get_call("../x")


def test_a_spent_campaign_budget_does_not_slow_the_voice_family(exotel_simulator):
    sim = exotel_simulator
    campaign_window = sim.set_account_limit(1, window=60.0)  # the campaign family: spent below
    voice_window = sim.set_voice_limit(200, window=60.0)
    contacts = ExotelContactsHook(rate_limit_wait=0.0)
    contacts.count_contacts()  # the campaign window's only request
    with pytest.raises(ExotelRateLimitError):
        ExotelContactsHook(rate_limit_wait=0.0).count_contacts()  # a 429 from the server
    with pytest.raises(ExotelRateLimitError):
        contacts.count_contacts()  # X-RateLimit-Remaining is 0: not even sent
    start = _midnight(2)
    sim.seed_calls(300, start=start, end=start + timedelta(hours=20))

    # rate_limit_wait=0: any wait for a spent budget would raise instead of slowing down
    calls = list(
        ExotelCallsHook(rate_limit_wait=0.0).iter_calls(
            created_from=start, created_to=start + timedelta(days=1)
        )
    )

    assert len(calls) == 300
    assert voice_window.admitted == 3 and voice_window.refused == 0
    assert campaign_window.admitted == 1 and campaign_window.refused == 1  # voice never counted there
    assert all(r.status == 200 for r in _list_requests(sim))


@settings(max_examples=12, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(cuts=st.lists(st.integers(min_value=1, max_value=3 * 86400 - 1), min_size=1, max_size=6, unique=True))
def test_consecutive_intervals_export_every_call_exactly_once(exotel_simulator_factory, monkeypatch, cuts):
    sim = exotel_simulator_factory(seed=len(cuts))
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", sim.connection_json())
    start = _midnight(5)
    sim.seed_calls(300, start=start, end=start + timedelta(days=3))
    bounds = [start] + [start + timedelta(seconds=c) for c in sorted(cuts)] + [start + timedelta(days=3)]
    for moment in bounds:  # calls exactly on every boundary
        sim.add_call_record(date_created=moment)
    hook = ExotelCallsHook()
    seen: list[str] = []
    for low, high in itertools.pairwise(bounds):
        seen += [c["Sid"] for c in hook.iter_calls(created_from=low, created_to=high)]
    expected = [
        c["Sid"] for c in sim.call_records() if _local(start) <= c["DateCreated"] < _local(bounds[-1])
    ]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen)) == 300 + len(bounds) - 1
    sim.stop()


def test_a_far_future_created_to_requests_no_window_beyond_tomorrow(exotel_simulator, hook):
    exotel_simulator.add_call_record(date_created=_midnight(2), sid="c")
    calls = list(hook.iter_calls(created_from=_midnight(5), created_to="9999-12-30T00:00:00Z"))
    assert [c["Sid"] for c in calls] == ["c"]
    assert len(_list_requests(exotel_simulator)) == 1


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example/v1/Accounts/acct1/Calls.json?After=x",
        "/v1/Accounts/other/Calls.json?After=x",
        "/v2/accounts/acct1/contacts?offset=20",
    ],
)
def test_a_next_page_uri_elsewhere_is_refused(uri):
    from airflow_provider_exotel.hooks._calls import next_page_params

    with pytest.raises(ExotelRequestError, match="NextPageUri"):
        next_page_params(uri, "http://127.0.0.1:8089", "acct1")
    assert next_page_params("/v1/Accounts/acct1/Calls?After=x&PageSize=50", "http://h", "acct1") == {
        "After": "x",
        "PageSize": "50",
    }


def test_a_cursor_chain_that_does_not_advance_fails(exotel_simulator, hook):
    start = _midnight(2)
    exotel_simulator.seed_calls(250, start=start, end=start + timedelta(hours=20))
    exotel_simulator.add_calls_faults("none", "repeat_page", "repeat_page", "repeat_page")
    with pytest.raises(ExotelRequestError, match="does not advance"):
        list(hook.iter_calls(created_from=start, created_to=start + timedelta(days=1)))
    assert len(_list_requests(exotel_simulator)) == 4
