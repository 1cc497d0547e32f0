"""``make demo``: run the example sync DAG end to end against the bundled Exotel simulator.

No credentials and no network needed. It

1. starts the simulator in this process (500 contacts; lists list0..list2 of 50 contacts each),
2. creates a local Airflow home in ``.demo/airflow`` (SQLite) and runs ``airflow db migrate``,
3. runs ``airflow dags test example_exotel_sync_contacts`` with ``example_dags/`` as the DAGs folder,
   the connection pointing at the simulator, and two sids that do not exist added to the updates so
   partial failures are visible,
4. stops the simulator and prints what happened — read back from the task XComs, the files the DAG
   wrote and the simulator's state — and how to run the same DAG against a real account.

Exit status: 0 when the DAG run succeeded.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / ".demo"
DAG_ID = "example_exotel_sync_contacts"
LIST_SID = "list0"
TAG = "demo-synced"
UNKNOWN_SIDS = ["no-such-contact-1", "no-such-contact-2"]

sys.path.insert(0, str(ROOT / "tests"))  # the Airflow harness the end-to-end tests use

from airflow_harness import AirflowHarness  # noqa: E402

from airflow_provider_exotel.testing import ExotelSimulator  # noqa: E402

REAL_ACCOUNT = """\
To run the same DAG against your Exotel account (API settings page of the Exotel dashboard):

  export AIRFLOW_CONN_EXOTEL_DEFAULT='{"conn_type": "exotel", "login": "<API key>", \
"password": "<API token>", "extra": {"account_sid": "<account sid>", "region": "singapore"}}'
  export EXOTEL_EXAMPLE_LIST_SID=<one of your list sids>
  airflow dags test example_exotel_sync_contacts

(region "mumbai" for api.in.exotel.com; or add the connection in the UI as type "Exotel".)"""


def say(text: str = "") -> None:
    print(text, flush=True)


def rel(path: str | Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main() -> int:
    data_dir = DEMO_DIR / "data"
    log_file = DEMO_DIR / "dags_test.log"
    harness = AirflowHarness(DEMO_DIR / "airflow")

    say("== Exotel provider demo ==")
    sim = ExotelSimulator().start()
    try:
        sim.seed_contacts(500)
        lists = sim.seed_lists(3, 50)
        say(
            f"Simulator: {sim.url} (account {sim.account_sid}), {len(sim)} contacts, lists {', '.join(lists)}"
        )
        before = {sid: sim.get_contact(sid)["tag"] for sid in sim.lists[LIST_SID]}

        say(f"Airflow home: {rel(harness.home)} (SQLite) — airflow db migrate ...")
        started = time.monotonic()
        harness.migrate()
        say(f"  done in {time.monotonic() - started:.0f} s")

        say(f"Running: airflow dags test {DAG_ID}  (DAGs folder example_dags/) ...")
        started = time.monotonic()
        result = harness.run_dag(
            DAG_ID,
            dags_folder=ROOT / "example_dags",
            env={
                "AIRFLOW_CONN_EXOTEL_DEFAULT": sim.connection_json(),
                "EXOTEL_EXAMPLE_DATA_DIR": str(data_dir),
                "EXOTEL_EXAMPLE_LIST_SID": LIST_SID,
            },
            conf={"list_sid": LIST_SID, "tag": TAG, "extra_sids": UNKNOWN_SIDS},
        )
        elapsed = time.monotonic() - started
    finally:
        sim.stop()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(result.stdout + "\n" + result.stderr, encoding="utf-8")

    states = result.task_states()
    say(f"  DAG run {result.run_id}: {result.state} in {elapsed:.0f} s")
    for task_id, state in states.items():
        say(f"    {task_id:<22} {state}")
    if not states:
        say("  the DAG did not run; see the log below")

    def xcom(task_id: str):
        try:
            return result.xcom(task_id)
        except KeyError:
            return None

    say()
    say("What happened")
    waited = xcom("wait_for_contacts")
    if waited:
        say(f"  sensor:   list {LIST_SID} has {waited['count']} contacts")
    fetched = xcom("fetch_list_contacts")
    if fetched:
        say(f"  fetched:  {fetched['count']} contacts -> {rel(fetched['path'])}")
    updates_path = xcom("transform")
    if updates_path:
        say(
            f"  transform: {len(read_jsonl(Path(updates_path)))} updates (names normalised, tag={TAG!r}, "
            f"plus {len(UNKNOWN_SIDS)} unknown sids) -> {rel(updates_path)}"
        )
    updated = xcom("update_contacts")
    if updated:
        say(f"  updated:  {updated['succeeded']} of {updated['total']} contacts; {updated['failed']} failed")
    failed_files = sorted(data_dir.glob(f"sync/{_run_dir(result.run_id)}/failed.jsonl"))
    for path in failed_files:
        failed = read_jsonl(path)
        say(f"  failed:   {len(failed)} contact(s) kept for replay -> {rel(path)}")
        for contact in failed:
            say(f"              {contact['sid']}: {contact['error']['code']} {contact['error']['message']}")

    after = Counter(sim.get_contact(sid)["tag"] for sid in before)
    say(f"  simulator: tags of {LIST_SID} before {dict(Counter(before.values()))}, after {dict(after)}")
    say(f"  requests: {sim.request_count(method='GET')} GET, {sim.request_count(method='PUT')} PUT")
    say(f"  full log: {rel(log_file)}")
    say()
    say(REAL_ACCOUNT)

    ok = result.state == "success" and states and all(s == "success" for s in states.values())
    if not ok:
        say()
        say("The DAG run did not succeed. Last lines of the log:")
        say("\n".join(result.output.splitlines()[-40:]))
    return 0 if ok else 1


def _run_dir(run_id: str | None) -> str:
    """The run folder name the example DAG uses (``run_id`` without ':' and '+')."""
    return (run_id or "*").replace(":", "").replace("+", "")


if __name__ == "__main__":
    sys.exit(main())
