"""Helpers shared by the test modules: ``from support import read_jsonl, make_hook, ...``.

``tests/`` is on ``sys.path`` (pytest puts ``tests/conftest.py``'s folder there), like
``airflow_harness``. Fixtures live in ``tests/conftest.py``; plain functions live here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

#: ``hook_params`` for a test against the simulator: no back-off between retries, a short timeout.
FAST: dict[str, Any] = {"retry_delay": 0.0, "timeout": 5.0}


# ------------------------------------------------------------------------------------------ hooks
def make_hook(**kwargs: Any) -> ExotelContactsHook:
    """An ``ExotelContactsHook`` with :data:`FAST` settings unless ``kwargs`` says otherwise."""
    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

    return ExotelContactsHook(**{**FAST, **kwargs})


def writes(sim: Any) -> list[Any]:
    """The simulator's recorded requests that change something (POST, PUT, DELETE, PATCH)."""
    return [r for r in sim.requests if r.method in ("POST", "PUT", "DELETE", "PATCH")]


# ------------------------------------------------------------------------------------ JSON Lines
def read_jsonl(path: str | os.PathLike[str]) -> list[Any]:
    """Every non-blank line of a JSON Lines file, decoded."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """Write ``rows`` one per line (a ``str`` row as it is, anything else as JSON); return ``path``."""
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


# ------------------------------------------------------------------------------------- processes
def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a log file, headed by its name (for a failure message)."""
    if not path.exists():
        return f"({path.name}: no log)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- {path.name} ---\n" + "\n".join(text)


def wait_for_ready_file(proc: subprocess.Popen[Any], ready: Path, deadline_s: float = 60) -> str:
    """Wait until a started ``python -m airflow_provider_exotel.testing --ready-file`` wrote its URL."""
    deadline = time.monotonic() + deadline_s
    while not ready.exists():
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the simulator exited with {proc.returncode}:\n{out}\n{err}")
        assert time.monotonic() < deadline, "the simulator did not start"
        time.sleep(0.02)
    return ready.read_text().strip()


def sigkill_export_midway(sim: Any, target: Path, after_requests: int, **kwargs: Any) -> None:
    """Run ``ExotelFetchContactsOperator(output_path=target, **kwargs)`` in a subprocess and SIGKILL it
    once the simulator served ``after_requests`` GETs; nothing may be at ``target`` afterwards."""
    code = textwrap.dedent(
        f"""
        from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator
        op = ExotelFetchContactsOperator(task_id="f", output_path={str(target)!r}, **{kwargs!r})
        op.execute(context={{}})
        """
    )
    sim.clear_requests()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 90
        while sim.request_count(method="GET") < after_requests:
            assert proc.poll() is None, "the export ended before it could be killed"
            assert time.monotonic() < deadline, "the export did not get far enough"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()


def modules_imported_by(statement: str) -> str:
    """The modules a one-line import ``statement`` loads in a fresh interpreter that has already
    imported Airflow's operator base and the provider's exceptions: a printed sorted list."""
    code = (
        "import sys\n"
        "from airflow.providers.common.compat.sdk import BaseOperator, Asset\n"
        "import airflow_provider_exotel.exceptions\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return proc.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def interrupt_at_request(sim: Any, n: int, method: str, after_s: float = 0.02) -> Iterator[None]:
    """Ctrl-C the main thread mid-task: the ``n``-th ``method`` request arms a real SIGALRM that raises
    ``KeyboardInterrupt`` ``after_s`` later. Use around ``pytest.raises(KeyboardInterrupt)``."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    sim.on_nth_request(n, lambda s: signal.setitimer(signal.ITIMER_REAL, after_s), method=method)
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
