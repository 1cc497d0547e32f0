"""The simulator's clock, ``Date`` headers, ``X-RateLimit-Reset`` formats, endless 429s and the
route table endpoint families register in — over real sockets with ``requests``."""

from __future__ import annotations

from email.utils import formatdate, parsedate_to_datetime

import pytest
import requests

from airflow_provider_exotel.testing import ExotelSimulator
from airflow_provider_exotel.testing.__main__ import _parser
from airflow_provider_exotel.testing._clock import SimClock
from airflow_provider_exotel.testing._envelopes import ApiError, one_object

T0 = 1_800_000_030.0  # 2027-01-15T08:00:30Z, 30 s into a 60 s window


def fixed_clock(start: float = T0) -> SimClock:
    return SimClock(time_source=lambda: start)


@pytest.fixture
def sim():
    with ExotelSimulator(clock=fixed_clock()) as s:
        yield s


def session(sim: ExotelSimulator) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.auth = sim.auth
    return s


def control(sim: ExotelSimulator, method: str, path: str, body: object = None) -> requests.Response:
    s = requests.Session()
    s.trust_env = False
    return s.request(method, f"{sim.url}/_control{path}", json=body, timeout=10)


# ---------------------------------------------------------------- Date header and clock
def test_every_answer_carries_a_date_header_from_the_simulator_clock(sim):
    sim.seed_contacts(1)
    sim.add_faults("429", method="GET", path_endswith="lists")
    http = session(sim)
    answers = {
        "200": http.get(f"{sim.base_url}/contacts", timeout=10),
        "404": http.get(f"{sim.base_url}/nothing", timeout=10),
        "401": requests.get(f"{sim.base_url}/contacts", auth=("x", "y"), timeout=10),
        "429": http.get(f"{sim.base_url}/lists", timeout=10),
        "control": control(sim, "GET", "/state"),
        "501": http.request("OPTIONS", f"{sim.base_url}/contacts", timeout=10),
    }
    assert {k: a.status_code for k, a in answers.items()} == {
        "200": 200, "404": 404, "401": 401, "429": 429, "control": 200, "501": 501,
    }  # fmt: skip
    expected = formatdate(T0, usegmt=True)
    assert {k: a.headers.get("Date") for k, a in answers.items()} == dict.fromkeys(answers, expected)


def test_advancing_the_clock_moves_date_headers_and_dates_of_new_contacts(sim):
    http = session(sim)
    before = http.get(f"{sim.base_url}/contacts", timeout=10)
    assert sim.clock.advance(3600) == T0 + 3600
    after = http.get(f"{sim.base_url}/contacts", timeout=10)

    created = http.post(
        f"{sim.base_url}/contacts", json={"contacts": [{"number": "+919800000001"}]}, timeout=10
    )
    inserted = sim.insert_contact(first_name="Asha")

    delta = parsedate_to_datetime(after.headers["Date"]) - parsedate_to_datetime(before.headers["Date"])
    assert delta.total_seconds() == 3600
    assert created.json()["response"][0]["data"]["date_created"] == "2027-01-15T09:00:30Z"
    assert inserted["date_created"] == "2027-01-15T09:00:31Z"  # a second after the newest
    sim.clock.advance(60)
    updated = http.put(f"{sim.base_url}/contacts/{inserted['sid']}", json={"tag": "vip"}, timeout=10)
    assert updated.json()["response"]["data"]["date_updated"] == "2027-01-15T09:01:30Z"


def test_the_clock_runs_with_real_time_plus_its_offset():
    now = [100.0]
    clock = SimClock(time_source=lambda: now[0])
    clock.advance(5)
    now[0] = 110.0
    assert (clock.now(), clock.offset) == (115.0, 5.0)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_the_clock_never_goes_back(bad):
    with pytest.raises(ValueError, match="seconds"):
        SimClock().advance(bad)


def test_the_control_endpoint_reads_and_advances_the_clock(sim):
    assert control(sim, "GET", "/clock").json() == {"now": T0, "offset": 0.0, "iso": "2027-01-15T08:00:30Z"}
    moved = control(sim, "POST", "/clock", {"advance": 90})
    assert moved.json() == {"now": T0 + 90, "offset": 90.0, "iso": "2027-01-15T08:02:00Z"}
    assert control(sim, "POST", "/clock", {"advance": -5}).status_code == 400
    assert control(sim, "POST", "/clock", {"advance": "soon"}).status_code == 400
    assert sim.clock.offset == 90.0


def test_advancing_the_clock_opens_the_next_account_window_without_waiting(sim):
    sim.set_account_limit(1, window=60)
    http = session(sim)
    first = http.get(f"{sim.base_url}/contacts", timeout=10)
    refused = http.get(f"{sim.base_url}/contacts", timeout=10)
    sim.clock.advance(30)
    admitted = http.get(f"{sim.base_url}/contacts", timeout=10)
    assert [first.status_code, refused.status_code, admitted.status_code] == [200, 429, 200]
    assert refused.headers["Retry-After"] == "30"


def test_advancing_the_clock_frees_the_per_minute_limiter(sim):
    sim.rate_limit_per_minute = 1
    http = session(sim)
    statuses = [http.get(f"{sim.base_url}/contacts", timeout=10).status_code for _ in range(2)]
    sim.clock.advance(60)
    statuses.append(http.get(f"{sim.base_url}/contacts", timeout=10).status_code)
    assert statuses == [200, 429, 200]


# ---------------------------------------------------------------- X-RateLimit-Reset formats
@pytest.mark.parametrize(
    ("fmt", "expected"), [("epoch", "1800000060"), ("epoch_ms", "1800000060000"), ("delta", "30")]
)
def test_rate_limit_reset_header_format_is_chosen_by_constructor_argument(fmt, expected):
    with ExotelSimulator(clock=fixed_clock(), account_limit=5, rate_limit_reset_format=fmt) as s:
        answer = session(s).get(f"{s.base_url}/contacts", timeout=10)
    assert answer.headers["X-RateLimit-Reset"] == expected
    assert answer.headers["X-RateLimit-Remaining"] == "4"


def test_rate_limit_reset_format_switches_at_runtime_by_attribute_and_control(sim):
    sim.set_account_limit(5, window=60)
    http = session(sim)
    sim.rate_limit_reset_format = "epoch_ms"
    by_attribute = http.get(f"{sim.base_url}/contacts", timeout=10).headers["X-RateLimit-Reset"]
    switched = control(sim, "POST", "/rate_limit", {"reset_format": "delta"})
    by_control = http.get(f"{sim.base_url}/contacts", timeout=10).headers["X-RateLimit-Reset"]

    assert (by_attribute, by_control) == ("1800000060000", "30")
    assert switched.json() == {
        "reset_format": "delta",
        "families": {"campaign": {"limit": 5, "window": 60.0, "headers": True}},
    }
    assert control(sim, "POST", "/rate_limit", {"reset_format": "iso"}).status_code == 400
    with pytest.raises(ValueError, match="reset_format"):
        sim.rate_limit_reset_format = "minutes"
    with pytest.raises(ValueError, match="reset_format"):
        ExotelSimulator(rate_limit_reset_format="seconds")


def test_scaled_down_window_sends_reset_delta_with_milliseconds():
    with ExotelSimulator(clock=fixed_clock(T0 + 0.25), rate_limit_reset_format="delta") as s:
        s.set_account_limit(2, window=2.0)
        answer = session(s).get(f"{s.base_url}/contacts", timeout=10)
    assert answer.headers["X-RateLimit-Reset"] == "1.750"


# ---------------------------------------------------------------- 429 forever
@pytest.mark.parametrize(("retry_after", "header"), [(0, "0"), (None, None), ("auto", "1")])
def test_a_server_can_answer_429_forever_with_or_without_retry_after(sim, retry_after, header):
    sim.fail_every_request("429", retry_after=retry_after)
    http = session(sim)
    answers = [http.get(f"{sim.base_url}/contacts", timeout=10) for _ in range(5)]
    assert [a.status_code for a in answers] == [429] * 5
    assert {a.headers.get("Retry-After") for a in answers} == {header}


@pytest.mark.parametrize(("retry_after", "header"), [(0, "0"), (None, None)])
def test_the_control_endpoint_sets_endless_429s_with_a_chosen_retry_after(sim, retry_after, header):
    answer = control(sim, "POST", "/faults", {"every": "429", "retry_after": retry_after})
    assert answer.status_code == 200, answer.text
    http = session(sim)
    answers = [http.get(f"{sim.base_url}/lists", timeout=10) for _ in range(3)]
    assert [(a.status_code, a.headers.get("Retry-After")) for a in answers] == [(429, header)] * 3
    assert control(sim, "POST", "/faults", {"every": "429", "retry_after": [1]}).status_code == 400


def test_queued_faults_take_a_retry_after_too(sim):
    sim.add_faults("503", "429", retry_after=7)
    http = session(sim)
    headers = [http.get(f"{sim.base_url}/contacts", timeout=10).headers.get("Retry-After") for _ in range(3)]
    assert headers == ["7", "7", None]


# ---------------------------------------------------------------- route table
class EchoFamily:
    """A family as campaigns / calls add theirs: built with the simulator, registers routes."""

    def __init__(self, sim: ExotelSimulator) -> None:
        self.sim = sim

    def register(self, routes) -> None:
        routes.add("GET", "widgets/<widget_id>", self.widget, name="a widget")
        # replace=True: over the real v1 route of testing/_calls.py
        routes.add("GET", "Calls/<call_sid>.json", self.call, base="v1", replace=True)

    def widget(self, request):
        if request.params["widget_id"] == "missing":
            raise ApiError(404, "Widget not found")
        return 200, one_object({"id": request.params["widget_id"], "at": self.sim.clock.now()}, "GET")

    def call(self, request):
        return 200, b'{"Call": {"Sid": "%s"}}' % request.params["call_sid"].encode(), {"X-Family": "voice"}


def test_an_endpoint_family_registers_v2_and_v1_routes(sim):
    sim.add_family(EchoFamily)
    http = session(sim)
    widget = http.get(f"{sim.base_url}/widgets/w1/", timeout=10)
    call = http.get(f"{sim.url}/v1/Accounts/{sim.account_sid}/Calls/CA9.json", timeout=10)
    missing = http.get(f"{sim.base_url}/widgets/missing", timeout=10)
    wrong_method = http.delete(f"{sim.base_url}/widgets/w1", timeout=10)
    other_account = http.get(f"{sim.url}/v1/Accounts/acct2/Calls/CA9.json", timeout=10)
    unauthenticated = requests.get(f"{sim.base_url}/widgets/w1", timeout=10)

    assert widget.json()["response"]["data"] == {"id": "w1", "at": T0}
    assert (call.json(), call.headers["X-Family"]) == ({"Call": {"Sid": "CA9"}}, "voice")
    assert missing.json()["response"]["error_data"]["description"] == "Widget not found"
    assert wrong_method.status_code == 405
    assert "DELETE not allowed on a widget" in wrong_method.text
    assert [other_account.status_code, unauthenticated.status_code] == [404, 401]
    assert sim.request_count("GET", "CA9.json") == 2


def test_a_route_is_registered_once_unless_replaced(sim):
    with pytest.raises(ValueError, match="already routed"):
        sim.routes.add("GET", "contacts", lambda request: (200, b"{}"))
    sim.routes.add("GET", "/contacts/", lambda request: (200, b'{"replaced": true}'), replace=True)
    assert session(sim).get(f"{sim.base_url}/contacts", timeout=10).json() == {"replaced": True}
    with pytest.raises(ValueError, match="base"):
        sim.routes.add("GET", "x", lambda request: (200, b"{}"), base="v3")


def test_account_limits_are_kept_per_budget_family(sim):
    sim.add_family(EchoFamily)
    sim.set_account_limit(1, window=60, family="voice")
    http = session(sim)
    calls = [
        http.get(f"{sim.url}/v1/Accounts/{sim.account_sid}/Calls/CA1.json", timeout=10) for _ in range(2)
    ]
    contacts = [http.get(f"{sim.base_url}/contacts", timeout=10) for _ in range(3)]
    assert [a.status_code for a in calls + contacts] == [200, 429, 200, 200, 200]
    assert "X-RateLimit-Limit" not in contacts[0].headers
    assert sim.account_limit is None and sim.account_limits["voice"].refused == 1
    with pytest.raises(ValueError, match="family"):
        sim.set_account_limit(1, family="sms")


def test_cli_takes_reset_format_and_clock_offset():
    args = _parser().parse_args(["--rate-limit-reset-format", "epoch_ms", "--clock-offset", "3600"])
    assert (args.rate_limit_reset_format, args.clock_offset) == ("epoch_ms", 3600.0)
    with pytest.raises(SystemExit):
        _parser().parse_args(["--rate-limit-reset-format", "iso"])


class XmlFamily:
    """A family answering XML (as v1 does without ``.json``)."""

    def __init__(self, sim: ExotelSimulator) -> None:
        self.sim = sim

    def register(self, routes) -> None:
        routes.add("GET", "Calls/<call_sid>", self.call_xml, base="v1", replace=True)

    def call_xml(self, request):
        return 200, b"<TwilioResponse/>", {"Content-Type": "application/xml"}


def test_a_handler_chooses_its_content_type(sim):
    sim.add_family(XmlFamily)
    answer = session(sim).get(f"{sim.url}/v1/Accounts/{sim.account_sid}/Calls/CA9", timeout=10)
    assert (answer.status_code, answer.text) == (200, "<TwilioResponse/>")
    assert answer.headers["Content-Type"] == "application/xml"
    assert answer.raw.headers.getlist("Content-Type") == ["application/xml"]
