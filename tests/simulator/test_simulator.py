"""Tests of the bundled Exotel simulator, over real sockets with ``requests``."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from support import simulator_cli, wait_for_ready_file

from airflow_provider_exotel.testing import ExotelSimulator, Fault, RecordedRequest

CONTACT_KEYS = {
    "sid",
    "date_created",
    "date_updated",
    "account_sid",
    "number",
    "first_name",
    "last_name",
    "company_name",
    "email",
    "tag",
    "custom_field",
    "uri",
}


@pytest.fixture
def sim():
    with ExotelSimulator() as s:
        yield s


@pytest.fixture
def session(sim):
    with requests.Session() as s:
        s.auth = sim.auth
        yield s


def get(session, sim, path="contacts", **params):
    return session.get(f"{sim.base_url}/{path}", params=params, timeout=5)


def put(session, sim, body, path="contacts"):
    return session.put(f"{sim.base_url}/{path}", json=body, timeout=5)


def sids_of(resp):
    return [item["data"]["sid"] for item in resp.json()["response"]]


def assert_error_envelope(resp, status):
    assert resp.status_code == status
    body = resp.json()
    assert body["http_code"] == status
    assert len(body["request_id"]) == 32
    assert body["response"]["code"] == status
    assert body["response"]["status"] == "failure"
    err = body["response"]["error_data"]
    assert isinstance(err["code"], int) and err["message"] and err["description"]
    return body


# ---------------------------------------------------------------- state / seeding
def test_seed_contacts_deterministic_and_ordered():
    a = ExotelSimulator(seed=7)
    b = ExotelSimulator(seed=7)
    ca, cb = a.seed_contacts(50), b.seed_contacts(50)
    assert ca == cb
    assert all(set(c) == CONTACT_KEYS for c in ca)
    assert len({c["sid"] for c in ca}) == 50
    assert all(len(c["sid"]) == 32 for c in ca)
    dates = [c["date_created"] for c in ca]
    assert dates == sorted(dates) and len(set(dates)) == 50
    assert ca[0]["date_created"] == "2024-01-01T00:00:00Z"
    assert ca[3]["first_name"] == "First3" and ca[3]["last_name"] == "Last3"
    assert ca[3]["number"].startswith("+9196")
    assert ca[0]["uri"] == f"/v2/accounts/acct1/contacts/{ca[0]['sid']}"
    # returns copies
    ca[0]["first_name"] = "mutated"
    assert a.get_contact(ca[0]["sid"])["first_name"] == "First0"
    # second call continues numbering; different seed, different sids
    more = a.seed_contacts(2, prefix="Zed")
    assert more[0]["first_name"] == "Zed50"
    assert ExotelSimulator(seed=8).seed_contacts(1)[0]["sid"] != ca[0]["sid"]


def test_insert_delete_and_ordering():
    s = ExotelSimulator()
    seeded = s.seed_contacts(3)
    new = s.insert_contact(first_name="Mid", date_created="2024-01-01T00:00:01.5Z")
    expected = [seeded[0]["sid"], seeded[1]["sid"], new["sid"], seeded[2]["sid"]]
    assert [c["sid"] for c in s.contacts] == expected
    late = s.insert_contact(first_name="Late")
    assert s.contacts[-1]["sid"] == late["sid"]
    assert late["date_created"] > seeded[-1]["date_created"]
    assert s.delete_contact(new["sid"]) is True
    assert s.delete_contact(new["sid"]) is False
    assert s.get_contact(new["sid"]) is None
    assert len(s.contacts) == 4


def test_lists_state():
    s = ExotelSimulator()
    cs = s.seed_contacts(10)
    s.create_list("L1", [cs[5]["sid"], cs[1]["sid"]])
    s.create_list("L2", [cs[1]["sid"]])
    assert [c["sid"] for c in s.list_contacts("L1")] == [cs[5]["sid"], cs[1]["sid"]]
    with pytest.raises(KeyError):
        s.create_list("L3", ["nope"])
    names = s.seed_lists(2, 4)
    assert names == ["list0", "list1"]
    assert all(len(s.lists[n]) == 4 for n in names)
    s.delete_contact(cs[1]["sid"])
    assert s.lists["L1"] == [cs[5]["sid"]]


def test_connection_json_and_uri(sim):
    conn = json.loads(sim.connection_json(timeout=3))
    assert conn == {
        "conn_type": "exotel",
        "login": "test-key",
        "password": "test-token",
        "host": "127.0.0.1",
        "port": sim.port,
        "schema": "http",
        "extra": {"account_sid": "acct1", "timeout": 3},
    }
    uri = sim.connection_uri()
    assert uri == f"exotel://test-key:test-token@127.0.0.1:{sim.port}/http?account_sid=acct1"
    assert "__extra__" in sim.connection_uri(timeout=3)
    assert sim.url == f"http://127.0.0.1:{sim.port}"


# ---------------------------------------------------------------- GET contacts
def test_get_contacts_envelope_and_paging(sim, session):
    seeded = sim.seed_contacts(45)
    r = get(session, sim)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["method"] == "GET" and body["http_code"] == 200 and len(body["request_id"]) == 32
    assert body["metadata"] == {"count": 20, "offset": 0, "limit": 20, "total": 45}
    item = body["response"][0]
    assert item["code"] == 200 and item["status"] == "success" and item["error_data"] is None
    assert set(item["data"]) == CONTACT_KEYS

    got = []
    for offset in (0, 20, 40):
        r = get(session, sim, offset=offset, limit=20)
        got += sids_of(r)
    assert r.json()["metadata"] == {"count": 5, "offset": 40, "limit": 20, "total": 45}
    assert got == [c["sid"] for c in seeded]

    r = get(session, sim, offset=3, limit=5)
    assert sids_of(r) == [c["sid"] for c in seeded[3:8]]
    r = get(session, sim, offset=100)
    assert r.json()["metadata"] == {"count": 0, "offset": 100, "limit": 20, "total": 45}
    assert r.json()["response"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 21},
        {"limit": 100},
        {"limit": "abc"},
        {"offset": -1},
        {"offset": "x"},
        {"sort_by": "bogus:asc"},
        {"sort_by": "name:sideways"},
    ],
)
def test_get_contacts_bad_params_400(sim, session, params):
    sim.seed_contacts(3)
    body = assert_error_envelope(get(session, sim, **params), 400)
    if params.get("limit") in (21, 100):
        assert "at most 20" in body["response"]["error_data"]["description"]


def test_filters(sim, session):
    cs = sim.seed_contacts(30)
    sim.insert_contact(first_name="Ada", last_name="Lovelace", number="+911")
    sim.insert_contact(first_name="Grace", last_name="Hopper", number="+912")

    r = get(session, sim, name="lovel")
    assert [i["data"]["first_name"] for i in r.json()["response"]] == ["Ada"]
    assert get(session, sim, name="ADA LOVE").json()["metadata"]["total"] == 1
    assert get(session, sim, name="first1").json()["metadata"]["total"] == 11  # First1, First10..19

    r = get(session, sim, sort_by="date_created:desc", limit=3)
    assert [i["data"]["first_name"] for i in r.json()["response"]] == ["Grace", "Ada", "First29"]
    r = get(session, sim, sort_by="first_name:asc", limit=2)
    assert [i["data"]["first_name"] for i in r.json()["response"]] == ["Ada", "First0"]
    r = get(session, sim, sort_by="name:desc", limit=1)
    assert r.json()["response"][0]["data"]["first_name"] == "Grace"
    r = get(session, sim, sort_by="number:asc", limit=2)
    assert [i["data"]["number"] for i in r.json()["response"]] == ["+911", "+912"]
    r = get(session, sim, sort_by="last_name:asc", offset=20, limit=20)
    assert r.json()["metadata"]["total"] == 32

    sim.create_list("L1", [cs[9]["sid"], cs[2]["sid"]])
    sim.create_list("L2", [cs[2]["sid"], cs[20]["sid"]])
    r = get(session, sim, list_sids="L1,L2")
    assert sids_of(r) == [cs[2]["sid"], cs[9]["sid"], cs[20]["sid"]]  # default order, deduplicated
    assert get(session, sim, list_sids="nope").json()["metadata"]["total"] == 0
    r = get(session, sim, list_sids="L1", filter="show_list")
    lists = {i["data"]["sid"]: i["data"]["lists"] for i in r.json()["response"]}
    assert lists == {cs[2]["sid"]: [{"sid": "L1"}, {"sid": "L2"}], cs[9]["sid"]: [{"sid": "L1"}]}
    assert "lists" not in get(session, sim, limit=1).json()["response"][0]["data"]

    # caches are invalidated by mutation
    sim.delete_contact(cs[2]["sid"])
    assert sids_of(get(session, sim, list_sids="L1,L2")) == [cs[9]["sid"], cs[20]["sid"]]
    put(session, sim, {"contacts": [{"sid": cs[5]["sid"], "first_name": "Aaron"}]})
    r = get(session, sim, sort_by="first_name:asc", limit=1)
    assert r.json()["response"][0]["data"]["first_name"] == "Aaron"


def test_list_contacts_endpoint(sim, session):
    cs = sim.seed_contacts(30)
    members = [cs[i]["sid"] for i in (25, 3, 17, 0, 8)] + [c["sid"] for c in cs[10:30:1]]
    members = list(dict.fromkeys(members))
    sim.create_list("biglist", members)
    got = []
    offset = 0
    while True:
        r = get(session, sim, "lists/biglist/contacts", offset=offset, limit=20)
        assert r.status_code == 200
        meta = r.json()["metadata"]
        assert meta["total"] == len(members)
        got += sids_of(r)
        offset += 20
        if offset >= meta["total"]:
            break
    assert got == members
    assert_error_envelope(get(session, sim, "lists/missing/contacts"), 404)
    assert_error_envelope(get(session, sim, "lists/biglist/contacts", limit=50), 400)


def test_get_single_contact(sim, session):
    c = sim.seed_contacts(2)[1]
    r = get(session, sim, f"contacts/{c['sid']}")
    assert r.status_code == 200
    assert r.json()["response"]["data"] == c
    assert_error_envelope(get(session, sim, "contacts/unknown"), 404)


# ---------------------------------------------------------------- auth / routing
def test_auth_and_routing(sim):
    sim.seed_contacts(1)
    url = f"{sim.base_url}/contacts"
    assert_error_envelope(requests.get(url, timeout=5), 401)
    assert_error_envelope(requests.get(url, auth=("test-key", "wrong"), timeout=5), 401)
    other = f"{sim.url}/v2/accounts/other/contacts"
    assert_error_envelope(requests.get(other, auth=sim.auth, timeout=5), 404)
    assert_error_envelope(requests.get(f"{sim.url}/nope", auth=sim.auth, timeout=5), 404)
    assert_error_envelope(requests.get(f"{sim.base_url}/calls", auth=sim.auth, timeout=5), 404)
    assert_error_envelope(requests.patch(url, auth=sim.auth, json={}, timeout=5), 405)
    assert_error_envelope(
        requests.post(url, auth=sim.auth, json={}, timeout=5), 400
    )  # a create needs contacts
    assert sim.count_status(401) == 2 and sim.count_status(404) == 3


def test_echo_headers_in_errors(sim):
    sim.echo_headers_in_errors = True
    r = requests.get(
        f"{sim.base_url}/contacts", auth=("test-key", "wrong"), headers={"X-Foo": "bar"}, timeout=5
    )
    body = assert_error_envelope(r, 401)
    assert body["request_headers"]["X-Foo"] == "bar"
    assert body["request_headers"]["Authorization"].startswith("Basic ")
    sim.echo_headers_in_errors = False
    r = requests.get(f"{sim.base_url}/contacts", auth=("test-key", "wrong"), timeout=5)
    assert "request_headers" not in r.json()


# ---------------------------------------------------------------- PUT
def test_bulk_update_partial_207(sim, session):
    cs = sim.seed_contacts(5)
    body = {
        "contacts": [
            {"sid": cs[0]["sid"], "first_name": "XYZ", "custom_field": {"a": [1, 2]}},
            {"sid": "missing1", "first_name": "ABC"},
            {"sid": cs[3]["sid"], "tag": "vip", "number": "+910000"},
            {"sid": "missing2"},
        ]
    }
    r = put(session, sim, body)
    assert r.status_code == 207
    env = r.json()
    assert env["http_code"] == 207 and env["method"] == "PUT"
    assert env["metadata"] == {"failed": 2, "total": 4, "success": 2}
    codes = [i["code"] for i in env["response"]]
    assert codes == [200, 404, 200, 404]
    assert env["response"][0]["data"]["first_name"] == "XYZ"
    assert env["response"][1] == {
        "code": 404,
        "error_data": {"code": 1000, "message": "Not Found", "description": "Contact not found"},
        "status": "failure",
    }
    after = sim.get_contact(cs[0]["sid"])
    assert after["first_name"] == "XYZ" and after["custom_field"] == {"a": [1, 2]}
    assert after["date_updated"] >= after["date_created"]
    assert sim.get_contact(cs[3]["sid"])["tag"] == "vip"
    assert sim.get_contact(cs[3]["sid"])["number"] == "+910000"
    assert sim.update_counts == {cs[0]["sid"]: 1, cs[3]["sid"]: 1}

    r = put(session, sim, {"contacts": [{"sid": cs[1]["sid"], "email": "e@x"}]})
    assert r.status_code == 200 and r.json()["http_code"] == 200
    assert r.json()["metadata"] == {"failed": 0, "total": 1, "success": 1}

    reqs = [q for q in sim.requests if q.method == "PUT"]
    assert [q.batch_size for q in reqs] == [4, 1]
    assert reqs[0].json_body == body


def test_bulk_update_validation(sim, session):
    cs = sim.seed_contacts(1)
    too_many = {"contacts": [{"sid": cs[0]["sid"]}] * 5001}
    assert_error_envelope(put(session, sim, too_many), 400)
    assert sim.update_counts == {}
    ok = put(session, sim, {"contacts": [{"sid": cs[0]["sid"]}] * 5000})
    assert ok.status_code == 200 and ok.json()["metadata"]["total"] == 5000
    assert_error_envelope(session.put(f"{sim.base_url}/contacts", data=b"{not json", timeout=5), 400)
    assert_error_envelope(put(session, sim, {"items": []}), 400)
    assert_error_envelope(put(session, sim, [1, 2]), 400)
    assert_error_envelope(put(session, sim, {"contacts": []}), 400)


def test_single_contact_update(sim, session):
    c = sim.seed_contacts(1)[0]
    r = put(session, sim, {"first_name": "Solo"}, path=f"contacts/{c['sid']}")
    assert r.status_code == 200
    assert r.json()["response"]["data"]["first_name"] == "Solo"
    assert sim.update_counts[c["sid"]] == 1
    assert_error_envelope(put(session, sim, {"first_name": "x"}, path="contacts/missing"), 404)


def test_item_faults(sim, session):
    cs = sim.seed_contacts(3)
    sim.add_item_faults({cs[1]["sid"]: [500, 503]})
    body = {"contacts": [{"sid": c["sid"], "tag": "t"} for c in cs]}
    r = put(session, sim, body)
    assert r.status_code == 207
    items = r.json()["response"]
    assert [i["code"] for i in items] == [200, 500, 200]
    assert items[1]["error_data"] == {
        "code": 5000,
        "message": "Internal Server Error",
        "description": "Temporary failure",
    }
    assert sim.update_counts[cs[1]["sid"]] == 0
    assert [i["code"] for i in put(session, sim, body).json()["response"]] == [200, 503, 200]
    assert put(session, sim, body).status_code == 200
    assert sim.update_counts == {cs[0]["sid"]: 3, cs[1]["sid"]: 1, cs[2]["sid"]: 3}


# ---------------------------------------------------------------- faults
@pytest.mark.parametrize(
    "kind,status", [("500", 500), ("503", 503), ("504", 504), ("401", 401), ("403", 403)]
)
def test_envelope_faults(sim, session, kind, status):
    sim.seed_contacts(1)
    sim.add_faults(kind)
    assert_error_envelope(get(session, sim), status)
    assert get(session, sim).status_code == 200
    assert [r.fault for r in sim.requests] == [kind, None]


def test_fault_429_retry_after(sim, session):
    sim.add_faults(
        "429",
        Fault("429", retry_after=7),
        Fault("429", retry_after=None),
        Fault("503", retry_after=2.5),
        Fault("429", retry_after="0.5"),
    )
    r = get(session, sim)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert get(session, sim).headers["Retry-After"] == "7"
    assert "Retry-After" not in get(session, sim).headers
    r = get(session, sim)
    assert r.status_code == 503 and r.headers["Retry-After"] == "3"
    assert get(session, sim).headers["Retry-After"] == "0.5"
    assert get(session, sim).status_code == 200
    assert sim.count_status(429) == 4


def test_html_faults(sim, session):
    sim.add_faults("502_html", "html_200")
    r = get(session, sim)
    assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html")
    assert r.text == "<html><body><h1>502 Bad Gateway</h1></body></html>"
    r = get(session, sim)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        r.json()
    assert get(session, sim).status_code == 200  # connection still usable


def test_truncated_json(sim, session):
    sim.seed_contacts(5)
    sim.add_faults("truncated_json")
    r = get(session, sim)
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) == len(r.content)
    with pytest.raises(ValueError):
        r.json()
    assert get(session, sim).json()["metadata"]["total"] == 5


def test_reset_fault(sim, session):
    sim.seed_contacts(2)
    assert get(session, sim).status_code == 200  # pooled keep-alive connection
    sim.add_faults("reset")
    with pytest.raises(requests.exceptions.ConnectionError):
        get(session, sim)
    assert get(session, sim).status_code == 200
    statuses = [(r.status, r.fault) for r in sim.requests]
    assert statuses == [(200, None), (None, "reset"), (200, None)]


def test_reset_after_apply(sim, session):
    cs = sim.seed_contacts(2)
    sim.add_faults("reset_after_apply", method="PUT")
    body = {"contacts": [{"sid": cs[0]["sid"], "first_name": "Applied"}]}
    assert get(session, sim).status_code == 200  # GET does not consume a PUT fault
    with pytest.raises(requests.exceptions.ConnectionError):
        put(session, sim, body)
    assert sim.get_contact(cs[0]["sid"])["first_name"] == "Applied"
    assert sim.update_counts[cs[0]["sid"]] == 1
    assert put(session, sim, body).status_code == 200


def test_slow_fault_times_out(sim, session):
    sim.add_faults(Fault("slow", delay=0.6))
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        session.get(f"{sim.base_url}/contacts", timeout=0.2)
    assert time.monotonic() - t0 < 0.55
    r = session.get(f"{sim.base_url}/contacts", timeout=5)
    assert r.status_code == 200


def test_fault_filters_fifo_and_persistent(sim, session):
    cs = sim.seed_contacts(1)
    sim.add_faults("500", path_endswith=f"contacts/{cs[0]['sid']}")
    sim.add_faults("503", "504", method="GET", path_endswith="contacts")
    assert sim.pending_faults == 3
    assert get(session, sim).status_code == 503
    assert get(session, sim, f"contacts/{cs[0]['sid']}").status_code == 500
    assert get(session, sim).status_code == 504
    assert get(session, sim).status_code == 200
    with pytest.raises(ValueError):
        Fault("bogus")

    sim.fail_every_request("503")
    assert [get(session, sim).status_code for _ in range(3)] == [503, 503, 503]
    sim.clear_faults()
    assert get(session, sim).status_code == 200


# ---------------------------------------------------------------- latency / rate / log
def test_rate_limit(sim, session):
    sim.rate_limit_per_minute = 3
    assert [get(session, sim).status_code for _ in range(3)] == [200, 200, 200]
    r = get(session, sim)
    body = assert_error_envelope(r, 429)
    assert body["response"]["code"] == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert get(session, sim).status_code == 429
    assert sim.count_status(429) == 2
    sim.rate_limit_per_minute = None
    assert get(session, sim).status_code == 200


def test_latency_and_max_in_flight(sim):
    sim.seed_contacts(5)
    sim.latency = 0.15

    def fetch(_):
        return requests.get(f"{sim.base_url}/contacts", auth=sim.auth, timeout=5).status_code

    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(fetch, range(4))) == [200] * 4
    elapsed = time.monotonic() - t0
    assert 0.15 <= elapsed < 0.55
    assert sim.max_in_flight == 4
    sim.reset_max_in_flight()
    sim.latency = 0
    fetch(0)
    assert sim.max_in_flight == 1


def test_request_log(sim, session):
    sim.seed_contacts(1)
    get(session, sim, offset=0, limit=5, name="x")
    put(session, sim, {"contacts": [{"sid": "nope"}]})
    reqs = sim.requests
    assert all(isinstance(r, RecordedRequest) for r in reqs)
    assert reqs[0].method == "GET" and reqs[0].path == "/v2/accounts/acct1/contacts"
    assert reqs[0].query == {"offset": "0", "limit": "5", "name": "x"}
    assert reqs[0].status == 200 and reqs[0].header("authorization").startswith("Basic ")
    assert reqs[1].status == 207 and reqs[1].batch_size == 1
    assert sim.request_count() == 2
    assert sim.request_count(method="PUT") == 1
    assert sim.request_count(path_endswith="contacts") == 2
    assert sim.request_count(method="get", path_endswith="lists") == 0
    sim.clear_requests()
    assert sim.requests == [] and sim.count_status(200) == 0


def test_before_request_hook_drift(sim, session):
    cs = sim.seed_contacts(40)
    seen = []

    def drift(s, req):
        seen.append(req.query.get("offset"))
        if req.query.get("offset") == "20":
            s.delete_contact(cs[0]["sid"])

    sim.before_request = drift
    first = sids_of(get(session, sim, offset=0))
    second = get(session, sim, offset=20)
    assert second.json()["metadata"]["total"] == 39
    assert sids_of(second)[0] == cs[21]["sid"]  # cs[20] shifted into page one: missed by naive paging
    assert first[0] == cs[0]["sid"] and seen == ["0", "20"]


def test_before_request_error_is_500(sim, session):
    def boom(s, req):
        raise RuntimeError("boom")

    sim.before_request = boom
    assert_error_envelope(get(session, sim), 500)
    assert isinstance(sim.errors[0], RuntimeError)


def test_keep_alive_reuses_connection(sim):
    sim.seed_contacts(1)
    with requests.Session() as s:
        s.auth = sim.auth
        for _ in range(5):
            r = s.get(f"{sim.base_url}/contacts", timeout=5)
            assert r.status_code == 200
    # all five requests went over one pooled connection: the server saw a single client port
    assert len({r.client_port for r in sim.requests}) == 1


def test_stop_is_idempotent_and_frees_keepalive():
    s = ExotelSimulator().start()
    with requests.Session() as sess:
        sess.auth = s.auth
        assert sess.get(f"{s.base_url}/contacts", timeout=5).status_code == 200
        t0 = time.monotonic()
        s.stop()
        s.stop()
        assert time.monotonic() - t0 < 2
    with pytest.raises(RuntimeError):
        _ = s.url


def test_pytest_plugin_fixtures(exotel_simulator, exotel_simulator_factory):
    assert os.environ["AIRFLOW_CONN_EXOTEL_DEFAULT"] == exotel_simulator.connection_json()
    assert exotel_simulator.contacts == []
    other = exotel_simulator_factory(account_sid="acct2", latency=0.01)
    assert other.port != exotel_simulator.port
    r = requests.get(f"{other.base_url}/contacts", auth=other.auth, timeout=5)
    assert r.status_code == 200 and r.json()["metadata"]["total"] == 0


def test_paging_speed(sim, session):
    sim.seed_contacts(2000)
    t0 = time.monotonic()
    for offset in range(0, 2000, 20):
        assert get(session, sim, offset=offset).status_code == 200
    assert time.monotonic() - t0 < 3  # ~1 ms per page; guards against Nagle/delayed-ACK stalls


def test_cli(tmp_path: Path):
    ready = tmp_path / "ready"
    proc = simulator_cli(
        ready,
        *("--contacts", "30", "--lists", "2", "--list-size", "5", "--api-key", "K"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = wait_for_ready_file(proc, ready, deadline_s=15)
        r = requests.get(f"{url}/v2/accounts/acct1/contacts", auth=("K", "test-token"), timeout=5)
        assert r.status_code == 200 and r.json()["metadata"]["total"] == 30
        r = requests.get(f"{url}/v2/accounts/acct1/lists/list1/contacts", auth=("K", "test-token"), timeout=5)
        assert r.json()["metadata"]["total"] == 5
        line1 = proc.stdout.readline()
        line2 = proc.stdout.readline()
        assert url in line1
        conn = json.loads(line2.split("=", 1)[1].strip().strip("'"))
        assert conn["login"] == "K" and conn["port"] == int(url.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_concurrent_bulk_updates_thread_safe(sim):
    cs = sim.seed_contacts(200)
    chunks = [cs[i : i + 50] for i in range(0, 200, 50)]
    barrier = threading.Barrier(len(chunks))

    def send(chunk):
        barrier.wait()
        body = {"contacts": [{"sid": c["sid"], "tag": "bulk"} for c in chunk]}
        return requests.put(f"{sim.base_url}/contacts", json=body, auth=sim.auth, timeout=5).status_code

    with ThreadPoolExecutor(len(chunks)) as pool:
        assert list(pool.map(send, chunks)) == [200] * 4
    assert all(c["tag"] == "bulk" for c in sim.contacts)
    assert set(sim.update_counts.values()) == {1} and len(sim.update_counts) == 200
