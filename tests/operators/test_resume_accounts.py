"""A resumed export is keyed by the query and the account: another account never gets spliced in."""

from __future__ import annotations

import json

import pytest

from airflow_provider_exotel.exceptions import ExotelError
from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator

FAST = {"retry_delay": 0.0, "timeout": 5.0, "concurrency": 1, "retry_limit": 0}


def sids(path) -> list[str]:
    return [json.loads(line)["sid"] for line in path.read_text(encoding="utf-8").splitlines()]


def fetch(conn_id: str, target) -> dict:
    op = ExotelFetchContactsOperator(
        task_id="f", exotel_conn_id=conn_id, output_path=str(target), hook_params=FAST
    )
    return op.execute(context={})


@pytest.mark.parametrize(
    ("how", "b_account"),
    [
        ("another connection id", "acctB"),
        ("the connection edited to another account", "acctB"),
        ("the connection edited to another host, same account sid", "acctA"),
    ],
)
def test_a_next_try_against_another_account_starts_over(
    exotel_simulator_factory, monkeypatch, tmp_path, how, b_account
):
    a = exotel_simulator_factory(account_sid="acctA", seed=1)
    b = exotel_simulator_factory(account_sid=b_account, seed=2)
    a.seed_contacts(300)
    b.seed_contacts(200)
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_A", a.connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_B", b.connection_json())
    reference = tmp_path / "b-reference.jsonl"
    fetch("exotel_b", reference)
    target = tmp_path / "contacts.jsonl"
    a.on_nth_request(8, lambda sim: sim.add_faults("503"), method="GET")  # try 1 fails midway

    with pytest.raises(ExotelError):
        fetch("exotel_a", target)
    assert any(p.name.endswith(".partial.jsonl") for p in tmp_path.iterdir())  # A's rows kept
    if how == "another connection id":
        second = "exotel_b"
    else:  # same connection id, now pointing at B
        monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_A", b.connection_json())
        second = "exotel_a"
    result = fetch(second, target)

    assert result["count"] == 200
    assert sids(target) == sids(reference)  # only B's contacts, in B's order
    assert not set(sids(target)) & {c["sid"] for c in a.contacts}


def test_a_next_try_against_the_same_account_still_resumes(exotel_simulator_factory, monkeypatch, tmp_path):
    a = exotel_simulator_factory(account_sid="acctA", seed=1)
    a.seed_contacts(300)
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_A", a.connection_json())
    target = tmp_path / "contacts.jsonl"
    a.on_nth_request(8, lambda sim: sim.add_faults("503"), method="GET")
    with pytest.raises(ExotelError):
        fetch("exotel_a", target)
    a.clear_requests()

    assert fetch("exotel_a", target)["count"] == 300
    assert a.request_count(method="GET") < 16  # the rest only (16 pages and a count for all of it)
    assert sorted(sids(target)) == sorted(c["sid"] for c in a.contacts)
