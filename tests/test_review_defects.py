"""Defects an adversarial review found (issue 9, items 3, 5, 6, 7, 8), each pinned over real sockets
against the bundled simulator: refused input reaches no request, dead letters survive any ending,
and a bulk update reports exactly what Exotel applied."""

from __future__ import annotations

import pytest

from airflow_provider_exotel._contacts_check import check_contacts
from airflow_provider_exotel._validation import check_path_segment
from airflow_provider_exotel.exceptions import ExotelValidationError
from airflow_provider_exotel.hooks.contacts import ExotelContactsHook
from airflow_provider_exotel.operators.contacts import (
    ExotelFetchContactsOperator,
    ExotelFetchListContactsOperator,
)
from airflow_provider_exotel.sensors.contacts import ExotelContactsSensor
from airflow_provider_exotel.triggers.contacts import ExotelContactsTrigger

# --------------------------------------------------------------------------------------------------
# Item 3: a list sid never changes the path it is put in
# --------------------------------------------------------------------------------------------------
HOSTILE_SIDS = [
    "..",
    " .. ",
    ".",
    "...",
    "../contacts",
    "l1/../..",
    "a\\b",
    "l1?limit=20",
    "l1#x",
    "%2e%2e",
    "l1%2F",
    "l\n1",
    "l\x00",
    "l\x1b1",
    "l 1",
    "l1,l2",
    "l\u200b1",
    "\ud800",
    "",
    "   ",
]


@pytest.fixture
def account(exotel_simulator):
    exotel_simulator.seed_contacts(30)
    exotel_simulator.create_list("l1", exotel_simulator.contact_sids[:5])
    exotel_simulator.clear_requests()
    return exotel_simulator


@pytest.mark.parametrize("sid", HOSTILE_SIDS, ids=repr)
def test_a_list_sid_that_would_change_the_url_path_is_refused_everywhere_before_any_request(account, sid):
    hook = ExotelContactsHook(retry_delay=0)
    attempts = [
        lambda: hook.iter_list_contacts(sid),
        lambda: hook.count_contacts(list_sid=sid),
        lambda: hook.newest_contact(list_sid=sid),
        lambda: hook.iter_contacts(list_sids=[sid]),
        lambda: hook.count_contacts(list_sids=["l1", sid]),
        lambda: check_contacts(hook, list_sid=sid, min_count=1, created_after=None),
        lambda: ExotelFetchListContactsOperator(task_id="f", list_sid=sid),
        lambda: ExotelFetchContactsOperator(task_id="f", list_sids=[sid]),
        lambda: ExotelContactsSensor(task_id="w", list_sid=sid),
        lambda: ExotelContactsTrigger(exotel_conn_id="exotel_default", list_sid=sid, min_count=1),
    ]
    for attempt in attempts:
        with pytest.raises(ExotelValidationError, match=r"list_sid"):
            attempt()
    assert account.request_count() == 0


def test_a_templated_list_sid_rendering_to_dot_dot_does_not_export_the_whole_account(account, tmp_path):
    op = ExotelFetchListContactsOperator(
        task_id="f", list_sid="{{ params.sid }}", output_path=str(tmp_path / "out.jsonl")
    )
    op.render_template_fields({"params": {"sid": ".."}})
    with pytest.raises(ExotelValidationError, match=r"list_sid .*'\.\.' is only dots"):
        op.execute(context={})
    assert account.request_count() == 0
    assert not (tmp_path / "out.jsonl").exists()


def test_a_list_sid_with_surrounding_spaces_is_trimmed_before_it_is_sent(account):
    hook = ExotelContactsHook(retry_delay=0)
    assert hook.count_contacts(list_sid="  l1 ") == 5
    assert len(list(hook.iter_list_contacts("\tl1\n"))) == 5
    paths = [r.path for r in account.requests]
    assert paths and all(p.endswith("/lists/l1/contacts") for p in paths)


def test_the_path_segment_check_names_the_argument_and_says_what_is_expected():
    with pytest.raises(ExotelValidationError, match=r"^contact_sid must be a sid .*'a/b' contains '/'"):
        check_path_segment("contact_sid", "a/b")
    with pytest.raises(ExotelValidationError, match=r"^list_sid must be a non-empty string"):
        check_path_segment("list_sid", 7)
    assert check_path_segment("list_sid", " Lx-1_a.b~ ") == "Lx-1_a.b~"
