"""The simulator's campaign endpoints (creates, lists, members), spoken to with plain ``requests``."""

from __future__ import annotations

import pytest
import requests


@pytest.fixture
def session(exotel_simulator):
    with requests.Session() as s:
        s.auth = exotel_simulator.auth
        yield s


def url(sim, path):
    return f"{sim.base_url}/{path}"


def test_create_answers_per_item_in_input_order_with_207_for_partial_failure(exotel_simulator, session):
    body = {"contacts": [{"number": "+919845012345"}, {"number": "+91 98450 12346"}, {"first_name": "x"}]}

    resp = session.post(url(exotel_simulator, "contacts"), json=body, timeout=5)

    assert resp.status_code == 207
    items = resp.json()["response"]
    assert [i["code"] for i in items] == [200, 400, 400]
    assert items[0]["data"]["number"] == "+919845012345" and len(items[0]["data"]["sid"]) == 32
    assert "Invalid number" in items[1]["error_data"]["description"]
    assert resp.json()["metadata"] == {"failed": 2, "total": 3, "success": 1}
    assert len(exotel_simulator) == 1


def test_create_refuses_more_than_5000_contacts_in_one_request(exotel_simulator, session):
    body = {"contacts": [{"number": f"+9180{i:08d}"} for i in range(5001)]}

    resp = session.post(url(exotel_simulator, "contacts"), json=body, timeout=10)

    assert resp.status_code == 400
    assert len(exotel_simulator) == 0


@pytest.mark.parametrize(("mode", "codes", "stored"), [("allow", [200, 200], 2), ("refuse", [409, 409], 0)])
def test_duplicate_number_switch(exotel_simulator, session, mode, codes, stored):
    exotel_simulator.duplicate_numbers = mode
    exotel_simulator.insert_contact(number="+919845012345")
    body = {"contacts": [{"number": "+919845012345"}, {"number": "+919845012345"}]}

    resp = session.post(url(exotel_simulator, "contacts"), json=body, timeout=5)

    assert [i["code"] for i in resp.json()["response"]] == codes
    assert len(exotel_simulator.contacts_with_number("+919845012345")) == 1 + stored


def test_list_names_are_unique_and_the_name_filter_matches_substrings(exotel_simulator, session):
    first = session.post(
        url(exotel_simulator, "lists"), json={"lists": [{"name": "Diwali", "tag": "t"}]}, timeout=5
    )
    again = session.post(
        url(exotel_simulator, "lists"), json={"lists": [{"name": "Diwali"}, {"name": "Diwali 2"}]}, timeout=5
    )

    assert first.status_code == 200
    assert again.status_code == 207
    assert [i["code"] for i in again.json()["response"]] == [409, 200]
    found = session.get(url(exotel_simulator, "lists"), params={"name": "diwali"}, timeout=5).json()
    assert [i["data"]["name"] for i in found["response"]] == ["Diwali", "Diwali 2"]
    assert found["metadata"]["total"] == 2


def test_list_members_are_added_as_a_set_and_removed_one_at_a_time(exotel_simulator, session):
    seeded = exotel_simulator.seed_contacts(3)
    lst = exotel_simulator.add_list("l")
    refs = {"contact_references": [{"contact_sid": c["sid"]} for c in seeded] + [{"contact_sid": "ghost"}]}
    members = url(exotel_simulator, f"lists/{lst['sid']}/contacts")

    added = session.post(members, json=refs, timeout=5)
    session.post(members, json=refs, timeout=5)  # again: no duplicates
    removed = session.delete(f"{members}/{seeded[0]['sid']}", timeout=5)
    gone = session.delete(f"{members}/{seeded[0]['sid']}", timeout=5)

    assert [i["code"] for i in added.json()["response"]] == [200, 200, 200, 404]
    assert removed.status_code == 200 and gone.status_code == 404
    assert exotel_simulator.lists[lst["sid"]] == [c["sid"] for c in seeded[1:]]
    assert exotel_simulator.requests[0].batch_size == 4


def test_deleting_a_list_or_a_contact_answers_one_object_then_404(exotel_simulator, session):
    seeded = exotel_simulator.seed_contacts(1)
    lst = exotel_simulator.add_list("l", contact_sids=[seeded[0]["sid"]])

    assert (
        session.get(url(exotel_simulator, f"lists/{lst['sid']}"), timeout=5).json()["response"]["data"][
            "contact_count"
        ]
        == 1
    )
    assert session.delete(url(exotel_simulator, f"contacts/{seeded[0]['sid']}"), timeout=5).status_code == 200
    assert exotel_simulator.lists[lst["sid"]] == []
    assert session.delete(url(exotel_simulator, f"lists/{lst['sid']}"), timeout=5).status_code == 200
    assert session.get(url(exotel_simulator, f"lists/{lst['sid']}"), timeout=5).status_code == 404
    assert session.delete(url(exotel_simulator, f"contacts/{seeded[0]['sid']}"), timeout=5).status_code == 404


def test_duplicate_numbers_is_also_a_constructor_argument_and_a_command_line_flag(exotel_simulator_factory):
    from airflow_provider_exotel.testing.__main__ import _parser

    sim = exotel_simulator_factory(duplicate_numbers="refuse")
    sim.insert_contact(number="+919845012345")
    with requests.Session() as s:
        s.auth = sim.auth
        resp = s.post(url(sim, "contacts"), json={"contacts": [{"number": "+919845012345"}]}, timeout=5)
    assert resp.json()["response"][0]["code"] == 409
    assert _parser().parse_args(["--duplicate-numbers", "refuse"]).duplicate_numbers == "refuse"
    assert _parser().parse_args([]).duplicate_numbers == "allow"
    with pytest.raises(ValueError, match="duplicate_numbers"):
        exotel_simulator_factory(duplicate_numbers="maybe")


def test_create_and_list_add_item_faults_answer_that_item_without_applying_it(exotel_simulator, session):
    contact = exotel_simulator.insert_contact(number="+919845012345")
    lst = exotel_simulator.add_list("l")
    exotel_simulator.add_create_item_faults({"+918000000001": [503]})
    exotel_simulator.add_list_item_faults({contact["sid"]: [500]})

    created = session.post(
        url(exotel_simulator, "contacts"),
        json={"contacts": [{"number": "+918000000000"}, {"number": "+918000000001"}]},
        timeout=5,
    )
    added = session.post(
        url(exotel_simulator, f"lists/{lst['sid']}/contacts"),
        json={"contact_references": [{"contact_sid": contact["sid"]}]},
        timeout=5,
    )

    assert [i["code"] for i in created.json()["response"]] == [200, 503]
    assert exotel_simulator.contacts_with_number("+918000000001") == []
    assert added.status_code == 207 and added.json()["response"][0]["code"] == 500
    assert exotel_simulator.lists[lst["sid"]] == []


@pytest.mark.parametrize(("mode", "statuses"), [("no_content", [204, 404]), ("failure_item", [200, 200])])
def test_delete_answer_switch(exotel_simulator, session, mode, statuses):
    contact = exotel_simulator.insert_contact(number="+919845012345")
    exotel_simulator.delete_answer = mode

    first = session.delete(url(exotel_simulator, f"contacts/{contact['sid']}"), timeout=5)
    second = session.delete(url(exotel_simulator, f"contacts/{contact['sid']}"), timeout=5)

    assert [first.status_code, second.status_code] == statuses
    if mode == "no_content":
        assert first.content == b""
    else:
        assert first.json()["response"]["data"]["sid"] == contact["sid"]
        assert second.json()["response"]["code"] == 404
    assert exotel_simulator.get_contact(contact["sid"]) is None
