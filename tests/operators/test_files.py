"""The operators' one JSON Lines reader/writer and the resumable export (``operators/_files.py``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from airflow_provider_exotel.exceptions import ExotelValidationError
from airflow_provider_exotel.operators._files import (
    Resume,
    jsonl_line,
    jsonl_writer,
    read_jsonl,
    write_export,
)

LOG = logging.getLogger("test_files")


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------------ read
def test_read_jsonl_numbers_lines_skips_blank_ones_and_drops_dead_letter_errors(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"b": 2, "error": {"code": 1}}\n', encoding="utf-8")

    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, {"b": 2})]
    assert list(read_jsonl(path, keep_errors=True))[1] == (4, {"b": 2, "error": {"code": 1}})


def test_read_jsonl_names_the_argument_and_line_of_malformed_json(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n{"b": \n', encoding="utf-8")

    with pytest.raises(ExotelValidationError, match=r"current_path .*in\.jsonl: line 2 is not valid JSON"):
        list(read_jsonl(path, argument="current_path"))


def test_read_jsonl_splits_only_on_newlines(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"name": "a\u2028b"}\n', encoding="utf-8")  # U+2028 raw inside a string

    assert list(read_jsonl(path)) == [(1, {"name": "a\u2028b"})]


# ------------------------------------------------------------------------------------ write
def test_jsonl_line_escapes_what_breaks_line_readers_and_utf8():
    line = jsonl_line({"x": "a\u2028b\u2029c\ud800"})

    assert line.endswith("\n") and line.count("\n") == 1
    line.encode("utf-8")  # a lone surrogate would not encode
    assert json.loads(line) == {"x": "a\u2028b\u2029c\ud800"}


def test_writer_moves_the_file_into_place_only_when_complete(tmp_path):
    target = tmp_path / "out.jsonl"
    with jsonl_writer(target) as out:
        out.write({"n": 1})
        out.write({"n": 2})
        assert not target.exists()  # written to a temporary sibling meanwhile
    assert out.count == 2 and lines(target) == [{"n": 1}, {"n": 2}]
    assert hidden(tmp_path) == []

    with pytest.raises(RuntimeError), jsonl_writer(target) as out:
        out.write({"n": 3})
        raise RuntimeError("boom")
    assert lines(target) == [{"n": 1}, {"n": 2}]  # the earlier file is untouched
    assert hidden(tmp_path) == []


def test_dead_letter_writer_keeps_what_was_written_whatever_ends_the_block(tmp_path):
    target = tmp_path / "failed.jsonl"

    with pytest.raises(KeyboardInterrupt), jsonl_writer(target, keep_on_error=True) as out:
        out.write({"sid": "a", "error": {"code": 401}})
        raise KeyboardInterrupt

    assert lines(target) == [{"sid": "a", "error": {"code": 401}}]
    assert hidden(tmp_path) == []


# ------------------------------------------------------------------------------------ export
def rows(start: int, stop: int, field: str = "sid") -> list[dict]:
    return [{field: f"r{i}", "n": i} for i in range(start, stop)]


def failing_after(items: list[dict], n: int, calls: list):
    def fetch(resume):
        calls.append(resume)
        for i, item in enumerate(items):
            if i == n:
                raise ConnectionError("dropped")
            yield item

    return fetch


def test_export_resumes_with_the_same_key_and_hands_fetch_what_is_held(tmp_path):
    target = tmp_path / "calls.jsonl"
    data = rows(0, 50, field="Sid")
    calls: list = []

    with pytest.raises(ConnectionError):
        write_export(target, failing_after(data, 30, calls), key={"q": 1}, log=LOG, id_field="Sid")
    assert not target.exists() and calls == [None]

    def rest(resume):
        calls.append(resume)
        return iter(data[resume.count :])

    assert write_export(target, rest, key={"q": 1}, log=LOG, id_field="Sid") == 50
    resume = calls[-1]
    assert isinstance(resume, Resume)
    assert resume.count == 30 and resume.last == data[29] and resume.seen == {f"r{i}" for i in range(30)}
    assert lines(target) == data
    assert hidden(tmp_path) == []


def test_export_under_another_key_starts_over(tmp_path):
    target = tmp_path / "out.jsonl"
    calls: list = []
    with pytest.raises(ConnectionError):
        write_export(target, failing_after(rows(0, 40), 25, calls), key={"account": "A"}, log=LOG)

    count = write_export(target, failing_after(rows(100, 110), -1, calls), key={"account": "B"}, log=LOG)

    assert calls == [None, None]  # the second try was not offered A's rows
    assert count == 10 and lines(target) == rows(100, 110)


def test_a_completed_export_is_redone_and_rows_are_counted(tmp_path):
    target = tmp_path / "out.jsonl"
    seen: list[int] = []
    write_export(target, lambda resume: iter(rows(0, 5)), key={}, log=LOG, on_row=lambda: seen.append(1))
    calls: list = []

    write_export(target, failing_after(rows(5, 8), -1, calls), key={}, log=LOG)

    assert len(seen) == 5 and calls == [None] and lines(target) == rows(5, 8)


def test_export_closes_the_fetch_iterator_when_it_stops(tmp_path):
    closed: list[bool] = []

    class Pager:
        def __iter__(self):
            return self

        def __next__(self):
            raise ConnectionError("dropped")

        def close(self):
            closed.append(True)

    with pytest.raises(ConnectionError):
        write_export(tmp_path / "out.jsonl", lambda resume: Pager(), key={}, log=LOG)
    assert closed == [True]
