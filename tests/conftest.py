"""Shared test set-up.

Every test process gets its own empty ``AIRFLOW_HOME``, set before anything imports Airflow: an
``airflow.cfg`` left in ``~/airflow`` by another Airflow version (e.g. 3.x's
``xcom_backend = airflow.sdk...`` read by 2.11) or a developer's real deployment must never decide
how the tests behave. Subprocesses started by ``airflow_harness`` get their own home as well.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
import warnings
from collections.abc import Iterator

import pytest

if "airflow" in sys.modules:  # pragma: no cover - a plugin imported Airflow before this file ran
    warnings.warn(
        "Airflow was imported before tests/conftest.py could isolate AIRFLOW_HOME; "
        "tests may read the machine's Airflow configuration",
        stacklevel=1,
    )

_home = tempfile.mkdtemp(prefix="exotel-tests-airflow-home-")
atexit.register(shutil.rmtree, _home, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = _home
os.environ.pop("AIRFLOW_CONFIG", None)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


#: Test files that start Airflow processes: run first, so that under ``pytest -n`` (``make test``) the
#: longest files start at once and the short ones fill the gaps, instead of one ending the run alone.
_FIRST = (
    "integration/test_deployment.py",
    "integration/",
    "sensors/test_contacts_sensor.py",
    "operators/test_path_safety_and_interrupts.py",
)


def _rank(item: pytest.Item) -> int:
    return next((i for i, part in enumerate(_FIRST) if part in item.nodeid), len(_FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order: the files that start Airflow processes first (a stable sort: each file keeps its order)."""
    items.sort(key=_rank)


def exotel_connection(port: int, **extra: object) -> dict[str, object]:
    """An ``exotel`` connection (as JSON-able dict) to ``127.0.0.1:port`` over plain HTTP."""
    return {
        "conn_type": "exotel",
        "login": "key",
        "password": "token",
        "host": "127.0.0.1",
        "port": port,
        "schema": "http",
        "extra": {"account_sid": "acct1", **extra},
    }


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (an Exotel that hangs)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)  # the kernel completes the handshakes; nothing ever reads or answers
        yield server.getsockname()[1]
