"""ExotelFetchCallsOperator: settle wait (deferred or in the worker), exports, resume, backfills."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelError, ExotelValidationError
from airflow_provider_exotel.operators.calls import ExotelFetchCallsOperator


def _midnight(days_ago: int) -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)


def _list_requests(sim):
    return [r for r in sim.requests if r.path.endswith("/Calls.json")]


def _rows(path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _operator(
    start: datetime, end: datetime, *, now: datetime | None = None, **kwargs
) -> ExotelFetchCallsOperator:
    op = ExotelFetchCallsOperator(
        task_id="calls", created_from=start.isoformat(), created_to=end.isoformat(), **kwargs
    )
    op.hook_params = {"retry_delay": 0.0}
    if now is not None:
        op._now = lambda: now  # type: ignore[method-assign]
    return op


def test_defaults_to_the_data_interval_and_templates():
    op = ExotelFetchCallsOperator(task_id="t")
    assert (op.created_from, op.created_to) == ("{{ data_interval_start }}", "{{ data_interval_end }}")
    assert {"created_from", "created_to", "status", "direction", "output_path"} <= set(op.template_fields)
    assert op.settle == timedelta(minutes=5)


@pytest.mark.parametrize("rendered", ["None", "", None])
def test_a_run_without_a_data_interval_fails_at_once(exotel_simulator, rendered):
    op = ExotelFetchCallsOperator(task_id="t")
    op.created_from, op.created_to = rendered, rendered  # what the templates render to
    with pytest.raises(ExotelValidationError, match="no data interval") as info:
        op.execute({})
    assert isinstance(info.value, AirflowFailException)  # never retried: it cannot heal
    assert exotel_simulator.request_count() == 0


def test_an_empty_run_interval_fails_but_explicit_equal_bounds_export_nothing(exotel_simulator):
    op = ExotelFetchCallsOperator(task_id="t")
    op.created_from = op.created_to = _midnight(1).isoformat()  # a trigger timetable's run
    with pytest.raises(
        ExotelValidationError, match=r"data interval is empty.*CronDataIntervalTimetable"
    ) as info:
        op.execute({})
    assert isinstance(info.value, AirflowFailException)
    explicit = _operator(_midnight(1), _midnight(1), now=_midnight(0))
    assert explicit.execute({}) == []
    assert exotel_simulator.request_count() == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"status": "ringing"}, "status"),
        ({"direction": "up"}, "direction"),
        ({"settle": timedelta(days=2)}, "settle"),
        ({"settle": -1}, "settle"),
        ({"max_records": -5}, "max_records"),
        ({"created_from": "2024-02-01", "created_to": "2024-01-01"}, "must not be later"),
    ],
)
def test_bad_arguments_fail_at_dag_parse(kwargs, match):
    with pytest.raises(ExotelValidationError, match=match):
        ExotelFetchCallsOperator(task_id="t", **kwargs)


def test_before_the_settle_time_a_deferrable_run_defers_without_a_request(exotel_simulator):
    end = _midnight(1)
    op = _operator(end - timedelta(days=1), end, now=end + timedelta(minutes=1), deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    assert deferred.value.trigger.moment == end + timedelta(minutes=5)
    assert deferred.value.method_name == "execute_complete"
    assert exotel_simulator.request_count() == 0


def test_after_the_settle_time_the_run_reads_at_once(exotel_simulator):
    end = _midnight(1)
    exotel_simulator.add_call_record(date_created=end - timedelta(hours=1), sid="c1")
    op = _operator(end - timedelta(days=1), end, now=end + timedelta(minutes=6), deferrable=True)
    assert [c["Sid"] for c in op.execute({})] == ["c1"]
    assert len(_list_requests(exotel_simulator)) == 1


def test_resumed_from_the_trigger_it_reads(exotel_simulator):
    end = _midnight(1)
    exotel_simulator.add_call_record(date_created=end - timedelta(hours=1), sid="c1")
    op = _operator(end - timedelta(days=1), end)
    assert [c["Sid"] for c in op.execute_complete({}, {"status": "success"})] == ["c1"]


def test_not_deferrable_it_waits_in_the_worker_until_settled(exotel_simulator):
    end = _midnight(1)
    clock = [end + timedelta(minutes=1)]
    naps: list[float] = []
    op = _operator(end - timedelta(days=1), end, deferrable=False, settle=timedelta(minutes=10))
    op._now = lambda: clock[0]  # type: ignore[method-assign]

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        assert exotel_simulator.request_count() == 0  # nothing read while waiting
        clock[0] += timedelta(seconds=seconds)

    op._sleep = sleep  # type: ignore[method-assign]
    assert op.execute({}) == []
    assert sum(naps) == pytest.approx(9 * 60) and max(naps) <= 60
    assert len(_list_requests(exotel_simulator)) == 1


def test_export_to_a_file_returns_path_and_count(exotel_simulator, tmp_path):
    start = _midnight(3)
    seeded = exotel_simulator.seed_calls(260, start=start, end=start + timedelta(days=2))
    target = tmp_path / "out" / "calls.jsonl"
    op = _operator(start, start + timedelta(days=2), output_path=str(target))
    assert op.execute({}) == {"path": str(target), "count": 260}
    rows = _rows(target)
    assert sorted(r["Sid"] for r in rows) == sorted(c["Sid"] for c in seeded)
    assert [r["DateCreated"] for r in rows] == sorted(r["DateCreated"] for r in rows)
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".exotel-")]


def test_more_than_1000_calls_need_an_output_path(exotel_simulator):
    start = _midnight(3)
    exotel_simulator.seed_calls(1001, start=start, end=start + timedelta(days=1))
    with pytest.raises(ExotelError, match="more than 1000 calls"):
        _operator(start, start + timedelta(days=1)).execute({})
    assert len(_operator(start, start + timedelta(days=1), max_records=1000).execute({})) == 1000


def test_a_killed_export_is_resumed_by_the_next_try(exotel_simulator, tmp_path):
    sim = exotel_simulator
    start = _midnight(3)
    seeded = sim.seed_calls(450, start=start, end=start + timedelta(days=1))
    target = tmp_path / "calls.jsonl"
    sim.on_nth_request(4, lambda s: s.add_faults("401"))  # the first try dies after 3 pages

    with pytest.raises(ExotelAuthError):
        _operator(start, start + timedelta(days=1), output_path=str(target)).execute({})
    assert not target.exists()
    sim.before_request = None
    first_try = len(_list_requests(sim))
    sim.clear_requests()

    result = _operator(start, start + timedelta(days=1), output_path=str(target)).execute({})

    rows = _rows(target)
    assert result == {"path": str(target), "count": 450}
    assert sorted(r["Sid"] for r in rows) == sorted(c["Sid"] for c in seeded)
    assert first_try == 4 and len(_list_requests(sim)) == 2  # 300 kept: only the rest is read again
    assert _list_requests(sim)[0].query["DateCreated"].startswith(f"gte:{rows[299]['DateCreated']};")


def test_a_partial_of_another_interval_is_not_resumed(exotel_simulator, tmp_path):
    sim = exotel_simulator
    start = _midnight(3)
    sim.seed_calls(250, start=start, end=start + timedelta(days=2))
    target = tmp_path / "calls.jsonl"
    sim.on_nth_request(3, lambda s: s.add_faults("401"))
    with pytest.raises(ExotelAuthError):
        _operator(start, start + timedelta(days=2), output_path=str(target)).execute({})
    sim.before_request = None
    result = _operator(start, start + timedelta(days=1), output_path=str(target)).execute({})
    assert result["count"] == len(_rows(target)) == len({r["Sid"] for r in _rows(target)})
    end_ist = (start + timedelta(days=1, hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M:%S")
    assert all(r["DateCreated"] < end_ist for r in _rows(target))


def test_lineage_names_the_accounts_calls(exotel_simulator, tmp_path):
    target = tmp_path / "calls.jsonl"
    op = _operator(_midnight(2), _midnight(1), output_path=str(target))
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (f"exotel://127.0.0.1:{exotel_simulator.port}", "accounts/acct1/calls")
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("file", str(target))]


def test_thirty_daily_runs_export_every_call_exactly_once(exotel_simulator, tmp_path):
    """A backfill of 30 daily intervals over 3,000 calls, with calls on every midnight (UTC and IST)."""
    sim = exotel_simulator
    first = _midnight(35)
    days = [first + timedelta(days=i) for i in range(31)]
    sim.seed_calls(3000, start=first, end=days[-1])
    for day in days[:-1]:
        sim.add_call_record(date_created=day)  # midnight UTC: the first second of an interval
        sim.add_call_record(date_created=day + timedelta(hours=18, minutes=30))  # midnight IST
        sim.add_call_record(date_created=day + timedelta(days=1, seconds=-1))  # its last second
    sim.add_call_record(date_created=days[-1], sid="after-the-backfill")
    sim.add_call_record(date_created=first - timedelta(seconds=1), sid="before-the-backfill")

    exported: list[str] = []
    for i, (low, high) in enumerate(itertools.pairwise(days)):
        path = tmp_path / f"calls-{i:02d}.jsonl"
        result = _operator(low, high, output_path=str(path), now=high + timedelta(minutes=6)).execute({})
        rows = _rows(path)
        assert result["count"] == len(rows)
        exported += [r["Sid"] for r in rows]

    expected = {c["Sid"] for c in sim.call_records()} - {"after-the-backfill", "before-the-backfill"}
    assert len(exported) == len(set(exported)) == 3000 + 90
    assert set(exported) == expected
