"""A timestamp that UTC cannot hold is an ``ExotelValidationError`` naming its argument (issue 18 item 8).

``0001-01-01T00:00:00+05:30`` is before ``datetime.min`` in UTC and ``9999-12-31T23:59:59-05:00``
after ``datetime.max``: converting them overflowed with a bare ``OverflowError``. Every timestamp
argument (the hook's and the fetch operator's ``created_from``/``created_to``, the sensor's and the
trigger's ``created_after``) goes through one bound check, before any request.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_exotel._validation import check_created_range, parse_timestamp
from airflow_provider_exotel.exceptions import ExotelValidationError
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

OUT_OF_RANGE = [
    "0001-01-01T00:00:00+05:30",
    "9999-12-31T23:59:59-05:00",
    dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-1))),
]
IDS = ["min+05:30", "max-05:00", "min+01:00-datetime", "max-01:00-datetime"]


@pytest.mark.parametrize("value", OUT_OF_RANGE, ids=IDS)
@pytest.mark.parametrize("argument", ["created_from", "created_to"])
def test_the_hook_refuses_a_bound_outside_utc_before_any_request(exotel_simulator, value, argument):
    hook = ExotelContactsHook()

    with pytest.raises(ExotelValidationError, match=f"{argument} .*outside the range of a UTC timestamp"):
        list(hook.iter_contacts(**{argument: value}))

    assert exotel_simulator.requests == []


@pytest.mark.parametrize("value", OUT_OF_RANGE, ids=IDS)
def test_the_fetch_operator_refuses_it_when_built(value):
    from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator

    with pytest.raises(ExotelValidationError, match="created_to"):
        ExotelFetchContactsOperator(task_id="fetch", created_to=value)


@pytest.mark.parametrize("value", OUT_OF_RANGE, ids=IDS)
def test_the_sensor_and_the_trigger_refuse_created_after(value):
    from airflow_provider_exotel.sensors.contacts import ExotelContactsSensor
    from airflow_provider_exotel.triggers.contacts import ExotelContactsTrigger

    with pytest.raises(ExotelValidationError, match="created_after"):
        ExotelContactsSensor(task_id="wait", created_after=value)
    with pytest.raises(ExotelValidationError, match="created_after"):
        ExotelContactsTrigger(created_after=value)


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59+05:30"]
)
def test_the_extremes_utc_can_hold_are_accepted(value):
    start, _ = check_created_range(value, None)
    assert start == dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_an_answer_with_an_unholdable_date_created_is_unreadable_not_a_crash():
    assert parse_timestamp("9999-12-31T23:59:59-05:00") is None


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    moment=st.datetimes(),
    offset=st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
    as_text=st.booleans(),
)
def test_any_aware_bound_is_its_utc_moment_or_a_validation_error(moment, offset, as_text):
    aware = moment.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset)))
    value = aware.isoformat() if as_text else aware
    try:
        start, _ = check_created_range(value, None)
    except ExotelValidationError as exc:
        assert "created_from" in str(exc)
        with pytest.raises(OverflowError):
            aware.astimezone(dt.UTC)
    else:
        assert start == aware and start.tzinfo == dt.UTC
