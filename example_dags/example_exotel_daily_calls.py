"""Export each day's call records (Exotel Voice v1) to a file of its own, exactly once.

Every run exports the calls created in its data interval, ``[data_interval_start,
data_interval_end)`` — one UTC day — to ``<EXOTEL_EXAMPLE_DATA_DIR>/calls/<day>.jsonl``, oldest
first, as Exotel sends them (``Sid, DateCreated, Status, Duration, Price, RecordingUrl`` …, times
in the account's time zone: connection extra ``timezone``, default ``Asia/Kolkata``). The intervals
are half-open and consecutive, so the daily files never overlap and together hold every call
exactly once.

Exotel fills in ``Duration``, ``Price`` and ``EndTime`` minutes after a call ends, so each run
waits until its interval's end plus ``settle`` (5 minutes) before reading; with
``deferrable=True`` (or ``[operators] default_deferrable``) it waits in the triggerer and holds no
worker slot. Calls are listed only once they have ended: raise ``settle`` (up to 4 h, the longest
call) if calls that start before midnight and end after it must be in that day's file.

The demo catches up over the last ``EXOTEL_EXAMPLE_CALLS_DAYS`` (7) days. Backfilling 6 months
(Exotel keeps call records for 6 months, so start at most 183 days back) is ~183 runs of ~1 day,
no gaps or overlaps; on Airflow 3::

    airflow backfill create --dag-id example_exotel_daily_calls \\
        --from-date 2024-01-05 --to-date 2024-07-04 --max-active-runs 4

(Airflow 2.x: ``airflow dags backfill -s 2024-01-05 -e 2024-07-04 example_exotel_daily_calls``).
Each run costs ⌈calls of the day / 100⌉ requests of the voice budget (200/min by default, apart
from the campaign APIs' 30/min): a 10,000-call day takes about 30 seconds.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import dag
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_exotel.operators.calls import ExotelFetchCallsOperator

DATA_DIR = os.environ.get("EXOTEL_EXAMPLE_DATA_DIR", "/tmp/exotel_example")
#: the demo's catch-up: runs for the last N days
DAYS = int(os.environ.get("EXOTEL_EXAMPLE_CALLS_DAYS", "7"))


@dag(
    dag_id="example_exotel_daily_calls",
    # @daily, as a data-interval timetable: each run covers [midnight, next midnight) UTC. (A plain
    # "@daily" is a trigger timetable on Airflow 3, whose runs have empty intervals.)
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.today("UTC").subtract(days=DAYS),
    catchup=True,
    max_active_runs=4,
    default_args={"retries": 3, "retry_delay": pendulum.duration(minutes=1)},
    tags=["exotel", "example", "calls"],
    doc_md=__doc__,
)
def example_exotel_daily_calls():
    ExotelFetchCallsOperator(
        task_id="export_calls",
        # the defaults, spelled out: the run's data interval
        created_from="{{ data_interval_start }}",
        created_to="{{ data_interval_end }}",
        output_path=DATA_DIR + "/calls/{{ data_interval_start.strftime('%Y-%m-%d') }}.jsonl",
    )


example_exotel_daily_calls()
