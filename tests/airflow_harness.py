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

The session harness runs each ``airflow dags test`` as a fork of one warm Airflow process (``warm=True``):
that process has imported Airflow and run a one-task DAG once, so a run costs a fork instead of a new
interpreter (on Airflow 3 the first task of a process alone takes 10-15 s to build the in-process execution
API). Each run is still a fresh process with exactly the environment you pass, its own stdout/stderr and
exit code; nothing one run does reaches the next. A run whose ``env`` sets Airflow configuration
(``AIRFLOW__*``) gets a new interpreter, since the warm one read its configuration at start-up.

``airflow dags test`` exits 0 even when tasks fail, and a DAG run can be "success" while a task failed
(e.g. a leaf with ``trigger_rule="all_done"``), so assert on :meth:`DagTestResult.task_states`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import traceback
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


def _sets_config(env: Mapping[str, str] | None) -> bool:
    """Whether ``env`` sets Airflow configuration (which a warm process has already read)."""
    return any(k.startswith("AIRFLOW__") for k in (env or {}))


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
    :param warm: run ``airflow dags test`` as forks of one warm Airflow process (see the module
        docstring) instead of a new interpreter each time.
    """

    def __init__(self, home: Path, *, warm: bool = False) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.db_path = self.home / "airflow.db"
        self._migrated = False
        self._lock = threading.Lock()
        self._warm = _WarmAirflow(self) if warm and hasattr(os, "fork") else None

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
            self._dags_command("reserialize", env=env, dags_folder=dags_folder, timeout=timeout)
        before = self._max_run_pk()
        args = ["test", dag_id]
        if logical_date:
            args.append(logical_date)
        if conf:
            args += ["-c", json.dumps(dict(conf))]
        proc = self._dags_command(*args, env=env, dags_folder=dags_folder, timeout=timeout)
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

    def _dags_command(
        self,
        *args: str,
        env: Mapping[str, str] | None,
        dags_folder: str | os.PathLike[str],
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        """``airflow dags <args>``: a fork of the warm process unless ``env`` sets configuration."""
        if self._warm is None or _sets_config(env):
            return self.airflow("dags", *args, env=env, dags_folder=dags_folder, timeout=timeout)
        if _AIRFLOW_2:  # 2.x's CLI parser took --subdir's default from the warm process's DAGS_FOLDER
            args = (*args, "--subdir", str(dags_folder))
        return self._warm.run(["dags", *args], self.env(dags_folder, env), timeout)

    def close(self) -> None:
        """Stop the warm Airflow process, if one was started."""
        if self._warm is not None:
            self._warm.close()

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
        if self._warm is not None and not _sets_config(env):
            proc = self._warm.run(None, self.env(dags_folder, env), 300, code=code)
        else:
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


#: The warm process's one-task DAG: running it once builds what every later run reuses.
_WARM_UP_DAG = """
import datetime as dt
from airflow.providers.common.compat.sdk import DAG
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2.x
    from airflow.operators.python import PythonOperator
import airflow_provider_exotel.operators.contacts, airflow_provider_exotel.hooks.contacts  # noqa: F401

with DAG(dag_id="harness_warm_up", schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)):
    PythonOperator(task_id="warm_up", python_callable=lambda: None)
"""


class _WarmAirflow:
    """One Airflow process (``python airflow_harness.py --warm``) that forks a child per command.

    Requests (JSON lines on its stdin): ``{"argv" or "code", "env", "stdout", "stderr"}``; answers (JSON
    lines on its stdout): ``{"pid"}`` once the child runs, then ``{"returncode"}``. Started on first use.
    """

    def __init__(self, harness: AirflowHarness) -> None:
        self.harness = harness
        self.proc: subprocess.Popen[str] | None = None
        self.answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.log_path = harness.home / "warm-airflow.log"
        self.runs = 0

    def _start(self) -> subprocess.Popen[str]:
        folder = self.harness.home / "warm-up-dags"
        folder.mkdir(exist_ok=True)
        (folder / "harness_warm_up.py").write_text(_WARM_UP_DAG)
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--warm"],
                env=self.harness.env(folder),
                cwd=self.harness.home,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.answers = queue.Queue()
        threading.Thread(target=self._read, args=(proc, self.answers), daemon=True).start()
        self.proc = proc
        self._answer(600, "start")
        return proc

    @staticmethod
    def _read(proc: subprocess.Popen[str], answers: queue.Queue[dict[str, Any] | None]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            answers.put(json.loads(line))
        answers.put(None)  # the process ended

    def _answer(self, timeout: float, what: str) -> dict[str, Any]:
        answer = self.answers.get(timeout=timeout)
        if answer is None:
            self.proc = None
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-60:])
            raise RuntimeError(f"the warm Airflow process ended during {what}:\n{tail}")
        return answer

    def run(
        self, argv: list[str] | None, env: Mapping[str, str], timeout: float, code: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``airflow <argv>`` (or ``python -c <code>``) in a fork of the warm process, with ``env``."""
        args = ["airflow", *argv] if argv is not None else [sys.executable, "-c", code]
        with self.harness._lock:
            proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
            self.runs += 1
            out = self.harness.home / f"warm-run-{self.runs}.out"
            err = self.harness.home / f"warm-run-{self.runs}.err"
            request = {"argv": argv, "code": code, "env": dict(env), "stdout": str(out), "stderr": str(err)}
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            returncode = self._wait(args, timeout)
            try:
                return subprocess.CompletedProcess(
                    args,
                    returncode,
                    out.read_text(errors="replace"),
                    err.read_text(errors="replace"),
                )
            finally:
                out.unlink(missing_ok=True)
                err.unlink(missing_ok=True)

    def _wait(self, args: list[str | None], timeout: float) -> int:
        """The exit code of the child just requested; it is killed after ``timeout`` seconds."""
        pid = None
        try:
            pid = self._answer(60, "a fork")["pid"]
            try:
                return self._answer(timeout, " ".join(map(str, args[:4])))["returncode"]
            except queue.Empty:
                os.kill(pid, signal.SIGKILL)
                self._answer(60, "a kill")
                raise subprocess.TimeoutExpired(args, timeout) from None
        except (subprocess.TimeoutExpired, RuntimeError):
            raise
        except BaseException:  # e.g. pytest-timeout: later answers would not match their requests
            for victim in (pid, self.proc.pid if self.proc else None):
                if victim is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(victim, signal.SIGKILL)
            self.proc = None
            raise

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()  # the process ends when its input does
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _serve_warm() -> None:
    """The warm process: run the warm-up DAG, then fork a child per request (see _WarmAirflow)."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # Airflow's own output (the warm-up's logs) goes to the log, never to the answers
    import importlib

    airflow_main = importlib.import_module("airflow.__main__")
    from airflow import settings

    _airflow_main(airflow_main, ["dags", "test", "harness_warm_up"])
    settings.Session.remove()
    settings.engine.dispose()  # no connection crosses a fork
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _warm_child(airflow_main, request)
        answers.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")


def _airflow_main(airflow_main: Any, argv: list[str]) -> int:
    """``airflow <argv>`` in this process; its exit code."""
    sys.argv = ["airflow", *argv]
    try:
        airflow_main.main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _run_python(code: str) -> int:
    """``python -c <code>`` in this process; its exit code."""
    try:
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _warm_child(airflow_main: Any, request: dict[str, Any]) -> None:
    """A forked child: become a fresh ``airflow`` process with the request's env and output; never returns."""
    code = 1
    try:
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.environ.clear()
        os.environ.update(request["env"])
        from airflow import settings

        settings.configure_vars()  # DAGS_FOLDER from this run's environment
        if settings.DAGS_FOLDER not in sys.path:
            sys.path.append(settings.DAGS_FOLDER)
        _fresh_execution_api()
        if request["argv"] is None:
            sys.argv = ["-c"]
            code = _run_python(request["code"])
        else:
            code = _airflow_main(airflow_main, request["argv"])
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _fresh_execution_api() -> None:
    """Airflow 3: keep the warm in-process execution API app, but give it a new event loop thread
    (the parent's thread does not exist in a fork)."""
    try:
        from airflow.sdk.execution_time.supervisor import in_process_api_server
    except ImportError:  # Airflow 2.x runs tasks without it
        return
    api = in_process_api_server()
    try:
        del api.transport
    except AttributeError:  # not built yet
        pass


_harness: AirflowHarness | None = None
_harness_lock = threading.Lock()


def get_harness() -> AirflowHarness:
    """The process-wide harness: a temporary migrated ``AIRFLOW_HOME``, removed at exit."""
    global _harness
    with _harness_lock:
        if _harness is None:
            home = Path(tempfile.mkdtemp(prefix="exotel-airflow-home-"))
            atexit.register(shutil.rmtree, home, ignore_errors=True)
            _harness = AirflowHarness(home, warm=os.environ.get("EXOTEL_HARNESS_WARM", "1") != "0")
            atexit.register(_harness.close)  # registered last, so it runs before the home is removed
        _harness.migrate()
        return _harness


if __name__ == "__main__" and sys.argv[1:] == ["--warm"]:
    _serve_warm()
elif pytest is not None:

    @pytest.fixture(scope="session")
    def airflow_harness() -> AirflowHarness:
        """Session-wide :class:`AirflowHarness` (``airflow db migrate`` has already run)."""
        return get_harness()
