"""Run real DAGs in real Airflow from tests: one migrated SQLite ``AIRFLOW_HOME`` per test session.

Usage in a test module::

    from airflow_harness import airflow_harness  # noqa: F401  (the session fixture)

    def test_sync_dag_updates_contacts(airflow_harness, exotel_simulator):
        result = airflow_harness.run_dag(
            "example_exotel_sync_contacts",
            dags_folder=EXAMPLE_DAGS,
            env={"AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json()},
        )
        result.assert_success()
        assert result.xcom("fetch_list_contacts")["count"] == 50
        assert result.task_states()["report"] == "success"

Outside pytest (``example_dags/demo.py``), ``AirflowHarness(home)`` gives the same with a home you choose.

``airflow db migrate`` runs once per process however many modules import the fixture (the harness is a
process-wide singleton); the temporary home is removed when the process exits. Each
``airflow dags test`` runs in a subprocess with a clean environment built from this process's plus the
``env`` you pass, so the DAG sees exactly the connection you give it (e.g. the simulator's, which must
run in the pytest process so tests can inspect its state).

``airflow dags test`` exits 0 even when tasks fail, and a DAG run can be "success" while a task failed
(e.g. a leaf with ``trigger_rule="all_done"``), so assert on :meth:`DagTestResult.task_states`.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import pytest
except ImportError:  # example_dags/demo.py reuses the harness without pytest
    pytest = None  # type: ignore[assignment]


def _airflow_major() -> int:
    from importlib.metadata import version

    return int(version("apache-airflow").split(".")[0])


_AIRFLOW_2 = _airflow_major() < 3

__all__ = ["AirflowHarness", "DagTestResult", "airflow_harness", "get_harness"]

#: Environment variables that would leak this machine's Airflow set-up into the subprocess.
_SCRUBBED_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")
_SCRUBBED_NAMES = ("AIRFLOW_HOME", "AIRFLOW_CONFIG")


@dataclass
class DagTestResult:
    """What one ``airflow dags test`` run did.

    :param dag_id: the DAG that was run.
    :param run_id: the run's id as recorded in the metadata DB (``None`` if no run was created,
        e.g. the DAG did not import).
    :param state: the DAG run's final state (``"success"``, ``"failed"``, ...) or ``None``.
    :param returncode: exit code of ``airflow dags test`` (0 even when tasks failed).
    :param stdout: its standard output — in Airflow 3 this is where task logs go.
    :param stderr: its standard error.
    """

    dag_id: str
    run_id: str | None
    state: str | None
    returncode: int
    stdout: str
    stderr: str
    db_path: Path = field(repr=False)

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + "\n" + self.stderr

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self.run_id is None:
            return []
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql, params).fetchall()

    def task_states(self) -> dict[str, str | None]:
        """``{task_id: state}`` for unmapped tasks and ``{"task_id[i]": state}`` for mapped ones."""
        rows = self._query(
            "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ? "
            "ORDER BY task_id, map_index",
            (self.dag_id, self.run_id),
        )
        return {(t if m < 0 else f"{t}[{m}]"): s for t, m, s in rows}

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """The XCom value pushed by ``task_id`` (deserialised JSON); KeyError when there is none."""
        rows = self._query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ? "
            "AND map_index = ?",
            (self.dag_id, self.run_id, task_id, key, map_index),
        )
        if not rows:
            raise KeyError(f"no XCom {key!r} from {task_id}[{map_index}] in run {self.run_id}")
        return _decode_xcom(rows[0][0])

    def mapped_xcoms(self, task_id: str, key: str = "return_value") -> list[Any]:
        """The XCom values of every mapped instance of ``task_id``, in map-index order."""
        rows = self._query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ? "
            "AND map_index >= 0 ORDER BY map_index",
            (self.dag_id, self.run_id, task_id, key),
        )
        return [_decode_xcom(r[0]) for r in rows]

    def task_log(self, task_id: str, map_index: int = -1) -> str:
        """The log lines ``dags test`` printed while running one task instance ("" if it never ran)."""
        start = f"[DAG TEST] starting task_id={task_id} map_index={map_index}"
        end = f"[DAG TEST] end task task_id={task_id} map_index={map_index}"
        text = self.stdout
        i = text.find(start)
        if i < 0:
            return ""
        j = text.find(end, i)
        return text[i:] if j < 0 else text[i : j + len(end)]

    def assert_success(self) -> None:
        """Fail the test, showing the tail of the output, unless the run and every task succeeded."""
        states = self.task_states()
        bad = {t: s for t, s in states.items() if s not in ("success", "skipped")}
        if self.returncode != 0 or self.state != "success" or bad or not states:
            tail = "\n".join(self.output.splitlines()[-120:])
            raise AssertionError(
                f"DAG {self.dag_id} run {self.run_id}: returncode={self.returncode} state={self.state} "
                f"tasks={states}\n--- last output ---\n{tail}"
            )


def _decode_xcom(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class AirflowHarness:
    """A temporary ``AIRFLOW_HOME`` with a migrated SQLite DB, and a way to run DAGs in it.

    :param home: directory to use as ``AIRFLOW_HOME`` (created if missing).
    """

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.db_path = self.home / "airflow.db"
        self._migrated = False
        self._lock = threading.Lock()

    def env(
        self, dags_folder: str | os.PathLike[str] | None = None, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The environment for an ``airflow`` subprocess: this process's, minus any Airflow set-up,
        plus this home, SQLite, no example DAGs, ``dags_folder`` and ``extra``."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED_NAMES
        }
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or self.home / "dags"),
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if extra:
            env.update({k: str(v) for k, v in extra.items()})
        return env

    def airflow(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        dags_folder: str | os.PathLike[str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` (this interpreter's Airflow) and return the completed process."""
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env(dags_folder, env),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def migrate(self) -> None:
        """``airflow db migrate`` — once; later calls return at once."""
        with self._lock:
            if self._migrated:
                return
            proc = self.airflow("db", "migrate", timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"airflow db migrate failed:\n{proc.stdout}\n{proc.stderr}")
            self._migrated = True

    def _max_run_pk(self) -> int:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute("SELECT COALESCE(MAX(id), 0) FROM dag_run").fetchone()[0]

    def run_dag(
        self,
        dag_id: str,
        *,
        dags_folder: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        logical_date: str | None = None,
        conf: Mapping[str, Any] | None = None,
        timeout: float = 300,
    ) -> DagTestResult:
        """``airflow dags test <dag_id> [logical_date]`` in a subprocess.

        :param dag_id: DAG to run.
        :param dags_folder: folder holding the DAG file (``AIRFLOW__CORE__DAGS_FOLDER``).
        :param env: extra environment, e.g. ``{"AIRFLOW_CONN_EXOTEL_DEFAULT": sim.connection_json()}``.
        :param logical_date: ISO date for the run; default: now (a new run every call).
        :param conf: DAG run conf (``-c``), e.g. to set Params.
        :param timeout: seconds before the subprocess is killed (``subprocess.TimeoutExpired``).
        """
        self.migrate()
        if _AIRFLOW_2:
            # Airflow 2.x `dags test` does not register asset (dataset) aliases itself; without the
            # DAG processor's rows an AssetAlias outlet fails to flush. Serialise the folder first.
            self.airflow("dags", "reserialize", env=env, dags_folder=dags_folder, timeout=timeout)
        before = self._max_run_pk()
        args = ["dags", "test", dag_id]
        if logical_date:
            args.append(logical_date)
        if conf:
            args += ["-c", json.dumps(dict(conf))]
        proc = self.airflow(*args, env=env, dags_folder=dags_folder, timeout=timeout)
        with sqlite3.connect(self.db_path) as conn:
            row = conn.execute(
                "SELECT run_id, state FROM dag_run WHERE dag_id = ? AND id > ? ORDER BY id DESC LIMIT 1",
                (dag_id, before),
            ).fetchone()
            if row is None and logical_date:  # an existing run for that date was re-run
                row = conn.execute(
                    "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
                    (dag_id,),
                ).fetchone()
        run_id, state = row if row else (None, None)
        return DagTestResult(
            dag_id=dag_id,
            run_id=run_id,
            state=state,
            returncode=proc.returncode,
            stdout=proc.stdout,
            stderr=proc.stderr,
            db_path=self.db_path,
        )

    def import_errors(
        self, dags_folder: str | os.PathLike[str], env: Mapping[str, str] | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """Parse ``dags_folder`` with a ``DagBag`` in a subprocess; return (dag ids, import errors)."""
        code = (
            "import json, os\n"
            "try:\n"
            "    from airflow.dag_processing.dagbag import DagBag\n"
            "except ImportError:\n"
            "    from airflow.models.dagbag import DagBag\n"
            "import inspect\n"
            "folder = os.environ['AIRFLOW__CORE__DAGS_FOLDER']\n"
            "kwargs = {}\n"
            "if 'include_examples' in inspect.signature(DagBag).parameters:  # Airflow < 3.2\n"
            "    kwargs['include_examples'] = False\n"
            "bag = DagBag(folder, **kwargs)\n"
            "print('@@RESULT@@' + json.dumps({'dag_ids': sorted(bag.dag_ids),"
            " 'errors': {str(k): str(v) for k, v in bag.import_errors.items()}}))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=self.env(dags_folder, env),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        marker = [line for line in proc.stdout.splitlines() if line.startswith("@@RESULT@@")]
        if proc.returncode != 0 or not marker:
            raise RuntimeError(f"DagBag subprocess failed:\n{proc.stdout}\n{proc.stderr}")
        data = json.loads(marker[-1][len("@@RESULT@@") :])
        return data["dag_ids"], data["errors"]


_harness: AirflowHarness | None = None
_harness_lock = threading.Lock()


def get_harness() -> AirflowHarness:
    """The process-wide harness: a temporary migrated ``AIRFLOW_HOME``, removed at exit."""
    global _harness
    with _harness_lock:
        if _harness is None:
            home = Path(tempfile.mkdtemp(prefix="exotel-airflow-home-"))
            atexit.register(shutil.rmtree, home, ignore_errors=True)
            _harness = AirflowHarness(home)
        _harness.migrate()
        return _harness


if pytest is not None:

    @pytest.fixture(scope="session")
    def airflow_harness() -> AirflowHarness:
        """Session-wide :class:`AirflowHarness` (``airflow db migrate`` has already run)."""
        return get_harness()
