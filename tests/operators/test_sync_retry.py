"""A sync given ``current_path`` (an export older than the sync) never creates or re-sends what exists.

This is what an Airflow retry does: the export task ran once, the sync task failed after part of its
writes, and the retry reads the same ``current_path`` again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_exotel.hooks.contacts import ExotelContactsHook
from airflow_provider_exotel.operators.contacts import (
    ExotelSyncContactsFailedError,
    ExotelSyncContactsOperator,
)

FAST = {"retry_delay": 0.0, "timeout": 5.0}


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def writes(sim):
    return [r for r in sim.requests if r.method in ("POST", "PUT", "DELETE", "PATCH")]


def sync(**kwargs):
    kwargs.setdefault("task_id", "sync")
    kwargs.setdefault("hook_params", FAST)
    return ExotelSyncContactsOperator(**kwargs).execute(context={})


def setting(sim, tmp_path, n=10):
    """An account of ``n`` contacts exported to current.jsonl, and an audience that changes two of
    them and brings three new numbers."""
    seeded = sim.seed_contacts(n)
    current = write_jsonl(tmp_path / "current.jsonl", seeded)
    rows = [{"number": c["number"], "first_name": c["first_name"], "tag": c["tag"]} for c in seeded]
    rows[0]["tag"] = "changed-0"
    rows[1]["first_name"] = "Renamed"
    rows += [{"number": f"+9180000000{i:02d}", "first_name": f"New{i}"} for i in range(3)]
    return current, rows


def test_a_second_sync_with_the_same_current_path_sends_no_write(exotel_simulator, tmp_path):
    current, rows = setting(exotel_simulator, tmp_path)
    lst = exotel_simulator.add_list("audience")
    first = sync(contacts=rows, current_path=str(current), list_sid=lst["sid"])
    assert (first["created"], first["updated"], first["added_to_list"]) == (3, 2, 13)
    exotel_simulator.clear_requests()

    second = sync(contacts=rows, current_path=str(current), list_sid=lst["sid"])

    assert writes(exotel_simulator) == []
    assert second == {
        "created": 0,
        "updated": 0,
        "unchanged": 13,
        "added_to_list": 0,
        "removed_from_list": 0,
        "failed": 0,
        "dry_run": False,
    }
    assert len(exotel_simulator) == 13  # no number twice
    for row in rows[-3:]:
        assert len(exotel_simulator.contacts_with_number(row["number"])) == 1


def test_the_retry_of_a_sync_that_failed_past_max_failures_redoes_only_the_failed_row(
    exotel_simulator, tmp_path
):
    current, rows = setting(exotel_simulator, tmp_path)
    lst = exotel_simulator.add_list("audience")
    refused = exotel_simulator.contacts_with_number(rows[1]["number"])[0]["sid"]
    exotel_simulator.add_item_faults({refused: [400]})  # the first PUT of it is refused

    with pytest.raises(ExotelSyncContactsFailedError):
        sync(contacts=rows, current_path=str(current), list_sid=lst["sid"])
    exotel_simulator.clear_requests()
    retry = sync(contacts=rows, current_path=str(current), list_sid=lst["sid"])

    sent = writes(exotel_simulator)
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in sent] == [
        ("PUT", "contacts"),
        ("POST", "contacts"),
    ]
    assert [c["sid"] for c in sent[0].json_body["contacts"]] == [refused]  # the one update left
    assert [c["contact_sid"] for c in sent[1].json_body["contact_references"]] == [refused]  # into the list
    assert (retry["created"], retry["updated"], retry["unchanged"]) == (0, 1, 12)
    assert len(exotel_simulator) == 13
    assert sorted(exotel_simulator.lists[lst["sid"]]) == sorted(c["sid"] for c in exotel_simulator.contacts)


def test_a_contact_changed_in_exotel_since_the_export_is_compared_as_it_is_now(exotel_simulator, tmp_path):
    current, rows = setting(exotel_simulator, tmp_path)
    rows = rows[:10]
    sid = exotel_simulator.contacts_with_number(rows[0]["number"])[0]["sid"]
    hook = ExotelContactsHook(**FAST)
    hook.bulk_update_contacts([{"sid": sid, "tag": "changed-0"}])  # someone already made the change
    hook.close()

    result = sync(contacts=rows, current_path=str(current), dry_run=True)

    assert (result["updated"], result["unchanged"]) == (1, 9)  # only rows[1] still differs
