"""What differs between the Airflow versions this provider supports (2.11 and 3.x), in one place.

Airflow names (``BaseOperator``, ``ObjectStoragePath``, ``Asset``, ``mask_secret``...) come from
``airflow.providers.common.compat.sdk``; this module only covers what that package does not:

* On Airflow 2.x ``ObjectStoragePath`` (universal_pathlib 0.2) *is* a :class:`pathlib.Path`, so
  ``isinstance(p, Path)`` cannot tell a local path from ``file://``/``s3://`` storage there, and
  ``os.fspath()`` of one is its URL. Use :func:`is_os_path`.
* On Airflow 2.x a file opened through ``ObjectStoragePath.open()`` is wrapped in a
  ``TrackingFileWrapper`` without ``__iter__``: ``for line in fh`` raises ``TypeError``. Use
  :func:`iter_lines`.

Cheap to import: no Airflow import at module level.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def is_os_path(path: Any) -> bool:
    """True for a plain local :class:`pathlib.Path`; False for any ``ObjectStoragePath`` (even
    ``file://``) on every Airflow version, and for anything else."""
    return isinstance(path, Path) and not hasattr(path, "protocol")


def iter_lines(fh: IO[str]) -> Iterator[str]:
    """The lines of an open text file, including one opened by ``ObjectStoragePath.open()``."""
    return iter(fh.readline, "")


__all__ = ["is_os_path", "iter_lines"]
