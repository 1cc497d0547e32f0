"""ExotelContactsHook against the bundled simulator, over real sockets."""

from __future__ import annotations

import base64
import json
import logging
import math

import pytest
import requests
from support import make_hook

from airflow_provider_exotel.exceptions import (
    ExotelAuthError,
    ExotelError,
    ExotelRequestError,
    ExotelValidationError,
)
from airflow_provider_exotel.hooks.contacts import BulkUpdateResult, ExotelContactsHook


def get_pages(sim, suffix="contacts"):
    return [r for r in sim.requests if r.method == "GET" and r.path.endswith(suffix)]


# ------------------------------------------------------------------------------------------ paging
@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("total", [0, 1, 19, 20, 21, 40, 137])
def test_paging_returns_every_contact_once_in_server_order(exotel_simulator, total, concurrency):
    seeded = exotel_simulator.seed_contacts(total)
    hook = make_hook(concurrency=concurrency)

    got = list(hook.iter_contacts())

    assert [c["sid"] for c in got] == [c["sid"] for c in seeded]
    assert got == seeded
    pages = get_pages(exotel_simulator)
    # consecutive pages overlap by one contact (the seam that reveals drift)
    assert len(pages) == max(1, math.ceil((total - 1) / 19))
    assert all(int(r.query["limit"]) <= 20 for r in pages)
    assert sorted(int(r.query["offset"]) for r in pages) == list(range(0, max(total - 1, 1), 19))


def test_paging_is_lazy_and_stops_at_max_records(exotel_simulator):
    exotel_simulator.seed_contacts(100)
    hook = make_hook(concurrency=4)

    iterator = hook.iter_contacts(max_records=45)
    assert exotel_simulator.request_count() == 0  # nothing sent before iteration starts
    got = list(iterator)

    assert len(got) == 45
    pages = get_pages(exotel_simulator)
    assert sorted((int(r.query["offset"]), int(r.query["limit"])) for r in pages) == [
        (0, 20),
        (19, 20),
        (38, 7),
    ]


def test_filters_reach_the_server_as_query_parameters(exotel_simulator):
    exotel_simulator.seed_contacts(30)
    exotel_simulator.create_list("listA", [c["sid"] for c in exotel_simulator.contacts[:5]])
    exotel_simulator.create_list("listB", [c["sid"] for c in exotel_simulator.contacts[10:12]])
    hook = make_hook()

    got = list(
        hook.iter_contacts(
            name="First", sort_by="date_created:desc", list_sids=["listA", "listB"], show_list=True
        )
    )

    assert len(got) == 7
    query = get_pages(exotel_simulator)[0].query
    assert query["name"] == "First"
    assert query["sort_by"] == "date_created:desc"
    assert query["list_sids"] == "listA,listB"
    assert query["filter"] == "show_list"
    assert [c["date_created"] for c in got] == sorted((c["date_created"] for c in got), reverse=True)


def test_list_contacts_are_paged_from_the_list_endpoint(exotel_simulator):
    contacts = exotel_simulator.seed_contacts(60)
    members = [c["sid"] for c in contacts[5:50]]
    exotel_simulator.create_list("list7", members)
    hook = make_hook(concurrency=3)

    got = [c["sid"] for c in hook.iter_list_contacts("list7")]

    assert got == members
    pages = get_pages(exotel_simulator, "lists/list7/contacts")
    assert len(pages) == 3 and exotel_simulator.request_count() == 3


def test_count_contacts_uses_one_request(exotel_simulator):
    contacts = exotel_simulator.seed_contacts(57)
    exotel_simulator.create_list("l1", [c["sid"] for c in contacts[:9]])
    hook = make_hook()

    assert hook.count_contacts() == 57
    assert hook.count_contacts(list_sid="l1") == 9
    assert hook.count_contacts(list_sids=["l1"]) == 9
    assert exotel_simulator.request_count() == 3


def test_requests_in_flight_never_exceed_concurrency(exotel_simulator):
    exotel_simulator.seed_contacts(400)
    exotel_simulator.latency = 0.02
    hook = make_hook(concurrency=3)

    assert len(list(hook.iter_contacts())) == 400

    assert 2 <= exotel_simulator.max_in_flight <= 3


def test_one_pooled_session_per_hook(exotel_simulator):
    exotel_simulator.seed_contacts(100)
    hook = make_hook(concurrency=2)
    session = hook.get_conn()
    list(hook.iter_contacts())
    hook.count_contacts()
    assert hook.get_conn() is session


# ------------------------------------------------------------------------------------------ faults
FAULT_KINDS = ["429", "500", "502_html", "503", "504", "reset", "slow", "truncated_json", "html_200"]


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_every_fault_kind_is_survived_with_the_exact_result(exotel_simulator, kind, concurrency):
    from airflow_provider_exotel.testing import Fault

    seeded = exotel_simulator.seed_contacts(95)
    # first page, a middle page, and the last page each fail once
    fault = Fault(kind, retry_after=0, delay=2.0) if kind in ("429", "slow") else Fault(kind)
    exotel_simulator.add_faults(fault, method="GET")
    hook = make_hook(concurrency=concurrency, timeout=1.0)
    first = hook.iter_contacts()
    got = [next(first)]
    exotel_simulator.add_faults(fault, fault, method="GET")
    got.extend(first)

    assert [c["sid"] for c in got] == [c["sid"] for c in seeded]
    applied = [r for r in exotel_simulator.requests if r.fault]
    assert len(applied) == 3
    assert len(get_pages(exotel_simulator)) == 5 + 3


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_count_survives_every_fault_kind(exotel_simulator, kind):
    from airflow_provider_exotel.testing import Fault

    exotel_simulator.seed_contacts(33)
    exotel_simulator.add_faults(Fault(kind, retry_after=0, delay=2.0), Fault(kind, retry_after=0, delay=2.0))
    assert make_hook(timeout=1.0).count_contacts() == 33
    assert exotel_simulator.request_count() == 3


def test_retries_run_out_with_a_clear_error(exotel_simulator):
    exotel_simulator.seed_contacts(5)
    exotel_simulator.fail_every_request("503")
    hook = make_hook(retry_limit=2)

    with pytest.raises(ExotelRequestError) as info:
        hook.count_contacts()

    assert exotel_simulator.request_count() == 3
    assert info.value.status == 503
    assert "HTTP 503" in str(info.value) and "3 attempts" in str(info.value)


def test_retry_after_is_honoured(exotel_simulator, caplog, capfd):
    from airflow_provider_exotel.testing import Fault

    exotel_simulator.seed_contacts(3)
    exotel_simulator.add_faults(Fault("429", retry_after=1))
    caplog.set_level(logging.WARNING)

    assert make_hook(retry_delay=0.0).count_contacts() == 3
    logs = caplog.text + "".join(capfd.readouterr())  # Airflow 3 logs through structlog to stdout
    assert "HTTP 429" in logs and "waiting 1.0 s" in logs


def test_wrong_token_fails_fast_with_auth_error(exotel_simulator_factory, monkeypatch):
    sim = exotel_simulator_factory()
    sim.seed_contacts(50)
    conn = json.loads(sim.connection_json())
    conn["password"] = "not-the-token"
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", json.dumps(conn))

    with pytest.raises(ExotelAuthError) as info:
        list(make_hook(retry_limit=5).iter_contacts())

    assert sim.request_count() == 1
    assert info.value.status == 401
    assert "not-the-token" not in str(info.value)


def test_unknown_list_is_not_retried(exotel_simulator):
    with pytest.raises(ExotelRequestError) as info:
        list(make_hook().iter_list_contacts("no-such-list"))
    assert info.value.status == 404
    assert exotel_simulator.request_count() == 1


def test_test_connection_reports_instead_of_raising(exotel_simulator, monkeypatch):
    exotel_simulator.seed_contacts(4)
    ok, message = make_hook().test_connection()
    assert ok and "4 contacts" in message

    conn = json.loads(exotel_simulator.connection_json())
    conn["password"] = "wrong"
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", json.dumps(conn))
    ok, message = make_hook().test_connection()
    assert not ok and "401" in message


# ------------------------------------------------------------------------------------------ rate
def test_requests_per_minute_spaces_requests_across_threads(exotel_simulator):
    exotel_simulator.seed_contacts(191)  # 10 pages overlapping by one contact
    hook = make_hook(concurrency=4, requests_per_minute=600)  # one request per 100 ms at most

    assert len(list(hook.iter_contacts())) == 191

    times = sorted(r.timestamp for r in exotel_simulator.requests)
    assert len(times) == 10
    # a lower bound only: a slow machine makes the gaps longer, never shorter
    assert times[-1] - times[0] >= 9 * 0.1 * 0.9


# ------------------------------------------------------------------------------------------ bulk
def test_bulk_update_of_12000_contacts_uses_requests_of_at_most_5000(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(12_000)
    updates = [{"sid": c["sid"], "tag": f"t{i % 7}"} for i, c in enumerate(seeded)]
    updates[10]["sid"] = "missing-1"
    updates[7000]["sid"] = "missing-2"

    result = make_hook(concurrency=2).bulk_update_contacts(updates)

    puts = [r for r in exotel_simulator.requests if r.method == "PUT"]
    assert sorted(r.batch_size for r in puts) == [2000, 5000, 5000]
    assert isinstance(result, BulkUpdateResult)
    assert result.total == 12_000 and not result.ok
    assert len(result.succeeded) == 11_998
    assert result.failed == [
        {"sid": "missing-1", "code": 404, "message": "Not Found: Contact not found"},
        {"sid": "missing-2", "code": 404, "message": "Not Found: Contact not found"},
    ]
    assert result.succeeded[:3] == [u["sid"] for u in updates[:3]]  # input order
    assert exotel_simulator.get_contact(seeded[5]["sid"])["tag"] == "t5"
    assert result.to_dict() == {
        "total": 12_000,
        "succeeded": 11_998,
        "failed": 2,
        "failed_sids": ["missing-1", "missing-2"],
    }


def test_bulk_update_respects_batch_size(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(25)
    result = make_hook(concurrency=1).bulk_update_contacts(
        [{"sid": c["sid"], "first_name": "X"} for c in seeded], batch_size=10
    )
    assert result.ok and len(result.succeeded) == 25
    assert [r.batch_size for r in exotel_simulator.requests] == [10, 10, 5]


def test_bulk_update_retries_a_lost_response_without_reporting_false_failures(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(30)
    exotel_simulator.add_faults("reset_after_apply", method="PUT")

    result = make_hook().bulk_update_contacts([{"sid": c["sid"], "email": "a@b.c"} for c in seeded])

    assert result.ok and len(result.succeeded) == 30
    assert exotel_simulator.request_count(method="PUT") == 2


def test_bulk_update_resends_only_transient_item_failures(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(10)
    exotel_simulator.add_item_faults({seeded[3]["sid"]: [500]})

    result = make_hook().bulk_update_contacts([{"sid": c["sid"], "tag": "x"} for c in seeded])

    assert result.ok
    puts = [r for r in exotel_simulator.requests if r.method == "PUT"]
    assert [r.batch_size for r in puts] == [10, 1]
    assert exotel_simulator.update_counts[seeded[3]["sid"]] == 1


def test_bulk_update_reports_a_batch_that_keeps_failing_as_failed_contacts(exotel_simulator):
    seeded = exotel_simulator.seed_contacts(6)
    exotel_simulator.fail_every_request("500")

    result = make_hook(retry_limit=1).bulk_update_contacts(
        [{"sid": c["sid"], "tag": "x"} for c in seeded], batch_size=3
    )

    assert result.total == 6 and result.succeeded == []
    assert {f["code"] for f in result.failed} == {500}
    assert [f["sid"] for f in result.failed] == [c["sid"] for c in seeded]


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ([{"first_name": "A"}], r"contacts\[3\] needs a non-empty string 'sid'"),
        ([{"sid": "ok", "tag": "x"}, "not-a-dict"], r"contacts\[4\] must be a mapping"),
        ([{"sid": "ok", "colour": "red"}], r"contacts\[3\] .*unknown field\(s\) \['colour'\]"),
        ([{"sid": "  "}], r"contacts\[3\] needs a non-empty string 'sid'"),
        ([{"sid": 12}], r"contacts\[3\] needs a non-empty string 'sid'"),
        ([{"sid": "a"}, {"sid": "a"}], r"contacts\[4\] repeats sid 'a'"),
    ],
)
def test_bad_bulk_input_raises_before_any_request(exotel_simulator, bad, expected):
    # three good contacts come first: nothing may be sent even though they are valid
    good = [{"sid": c["sid"], "tag": "x"} for c in exotel_simulator.seed_contacts(3)]
    with pytest.raises(ExotelValidationError, match=expected):
        make_hook().bulk_update_contacts(good + bad, batch_size=1)
    assert exotel_simulator.request_count() == 0


@pytest.mark.parametrize("contacts", [{"sid": "a"}, "a,b", None, 42])
def test_bulk_input_that_is_not_a_list_is_refused(exotel_simulator, contacts):
    with pytest.raises(ExotelValidationError, match="contacts must be a list"):
        make_hook().bulk_update_contacts(contacts)
    assert exotel_simulator.request_count() == 0


@pytest.mark.parametrize("batch_size", [0, 5001, -1, 2.5])
def test_batch_size_outside_1_to_5000_is_refused(exotel_simulator, batch_size):
    with pytest.raises(ExotelValidationError, match="batch_size"):
        make_hook().bulk_update_contacts([{"sid": "a"}], batch_size=batch_size)
    assert exotel_simulator.request_count() == 0


@pytest.mark.parametrize("list_sid", ["", "   ", None, 5])
def test_empty_list_sid_is_refused(exotel_simulator, list_sid):
    with pytest.raises(ExotelValidationError, match="list_sid"):
        make_hook().iter_list_contacts(list_sid)
    assert exotel_simulator.request_count() == 0


def test_negative_max_records_is_refused(exotel_simulator):
    with pytest.raises(ExotelValidationError, match="max_records"):
        make_hook().iter_contacts(max_records=-1)
    assert exotel_simulator.request_count() == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"retry_limit": -1}, "retry_limit"),
        ({"timeout": 0}, "timeout"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"retry_delay": -1}, "retry_delay"),
    ],
)
def test_bad_hook_arguments_are_named(kwargs, name):
    with pytest.raises(ExotelValidationError, match=name):
        ExotelContactsHook(**kwargs)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"extra": {}}, "account_sid"),
        ({"extra": {"account_sid": "  "}}, "account_sid"),
        ({"host": "", "extra": {"account_sid": "a", "region": "mars"}}, "region"),
        ({"host": "api.example.com", "port": None, "schema": "ftp"}, "schema"),
    ],
)
def test_bad_connection_is_a_clear_error_before_any_request(exotel_simulator, monkeypatch, change, expected):
    conn = json.loads(exotel_simulator.connection_json())
    conn.update(change)
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", json.dumps(conn))
    with pytest.raises(ExotelValidationError, match=expected):
        make_hook().count_contacts()
    assert exotel_simulator.request_count() == 0


# ------------------------------------------------------------------------------------------ connection
@pytest.mark.parametrize(
    ("conn", "base"),
    [
        ({"host": "", "schema": ""}, "https://api.exotel.com/v2/accounts/acc9"),
        (
            {"host": "", "extra": {"account_sid": "acc9", "region": "mumbai"}},
            "https://api.in.exotel.com/v2/accounts/acc9",
        ),
        ({"host": "api.in.exotel.com"}, "https://api.in.exotel.com/v2/accounts/acc9"),
        ({"host": "127.0.0.1", "port": 8089, "schema": "http"}, "http://127.0.0.1:8089/v2/accounts/acc9"),
        ({"host": "http://127.0.0.1:8089/"}, "http://127.0.0.1:8089/v2/accounts/acc9"),
    ],
)
def test_base_url_comes_from_host_region_and_schema(monkeypatch, conn, base):
    full = {
        "conn_type": "exotel",
        "login": "key-9",
        "password": "token-9",
        "extra": {"account_sid": "acc9"},
        **conn,
    }
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", json.dumps(full))
    hook = make_hook()
    hook.get_conn()
    assert hook.base_url == base


def test_connection_extras_are_never_sent_as_headers(exotel_simulator, monkeypatch):
    exotel_simulator.seed_contacts(2)
    conn = json.loads(exotel_simulator.connection_json())
    conn["extra"].update({"timeout": 7, "requests_per_minute": 6000, "X-Custom": "nope"})
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", json.dumps(conn))
    hook = ExotelContactsHook()  # defaults: the connection's timeout / budget apply
    hook.count_contacts()

    headers = {k.lower() for k in exotel_simulator.requests[0].headers}
    assert not headers & {"account_sid", "timeout", "requests_per_minute", "x-custom"}
    assert "authorization" in headers
    assert hook.timeout == 7.0 and hook.requests_per_minute == 6000.0
    assert (
        "k" not in exotel_simulator.requests[0].path and "test-token" not in exotel_simulator.requests[0].path
    )


# ------------------------------------------------------------------------------------------ secrets
@pytest.mark.parametrize("kind", ["500", "401"])
def test_echoed_headers_never_reach_logs_or_exceptions(
    exotel_simulator_factory, monkeypatch, caplog, capfd, kind
):
    sim = exotel_simulator_factory(
        api_key="KEY123", api_token="SUPER-SECRET-TOKEN", echo_headers_in_errors=True
    )
    sim.seed_contacts(3)
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", sim.connection_json())
    sim.fail_every_request(kind)
    caplog.set_level(logging.DEBUG)
    b64 = base64.b64encode(b"KEY123:SUPER-SECRET-TOKEN").decode()
    hook = make_hook(retry_limit=1)

    with pytest.raises(ExotelError) as info:
        list(hook.iter_contacts())
    with pytest.raises(ExotelError) as info_run:  # the inherited HttpHook.run path too
        hook.run("contacts")
    ok, message = hook.test_connection()
    assert not ok

    echoed = requests.get(
        f"{sim.url}/v2/accounts/acct1/contacts", auth=("KEY123", "SUPER-SECRET-TOKEN"), timeout=5
    )
    assert b64 in echoed.text  # the simulator really does echo the header, so the checks below can fail
    texts = [
        caplog.text,
        "".join(capfd.readouterr()),
        str(info.value),
        repr(info.value),
        str(info_run.value),
        message,
    ]
    for text in texts:
        assert "SUPER-SECRET-TOKEN" not in text
        assert b64 not in text


def test_a_slow_consumer_holds_only_a_bounded_window_of_pages(exotel_simulator):
    import time

    exotel_simulator.seed_contacts(2000)  # 100 pages
    hook = make_hook(concurrency=2)  # window: 2 x concurrency = 4 pages ahead
    iterator = hook.iter_contacts()
    consumed = [next(iterator) for _ in range(25)]  # into the second page, then stop consuming

    time.sleep(0.5)  # give the threads every chance to run ahead (the bound holds however long)

    assert len(consumed) == 25
    # first page + the pages in the window: never the whole set while the caller is not reading
    assert exotel_simulator.request_count() <= 1 + 4 + 1
    rest = list(iterator)
    assert len(consumed) + len(rest) == 2000
