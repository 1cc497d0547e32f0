"""The bad-input catalogue: each case is a clear error naming the argument, raised before any request
reaches the simulator — at DAG parse time where the value is static, else when the task runs."""

from __future__ import annotations

import json

import pytest

from airflow_provider_exotel.exceptions import ExotelValidationError
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook
from airflow_provider_exotel.operators.contacts import (
    ExotelBulkUpdateContactsOperator,
    ExotelFetchContactsOperator,
    ExotelFetchListContactsOperator,
)
from airflow_provider_exotel.sensors.contacts import ExotelContactsSensor


def with_connection(monkeypatch, sim, **changes):
    conn = json.loads(sim.connection_json())
    extra = changes.pop("extra", None)
    conn.update(changes)
    if extra is not None:
        conn["extra"] = extra
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", json.dumps(conn))


def bulk(contacts, **kwargs):
    return ExotelContactsHook(retry_delay=0).bulk_update_contacts(contacts, **kwargs)


def run(op, context=None):
    op.render_template_fields(context or {})
    return op.execute(context={})


# (case id, callable(sim, monkeypatch, tmp_path), pattern the message must match)
CASES = [
    # connection
    (
        "connection: missing account_sid",
        lambda s, m, t: (with_connection(m, s, extra={}), ExotelContactsHook().count_contacts()),
        r"account_sid",
    ),
    (
        "connection: blank account_sid",
        lambda s, m, t: (
            with_connection(m, s, extra={"account_sid": " "}),
            ExotelContactsHook().count_contacts(),
        ),
        r"account_sid",
    ),
    (
        "connection: account_sid that would change the path",
        lambda s, m, t: (
            with_connection(m, s, extra={"account_sid": "../acct1"}),
            ExotelContactsHook().count_contacts(),
        ),
        r"extra 'account_sid' must be a sid .*contains '/'",
    ),
    (
        "connection: unknown region",
        lambda s, m, t: (
            with_connection(m, s, host="", extra={"account_sid": "a", "region": "mars"}),
            ExotelContactsHook().count_contacts(),
        ),
        r"region' 'mars'; expected one of \['mumbai', 'singapore'\]",
    ),
    (
        "connection: bad schema",
        lambda s, m, t: (
            with_connection(m, s, host="api.exotel.com", port=None, schema="ftp"),
            ExotelContactsHook().count_contacts(),
        ),
        r"schema 'ftp'",
    ),
    # hook
    (
        "hook: non-mapping contact",
        lambda s, m, t: bulk([{"sid": "a"}, ["b"]]),
        r"contacts\[1\] must be a mapping",
    ),
    (
        "hook: missing sid",
        lambda s, m, t: bulk([{"tag": "x"}]),
        r"contacts\[0\] needs a non-empty string 'sid'",
    ),
    ("hook: blank sid", lambda s, m, t: bulk([{"sid": ""}]), r"contacts\[0\] needs a non-empty string 'sid'"),
    ("hook: non-string sid", lambda s, m, t: bulk([{"sid": 7}]), r"'sid', got 7"),
    (
        "hook: duplicate sids",
        lambda s, m, t: bulk([{"sid": "a"}, {"sid": "a"}]),
        r"contacts\[1\] repeats sid 'a'",
    ),
    ("hook: unknown field", lambda s, m, t: bulk([{"sid": "a", "age": 3}]), r"unknown field\(s\) \['age'\]"),
    (
        "hook: batch_size 0",
        lambda s, m, t: bulk([{"sid": "a"}], batch_size=0),
        r"batch_size must be between 1 and 5000",
    ),
    ("hook: batch_size 5001", lambda s, m, t: bulk([{"sid": "a"}], batch_size=5001), r"batch_size"),
    (
        "hook: negative max_records",
        lambda s, m, t: ExotelContactsHook().iter_contacts(max_records=-5),
        r"max_records",
    ),
    ("hook: empty list_sid", lambda s, m, t: ExotelContactsHook().iter_list_contacts(""), r"list_sid"),
    ("hook: empty list_sids", lambda s, m, t: ExotelContactsHook().iter_contacts(list_sids=[]), r"list_sids"),
    # hook: bounds and types (issue 9, item 8)
    ("hook: timeout inf", lambda s, m, t: ExotelContactsHook(timeout=float("inf")), r"timeout must be"),
    ("hook: timeout over an hour", lambda s, m, t: ExotelContactsHook(timeout=7200), r"timeout .*<= 3600"),
    (
        "hook: requests_per_minute 1e-9",
        lambda s, m, t: ExotelContactsHook(requests_per_minute=1e-9),
        r"requests_per_minute must be a number >= 1",
    ),
    (
        "hook: requests_per_minute 1e-5",
        lambda s, m, t: ExotelContactsHook(requests_per_minute=1e-5),
        r"requests_per_minute must be a number >= 1 and <= 60000",
    ),
    (
        "hook: concurrency 10000",
        lambda s, m, t: ExotelContactsHook(concurrency=10000),
        r"concurrency must be between 1 and 32",
    ),
    (
        "hook: retry_limit absurd",
        lambda s, m, t: ExotelContactsHook(retry_limit=10**6),
        r"retry_limit must be between 0 and 50",
    ),
    (
        "hook: rate_limit_wait inf",
        lambda s, m, t: ExotelContactsHook(rate_limit_wait=float("inf")),
        r"rate_limit_wait must be a number >= 0 and <= 86400",
    ),
    ("hook: rate_limit_wait < 0", lambda s, m, t: ExotelContactsHook(rate_limit_wait=-1), r"rate_limit_wait"),
    ("hook: retry_delay inf", lambda s, m, t: ExotelContactsHook(retry_delay=float("inf")), r"retry_delay"),
    (
        "hook: show_list 'yes'",
        lambda s, m, t: ExotelContactsHook().iter_contacts(show_list="yes"),
        r"show_list must be True or False",
    ),
    ("hook: count_contacts name=7", lambda s, m, t: ExotelContactsHook().count_contacts(name=7), r"name"),
    (
        "hook: sid with surrounding spaces repeats the trimmed one",
        lambda s, m, t: bulk([{"sid": "a"}, {"sid": " a "}]),
        r"contacts\[1\] repeats sid 'a'",
    ),
    (
        "hook: list_sids repeat after trimming",
        lambda s, m, t: ExotelContactsHook().count_contacts(list_sids=["l1", " l1"]),
        r"list_sids\[1\] repeats list sid 'l1'",
    ),
    (
        "hook: list_sid '..'",
        lambda s, m, t: ExotelContactsHook().count_contacts(list_sid=" .. "),
        r"list_sid .*only dots",
    ),
    (
        "hook: list_sids rendered as a broken list",
        lambda s, m, t: ExotelContactsHook().count_contacts(list_sids="['l1', 'l2'"),
        r"list_sids .*looks like a list",
    ),
    (
        "connection: extra timeout inf",
        lambda s, m, t: (
            with_connection(m, s, extra={"account_sid": "acct1", "timeout": "inf"}),
            ExotelContactsHook().count_contacts(),
        ),
        r"connection extra timeout",
    ),
    # operators
    (
        "operator: hook_params with an unknown argument",
        lambda s, m, t: ExotelFetchContactsOperator(task_id="f", hook_params={"bogus": 1}),
        r"hook_params has unknown hook argument\(s\) \['bogus'\]",
    ),
    (
        "operator: hook_params out of bounds",
        lambda s, m, t: ExotelBulkUpdateContactsOperator(
            task_id="u", contacts=[{"sid": "a"}], hook_params={"concurrency": 10000}
        ),
        r"hook_params: concurrency must be between 1 and 32",
    ),
    (
        "operator: list_sid '..'",
        lambda s, m, t: ExotelFetchListContactsOperator(task_id="f", list_sid=".."),
        r"list_sid",
    ),
    (
        "operator: both contacts and input_path",
        lambda s, m, t: ExotelBulkUpdateContactsOperator(
            task_id="u", contacts=[{"sid": "a"}], input_path="/x"
        ),
        r"exactly one of contacts .* or input_path.*both",
    ),
    (
        "operator: neither contacts nor input_path",
        lambda s, m, t: ExotelBulkUpdateContactsOperator(task_id="u"),
        r"exactly one of contacts .* or input_path.*neither",
    ),
    (
        "operator: malformed JSON Lines names the line",
        lambda s, m, t: (
            (t / "in.jsonl").write_text('{"sid": "a"}\n{"sid": "b"\n'),
            run(ExotelBulkUpdateContactsOperator(task_id="u", input_path=str(t / "in.jsonl"))),
        ),
        r"input_path .*line 2 is not valid JSON",
    ),
    (
        "operator: JSON Lines with NaN names the line and field",
        lambda s, m, t: (
            (t / "in.jsonl").write_text('{"sid": "a"}\n{"sid": "b", "tag": NaN}\n'),
            run(ExotelBulkUpdateContactsOperator(task_id="u", input_path=str(t / "in.jsonl"))),
        ),
        r"input_path .*line 2 \(sid 'b'\) field 'tag' is nan",
    ),
    (
        "operator: JSON Lines sid with spaces repeats the trimmed one",
        lambda s, m, t: (
            (t / "in.jsonl").write_text('{"sid": "a"}\n{"sid": " a "}\n'),
            run(ExotelBulkUpdateContactsOperator(task_id="u", input_path=str(t / "in.jsonl"))),
        ),
        r"input_path .*line 2 repeats sid 'a' \(first on line 1\)",
    ),
    (
        "operator: batch_size 0",
        lambda s, m, t: ExotelBulkUpdateContactsOperator(task_id="u", contacts=[], batch_size=0),
        r"batch_size",
    ),
    (
        "operator: negative max_records",
        lambda s, m, t: ExotelFetchContactsOperator(task_id="f", max_records=-1),
        r"max_records",
    ),
    (
        "operator: empty list_sid",
        lambda s, m, t: ExotelFetchListContactsOperator(task_id="f", list_sid="  "),
        r"list_sid",
    ),
    (
        "operator: templated list_sid rendering empty",
        lambda s, m, t: run(ExotelFetchListContactsOperator(task_id="f", list_sid="{{ '' }}")),
        r"list_sid",
    ),
    # sensor
    ("sensor: min_count < 0", lambda s, m, t: ExotelContactsSensor(task_id="w", min_count=-1), r"min_count"),
    (
        "sensor: unparsable created_after",
        lambda s, m, t: ExotelContactsSensor(task_id="w", created_after="last tuesday-ish"),
        r"created_after",
    ),
    ("sensor: empty list_sid", lambda s, m, t: ExotelContactsSensor(task_id="w", list_sid=""), r"list_sid"),
]


@pytest.mark.parametrize(("trigger", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named_and_refused_before_any_request(
    exotel_simulator, monkeypatch, tmp_path, trigger, pattern
):
    exotel_simulator.seed_contacts(3)
    with pytest.raises(ExotelValidationError, match=pattern):
        result = trigger(exotel_simulator, monkeypatch, tmp_path)
        if hasattr(result, "__next__"):
            next(result)
    assert exotel_simulator.request_count() == 0


def test_the_catalogue_covers_at_least_fifteen_cases():
    assert len(CASES) >= 15
