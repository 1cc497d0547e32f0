"""A run without a data interval (Airflow 3: triggered without a logical date) fails at once, clearly.

The incremental example renders ``{{ data_interval_start }}``; in such a run the key is missing from
the context and Jinja raises ``UndefinedError`` — retried three times (three minutes) before. The
operators turn it into ``AirflowFailException`` (never retried) whose message says how to trigger.
Rendered here exactly as the task runner renders: ``render_template_fields`` with the DAG's Jinja
environment (``StrictUndefined``). The real deployment check is in tests/integration/test_make_airflow.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import jinja2
import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_exotel.operators.contacts import (
    ExotelFetchContactsOperator,
    ExotelFetchListContactsOperator,
)

EXAMPLE = (
    Path(__file__).resolve().parent.parent.parent / "example_dags" / "example_exotel_incremental_export.py"
)


def _example_task() -> Any:
    spec = importlib.util.spec_from_file_location("example_incremental_for_test", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.example_exotel_incremental_export()  # the @dag function builds the DAG
    return dag, dag.get_task("export_new_contacts")


def _context_without_run_dates(task: Any) -> dict[str, Any]:
    # what a run triggered without a logical date has: no logical_date, ds, data_interval_* keys
    return {"run_id": "manual__2026-01-01T00:00:00+00:00", "task": task, "params": {}}


def test_incremental_example_without_a_logical_date_fails_at_once_saying_how_to_trigger() -> None:
    dag, task = _example_task()
    with pytest.raises(AirflowFailException) as caught:  # AirflowFailException: no retries
        task.render_template_fields(_context_without_run_dates(task), jinja_env=dag.get_template_env())
    message = str(caught.value)
    assert "data_interval_start" in message and "no data interval" in message
    assert "airflow dags trigger example_exotel_incremental_export --logical-date" in message
    assert '"logical_date"' in message and "backfill" in message
    assert isinstance(caught.value.__cause__, jinja2.UndefinedError)


def test_incremental_example_renders_one_interval_when_the_run_has_one() -> None:
    dag, task = _example_task()
    start = pendulum.datetime(2024, 6, 1, tz="UTC")
    context = {
        **_context_without_run_dates(task),
        "data_interval_start": start,
        "data_interval_end": start.add(days=1),
    }
    task.render_template_fields(context, jinja_env=dag.get_template_env())
    assert task.created_from == str(start)
    assert task.output_path.endswith("/incremental/20240601T000000_20240602T000000.jsonl")


@pytest.mark.parametrize("template", ["{{ ds }}", "{{ logical_date.isoformat() }}", "{{ ts_nodash }}"])
def test_any_run_date_missing_from_the_run_fails_at_once(template: str) -> None:
    task = ExotelFetchListContactsOperator(
        task_id="fetch", list_sid="list0", output_path=f"/tmp/x/{template}"
    )
    with pytest.raises(AirflowFailException, match="no data interval"):
        task.render_template_fields(_context_without_run_dates(task), jinja_env=jinja2.Environment(
            undefined=jinja2.StrictUndefined
        ))  # fmt: skip


def test_other_undefined_names_are_left_to_airflow() -> None:
    task = ExotelFetchContactsOperator(task_id="fetch", name="{{ no_such_variable }}")
    with pytest.raises(jinja2.UndefinedError):
        task.render_template_fields(
            _context_without_run_dates(task), jinja_env=jinja2.Environment(undefined=jinja2.StrictUndefined)
        )


def test_sensor_waiting_for_contacts_created_in_the_interval_fails_at_once_too() -> None:
    from airflow_provider_exotel.sensors.contacts import ExotelContactsSensor

    sensor = ExotelContactsSensor(task_id="wait", created_after="{{ data_interval_start }}")
    with pytest.raises(AirflowFailException, match="data_interval_start"):
        sensor.render_template_fields(
            _context_without_run_dates(sensor), jinja_env=jinja2.Environment(undefined=jinja2.StrictUndefined)
        )
