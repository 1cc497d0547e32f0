"""A stage stopped half-way (a 401 mid-run) reports what it applied; only the rest is dead-lettered.

And ``list_add`` dead letters of the create operator replay as list additions, never as creates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelValidationError
from airflow_provider_exotel.operators.contacts import (
    ExotelCreateContactsOperator,
    ExotelSyncContactsOperator,
)

FAST = {"retry_delay": 0.0, "timeout": 5.0}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def from_now_on_401(sim, method: str, nth: int) -> None:
    """The ``nth`` request of ``method`` and every later one answer 401 (credentials revoked)."""
    sim.on_nth_request(nth, lambda s: s.fail_every_request("401", method=method), method=method)


# ------------------------------------------------------------------------------------ sync: list_remove
def test_members_removed_before_a_401_count_as_removed_and_only_the_rest_is_dead_lettered(
    exotel_simulator, tmp_path, capsys, caplog
):
    caplog.set_level("INFO")
    seeded = exotel_simulator.seed_contacts(8)
    lst = exotel_simulator.add_list("audience", contact_sids=[c["sid"] for c in seeded])
    rows = [{"number": c["number"]} for c in seeded[:2]]  # the other six are to be removed
    failed = tmp_path / "failed.jsonl"
    from_now_on_401(exotel_simulator, "DELETE", 3)  # two DELETEs succeed, then 401

    with pytest.raises(ExotelAuthError) as raised:
        ExotelSyncContactsOperator(
            task_id="sync",
            contacts=rows,
            list_sid=lst["sid"],
            remove_missing=True,
            failed_output_path=str(failed),
            hook_params=FAST,
        ).execute(context={})

    members = set(exotel_simulator.lists[lst["sid"]])
    removed = {c["sid"] for c in seeded} - members
    assert len(removed) == 2  # what the simulator applied
    dead = read_jsonl(failed)
    assert [d["error"]["stage"] for d in dead] == ["list_remove"] * 4
    assert {d["error"]["contact_sid"] for d in dead} == members - {c["sid"] for c in seeded[:2]}
    counts = raised.value.partial_result  # type: ignore[attr-defined]
    assert (counts["removed_from_list"], counts["failed"]) == (2, 4)
    logged = caplog.text + capsys.readouterr().out  # Airflow 3 logs to stdout, 2.x through logging
    assert "2 removed from it, 4 failed" in logged


# ------------------------------------------------------------------------------------ create: partial batches
def test_create_batches_applied_before_a_401_are_reported_created_and_not_dead_lettered(
    exotel_simulator, tmp_path
):
    rows = [{"number": f"+9180000000{i:02d}"} for i in range(6)]
    out, failed = tmp_path / "created.jsonl", tmp_path / "failed.jsonl"
    from_now_on_401(exotel_simulator, "POST", 2)  # the first batch is applied, the others get 401

    with pytest.raises(ExotelAuthError) as raised:
        ExotelCreateContactsOperator(
            task_id="create",
            contacts=rows,
            batch_size=2,
            output_path=str(out),
            failed_output_path=str(failed),
            hook_params={**FAST, "concurrency": 4},
        ).execute(context={})

    existing = {c["number"]: c["sid"] for c in exotel_simulator.contacts}
    assert len(existing) == 2
    assert {r["number"]: r["sid"] for r in read_jsonl(out)} == existing  # in output_path
    dead = read_jsonl(failed)
    assert len(dead) == 4 and {d["error"]["stage"] for d in dead} == {"create"}
    assert not {d["number"] for d in dead} & set(existing)  # a replay duplicates nothing
    result = raised.value.partial_result  # type: ignore[attr-defined]
    assert result.to_dict()["total"] == 6 and {c["number"] for c in result.created} == set(existing)


# ------------------------------------------------------------------------------------ create: list_add replay
def test_list_add_dead_letters_replay_through_create_as_additions_only(exotel_simulator, tmp_path):
    lst = exotel_simulator.add_list("audience")
    rows = [{"number": f"+91 80000 000{i:02d}", "first_name": f"N{i}"} for i in range(3)]
    out, failed = tmp_path / "created.jsonl", tmp_path / "failed.jsonl"
    from_now_on_401(exotel_simulator, "POST", 2)  # created, then the list POST gets 401

    def create(**kwargs):
        return ExotelCreateContactsOperator(
            task_id="create", list_sid=lst["sid"], failed_output_path=str(failed), hook_params=FAST, **kwargs
        ).execute(context={})

    with pytest.raises(ExotelAuthError):
        create(contacts=rows, output_path=str(out))
    created = read_jsonl(out)
    assert len(created) == 3 and exotel_simulator.lists[lst["sid"]] == []
    dead = read_jsonl(failed)
    assert [d["error"]["stage"] for d in dead] == ["list_add"] * 3
    assert [d["error"]["contact_sid"] for d in dead] == [c["sid"] for c in created]
    exotel_simulator.clear_faults()
    exotel_simulator.clear_requests()
    replay = tmp_path / "replay.jsonl"
    replay.write_bytes(failed.read_bytes())

    result = create(input_path=str(replay))

    assert [
        (r.method, r.path.endswith(f"lists/{lst['sid']}/contacts")) for r in exotel_simulator.requests
    ] == [("POST", True)]
    assert len(exotel_simulator) == 3  # nothing created twice
    assert sorted(exotel_simulator.lists[lst["sid"]]) == sorted(c["sid"] for c in created)
    assert result["created"] == 0 and result["failed"] == 0
    assert read_jsonl(failed) == []


def test_list_add_dead_letters_without_a_list_are_refused_before_any_request(exotel_simulator, tmp_path):
    replay = tmp_path / "replay.jsonl"
    row = {"number": "+918000000000", "error": {"code": 401, "stage": "list_add", "contact_sid": "abc"}}
    replay.write_text(json.dumps(row) + "\n", encoding="utf-8")

    with pytest.raises(ExotelValidationError, match=r"list_add dead-letter.*list_sid"):
        ExotelCreateContactsOperator(task_id="create", input_path=str(replay), hook_params=FAST).execute(
            context={}
        )
    assert exotel_simulator.request_count() == 0
