"""Resumable JSON Lines export of rows keyed by another field than ``sid`` (private).

SHIM until operators-ready: wp-operators' ``operators/_files.py`` gains
``write_export(target, fetch, *, key, log, on_row, id_field)``; this module has the same signature
over today's ``operators/_export.py`` and goes away at that merge (import ``write_export`` and
``Resume`` from ``_files`` instead). Standard library only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from airflow_provider_exotel.operators._export import ResumableExport, atomic_jsonl_writer, jsonl_line, local_path


class Resume(NamedTuple):
    """What an earlier try of an export left: rows held, the last of them, and their ids."""

    count: int
    last: dict[str, Any]
    seen: set[str]


class _KeyedExport(ResumableExport):
    """:class:`ResumableExport` whose rows are identified by ``id_field``."""

    def __init__(self, target: Any, fetch: Mapping[str, Any], id_field: str) -> None:
        super().__init__(target, fetch)
        self.id_field = id_field

    def _read_held(self, fd: int) -> tuple[int, dict[str, Any] | None, set[str]] | None:
        try:
            with open(self.note, encoding="utf-8") as note:
                if json.load(note) != json.loads(json.dumps(self.fetch, default=str)):
                    return None
        except (OSError, ValueError):
            return None
        seen: set[str] = set()
        last: dict[str, Any] | None = None
        end = 0
        try:
            with open(self.partial, "rb") as reader:
                for line in reader:
                    if not line.endswith(b"\n"):
                        break  # a torn last line: cut below
                    row = json.loads(line)
                    ident = row.get(self.id_field) if isinstance(row, dict) else None
                    if not isinstance(ident, str):
                        return None
                    seen.add(ident)
                    last = row
                    end += len(line)
                size = reader.seek(0, os.SEEK_END)
        except (OSError, ValueError):
            return None
        if not seen:
            return None
        if end < size:
            os.ftruncate(fd, end)
        return len(seen), last, seen


def write_export(
    target: Any,
    fetch: Callable[[Resume | None], Iterable[Mapping[str, Any]]],
    *,
    key: Mapping[str, Any],
    log: Any,
    on_row: Callable[[], None] | None = None,
    id_field: str = "sid",
) -> int:
    """Stream ``fetch(resume)`` to ``target`` as JSON Lines (resumable locally); return the row count."""
    on_disk = local_path(target)
    export = _KeyedExport(on_disk, key, id_field) if on_disk is not None else None
    held = export.open() if export is not None else None
    if export is None or held is None:
        with atomic_jsonl_writer(on_disk or target) as fh:
            return _copy(fetch(None), lambda row: fh.write(jsonl_line(row)), on_row)
    count, last, seen = held
    resume = Resume(count, last, seen) if count and last is not None else None
    if resume is not None:
        log.info("Resuming the export to %s: %s rows were written by an earlier try", on_disk, f"{count:,}")
    try:
        _copy(fetch(resume), export.write, on_row)
        export.commit()
        return export.count
    except BaseException:
        export.close()
        if export.count:
            log.warning("Export to %s stopped after %s rows; the next try goes on from there", on_disk, export.count)
        raise


def _copy(rows: Iterable[Any], write: Callable[[Any], Any], on_row: Callable[[], None] | None) -> int:
    count = 0
    try:
        for row in rows:
            write(row)
            count += 1
            if on_row is not None:
                on_row()
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    return count
