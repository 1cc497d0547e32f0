"""The trigger keeps the triggerer's event loop free: the hook is imported and built in a worker thread.

The triggerer runs every trigger on one event loop and warns ("async thread was blocked … badly-written
trigger") when one holds it. Importing the hook (requests, tenacity, the HTTP provider) and building
it are blocking work. A fresh interpreter runs the trigger under ``asyncio.run`` with an import spy
that records which thread imports the hook module: it must not be the loop's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.abc, json, sys, threading

    WATCHED = ("airflow_provider_exotel.hooks.contacts", "airflow.providers.http.hooks.http")
    imported_in = {}

    class Spy(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in WATCHED:
                imported_in.setdefault(name, threading.get_ident())
            return None

    from airflow_provider_exotel.triggers.contacts import ExotelContactsTrigger

    already = [m for m in WATCHED if m in sys.modules]
    sys.meta_path.insert(0, Spy())

    async def main():
        trigger = ExotelContactsTrigger(min_count=1, poke_interval=0.01, hook_params={"retry_limit": 0})
        event = await asyncio.wait_for(trigger.run().__anext__(), 60)
        return threading.get_ident(), event.payload

    loop_thread, payload = asyncio.run(main())
    print(json.dumps({
        "already": already,
        "payload": payload,
        "in_loop": sorted(m for m, t in imported_in.items() if t == loop_thread),
        "seen": sorted(imported_in),
    }))
    """
)


def test_trigger_imports_and_builds_its_hook_off_the_event_loop(exotel_simulator):
    exotel_simulator.seed_contacts(2)
    env = {**os.environ, "AIRFLOW_CONN_EXOTEL_DEFAULT": exotel_simulator.connection_json()}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    assert result["payload"] == {"status": "success", "count": 2}
    assert result["already"] == []  # importing the trigger module did not import the hook
    assert "airflow_provider_exotel.hooks.contacts" in result["seen"]  # the spy saw the import
    assert result["in_loop"] == [], f"imported on the event loop's thread: {result['in_loop']}"
    assert exotel_simulator.request_count() == 1
