# ruff: noqa: F811  (pytest fixtures imported from airflow_harness are redefined as arguments)
"""Resumable exports and the output file's defects, against the bundled simulator over real sockets.

A fetch operator writing to a local ``output_path`` keeps what a failed or killed try wrote (hidden,
beside the target) and the next try of the same ``output_path`` goes on from there, checking the seam.
The SIGKILL tests kill a real subprocess running the operator.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow_harness import airflow_harness  # noqa: F401  (session fixture)
from support import FAST, sigkill_export_midway

from airflow_provider_exotel.exceptions import ExotelError
from airflow_provider_exotel.operators._files import target_key
from airflow_provider_exotel.operators.contacts import (
    ExotelBulkUpdateContactsOperator,
    ExotelFetchContactsOperator,
    ExotelFetchListContactsOperator,
)

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def sids(path: Path) -> list[str]:
    return [json.loads(line)["sid"] for line in path.read_text(encoding="utf-8").splitlines()]


def fail_a_try_at_get(sim, n: int, operator) -> None:
    """Make the ``n``-th GET from now answer 503 and run ``operator``: the try must fail."""
    sim.on_nth_request(n, lambda s: s.add_faults("503"), method="GET")
    with pytest.raises(ExotelError):
        operator.execute(context={})


def full_export(sim, path: Path, **kwargs) -> tuple[bytes, int]:
    """An uninterrupted export's bytes and the GET requests it took."""
    sim.clear_requests()
    ExotelFetchContactsOperator(task_id="ref", output_path=str(path), **kwargs).execute(context={})
    return path.read_bytes(), sim.request_count(method="GET")


# ------------------------------------------------------------------------------------------ resume
@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_sigkilled_export_is_resumed_by_the_next_try_into_an_identical_file(
    exotel_simulator, tmp_path, concurrency
):
    exotel_simulator.seed_contacts(3000)
    hook_params = {**FAST, "concurrency": concurrency}
    reference, full = full_export(exotel_simulator, tmp_path / "ref.jsonl", hook_params=hook_params)
    target = tmp_path / "out" / "contacts.jsonl"
    exotel_simulator.latency = 0.01

    sigkill_export_midway(exotel_simulator, target, full // 2, hook_params=hook_params)
    assert hidden(target.parent)  # the partial file the next try looks for
    exotel_simulator.latency = 0.0
    exotel_simulator.clear_requests()
    result = ExotelFetchContactsOperator(
        task_id="f", output_path=str(target), hook_params=hook_params
    ).execute(context={})

    assert result == {"path": str(target), "count": 3000}
    assert target.read_bytes() == reference
    assert exotel_simulator.request_count(method="GET") <= 0.6 * full
    assert hidden(target.parent) == []  # the partial became the output; nothing stale is left


def test_a_sigkilled_incremental_export_is_resumed_from_the_last_contact_written(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(6000)
    window = {
        "created_from": (BASE + timedelta(seconds=500)).isoformat(),
        "created_to": (BASE + timedelta(seconds=5500)).isoformat(),
        "hook_params": {**FAST, "concurrency": 1},
    }
    reference, full = full_export(exotel_simulator, tmp_path / "ref.jsonl", **window)
    target = tmp_path / "window.jsonl"
    exotel_simulator.latency = 0.01

    sigkill_export_midway(exotel_simulator, target, full // 2, **window)
    exotel_simulator.latency = 0.0
    # the account changes between the tries: new contacts (newer than the window) shift every
    # offset of the newest-first order; the resumed try finds its seam by time, not by offset
    for _ in range(25):
        exotel_simulator.insert_contact()
    exotel_simulator.clear_requests()
    ExotelFetchContactsOperator(task_id="f", output_path=str(target), **window).execute(context={})

    assert target.read_bytes() == reference
    assert len(sids(target)) == 5000
    assert exotel_simulator.request_count(method="GET") <= 0.6 * full


def test_a_try_that_fails_mid_export_is_resumed_by_the_next_one(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(1000)
    hook_params = {**FAST, "concurrency": 1, "retry_limit": 0}
    reference, full = full_export(exotel_simulator, tmp_path / "ref.jsonl", hook_params=hook_params)
    target = tmp_path / "contacts.jsonl"
    exotel_simulator.clear_requests()
    fail_a_try_at_get(
        exotel_simulator,
        30,
        ExotelFetchContactsOperator(task_id="f", output_path=str(target), hook_params=hook_params),
    )
    exotel_simulator.clear_requests()
    ExotelFetchContactsOperator(task_id="f", output_path=str(target), hook_params=hook_params).execute(
        context={}
    )

    assert target.read_bytes() == reference
    assert exotel_simulator.request_count(method="GET") <= 0.6 * full


def test_a_list_export_is_resumed_too(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(900)
    exotel_simulator.seed_lists(1, 800)
    hook_params = {**FAST, "concurrency": 1, "retry_limit": 0}
    target = tmp_path / "list.jsonl"

    def run():
        return ExotelFetchListContactsOperator(
            task_id="f", list_sid="list0", output_path=str(target), hook_params=hook_params
        ).execute(context={})

    exotel_simulator.on_nth_request(25, lambda s: s.add_faults("503"), method="GET")
    with pytest.raises(ExotelError):
        run()
    exotel_simulator.clear_requests()
    assert run()["count"] == 800

    assert sids(target) == exotel_simulator.lists["list0"]
    assert exotel_simulator.request_count(method="GET") <= 25


def test_contacts_deleted_before_the_seam_between_tries_do_not_break_the_export(exotel_simulator, tmp_path):
    seeded = exotel_simulator.seed_contacts(1000)
    hook_params = {**FAST, "concurrency": 1, "retry_limit": 0}
    target = tmp_path / "contacts.jsonl"
    fail_a_try_at_get(
        exotel_simulator,
        30,
        ExotelFetchContactsOperator(task_id="f", output_path=str(target), hook_params=hook_params),
    )
    for contact in seeded[100:110]:  # already written: the resume offset no longer matches
        exotel_simulator.delete_contact(contact["sid"])

    ExotelFetchContactsOperator(task_id="f", output_path=str(target), hook_params=hook_params).execute(
        context={}
    )

    written = sids(target)
    assert len(written) == len(set(written))  # nothing twice
    assert set(written) >= set(exotel_simulator.contact_sids)  # everything that still exists
    assert set(written) <= {c["sid"] for c in seeded}


def test_a_completed_export_is_redone_not_resumed(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(200)
    target = tmp_path / "contacts.jsonl"
    op = ExotelFetchContactsOperator(task_id="f", output_path=str(target), hook_params=FAST)
    op.execute(context={})
    added = exotel_simulator.insert_contact(first_name="late")
    exotel_simulator.clear_requests()

    result = op.execute(context={})

    assert result["count"] == 201
    assert sids(target)[-1] == added["sid"]
    assert exotel_simulator.request_count(method="GET") >= 200 / 20  # read again, from the start


def test_a_partial_written_for_other_filters_is_started_over(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(600)
    target = tmp_path / "contacts.jsonl"
    hook_params = {**FAST, "concurrency": 1, "retry_limit": 0}
    fail_a_try_at_get(
        exotel_simulator,
        4,
        ExotelFetchContactsOperator(
            task_id="f", output_path=str(target), name="First1", hook_params=hook_params
        ),
    )

    result = ExotelFetchContactsOperator(
        task_id="f", output_path=str(target), name="First2", hook_params=hook_params
    ).execute(context={})

    written = sids(target)
    assert result["count"] == len(written) > 0
    assert all(exotel_simulator.get_contact(s)["first_name"].startswith("First2") for s in written)


def test_a_second_try_running_at_the_same_time_writes_its_own_copy(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(100)
    target = tmp_path / "contacts.jsonl"
    partial = tmp_path / f".exotel-{target_key(target)}.partial.jsonl"
    fd = os.open(partial, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a live try holds it
        result = ExotelFetchContactsOperator(task_id="f", output_path=str(target)).execute(context={})
    finally:
        os.close(fd)

    assert result["count"] == 100
    assert sids(target) == exotel_simulator.contact_sids
    assert hidden(tmp_path) == [partial.name]  # the live try's file is left alone


# ------------------------------------------------------------------------------------------ files
def test_a_240_character_output_file_name_is_written(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(50)
    target = tmp_path / ("c" * 234 + ".jsonl")
    failed = tmp_path / ("f" * 234 + ".jsonl")
    assert len(target.name) == 240

    result = ExotelFetchContactsOperator(task_id="f", output_path=str(target)).execute(context={})
    ExotelBulkUpdateContactsOperator(
        task_id="u",
        contacts=[{"sid": "no-such-sid", "tag": "x"}],
        max_failures=1,
        failed_output_path=str(failed),
        hook_params=FAST,
    ).execute(context={})

    assert result["count"] == 50 and len(sids(target)) == 50
    assert [json.loads(line)["sid"] for line in failed.read_text().splitlines()] == ["no-such-sid"]
    assert hidden(tmp_path) == []


def test_a_contact_with_a_lone_surrogate_is_written_escaped_and_the_export_completes(
    exotel_simulator, tmp_path
):
    exotel_simulator.seed_contacts(30)
    odd = exotel_simulator.insert_contact(first_name="broken \ud800 name", last_name="ok")
    exotel_simulator.seed_contacts(30)
    target = tmp_path / "contacts.jsonl"

    result = ExotelFetchContactsOperator(task_id="f", output_path=str(target)).execute(context={})

    assert result["count"] == 61
    raw = target.read_bytes()
    assert b"broken \\ud800 name" in raw
    rows = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
    assert [r["first_name"] for r in rows if r["sid"] == odd["sid"]] == ["broken \ud800 name"]


def test_line_and_paragraph_separators_are_escaped_in_json_lines(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(5)
    exotel_simulator.insert_contact(first_name="one\u2028two", custom_field={"note": "a\u2029b"})
    target = tmp_path / "contacts.jsonl"

    ExotelFetchContactsOperator(task_id="f", output_path=str(target)).execute(context={})

    text = target.read_text(encoding="utf-8")
    assert "\u2028" not in text and "\u2029" not in text
    lines = text.splitlines()  # str.splitlines splits on U+2028/U+2029 too
    assert len(lines) == 6
    assert json.loads(lines[-1])["first_name"] == "one\u2028two"
    assert json.loads(lines[-1])["custom_field"] == {"note": "a\u2029b"}


def test_temporaries_left_by_killed_tries_are_removed_once_the_output_is_in_place(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(40)
    target = tmp_path / "contacts.jsonl"
    key = target_key(target)
    stale = [tmp_path / f".exotel-{key}.0123456789ab.tmp", tmp_path / ".contacts.jsonl.deadbeef0000.tmp"]
    for path in stale:
        path.write_text('{"sid": "half-writ')
    other = tmp_path / f".exotel-{target_key(tmp_path / 'other.jsonl')}.0123456789ab.tmp"
    other.write_text("another target's")

    ExotelFetchContactsOperator(task_id="f", output_path=str(target)).execute(context={})

    assert hidden(tmp_path) == [other.name]
    assert len(sids(target)) == 40


def test_an_incremental_export_failing_inside_a_run_of_equal_timestamps_resumes_exactly(
    exotel_simulator, tmp_path
):
    for i in range(300):  # 100 older, then 120 sharing one second, then 80 newer
        second = i if i < 100 else (100 if i < 220 else i)
        exotel_simulator.insert_contact(date_created=BASE + timedelta(seconds=second))
    window = {
        "created_from": BASE.isoformat(),
        "created_to": (BASE + timedelta(seconds=290)).isoformat(),
        "hook_params": {**FAST, "concurrency": 1, "retry_limit": 0},
    }
    reference, _ = full_export(exotel_simulator, tmp_path / "ref.jsonl", **window)
    target = tmp_path / "window.jsonl"
    # bisection (~9 requests), then pages of 20 from the newest: the 15th GET is inside the tie run
    exotel_simulator.clear_requests()
    fail_a_try_at_get(
        exotel_simulator, 15, ExotelFetchContactsOperator(task_id="f", output_path=str(target), **window)
    )
    partial = tmp_path / f".exotel-{target_key(target)}.partial.jsonl"
    held = [json.loads(line) for line in partial.read_text().splitlines()]
    assert held[-1]["date_created"] == "2024-01-01T00:01:40Z"  # stopped among the equal timestamps
    ExotelFetchContactsOperator(task_id="f", output_path=str(target), **window).execute(context={})

    assert target.read_bytes() == reference


def test_a_resumed_export_still_stops_at_max_records(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(1000)
    target = tmp_path / "contacts.jsonl"
    hook_params = {**FAST, "concurrency": 1, "retry_limit": 0}

    def run():
        return ExotelFetchContactsOperator(
            task_id="f", output_path=str(target), max_records=333, hook_params=hook_params
        ).execute(context={})

    exotel_simulator.on_nth_request(8, lambda s: s.add_faults("503"), method="GET")
    with pytest.raises(ExotelError):
        run()

    assert run()["count"] == 333
    assert sids(target) == exotel_simulator.contact_sids[:333]


def test_a_file_url_export_is_local_and_resumes_too(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(800)
    hook_params = {**FAST, "concurrency": 1, "retry_limit": 0}
    reference, full = full_export(exotel_simulator, tmp_path / "ref.jsonl", hook_params=hook_params)
    url = f"file://{tmp_path}/url/contacts.jsonl"
    exotel_simulator.clear_requests()
    exotel_simulator.on_nth_request(25, lambda s: s.add_faults("503"), method="GET")

    def run():
        return ExotelFetchContactsOperator(task_id="f", output_path=url, hook_params=hook_params).execute(
            context={}
        )

    with pytest.raises(ExotelError):
        run()
    exotel_simulator.clear_requests()
    result = run()

    assert result == {"path": url, "count": 800}
    assert (tmp_path / "url" / "contacts.jsonl").read_bytes() == reference
    assert exotel_simulator.request_count(method="GET") <= 0.6 * full
    assert hidden(tmp_path / "url") == []


def test_a_torn_last_line_left_by_a_kill_is_cut_and_fetched_again(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(500)
    hook_params = {**FAST, "concurrency": 1, "retry_limit": 0}
    reference, _ = full_export(exotel_simulator, tmp_path / "ref.jsonl", hook_params=hook_params)
    target = tmp_path / "contacts.jsonl"
    exotel_simulator.clear_requests()
    fail_a_try_at_get(
        exotel_simulator,
        10,
        ExotelFetchContactsOperator(task_id="f", output_path=str(target), hook_params=hook_params),
    )
    partial = tmp_path / f".exotel-{target_key(target)}.partial.jsonl"
    held = partial.read_bytes().count(b"\n")
    with partial.open("ab") as fh:  # what a kill in the middle of a write leaves
        fh.write(reference.splitlines(keepends=True)[held][:37])

    ExotelFetchContactsOperator(task_id="f", output_path=str(target), hook_params=hook_params).execute(
        context={}
    )

    assert held > 0
    assert target.read_bytes() == reference


def test_a_try_failing_before_any_contact_is_written_leaves_no_hidden_file(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(100)
    exotel_simulator.fail_every_request("503", method="GET", path_endswith="contacts")
    target = tmp_path / "contacts.jsonl"

    with pytest.raises(ExotelError):
        ExotelFetchContactsOperator(
            task_id="f", output_path=str(target), hook_params={**FAST, "retry_limit": 0}
        ).execute(context={})

    assert list(tmp_path.iterdir()) == []


def test_a_temporary_still_being_written_by_a_live_try_is_not_removed(exotel_simulator, tmp_path):
    exotel_simulator.seed_contacts(10)
    target = tmp_path / "contacts.jsonl"
    live = tmp_path / f".exotel-{target_key(target)}.0123456789ab.tmp"
    fd = os.open(live, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another try, writing right now
        ExotelFetchContactsOperator(task_id="f", output_path=str(target)).execute(context={})
        assert hidden(tmp_path) == [live.name]
    finally:
        os.close(fd)


def test_the_retry_of_a_failed_export_task_resumes_it_in_a_real_dag_run(
    airflow_harness, exotel_simulator, tmp_path
):
    import sqlite3

    exotel_simulator.seed_contacts(1500)
    hook_params = {**FAST, "concurrency": 1, "retry_limit": 0}
    reference, full = full_export(exotel_simulator, tmp_path / "ref.jsonl", hook_params=hook_params)
    target = tmp_path / "out" / "contacts.jsonl"
    exotel_simulator.clear_requests()
    exotel_simulator.on_nth_request(full // 2, lambda s: s.add_faults("503"), method="GET")

    result = airflow_harness.run_dag(
        "exotel_resume_retry",
        dags_folder=Path(__file__).parent.parent / "dags",
        env={
            "AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json(),
            "EXOTEL_RESUME_PATH": str(target),
        },
    )

    result.assert_success()
    with sqlite3.connect(airflow_harness.db_path) as conn:
        (tries,) = conn.execute(
            "SELECT try_number FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = 'export'",
            ("exotel_resume_retry", result.run_id),
        ).fetchone()
    assert tries == 2
    assert target.read_bytes() == reference
    assert exotel_simulator.request_count(method="GET") <= full // 2 + 0.6 * full  # both tries together
    assert hidden(target.parent) == []
