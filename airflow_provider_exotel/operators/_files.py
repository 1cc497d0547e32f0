"""JSON Lines files of the operators: read once, written once, exports resumable (private).

Standard library only: operator modules import this at DAG parse time. The API, for every operator
family (contacts, campaign call details, call records):

- :func:`to_path` turns an argument into a local :class:`~pathlib.Path` or an ``ObjectStoragePath``;
  :func:`local_path` says whether it is on a local or mounted filesystem.
- :func:`read_jsonl` yields ``(line_number, object)`` of a JSON Lines file; a malformed line raises
  :class:`ExotelValidationError` naming the argument and the line. A dead letter's ``error`` object
  is dropped unless ``keep_errors``.
- :func:`jsonl_writer` is the one writer: a :class:`JsonlWriter` (``write(row)``, ``count``) on a
  temporary sibling of the target, moved into place when the block ends without an error. With
  ``keep_on_error=True`` (dead letters) what was written is moved into place whatever ends the block.
  Records are one per line whatever they hold (lone surrogates, U+2028/U+2029 are ``\\u`` escaped).
- :func:`write_export` streams rows to a target. On a local filesystem a try that fails or is killed
  leaves ``.exotel-<hash>.partial.jsonl`` (plus a ``.json`` note of its ``key``) that the next try
  with the same target **and the same key** resumes: ``fetch(resume)`` is called with a
  :class:`Resume` (rows held, the last one, their ids) and must yield only what follows. Put
  everything that decides the rows in ``key`` (query and account); another key starts over. Object
  storage is written whole and restarts on a new try.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from airflow_provider_exotel._compat import is_os_path, iter_lines
from airflow_provider_exotel.exceptions import ExotelValidationError

try:  # POSIX; Airflow workers are
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: Bump when the partial file's format changes: older partials are then ignored, not resumed.
RESUME_FORMAT = 2
#: Lines between flushes of a resumable export (a killed try loses at most this many).
FLUSH_EVERY = 20

_UNSAFE = re.compile("[\u2028\u2029\ud800-\udfff]")

__all__ = [
    "JsonlWriter",
    "Resume",
    "jsonl_line",
    "jsonl_writer",
    "local_path",
    "read_jsonl",
    "target_key",
    "to_path",
    "write_export",
]


# ---------------------------------------------------------------------------------------- paths
def to_path(value: Any) -> Any:
    """A local :class:`~pathlib.Path`, or an ``ObjectStoragePath`` for URLs (``s3://``, ``file://``...)."""
    if isinstance(value, str) and "://" in value:
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        return ObjectStoragePath(value)
    if isinstance(value, (str, os.PathLike)) and not hasattr(value, "protocol"):
        return Path(os.path.expanduser(os.fspath(value)))
    return value  # already an ObjectStoragePath


def local_path(target: Any) -> Path | None:
    """``target`` as a local filesystem path: a plain path, or a ``file://``/``local://`` storage path."""
    if is_os_path(target):
        return Path(target)
    if getattr(target, "protocol", None) in ("file", "local"):
        raw = getattr(target, "path", None)
        if isinstance(raw, str) and raw.startswith("/"):
            return Path(raw)
    return None


def target_key(target: Any) -> str:
    """A short, stable key for an output path (local: its absolute path; URLs: the URL)."""
    name = os.path.abspath(os.fspath(target)) if is_os_path(target) else str(target)
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:20]


# ---------------------------------------------------------------------------------------- read
def read_jsonl(
    path: Any, *, keep_errors: bool = False, argument: str = "input_path"
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, object)`` for each non-blank line; malformed JSON names its line.

    :param path: a local path or ``ObjectStoragePath``.
    :param keep_errors: keep a dead letter's ``error`` object (dropped by default, so a
        ``failed_output_path`` file replays as input as it is).
    :param argument: the argument named in errors.
    """
    with path.open("r", encoding="utf-8") as fh:
        for line_no, line in enumerate(iter_lines(fh), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise ExotelValidationError(
                    f"{argument} {path}: line {line_no} is not valid JSON ({exc})"
                ) from None
            if not keep_errors and isinstance(obj, dict) and isinstance(obj.get("error"), dict):
                del obj["error"]
            yield line_no, obj


# ---------------------------------------------------------------------------------------- write
def jsonl_line(obj: Any) -> str:
    """One JSON Lines record (with its newline); U+2028/U+2029 and lone surrogates are escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


class JsonlWriter:
    """Writes records to an open text file, one per line; :attr:`count` says how many."""

    def __init__(self, fh: IO[str]) -> None:
        self._fh = fh
        self.count = 0

    def write(self, row: Any) -> None:
        self._fh.write(jsonl_line(row))
        self.count += 1


def _lock(fd: int) -> bool:
    """Take an exclusive, non-blocking lock on ``fd``; False when another process holds it."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def remove_stale_temporaries(target: Path) -> list[str]:
    """Remove temporaries of ``target`` left by earlier (killed) tries; return their names.

    A temporary still locked by a live writer (another try running now) is left alone.
    """
    removed: list[str] = []
    key = target_key(target)
    legacy = f".{target.name}."  # temporaries named by earlier versions of this provider
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        if not name.endswith(".tmp") or not name.startswith((f".exotel-{key}.", legacy)):
            continue
        path = target.parent / name
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
            try:
                if _lock(fd):
                    path.unlink()
                    removed.append(name)
            finally:
                os.close(fd)
    return removed


@contextlib.contextmanager
def _atomic_file(target: Any, keep_on_error: bool) -> Iterator[IO[str]]:
    """A text file on a temporary sibling of ``target``, moved into place when the block ends."""
    on_disk = local_path(target)
    if on_disk is not None:
        target = on_disk
    tmp = target.with_name(f".exotel-{target_key(target)}.{uuid.uuid4().hex[:12]}.tmp")
    if on_disk is not None or getattr(target, "protocol", None) == "":
        tmp.parent.mkdir(parents=True, exist_ok=True)
    pending: BaseException | None = None
    try:
        if on_disk is not None:  # locked while written: a later try tells a killed writer's leftovers
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            _lock(fd)
            fh: IO[str] = open(fd, "w", encoding="utf-8")  # closed below
        else:
            fh = tmp.open("w", encoding="utf-8")
        with fh:
            try:
                yield fh
            except BaseException as exc:
                if not keep_on_error:
                    raise
                pending = exc
            if on_disk is not None:
                fh.flush()
                os.replace(tmp, target)  # while still locked: nobody takes it for stale
        if on_disk is not None:
            remove_stale_temporaries(target)
        else:
            tmp.rename(target)
    except BaseException:
        with contextlib.suppress(Exception):
            tmp.unlink(missing_ok=True)
        raise
    if pending is not None:
        raise pending


@contextlib.contextmanager
def jsonl_writer(target: Any, *, keep_on_error: bool = False) -> Iterator[JsonlWriter]:
    """A :class:`JsonlWriter` to ``target`` (local path or ``ObjectStoragePath``), written atomically.

    :param target: where the file goes once complete.
    :param keep_on_error: move what was written into place even when the block raises (the
        exception still propagates): dead letters are never thrown away.
    """
    with _atomic_file(target, keep_on_error) as fh:
        yield JsonlWriter(fh)


# ---------------------------------------------------------------------------------------- export
@dataclass(frozen=True)
class Resume:
    """What an earlier try of an export left: rows held, the last of them, and their ids."""

    count: int
    last: dict[str, Any]
    seen: set[str]


def write_export(
    target: Any,
    fetch: Callable[[Resume | None], Iterable[Mapping[str, Any]]],
    *,
    key: Mapping[str, Any],
    log: Any,
    on_row: Callable[[], None] | None = None,
    id_field: str = "sid",
) -> int:
    """Stream ``fetch(resume)`` to ``target`` as JSON Lines; return the number of rows written.

    :param target: a local path or ``ObjectStoragePath`` (see :func:`to_path`).
    :param fetch: called once with ``None`` (from the start) or a :class:`Resume`; yields dicts.
    :param key: JSON-able; everything that decides the rows (query, connection, account).
    :param log: a logger for the resume and "kept for the next try" lines.
    :param on_row: called after each row written (progress).
    :param id_field: the field that identifies a row (checked at the seam of a resume).
    """
    on_disk = local_path(target)
    if on_disk is None:
        return _write_whole(target, fetch, on_row)
    export = ResumableExport(on_disk, key, id_field)
    held = export.open()
    if held is None:
        log.warning(
            "Another try is writing %s right now; this one writes its own copy (not resumable)", on_disk
        )
        return _write_whole(on_disk, fetch, on_row)
    if held.count:
        log.info(
            "Resuming the export to %s: %s rows were written by an earlier try (last %s %s); "
            "fetching the rest",
            on_disk,
            f"{held.count:,}",
            id_field,
            held.last.get(id_field),
        )
    try:
        _copy(fetch(held if held.count else None), export.write, on_row)
        export.commit()
        return export.count
    except BaseException:
        export.close()
        if export.count:
            log.warning(
                "Export to %s stopped after %s rows; they are kept in %s and the next try of this "
                "task goes on from there",
                on_disk,
                f"{export.count:,}",
                export.partial.name,
            )
        raise


def _write_whole(target: Any, fetch: Callable[[Resume | None], Iterable[Any]], on_row: Any) -> int:
    with jsonl_writer(target) as out:
        _copy(fetch(None), out.write, on_row)
    return out.count


def _copy(rows: Iterable[Any], write: Callable[[Any], None], on_row: Callable[[], None] | None) -> None:
    """Write every row; the iterator is closed however this ends (stops a pager's threads)."""
    try:
        for row in rows:
            write(row)
            if on_row is not None:
                on_row()
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


class ResumableExport:
    """A JSON Lines export to a local file that a later try with the same key resumes.

    :param target: the local output path.
    :param key: what decides the rows; a partial file written under another key is started over.
    :param id_field: the field every row carries as a string id.
    """

    def __init__(self, target: Path, key: Mapping[str, Any], id_field: str = "sid") -> None:
        self.target = target
        self.id_field = id_field
        self.key = {"format": RESUME_FORMAT, "output_path": os.path.abspath(target), **key}
        name = target_key(target)
        self.partial = target.with_name(f".exotel-{name}.partial.jsonl")
        self.note = target.with_name(f".exotel-{name}.partial.json")
        self.count = 0
        self._fh: IO[str] | None = None
        self._since_flush = 0

    def open(self) -> Resume | None:
        """Lock the partial file and read what an earlier try left (count 0 when starting over).

        ``None`` when another live try holds the partial file.
        """
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.partial, os.O_RDWR | os.O_CREAT, 0o666)
        if not _lock(fd):
            os.close(fd)
            return None
        held = self._read_held(fd)
        if held is None:
            os.ftruncate(fd, 0)
            self._write_note()
            held = Resume(0, {}, set())
        self.count = held.count
        os.lseek(fd, 0, os.SEEK_END)
        self._fh = open(fd, "a", encoding="utf-8")  # open and locked until commit/close
        return held

    def _read_held(self, fd: int) -> Resume | None:
        """Complete lines of a partial written under this same key (a torn last line is cut)."""
        try:
            with open(self.note, encoding="utf-8") as note:
                if json.load(note) != json.loads(json.dumps(self.key, default=str)):
                    return None
        except (OSError, ValueError):
            return None
        seen: set[str] = set()
        last: dict[str, Any] | None = None
        count = end = 0  # complete lines, and their bytes
        try:
            with open(self.partial, "rb") as reader:  # streamed: memory holds the ids, not the file
                for line in reader:
                    if not line.endswith(b"\n"):
                        break  # a torn last line (the try was killed mid-write): cut below
                    row = json.loads(line)
                    ident = row.get(self.id_field) if isinstance(row, dict) else None
                    if not isinstance(ident, str):
                        return None
                    seen.add(ident)
                    last = row
                    count += 1
                    end += len(line)
                size = reader.seek(0, os.SEEK_END)
        except (OSError, ValueError):
            return None
        if last is None:
            return None
        if end < size:
            os.ftruncate(fd, end)
        return Resume(count, last, seen)

    def _write_note(self) -> None:
        tmp = self.note.with_name(self.note.name + ".tmp")
        tmp.write_text(json.dumps(self.key, default=str), encoding="utf-8")
        os.replace(tmp, self.note)

    def write(self, row: Mapping[str, Any]) -> None:
        assert self._fh is not None
        self._fh.write(jsonl_line(row))
        self.count += 1
        self._since_flush += 1
        if self._since_flush >= FLUSH_EVERY:
            self._fh.flush()
            self._since_flush = 0

    def commit(self) -> None:
        """Move the complete export into place (a later try starts over) and clean up."""
        assert self._fh is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())
        os.replace(self.partial, self.target)  # still locked: no other try reads it meanwhile
        with contextlib.suppress(OSError):
            self.note.unlink()
        self.close()
        remove_stale_temporaries(self.target)

    def close(self) -> None:
        """Flush and unlock; an uncommitted partial file stays for the next try (unless empty)."""
        if self._fh is None:
            return
        if self.count == 0:  # nothing to resume: leave nothing behind
            for leftover in (self.partial, self.note):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        with contextlib.suppress(OSError):
            self._fh.close()
        self._fh = None
