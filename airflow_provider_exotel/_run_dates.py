"""A template naming the run's dates, rendered in a run that has none: fail at once, say what to do.

On Airflow 3 a run triggered without a logical date (the REST API's and ``airflow dags trigger``'s
default, and the UI's trigger form without one) has no data interval: ``{{ data_interval_start }}``
and the other date keys are missing from the context, and rendering raises ``UndefinedError``. No
retry can heal that, so the task fails at once (``AirflowFailException``: no retries) with a message
saying how to trigger the DAG instead. Operators and sensors get it from :class:`RunDatesRendering`
(before ``BaseOperator`` in their bases). Cheap to import.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: Context keys that exist only when the run has a logical date (and so a data interval).
RUN_DATE_KEYS = frozenset(
    {
        "data_interval_start",
        "data_interval_end",
        "logical_date",
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "prev_data_interval_start_success",
        "prev_data_interval_end_success",
        "prev_start_date_success",
        "prev_end_date_success",
    }
)
_UNDEFINED = re.compile(r"'(\w+)' is undefined")


def missing_run_date(error: BaseException, context: Any) -> str | None:
    """The run-date key an ``UndefinedError`` is about, when the context lacks it; else ``None``.

    :param error: the error rendering raised.
    :param context: the template context the task was rendered with.
    """
    import jinja2

    if not isinstance(error, jinja2.UndefinedError):
        return None
    match = _UNDEFINED.search(str(error))
    if match is None or match.group(1) not in RUN_DATE_KEYS:
        return None
    name = match.group(1)
    try:
        present = context is not None and context.get(name) is not None
    except Exception:  # a lazy context value that cannot be read counts as missing
        present = False
    return None if present else name


def explain(name: str, dag_id: str, task_id: str) -> str:
    """What the user reads: why the task failed without retrying, and how to trigger the DAG instead."""
    return (
        f"Task {task_id!r} renders {{{{ {name} }}}}, but this run of DAG {dag_id!r} has no data interval: "
        "it was triggered without a logical date (on Airflow 3 the default of the REST API, "
        "`airflow dags trigger` and the trigger form). Trigger it with a logical date instead — "
        f"`airflow dags trigger {dag_id} --logical-date 2024-06-02T00:00:00+00:00`, or "
        '"logical_date": "2024-06-02T00:00:00Z" in POST /api/v2/dags/<dag_id>/dagRuns, or the trigger '
        f"form's logical date — or backfill the days you need (`airflow backfill create --dag-id {dag_id} "
        "--from-date 2024-06-01 --to-date 2024-06-07`). Not retried: a retry of this run cannot get one."
    )


def render_or_fail(render: Callable[[], Any], context: Any, *, dag_id: str, task_id: str) -> Any:
    """Run ``render()``; turn an undefined run date into an ``AirflowFailException`` that explains it.

    :param render: renders the value (the operator's ``super().render_template(...)``).
    :param context: the template context.
    :param dag_id: the DAG's id, for the message.
    :param task_id: the task's id, for the message.
    """
    try:
        return render()
    except Exception as error:
        name = missing_run_date(error, context)
        if name is None:
            raise
        from airflow.providers.common.compat.sdk import AirflowFailException

        raise AirflowFailException(explain(name, dag_id, task_id)) from error


class RunDatesRendering:
    """Mixin for an operator or sensor (listed before ``BaseOperator``): see the module docstring."""

    def render_template(self, content: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        render = super().render_template  # type: ignore[misc]
        return render_or_fail(
            lambda: render(content, context, *args, **kwargs),
            context,
            dag_id=getattr(self, "dag_id", "?"),
            task_id=getattr(self, "task_id", "?"),
        )


__all__ = ["RUN_DATE_KEYS", "RunDatesRendering", "explain", "missing_run_date", "render_or_fail"]
