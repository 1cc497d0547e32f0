"""Property: whatever changes at whatever moment of a fetch, every contact that exists for the whole
fetch is yielded exactly once and nothing is yielded twice.

Random deletes, inserts (front and back), renames and list-membership swaps are applied just before
random requests of a fetch (simulator ``before_request``), under ``date_created:asc``,
``date_created:desc`` and ``name:asc``, through the contacts and the list endpoint (where a swap may
bring back a member that left), with 1–8 pages in flight.

Inside the guarantee (the Pager docstring): under ``name:asc`` offset paging cannot see changes
between two reads that cancel out at every seam (a contact moving onto a read page while another
leaves the read pages). Each ``name:asc`` example therefore draws its changes from one of two
families that can never cancel out: changes that only add before the frontier (renames to an
earlier name, inserts), or changes that never move an unread contact onto read pages (deletes,
renames to a later name, inserts). ``date_created`` and list orders mix every kind freely.
"""

from __future__ import annotations

import os
import threading
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_exotel.hooks.contacts import ExotelContactsHook
from airflow_provider_exotel.testing import ExotelSimulator

OPS_FREE = ["delete", "insert_front", "insert_back", "rename_earlier", "rename_later", "swap"]
OPS_ADD_ONLY = ["insert_front", "insert_back", "rename_earlier"]
OPS_NEVER_LEFT = ["delete", "insert_front", "insert_back", "rename_later"]


@st.composite
def scenarios(draw):
    target = draw(st.sampled_from(["contacts", "list"]))
    orders = ["date_created:asc", "name:asc", "date_created:desc"]
    sort_by = "date_created:asc" if target == "list" else draw(st.sampled_from(orders))
    if sort_by == "name:asc":
        ops = draw(st.sampled_from([OPS_ADD_ONLY, OPS_NEVER_LEFT]))
    else:
        ops = [op for op in OPS_FREE if op != "swap" or target == "list"]
    n = draw(st.integers(min_value=15, max_value=130))
    events = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=1, max_value=10),  # just before this GET
                st.sampled_from(ops),
                st.integers(min_value=0, max_value=10_000),  # which contact
            ),
            max_size=6,
        )
    )
    concurrency = draw(st.integers(min_value=1, max_value=8))
    return target, sort_by, n, events, concurrency


@settings(
    max_examples=70,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_every_contact_that_exists_throughout_is_yielded_exactly_once(scenario):
    target, sort_by, n, events, concurrency = scenario
    with ExotelSimulator() as sim:
        seeded = [c["sid"] for c in sim.seed_contacts(n, prefix="M")]  # names M0, M1, … (middle)
        members = seeded[: max(1, n * 4 // 5)]
        if target == "list":
            sim.create_list("L", members)
        changed: set[str] = set()  # contacts that do not exist (or belong) for the whole fetch
        counter = {"get": 0, "new": 0}
        lock = threading.Lock()
        by_request: dict[int, list[tuple[str, int]]] = {}
        for at, op, pick in events:
            by_request.setdefault(at, []).append((op, pick))

        def apply(op: str, pick: int) -> None:
            pool = members if target == "list" else seeded
            alive = [s for s in pool if sim.get_contact(s) is not None and s not in changed]
            if op == "delete" and alive:
                sid = alive[pick % len(alive)]
                changed.add(sid)
                sim.delete_contact(sid)
            elif op in ("insert_front", "insert_back"):
                counter["new"] += 1
                front = op == "insert_front"
                contact = sim.insert_contact(
                    first_name=("A" if front else "Z") + str(counter["new"]),
                    date_created="2000-01-01T00:00:00Z" if front else None,
                )
                changed.add(contact["sid"])
            elif op in ("rename_earlier", "rename_later") and alive:
                sid = alive[pick % len(alive)]
                # every seeded name starts with "M": "A…" sorts before all of them, "Z…" after
                sim.rename_contact(sid, first_name=("A" if op == "rename_earlier" else "Z") + str(pick))
            elif op == "swap" and alive:
                outsiders = [s for s in seeded if s not in sim.lists.get("L", []) and sim.get_contact(s)]
                if outsiders:
                    leaving, joining = alive[pick % len(alive)], outsiders[pick % len(outsiders)]
                    changed.update((leaving, joining))
                    sim.swap_list_member("L", leaving, joining)

        def before(sim_: ExotelSimulator, request) -> None:
            if request.method != "GET":
                return
            with lock:
                counter["get"] += 1
                for op, pick in by_request.get(counter["get"], ()):
                    apply(op, pick)

        sim.before_request = before
        old = os.environ.get("AIRFLOW_CONN_EXOTEL_DEFAULT")
        os.environ["AIRFLOW_CONN_EXOTEL_DEFAULT"] = sim.connection_json()
        try:
            hook = ExotelContactsHook(retry_delay=0, concurrency=concurrency)
            if target == "list":
                got = [c["sid"] for c in hook.iter_list_contacts("L")]
            else:
                got = [c["sid"] for c in hook.iter_contacts(sort_by=sort_by)]
        finally:
            if old is None:
                os.environ.pop("AIRFLOW_CONN_EXOTEL_DEFAULT", None)
            else:
                os.environ["AIRFLOW_CONN_EXOTEL_DEFAULT"] = old
        assert sim.errors == []

    survivors = [s for s in (members if target == "list" else seeded) if s not in changed]
    counts = Counter(got)
    assert [sid for sid, k in counts.items() if k > 1] == []  # nothing twice
    assert [sid for sid in survivors if sid not in counts] == []  # nothing that stayed is missing
