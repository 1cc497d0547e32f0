"""Writing exports: JSON Lines, atomically, resumable on local filesystems (private; used by operators).

Standard library only: the operator modules import this at DAG parse time.

- :func:`jsonl_line` writes one record per line whatever the contact holds: lone surrogates and
  U+2028/U+2029 are ``\\u`` escaped (valid JSON, and no reader that splits on them breaks a record).
- :func:`atomic_jsonl_writer` writes to a temporary sibling and moves it into place. Temporary names
  are short (``.exotel-<hash of the target>.<random>.tmp``) so any valid file name works, and
  temporaries left by killed tries of the same target are removed once the output is in place.
- :class:`ResumableExport` is the same for a local fetch export, except that its partial file is
  kept when a try fails or is killed, under a name the next try of the same ``output_path`` finds
  (``.exotel-<hash>.partial.jsonl`` plus a ``.json`` note of what was being fetched), so that try
  can go on from the last complete line instead of starting over.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from airflow_provider_exotel._compat import is_os_path

try:  # POSIX; Airflow workers are
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: Bump when the partial file's format changes: older partials are then ignored, not resumed.
RESUME_FORMAT = 1
#: Lines between flushes of a resumable export (a killed try loses at most this many).
FLUSH_EVERY = 20

_UNSAFE = re.compile("[\u2028\u2029\ud800-\udfff]")


def jsonl_line(obj: Any) -> str:
    """One JSON Lines record (with its newline); U+2028/U+2029 and lone surrogates are escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


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


def remove_stale_temporaries(target: Path, keep: Path | None = None) -> list[str]:
    """Remove temporaries of ``target`` left by earlier tries (killed ones); return their names.

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
        if not (
            (name.startswith(f".exotel-{key}.") and name.endswith(".tmp"))
            or (name.startswith(legacy) and name.endswith(".tmp"))
        ):
            continue
        path = target.parent / name
        if keep is not None and path == keep:
            continue
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
def atomic_jsonl_writer(target: Any) -> Iterator[IO[str]]:
    """Yield a text file on a temporary sibling of ``target``; move it into place on success.

    On any exception the temporary file is removed and ``target`` is left untouched. Local
    temporaries are locked while written, so a later try can tell a killed writer's leftovers
    (removed once the output is in place) from a live one's.
    """
    on_disk = local_path(target)
    local = on_disk is not None
    if on_disk is not None:
        target = on_disk
    tmp = target.with_name(f".exotel-{target_key(target)}.{uuid.uuid4().hex[:12]}.tmp")
    if local or getattr(target, "protocol", None) == "":
        tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        if local:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            _lock(fd)
            fh: IO[str] = open(fd, "w", encoding="utf-8")  # closed below
        else:
            fh = tmp.open("w", encoding="utf-8")
        with fh:
            yield fh
            if local:
                fh.flush()
                os.replace(tmp, target)  # while still locked: nobody takes it for stale
        if local:
            remove_stale_temporaries(target)
        else:
            tmp.rename(target)
    except BaseException:
        with contextlib.suppress(Exception):
            tmp.unlink(missing_ok=True)
        raise


class ResumableExport:
    """A JSON Lines export to a local file that a later try of the same ``output_path`` resumes.

    :param target: the local output path.
    :param fetch: what is being fetched (endpoint and filters); a partial file written for another
        fetch is not resumed but started over.
    """

    def __init__(self, target: Path, fetch: Mapping[str, Any]) -> None:
        self.target = target
        self.fetch = {"format": RESUME_FORMAT, "output_path": os.path.abspath(target), **fetch}
        key = target_key(target)
        self.partial = target.with_name(f".exotel-{key}.partial.jsonl")
        self.note = target.with_name(f".exotel-{key}.partial.json")
        self.count = 0
        self._fh: IO[str] | None = None
        self._since_flush = 0

    # ---------------------------------------------------------------------------- open
    def open(self) -> tuple[int, dict[str, Any] | None, set[str]] | None:
        """Lock the partial file and read what an earlier try left.

        Returns ``(count, last contact, sids)`` of the complete lines already written (count 0 when
        starting over), or ``None`` when another live try holds the partial file (the caller then
        writes an ordinary, non-resumable temporary).
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
            held = (0, None, set())
        self.count = held[0]
        os.lseek(fd, 0, os.SEEK_END)
        self._fh = open(fd, "a", encoding="utf-8")  # open and locked until commit/close
        return held

    def _read_held(self, fd: int) -> tuple[int, dict[str, Any] | None, set[str]] | None:
        """Complete lines of a partial written for this same fetch (a torn last line is cut)."""
        try:
            with open(self.note, encoding="utf-8") as note:
                if json.load(note) != json.loads(json.dumps(self.fetch, default=str)):
                    return None
        except (OSError, ValueError):
            return None
        sids: set[str] = set()
        last: dict[str, Any] | None = None
        count = 0
        end = 0  # bytes of complete lines
        try:
            with open(self.partial, "rb") as reader:  # streamed: memory holds the sids, not the file
                for line in reader:
                    if not line.endswith(b"\n"):
                        break  # a torn last line (the try was killed mid-write): cut below
                    contact = json.loads(line)
                    sid = contact.get("sid") if isinstance(contact, dict) else None
                    if not isinstance(sid, str):
                        return None
                    sids.add(sid)
                    last = contact
                    count += 1
                    end += len(line)
                size = reader.seek(0, os.SEEK_END)
        except (OSError, ValueError):
            return None
        if count == 0:
            return None
        if end < size:
            os.ftruncate(fd, end)
        return count, last, sids

    def _write_note(self) -> None:
        tmp = self.note.with_name(self.note.name + ".tmp")
        tmp.write_text(json.dumps(self.fetch, default=str), encoding="utf-8")
        os.replace(tmp, self.note)

    # ---------------------------------------------------------------------------- write
    def write(self, contact: Mapping[str, Any]) -> None:
        assert self._fh is not None
        self._fh.write(jsonl_line(contact))
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
            with contextlib.suppress(OSError):
                self.partial.unlink()
            with contextlib.suppress(OSError):
                self.note.unlink()
        with contextlib.suppress(OSError):
            self._fh.close()
        self._fh = None
