"""The one success rule (``_answers``), the one per-item resend loop and the one batch runner
(``_batches``): alone with injected senders, and through create over the simulator."""

from __future__ import annotations

import logging
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelRequestError
from airflow_provider_exotel.hooks._answers import by_position, is_success, item_outcome, one_object
from airflow_provider_exotel.hooks._batches import Resend, batch_sender, resend, run_batches
from airflow_provider_exotel.hooks._retry import AmbiguousRequestError
from airflow_provider_exotel.hooks.contacts import BulkCreateResult, BulkUpdateResult, ExotelContactsHook

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ success rule
@pytest.mark.parametrize(
    ("item", "success"),
    [
        ({"code": 200, "status": "success"}, True),
        ({"code": 201, "status": "success"}, True),  # a create's answer: refused by the old PUT rule
        ({"code": 207, "status": "SUCCESS"}, True),
        ({"status": "success"}, True),
        ({"code": 200}, True),
        ({"code": 404, "status": "success"}, False),
        ({"code": 200, "status": "failure"}, False),
        ({"code": 503}, False),
        ({"code": True, "status": "success"}, False),
        ({}, False),
        (None, False),
        ("success", False),
    ],
)
def test_one_rule_decides_whether_a_bulk_item_succeeded(item, success):
    assert is_success(item) is success
    assert (item_outcome(item)[0] is None) is success


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    code=st.one_of(st.none(), st.integers(-5, 700), st.booleans(), st.text(max_size=3)),
    status=st.one_of(
        st.none(), st.sampled_from(["success", "Success", "failure", "", "ok"]), st.text(max_size=8)
    ),
)
def test_a_failed_item_always_has_an_int_code_and_a_message(code, status):
    item = {"code": code, "status": status, "error_data": {"message": "m"}}
    failure, message, data = item_outcome(item)
    if failure is None:
        assert isinstance(status, str | None) and data == {}
    else:
        assert isinstance(failure, int) and not isinstance(failure, bool) and message


@pytest.mark.parametrize("as_list", [False, True])
def test_one_object_reads_an_object_or_a_one_item_list(as_list):
    item = {"code": 200, "status": "success", "data": {"sid": "c1"}}
    assert one_object({"response": [item] if as_list else item}, "GET contacts/c1") == {"sid": "c1"}
    with pytest.raises(ExotelRequestError, match="404") as info:
        one_object({"response": {"code": 404, "status": "failure"}}, "GET contacts/x")
    assert info.value.status == 404


# ------------------------------------------------------------------------------------ resend loop
def spec(send, **options) -> Resend:
    options.setdefault("retry_limit", 3)
    return Resend(
        "POST things", str, send, by_position, retry_delay=0.0, log=log, sleep=lambda s: None, **options
    )


def answer(*items):
    return {"response": list(items)}


def test_resend_accepts_a_201_success_and_resends_only_transient_failures():
    sent: list[list[str]] = []

    def send(todo):
        sent.append(list(todo))
        if len(sent) == 1:
            return answer(
                {"code": 201, "status": "success"}, {"code": 503, "status": "failure"}, {"code": 404}
            )
        return answer({"code": 200, "status": "success"})

    outcomes = resend(["a", "b", "c"], spec(send))

    assert sent == [["a", "b", "c"], ["b"]]
    assert outcomes["a"].code is None and outcomes["b"].code is None
    assert outcomes["c"].code == 404


def test_resend_gives_up_on_a_transient_item_after_retry_limit():
    sent: list[list[str]] = []

    def send(todo):
        sent.append(list(todo))
        return answer({"code": 500, "status": "failure"})

    outcomes = resend(["a"], spec(send, retry_limit=2))

    assert len(sent) == 3 and outcomes["a"].code == 500


def test_a_lost_answer_is_recovered_before_anything_is_sent_again():
    sent: list[list[str]] = []

    def send(todo):
        sent.append(list(todo))
        if len(sent) == 1:
            raise AmbiguousRequestError("Exotel POST things: connection reset", status=None)
        return answer(*[{"code": 201, "status": "success", "data": {"sid": f"s-{x}"}} for x in todo])

    outcomes = resend(
        ["a", "b"], spec(send, needs_sid=True, recover=lambda todo, first_sent: {"a": "s-a-old"})
    )

    assert sent == [["a", "b"], ["b"]]  # "a" was found applied: only "b" goes again
    assert outcomes["a"].value == "s-a-old" and outcomes["b"].value == "s-b"


def test_a_refusal_mid_batch_keeps_what_is_known():
    calls = [0]

    def send(todo):
        calls[0] += 1
        if calls[0] == 1:
            return answer({"code": 200, "status": "success"}, {"code": 503})
        raise ExotelAuthError("Exotel POST things: HTTP 401", status=401)

    with pytest.raises(ExotelAuthError) as info:
        batch_sender(lambda batch: spec(send, not_applied="not added"), BulkUpdateResult)(["a", "b"])

    partial = info.value.partial_result
    assert partial.succeeded == ["a"]
    assert partial.failed[0]["sid"] == "b" and partial.failed[0]["message"].startswith("not added:")


# ------------------------------------------------------------------------------------ batch runner
def test_run_batches_stops_at_the_first_error_and_keeps_the_partial_result():
    sent: list[list[str]] = []

    def send_batch(batch):
        sent.append(batch)
        if len(sent) == 2:
            raise ExotelRequestError("Exotel PUT contacts: HTTP 400", status=400)
        return BulkUpdateResult(total=len(batch), succeeded=list(batch))

    with pytest.raises(ExotelRequestError) as info:
        run_batches(list("abcdef"), 2, 1, send_batch, BulkUpdateResult, str)

    assert sent == [["a", "b"], ["c", "d"]]  # nothing after the failed batch
    partial = info.value.partial_result
    assert partial.total == 6 and partial.succeeded == ["a", "b"]
    messages = {f["sid"]: f["message"] for f in partial.failed}
    assert messages["c"].startswith("outcome unknown") and messages["e"].startswith("not sent")


def test_run_batches_keeps_at_most_concurrency_batches_in_flight():
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most
    both_running = threading.Barrier(2, timeout=10)

    def send_batch(batch):
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        if batch[0] in ("a", "b"):
            both_running.wait()  # the first two really run at once
        with lock:
            in_flight[0] -= 1
        return BulkUpdateResult(total=len(batch), succeeded=list(batch))

    result = run_batches(list("abcdefgh"), 1, 2, send_batch, BulkUpdateResult, str)

    assert result.succeeded == list("abcdefgh")  # input order, whatever the completion order
    assert in_flight[1] == 2


# ------------------------------------------------------------------------------------ create
def test_a_create_stopped_by_a_401_reports_what_was_created_before_it(exotel_simulator):
    """Issue 17: create keeps ``partial_result`` like the bulk update (here: the first of three
    batches created, then the credentials stop working)."""
    exotel_simulator.on_nth_request(2, lambda sim: sim.fail_every_request("401"), method="POST")
    rows = [{"number": f"+9180000000{i:02d}"} for i in range(6)]
    hook = ExotelContactsHook(retry_delay=0.0, timeout=5.0, concurrency=1)

    with pytest.raises(ExotelAuthError) as info:
        hook.create_contacts(rows, batch_size=2)

    partial = info.value.partial_result
    assert isinstance(partial, BulkCreateResult) and partial.total == 6
    assert [c["number"] for c in partial.created] == [r["number"] for r in rows[:2]]
    assert all(exotel_simulator.contacts_with_number(c["number"]) for c in partial.created)
    failed = {f["number"]: f for f in partial.failed}
    assert failed[rows[2]["number"]]["code"] == 401
    assert failed[rows[2]["number"]]["message"].startswith("not created:")
    assert failed[rows[4]["number"]]["message"].startswith("not sent")
    assert len([r for r in exotel_simulator.requests if r.method == "POST"]) == 2
