"""ExotelContactsSensor against the bundled simulator, over real sockets; and in a real DAG run."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred
from airflow_harness import get_harness
from conftest import exotel_connection

from airflow_provider_exotel.exceptions import (
    ExotelAuthError,
    ExotelError,
    ExotelRequestError,
    ExotelValidationError,
)
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook
from airflow_provider_exotel.sensors.contacts import FIRST_CHECK_TIMEOUT, ExotelContactsSensor
from airflow_provider_exotel.triggers.contacts import ExotelContactsTrigger

DAGS = Path(__file__).parent.parent / "dags"
_ids = iter(range(10**9))


def make_sensor(**kwargs) -> ExotelContactsSensor:
    """A sensor whose hook retries fast (the default backoff would make transient tests slow)."""
    kwargs.setdefault("task_id", f"wait_{next(_ids)}")
    kwargs.setdefault("poke_interval", 0)
    kwargs.setdefault("timeout", 60)
    sensor = ExotelContactsSensor(**kwargs)
    sensor.hook = ExotelContactsHook(sensor.exotel_conn_id, retry_limit=0, retry_delay=0, timeout=5)
    return sensor


def poke(sensor: ExotelContactsSensor):
    result = sensor.poke({})
    return bool(result.is_done), result.xcom_value


# ------------------------------------------------------------------------------------ the condition
def test_sensor_waits_until_min_count_contacts_exist(exotel_simulator):
    exotel_simulator.seed_contacts(2)
    sensor = make_sensor(min_count=3)

    assert poke(sensor)[0] is False
    exotel_simulator.insert_contact(first_name="New")
    assert poke(sensor) == (True, {"count": 3})
    exotel_simulator.insert_contact(first_name="Newer")
    assert poke(sensor) == (True, {"count": 4})


def test_sensor_returns_the_count_as_its_xcom_value(exotel_simulator):
    exotel_simulator.seed_contacts(7)

    assert make_sensor(min_count=5).execute({}) == {"count": 7}


def test_min_count_zero_succeeds_on_an_empty_account(exotel_simulator):
    assert make_sensor(min_count=0).execute({}) == {"count": 0}
    assert exotel_simulator.request_count() == 1


def test_sensor_counts_only_the_contacts_of_list_sid(exotel_simulator):
    contacts = exotel_simulator.seed_contacts(10)
    exotel_simulator.create_list("L1", [c["sid"] for c in contacts[:2]])
    sensor = make_sensor(list_sid="L1", min_count=3)

    assert poke(sensor) == (False, {"count": 2})
    exotel_simulator.create_list("L1", [contacts[5]["sid"]])
    assert poke(sensor) == (True, {"count": 3})
    assert {r.path.rsplit("/v2/accounts/acct1/", 1)[1] for r in exotel_simulator.requests} == {
        "lists/L1/contacts"
    }


NEWEST = "2024-01-01T00:00:04Z"  # date_created of the 5th seeded contact


@pytest.mark.parametrize(
    ("created_after", "done"),
    [
        ("2024-01-01T00:00:03Z", True),
        (NEWEST, False),  # equal is not "after"
        ("2024-01-01T00:00:05Z", False),
        ("2024-01-01T05:30:04+05:30", False),  # the same instant in IST
        ("2024-01-01T05:30:03+05:30", True),
        (dt.datetime(2024, 1, 1, 0, 0, 3), True),  # naive means UTC
        (dt.datetime(2024, 1, 1, 0, 0, 4), False),
        (dt.datetime(2024, 1, 1, 0, 0, 3, 999999, tzinfo=dt.UTC), True),
        ("2024-01-01 00:00:03+00:00", True),  # how Jinja renders {{ data_interval_start }}
    ],
)
def test_created_after_needs_a_contact_created_strictly_after_it(exotel_simulator, created_after, done):
    exotel_simulator.seed_contacts(5)

    assert poke(make_sensor(min_count=1, created_after=created_after)) == (done, {"count": 5})


def test_created_after_looks_at_the_newest_contact_of_the_list(exotel_simulator):
    contacts = exotel_simulator.seed_contacts(5)
    exotel_simulator.create_list("L1", [contacts[0]["sid"], contacts[1]["sid"]])  # newest: ...:01Z
    sensor = make_sensor(list_sid="L1", created_after="2024-01-01T00:00:01Z")

    assert poke(sensor) == (False, {"count": 2})
    late = exotel_simulator.insert_contact(date_created="2024-01-01T00:00:02Z")
    exotel_simulator.create_list("L1", [late["sid"]])
    assert poke(sensor) == (True, {"count": 3})


def test_created_after_is_not_checked_while_too_few_contacts_exist(exotel_simulator):
    exotel_simulator.seed_contacts(1)

    assert poke(make_sensor(min_count=2, created_after="2020-01-01")) == (False, {"count": 1})
    assert exotel_simulator.request_count() == 1  # no newest-contact request


# ------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"min_count": -1}, "min_count"),
        ({"min_count": "x"}, "min_count"),
        ({"min_count": "3"}, "min_count"),
        ({"min_count": 1.5}, "min_count"),
        ({"min_count": True}, "min_count"),
        ({"min_count": None}, "min_count"),
        ({"list_sid": ""}, "list_sid"),
        ({"list_sid": "   "}, "list_sid"),
        ({"list_sid": 42}, "list_sid"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "2024-13-45T00:00:00Z"}, "created_after"),
        ({"created_after": "10:00"}, "created_after"),
        ({"created_after": ""}, "created_after"),
        ({"created_after": 1714557600}, "created_after"),
        ({"exotel_conn_id": ""}, "exotel_conn_id"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed_before_any_request(exotel_simulator, kwargs, named):
    with pytest.raises(ExotelValidationError, match=named):
        ExotelContactsSensor(task_id="wait", **kwargs)
    assert exotel_simulator.requests == []


def test_templated_arguments_are_validated_after_rendering_before_any_request(exotel_simulator):
    exotel_simulator.seed_contacts(3)
    sensor = make_sensor(min_count="{{ params.n }}", created_after="{{ params.since }}")

    sensor.min_count, sensor.created_after = "2", "not a date"  # what rendering produced
    with pytest.raises(ExotelValidationError, match="created_after"):
        sensor.poke({})
    sensor.min_count, sensor.created_after = "-2", "2020-01-01"
    with pytest.raises(ExotelValidationError, match="min_count"):
        sensor.poke({})
    assert exotel_simulator.requests == []

    sensor.min_count = "2"  # Jinja renders numbers as strings
    assert poke(sensor) == (True, {"count": 3})


def test_template_fields_are_the_documented_ones():
    assert tuple(ExotelContactsSensor.template_fields) == (
        "exotel_conn_id",
        "list_sid",
        "min_count",
        "created_after",
    )


# ---------------------------------------------------------------------------------------- errors
def test_bad_credentials_fail_the_sensor_at_once(exotel_simulator):
    exotel_simulator.seed_contacts(3)
    exotel_simulator.add_faults("401")

    with pytest.raises(ExotelAuthError, match="401"):
        make_sensor(min_count=10, timeout=60).execute({})
    assert exotel_simulator.request_count() == 1


def test_forbidden_fails_the_sensor_at_once(exotel_simulator):
    exotel_simulator.fail_every_request("403")

    with pytest.raises(ExotelAuthError, match="403"):
        make_sensor().execute({})
    assert exotel_simulator.request_count() == 1


def test_sensor_keeps_poking_through_transient_errors(exotel_simulator, capsys):
    exotel_simulator.seed_contacts(3)
    exotel_simulator.add_faults("500", "429", "503")
    sensor = make_sensor(min_count=3)

    assert sensor.execute({}) == {"count": 3}
    assert exotel_simulator.request_count() == 4
    # the 500 and the 503 each fail a poke (retry_limit=0); the 429 is waited out within its poke
    # (429s do not spend retry_limit)
    assert capsys.readouterr().out.count("will check again") == 2


def test_a_list_that_does_not_exist_yet_is_waited_for(exotel_simulator):
    contacts = exotel_simulator.seed_contacts(3)
    sensor = make_sensor(list_sid="L9")

    assert poke(sensor)[0] is False  # 404 List not found: keep waiting
    exotel_simulator.create_list("L9", [contacts[0]["sid"]])
    assert poke(sensor) == (True, {"count": 1})


def test_poke_mode_times_out_while_exotel_keeps_failing(exotel_simulator):
    exotel_simulator.fail_every_request("500")

    with pytest.raises(AirflowSensorTimeout):
        make_sensor(timeout=0).execute({})


# ------------------------------------------------------------------------------------ deferrable
def test_deferrable_sensor_returns_at_once_when_already_satisfied(exotel_simulator):
    exotel_simulator.seed_contacts(4)

    assert make_sensor(min_count=4, deferrable=True).execute({}) == {"count": 4}


def test_deferrable_sensor_hands_the_wait_to_the_trigger(exotel_simulator):
    exotel_simulator.seed_contacts(1)
    exotel_simulator.create_list("L1", exotel_simulator.contact_sids[:1])
    sensor = make_sensor(
        list_sid="L1",
        min_count=2,
        created_after=dt.datetime(2024, 5, 1, 10, 0),
        deferrable=True,
        poke_interval=7,
        timeout=600,
    )

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    trigger = deferred.value.trigger
    assert isinstance(trigger, ExotelContactsTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == dt.timedelta(seconds=600)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_exotel.triggers.contacts.ExotelContactsTrigger"
    assert kwargs["list_sid"] == "L1"
    assert kwargs["min_count"] == 2
    assert kwargs["created_after"] == "2024-05-01T10:00:00+00:00"
    assert kwargs["poke_interval"] == 7
    assert kwargs["end_time"] is not None
    assert exotel_simulator.request_count() == 1  # one check before deferring


def test_deferrable_sensor_fails_at_once_on_bad_credentials(exotel_simulator):
    exotel_simulator.add_faults("401")

    with pytest.raises(ExotelAuthError):
        make_sensor(deferrable=True).execute({})


@pytest.mark.parametrize("fault", ["503", "reset", "429"])
def test_deferrable_sensor_defers_at_once_when_its_first_check_fails_transiently(exotel_simulator, fault):
    exotel_simulator.seed_contacts(5)
    exotel_simulator.add_faults(fault)  # only the first request fails; a retry would succeed
    # default hook settings (retry_limit=5): the worker must not spend them
    sensor = ExotelContactsSensor(task_id=f"wait_{next(_ids)}", min_count=1, deferrable=True, timeout=60)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    assert isinstance(deferred.value.trigger, ExotelContactsTrigger)
    assert exotel_simulator.request_count() == 1  # one attempt in the worker, no retry


@pytest.fixture
def silent_exotel(silent_port: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """``exotel_default`` points at a socket that accepts connections and never answers."""
    connection = exotel_connection(silent_port, timeout=120)  # the cap must apply to this too
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", json.dumps(connection))
    return silent_port


@pytest.mark.timeout(90)  # without the cap the first check waits for the extra's 120 s
def test_deferrable_sensor_defers_quickly_when_exotel_never_answers_its_first_check(
    silent_exotel, capsys, caplog
):
    sensor = ExotelContactsSensor(task_id=f"wait_{next(_ids)}", min_count=1, deferrable=True, timeout=60)
    started = time.monotonic()

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    elapsed = time.monotonic() - started

    assert isinstance(deferred.value.trigger, ExotelContactsTrigger)
    # one attempt of at most FIRST_CHECK_TIMEOUT (5 s); the hook's 30 s or the extra's 120 s would show
    assert elapsed < 20, f"the first check held the worker {elapsed:.1f} s before deferring"
    assert elapsed >= FIRST_CHECK_TIMEOUT * 0.9  # it did wait for an answer, then gave up
    captured = capsys.readouterr()
    logged = captured.out + captured.err + caplog.text  # Airflow 3 logs to stdout, 2.x through logging
    assert f"no answer within {FIRST_CHECK_TIMEOUT:g} s (gave up after 1 attempt)" in logged
    assert "deferring now" in logged
    # the trigger (in the triggerer) keeps the hook's own settings: the connection's timeout applies
    assert deferred.value.trigger.serialize()[1]["hook_params"] == {}


def test_deferrable_sensor_still_fails_at_once_when_its_first_check_is_forbidden(exotel_simulator):
    exotel_simulator.add_faults("403")
    sensor = ExotelContactsSensor(task_id=f"wait_{next(_ids)}", deferrable=True)

    with pytest.raises(ExotelError):
        sensor.execute({})
    assert exotel_simulator.request_count() == 1


@pytest.mark.parametrize(("configured", "expected"), [("True", True), ("False", False)])
def test_deferrable_defaults_to_airflows_default_deferrable(configured, expected):
    """Like Airflow's own sensors: ``[operators] default_deferrable`` decides when not given."""
    code = (
        "from airflow_provider_exotel.sensors.contacts import ExotelContactsSensor as S;"
        "print(S(task_id='wait').deferrable, S(task_id='w2', deferrable=False).deferrable)"
    )
    env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": configured}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == [str(expected), "False"]


@pytest.mark.parametrize(
    ("example_deferrable", "configured", "expected"),
    [(None, "True", True), (None, "False", False), ("1", "False", True), ("0", "True", False)],
)
def test_sync_example_follows_default_deferrable_unless_its_variable_is_set(
    example_deferrable, configured, expected
):
    """``EXOTEL_EXAMPLE_DEFERRABLE`` decides when set; unset, ``[operators] default_deferrable`` does."""
    root = Path(__file__).resolve().parent.parent.parent
    example = root / "example_dags" / "example_exotel_sync_contacts.py"
    code = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "try:\n    from airflow.dag_processing.dagbag import DagBag\n"
        "except ImportError:\n    from airflow.models.dagbag import DagBag\n"
        f"bag = DagBag({str(example)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "print(bag.dags['example_exotel_sync_contacts'].get_task('wait_for_contacts').deferrable)"
    )
    env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": configured}
    env.pop("EXOTEL_EXAMPLE_DEFERRABLE", None)
    if example_deferrable is not None:
        env["EXOTEL_EXAMPLE_DEFERRABLE"] = example_deferrable
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == str(expected)


def test_resuming_after_the_trigger_fired_returns_the_count():
    sensor = ExotelContactsSensor(task_id="wait", deferrable=True)

    assert sensor.execute_complete({}, {"status": "success", "count": 12}) == {"count": 12}


@pytest.mark.parametrize(
    ("event", "error", "match"),
    [
        ({"status": "error", "reason": "auth", "message": "HTTP 401 Unauthorized"}, ExotelAuthError, "401"),
        ({"status": "error", "reason": "timeout", "message": "Timed out"}, AirflowSensorTimeout, "Timed out"),
        ({"status": "error", "reason": "invalid", "message": "needs extra"}, ExotelValidationError, "extra"),
        ({"status": "error", "reason": "request", "message": "HTTP 400"}, ExotelRequestError, "400"),
        ({"status": "error"}, ExotelError, "trigger failed"),
        (None, ExotelError, "no usable event"),
    ],
)
def test_resuming_after_a_trigger_error_fails_with_its_message(event, error, match):
    sensor = ExotelContactsSensor(task_id="wait", deferrable=True)

    with pytest.raises(error, match=match):
        sensor.execute_complete({}, event)


# ----------------------------------------------------------------------------------- DAG parsing
def test_importing_the_sensor_module_stays_cheap():
    code = (
        "import sys, airflow_provider_exotel.sensors.contacts\n"
        "heavy = ['airflow_provider_exotel.hooks.contacts', 'airflow_provider_exotel.triggers.contacts']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ------------------------------------------------------------------------------------ end to end
def test_deferrable_sensor_dag_waits_in_the_trigger_and_succeeds(exotel_simulator):
    exotel_simulator.seed_contacts(2)
    # request 1: the sensor's own count (2 < 3) -> defer; 2: the trigger's first count (still 2);
    # 3: its second count, after a contact arrived, and 4: the newest contact's date -> fire.
    inserted = exotel_simulator.on_nth_request(3, lambda sim: sim.insert_contact(first_name="Late"))

    result = get_harness().run_dag(
        "exotel_deferrable_contacts_sensor",
        dags_folder=DAGS,
        env={"AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json()},
        conf={"min_count": 3},
    )

    result.assert_success()
    assert inserted.is_set()
    assert result.xcom("wait_for_contacts") == {"count": 3}
    assert result.xcom("report") == 3
    log = result.task_log("wait_for_contacts")
    _, marker, after = log.partition("running trigger in line")
    assert marker, "the sensor did not defer"
    checks = [line for line in after.splitlines() if "Exotel contacts: " in line]  # the trigger's
    assert len(checks) == 2
    assert "Exotel contacts: 2 (need 3" in checks[0] and "— waiting" in checks[0]
    assert "Exotel contacts: 3 (need 3" in checks[1] and "— done" in checks[1]
    assert exotel_simulator.request_count() == 4
    assert "test-token" not in result.output


def test_deferrable_sensor_dag_fails_on_bad_credentials(exotel_simulator):
    exotel_simulator.seed_contacts(2)
    # request 1: the sensor's own check (2 < 3) -> defer; request 2: the trigger's, refused.
    exotel_simulator.on_nth_request(2, lambda sim: sim.add_faults("401"))

    result = get_harness().run_dag(
        "exotel_deferrable_contacts_sensor",
        dags_folder=DAGS,
        env={"AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json()},
        conf={"min_count": 3},
    )

    assert result.task_states()["wait_for_contacts"] == "failed"
    assert "ExotelAuthError" in result.task_log("wait_for_contacts")
    assert exotel_simulator.request_count() == 2


def test_sensor_dag_file_parses_without_errors():
    dag_ids, errors = get_harness().import_errors(DAGS)
    assert errors == {}
    assert "exotel_deferrable_contacts_sensor" in dag_ids
