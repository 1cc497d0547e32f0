"""Progress lines show an ETA only once the pace is known; log lines say what a fetch is."""

from __future__ import annotations

import logging

from airflow_provider_exotel.operators import _progress
from airflow_provider_exotel.operators._progress import Progress
from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def progress(total: int, clock: Clock, lines: list[str], budget=None) -> Progress:
    p = Progress(logging.getLogger("test"), "fetched", total, budget, clock=clock)
    p._emit = lines.append  # type: ignore[method-assign]
    return p


def test_the_first_progress_line_has_no_eta_even_after_a_slow_start():
    clock, lines = Clock(), []
    p = progress(3_000, clock, lines)
    clock.now += 5.0  # the first page took 5 s (connection set-up, a count request)
    p.add(20)
    clock.now += 5.0  # then the pace picks up: 580 in 5 s
    p.add(580)

    assert lines[0] == "fetched 20 / 3,000 contacts (0%), 4.0/s"
    # from the pace since the first line (116/s): 2,400 left -> 21 s, not the 12m 25s of 4/s
    assert lines[1] == "fetched 600 / 3,000 contacts (20%), 60.0/s, ETA 21s"


def test_a_first_line_with_a_budget_shows_the_budget_but_no_eta():
    clock, lines = Clock(), []
    p = progress(100_000, clock, lines, budget=lambda: 30.0)
    clock.now += 5.0
    p.add(40)

    assert lines == ["fetched 40 / 100,000 contacts (0%), 8.0/s (budget 30/min)"]


def test_without_a_second_line_the_pace_is_known_after_a_minute():
    clock, lines = Clock(), []
    p = progress(1_000, clock, lines)
    p.count = 100
    clock.now += 59.0
    assert "ETA" not in p._line()
    clock.now += 1.0
    assert p._line().endswith(", ETA 9m 00s")


def test_the_fetch_log_says_ordered_by_not_where_sort_by(exotel_simulator, caplog, capsys, monkeypatch):
    exotel_simulator.seed_contacts(3)
    monkeypatch.setattr(_progress, "PROGRESS_INTERVAL", 0.0)
    op = ExotelFetchContactsOperator(task_id="f", sort_by="name:asc", name="First", max_records=2)

    with caplog.at_level(logging.INFO):
        op.execute(context={})

    text = caplog.text + capsys.readouterr().out  # Airflow 3 logs to stdout, 2.x through logging
    assert "Fetching all contacts where name='First', ordered by name:asc" in text
    assert "sort_by=" not in text
