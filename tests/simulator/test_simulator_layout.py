"""The simulator after its split (issue 17): public names where they were, the façade's constructor
as before, and the endpoint families registering today's routes in the table."""

from __future__ import annotations

import inspect

import requests

from airflow_provider_exotel import testing
from airflow_provider_exotel.testing import simulator
from airflow_provider_exotel.testing._contacts_family import ContactsFamily
from airflow_provider_exotel.testing._lists_family import ListsFamily
from airflow_provider_exotel.testing.simulator import ENDPOINT_FAMILIES, ExotelSimulator

PUBLIC = ("CONTACT_FIELDS", "FAULT_KINDS", "MAX_BULK_UPDATE", "MAX_PAGE_LIMIT", "UPDATABLE_FIELDS")


def test_public_names_are_importable_from_both_paths():
    for name in ("ExotelSimulator", "Fault", "RecordedRequest"):
        assert getattr(testing, name) is getattr(simulator, name)
    assert set(PUBLIC) <= set(simulator.__all__)
    assert simulator.MAX_PAGE_LIMIT == 20 and simulator.MAX_BULK_UPDATE == 5000
    assert "429" in simulator.FAULT_KINDS and "repeat_page" in simulator.FAULT_KINDS
    assert testing.SimClock is type(ExotelSimulator().clock)


def test_constructor_keeps_its_keywords():
    params = inspect.signature(ExotelSimulator).parameters
    assert list(params)[:13] == [
        "api_key", "api_token", "account_sid", "host", "port", "latency", "rate_limit_per_minute",
        "echo_headers_in_errors", "seed", "account_limit", "account_window", "rate_limit_headers",
        "duplicate_numbers",
    ]  # fmt: skip
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())


def test_families_register_every_contacts_and_lists_route():
    sim = ExotelSimulator()
    routes = {(r.method, r.pattern) for r in sim.routes if r.base == "v2"}
    assert [type(f) for f in sim.families] == list(ENDPOINT_FAMILIES)
    assert ENDPOINT_FAMILIES[:2] == (ContactsFamily, ListsFamily)  # more families may follow
    assert routes >= {
        ("GET", "contacts"), ("PUT", "contacts"), ("POST", "contacts"),
        ("GET", "contacts/<sid>"), ("PUT", "contacts/<sid>"), ("DELETE", "contacts/<sid>"),
        ("GET", "lists"), ("POST", "lists"), ("GET", "lists/<list_sid>"), ("DELETE", "lists/<list_sid>"),
        ("GET", "lists/<list_sid>/contacts"), ("POST", "lists/<list_sid>/contacts"),
        ("DELETE", "lists/<list_sid>/contacts/<sid>"),
    }  # fmt: skip


def test_wrong_methods_are_named_in_405_answers():
    with ExotelSimulator() as sim:
        s = requests.Session()
        s.trust_env = False
        s.auth = sim.auth
        sim.create_list("L1")
        answers = {
            path: s.patch(f"{sim.base_url}/{path}", json={}, timeout=10)
            for path in (
                "contacts",
                "contacts/x",
                "lists",
                "lists/L1",
                "lists/L1/contacts",
                "lists/L1/contacts/x",
            )
        }
    descriptions = {p: a.json()["response"]["error_data"]["description"] for p, a in answers.items()}
    assert {a.status_code for a in answers.values()} == {405}
    assert descriptions == {
        "contacts": "PATCH not allowed on contacts",
        "contacts/x": "PATCH not allowed on a contact",
        "lists": "PATCH not allowed on lists",
        "lists/L1": "PATCH not allowed on a list",
        "lists/L1/contacts": "PATCH not allowed on list contacts",
        "lists/L1/contacts/x": "PATCH not allowed on a list member",
    }
