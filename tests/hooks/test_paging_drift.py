"""Exact paging: contacts inserted, deleted, renamed or moved between lists while a fetch pages through them.

Each drift is applied just before a chosen request, over real sockets, with pages read one at a time
and four at a time. See "Exact paging (guarantee)" in the Pager docstring and README.
"""

from __future__ import annotations

from collections import Counter

import pytest

from airflow_provider_exotel.exceptions import ExotelRequestError
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook


def assert_exactly_once(got, survivors, allowed_extra=()):
    counts = Counter(c["sid"] for c in got)
    assert [sid for sid, n in counts.items() if n > 1] == []  # nothing repeated
    assert set(survivors) - set(counts) == set()  # nothing that stayed the whole time is missing
    assert set(counts) - set(survivors) <= set(allowed_extra)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_contacts_deleted_mid_fetch_do_not_hide_others(exotel_simulator, concurrency):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(203)]
    deleted = seeded[3:8]  # on page 1, already read: shifts every later contact 5 places left
    exotel_simulator.on_nth_request(
        3, method="GET", action=lambda s: [s.delete_contact(sid) for sid in deleted]
    )

    got = list(ExotelContactsHook(retry_delay=0, concurrency=concurrency).iter_contacts())

    survivors = [sid for sid in seeded if sid not in deleted]
    assert_exactly_once(got, survivors, allowed_extra=deleted)
    assert set(deleted) <= {c["sid"] for c in got}  # read before they went


@pytest.mark.parametrize("concurrency", [1, 4])
def test_contacts_inserted_mid_fetch_are_not_repeated(exotel_simulator, concurrency):
    seeded = exotel_simulator.seed_contacts(150)
    inserted = []

    def insert_early(sim):
        for i in range(3):  # created "before" everything: shifts every contact 3 places right
            inserted.append(
                sim.insert_contact(date_created=f"2000-01-01T00:00:0{i}Z", first_name="New")["sid"]
            )

    exotel_simulator.on_nth_request(4, method="GET", action=insert_early)

    got = list(ExotelContactsHook(retry_delay=0, concurrency=concurrency).iter_contacts())

    assert_exactly_once(got, [c["sid"] for c in seeded], allowed_extra=inserted)


def test_list_fetch_is_drift_safe_too(exotel_simulator):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(100)]
    exotel_simulator.create_list("L", seeded)
    exotel_simulator.on_nth_request(2, method="GET", action=lambda s: s.delete_contact(seeded[0]))

    got = list(ExotelContactsHook(retry_delay=0, concurrency=2).iter_list_contacts("L"))

    assert_exactly_once(got, seeded[1:], allowed_extra=[seeded[0]])


def test_a_stable_fetch_reads_each_page_once_with_a_one_contact_overlap(exotel_simulator):
    exotel_simulator.seed_contacts(100)
    list(ExotelContactsHook(retry_delay=0, concurrency=3).iter_contacts())
    offsets = sorted(int(r.query["offset"]) for r in exotel_simulator.requests)
    assert offsets == [0, 19, 38, 57, 76, 95]


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("every", [10, 2])
def test_an_account_that_keeps_growing_at_the_end_exports_without_re_reads(
    exotel_simulator, concurrency, every
):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(300)]
    counter = {"n": 0}

    def keep_appending(sim, request):
        counter["n"] += 1
        if counter["n"] % every == 0:  # one new contact every `every` requests (2: far beyond normal)
            sim.insert_contact(first_name="Appended")

    exotel_simulator.before_request = keep_appending
    hook = ExotelContactsHook(retry_delay=0, concurrency=concurrency)

    got = list(hook.iter_contacts())

    assert_exactly_once(got, seeded, allowed_extra=set(exotel_simulator.contact_sids) - set(seeded))
    offsets = [int(r.query["offset"]) for r in exotel_simulator.requests]
    assert len(offsets) == len(set(offsets))  # no page read twice
    assert hook._pager.progress is not None and hook._pager.progress.rereads == 0


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("at_request", [2, 3, 6])
def test_one_delete_and_one_insert_keeping_the_total_unchanged_lose_no_contact(
    exotel_simulator, concurrency, at_request
):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(200)]
    new = []

    def delete_and_insert(sim):
        sim.delete_contact(seeded[4])  # on the first page, already read
        new.append(sim.insert_contact(first_name="New")["sid"])  # at the end: the total is unchanged

    exotel_simulator.on_nth_request(at_request, delete_and_insert, method="GET")

    got = list(ExotelContactsHook(retry_delay=0, concurrency=concurrency).iter_contacts())

    assert_exactly_once(got, [s for s in seeded if s != seeded[4]], allowed_extra=[seeded[4], *new])
    assert len(exotel_simulator.contacts) == 200


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_contact_renamed_onto_an_already_read_page_is_still_exported(exotel_simulator, concurrency):
    seeded = exotel_simulator.seed_contacts(120, prefix="Name")  # Name0, Name1, Name10, … by name
    by_name = sorted(seeded, key=lambda c: (c["first_name"], c["last_name"]))
    moved = by_name[-1]["sid"]  # read last under name:asc …
    exotel_simulator.on_nth_request(  # … renamed to sort first once the first pages are read
        3, lambda sim: sim.rename_contact(moved, first_name="Aaron"), method="GET"
    )
    hook = ExotelContactsHook(retry_delay=0, concurrency=concurrency)

    got = list(hook.iter_contacts(sort_by="name:asc"))

    assert_exactly_once(got, [c["sid"] for c in seeded])
    assert hook._pager.progress is not None and hook._pager.progress.rescans >= 1


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("through", ["list endpoint", "list_sids filter"])
def test_a_list_whose_membership_swaps_mid_fetch_keeps_every_member(exotel_simulator, concurrency, through):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(150)]
    members, outsider = seeded[:120], seeded[140]
    exotel_simulator.create_list("L", members)
    exotel_simulator.on_nth_request(  # one read member leaves, another contact joins: same total
        3, lambda sim: sim.swap_list_member("L", members[2], outsider), method="GET"
    )
    hook = ExotelContactsHook(retry_delay=0, concurrency=concurrency)

    if through == "list endpoint":
        got = list(hook.iter_list_contacts("L"))
    else:
        got = list(hook.iter_contacts(list_sids=["L"]))

    assert_exactly_once(got, [s for s in members if s != members[2]], allowed_extra=[members[2], outsider])
    assert len(exotel_simulator.lists["L"]) == 120


@pytest.mark.parametrize("concurrency", [1, 4])
def test_many_contacts_deleted_before_the_frontier_are_caught_up_by_reading_back(
    exotel_simulator, concurrency
):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(400)]
    deleted = seeded[10:80]  # 70 read contacts vanish: the rest shift left by more than three pages
    exotel_simulator.on_nth_request(6, lambda sim: [sim.delete_contact(s) for s in deleted], method="GET")
    hook = ExotelContactsHook(retry_delay=0, concurrency=concurrency)

    got = list(hook.iter_contacts())

    assert_exactly_once(got, [s for s in seeded if s not in deleted], allowed_extra=deleted)
    assert 1 <= hook._pager.progress.rereads <= 12


def test_a_stable_fetch_of_a_resumed_export_starts_at_its_seam(exotel_simulator):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(100)]
    hook = ExotelContactsHook(retry_delay=0, concurrency=2)

    rest = list(
        hook._pager.paginate("contacts", {}, None, start_offset=40, anchor=seeded[39], seen=seeded[:40])
    )

    assert [c["sid"] for c in rest] == seeded[40:]
    assert sorted(int(r.query["offset"]) for r in exotel_simulator.requests) == [39, 58, 77, 96]


def test_a_resumed_export_whose_seam_moved_still_continues_exactly(exotel_simulator):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(100)]
    for sid in seeded[5:12]:  # deleted between the tries: the written prefix shifts left by 7
        exotel_simulator.delete_contact(sid)
    hook = ExotelContactsHook(retry_delay=0, concurrency=1)

    rest = list(
        hook._pager.paginate("contacts", {}, None, start_offset=40, anchor=seeded[39], seen=seeded[:40])
    )

    assert [c["sid"] for c in rest] == seeded[40:]


def test_closing_a_fetch_early_stops_its_page_threads(exotel_simulator):
    import threading

    exotel_simulator.seed_contacts(500)
    exotel_simulator.latency = 0.01
    hook = ExotelContactsHook(retry_delay=0, concurrency=4)
    before = {t.name for t in threading.enumerate()}

    contacts = hook.iter_contacts()
    first = [next(contacts) for _ in range(30)]
    contacts.close()

    assert len(first) == 30
    assert not {t.name for t in threading.enumerate() if t.name.startswith("exotel-page")} - before
    assert exotel_simulator.request_count() <= 2 + 2 * 4  # the window, not the whole account


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_list_member_that_leaves_and_joins_again_does_not_hide_the_members_after_it(
    exotel_simulator, concurrency
):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(30)]
    members = seeded[:21]  # two pages: 0-19 and 19-20
    exotel_simulator.create_list("L", members)

    def leave_and_rejoin(sim):  # after the first page: members[0] rejoins right where page 2 reads
        sim.swap_list_member("L", members[0], seeded[25])  # members[0] leaves …
        sim.swap_list_member("L", members[1], members[0])  # … and joins again, at the end

    exotel_simulator.on_nth_request(2, leave_and_rejoin, method="GET")

    got = list(ExotelContactsHook(retry_delay=0, concurrency=concurrency).iter_list_contacts("L"))

    assert_exactly_once(got, members[2:], allowed_extra=[members[0], members[1], seeded[25]])


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_read_contact_deleted_before_every_request_still_gives_an_exact_export(
    exotel_simulator, concurrency
):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(300)]
    deleted = []

    def churn(sim, request):
        deleted.append(seeded[len(deleted) + 1])  # every page loses its seam
        sim.delete_contact(deleted[-1])

    exotel_simulator.before_request = churn
    hook = ExotelContactsHook(retry_delay=0, concurrency=concurrency)

    got = list(hook.iter_contacts())

    assert_exactly_once(got, [s for s in seeded if s not in deleted], allowed_extra=deleted)
    assert hook._pager.progress.rereads <= 2 * 16 + 4  # about one read back per page


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_name_ordered_fetch_whose_contacts_keep_moving_onto_read_pages_fails_instead_of_guessing(
    exotel_simulator, concurrency
):
    seeded = sorted(exotel_simulator.seed_contacts(150, prefix="M"), key=lambda c: c["first_name"])
    moved = []

    def churn(sim, request):  # before every request, the last contact by name moves to the front
        moved.append(seeded[-1 - len(moved)]["sid"])
        sim.rename_contact(moved[-1], first_name=f"A{len(moved):04d}")

    exotel_simulator.before_request = churn

    with pytest.raises(ExotelRequestError, match="kept moving onto pages already read"):
        list(ExotelContactsHook(retry_delay=0, concurrency=concurrency).iter_contacts(sort_by="name:asc"))


def test_progress_counts_pages_and_what_is_left_after_each_page(exotel_simulator):
    exotel_simulator.seed_contacts(100)  # pages at 0, 19, 38, 57, 76, 95
    hook = ExotelContactsHook(retry_delay=0, concurrency=1)
    seen = []

    pages = hook._pager.paginate("contacts", {}, None, on_page=lambda p: seen.append((p.pages, p.pages_left)))
    assert len(list(pages)) == 100

    assert seen == [(1, 5), (2, 4), (3, 3), (4, 2), (5, 1), (6, 0)]
    assert hook._pager.progress.total == 100 and hook._pager.progress.yielded == 100


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("sort_by", [None, "date_created:desc"])
def test_contacts_shifted_by_exactly_one_page_with_the_total_unchanged_are_drift_not_a_wrong_answer(
    exotel_simulator, concurrency, sort_by
):
    # 19 contacts created before everything still to read and 19 unread ones deleted: the next page
    # holds exactly what an earlier page held, at another offset, with the same total
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(200)]
    tail = seeded[:19] if sort_by else seeded[-19:]  # the last ones in the order read

    def shift(sim):
        for i in range(19):
            created = None if sort_by else f"2000-01-01T00:00:{i:02d}Z"  # first under :asc
            sim.insert_contact(first_name="New", date_created=created)
        for sid in tail:
            sim.delete_contact(sid)

    exotel_simulator.on_nth_request(3, shift, method="GET")
    params = {"sort_by": sort_by} if sort_by else {}
    hook = ExotelContactsHook(retry_delay=0, retry_limit=2, concurrency=concurrency)

    got = list(hook.iter_contacts(**params))

    new = [s for s in exotel_simulator.contact_sids if s not in seeded]
    assert_exactly_once(got, [s for s in seeded if s not in tail], allowed_extra=[*tail, *new])
    assert len(exotel_simulator.contacts) == 200


@pytest.mark.parametrize("at_request", [10, 16, 22, 28, 34, 40, 46])
def test_a_read_member_leaving_a_list_costs_a_few_reads_not_a_pass_over_the_list_again(
    exotel_simulator, at_request
):
    # pages prefetched before the change must not be judged against positions read after it
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(1000)]
    exotel_simulator.create_list("L", seeded)
    exotel_simulator.on_nth_request(at_request, lambda sim: sim.delete_contact(seeded[1]), method="GET")
    hook = ExotelContactsHook(retry_delay=0, concurrency=4)

    got = list(hook.iter_list_contacts("L"))

    assert_exactly_once(got, seeded[:1] + seeded[2:], allowed_extra=[seeded[1]])
    assert hook._pager.progress.rescans == 0
    stable = 53  # ceil((1000 - 1) / 19)
    assert exotel_simulator.request_count() <= stable + 2 * 4  # at most the pages in hand, again


@pytest.mark.parametrize("concurrency", [1, 4, 8])
def test_a_list_whose_read_members_keep_leaving_exports_exactly(exotel_simulator, concurrency):
    seeded = [c["sid"] for c in exotel_simulator.seed_contacts(400)]
    exotel_simulator.create_list("L", seeded)
    deleted: list[str] = []
    served = [0]

    def churn(sim, request):
        served[0] += 1
        if served[0] % 3 == 0:  # every third request a member already read leaves
            deleted.append(seeded[len(deleted) + 1])
            sim.delete_contact(deleted[-1])

    exotel_simulator.before_request = churn
    hook = ExotelContactsHook(retry_delay=0, concurrency=concurrency)

    got = list(hook.iter_list_contacts("L"))

    assert len(deleted) >= 5
    assert_exactly_once(got, [s for s in seeded if s not in deleted], allowed_extra=deleted)
    assert hook._pager.progress.rescans == 0
