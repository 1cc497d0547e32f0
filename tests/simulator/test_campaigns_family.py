"""The simulator's campaigns family over raw HTTP: Exotel's rules, the status machine, lazy dialling
on the simulator clock, call records, the control endpoint and the CLI."""

from __future__ import annotations

import requests

from airflow_provider_exotel.testing._campaign_runs import outcome_of
from airflow_provider_exotel.testing._campaigns_cli import campaign_cli


def api(sim, method: str, path: str, body: object = None, **params) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.request(
        method, f"{sim.base_url}/{path}", json=body, params=params, auth=sim.auth, timeout=10
    )


def control(sim, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(method, f"{sim.url}/_control{path}", json=body, timeout=10)


def new_campaign(sim, **fields) -> requests.Response:
    item = {"name": "c", "caller_id": "0801", "url": "http://my.exotel.com/a/exoml/start_voice/1", **fields}
    return api(sim, "POST", "campaigns", {"campaigns": [item]})


def data(answer: requests.Response) -> dict:
    response = answer.json()["response"]
    return (response[0] if isinstance(response, list) else response)["data"]


def test_exotel_limits_are_enforced_with_its_error_shape(exotel_simulator):
    exotel_simulator.create_list("L1", [])
    cases = {
        "six lists": {"lists": ["L1"] * 6},
        "dynamic with two lists": {"lists": ["L1", "L1"], "campaign_type": "dynamic"},
        "5001 numbers": {"from": [f"+9198{i:08d}" for i in range(5001)]},
        "one invalid number": {"from": ["+919876543210", "98-76"]},
        "lists and from": {"lists": ["L1"], "from": ["+919876543210"]},
        "unknown list": {"lists": ["nope"]},
    }
    for why, fields in cases.items():
        answer = new_campaign(exotel_simulator, **fields)
        assert answer.status_code == 400, why
        assert answer.json()["response"]["error_data"]["description"], why
    assert exotel_simulator.campaigns.runs == {}


def test_a_campaign_dials_at_its_pace_on_the_clock_and_writes_rows_and_call_records(exotel_simulator):
    exotel_simulator.campaigns.pace = 0.5  # a call every 2 s
    numbers = [f"+9198765{i:05d}" for i in range(6)]
    made = data(new_campaign(exotel_simulator, **{"from": numbers}))

    exotel_simulator.clock.advance(4)
    running = data(api(exotel_simulator, "GET", f"campaigns/{made['id']}"))
    exotel_simulator.clock.advance(100)
    done = data(api(exotel_simulator, "GET", f"campaigns/{made['id']}"))
    page = api(exotel_simulator, "GET", f"campaigns/{made['id']}/call-details", limit=20).json()

    assert running["status"] == "in-progress" and running["stats"]["dialled"] == 3
    assert done["status"] == "completed" and done["stats"]["dialled"] == 6
    assert page["metadata"]["total"] == 6
    assert [i["data"]["status"] for i in page["response"]] == [outcome_of(n) for n in numbers]
    records = exotel_simulator.campaigns.call_records
    assert [r["To"] for r in records] == numbers and {r["Direction"] for r in records} == {"outbound-api"}


def test_a_refused_action_is_a_400_with_exotel_s_error_shape_and_the_new_spelling(exotel_simulator):
    exotel_simulator.campaigns.status_spelling = "new"
    made = data(new_campaign(exotel_simulator, **{"from": ["+919876543210", "+919876543211"]}))

    answer = api(exotel_simulator, "PUT", f"campaigns/{made['id']}", {"campaigns": [{"action": "resume"}]})

    assert made["status"] == "InProgress"
    assert answer.status_code == 400
    assert "InProgress" in answer.json()["response"]["error_data"]["description"]
    paused = api(exotel_simulator, "PUT", f"campaigns/{made['id']}", {"campaigns": [{"action": "pause"}]})
    assert data(paused)["status"] == "Paused"


def test_control_endpoint_and_cli_advance_and_finish_a_campaign(exotel_simulator, capsys):
    exotel_simulator.campaigns.pace = 0.01  # a call every 100 s
    made = data(new_campaign(exotel_simulator, **{"from": [f"+9198765{i:05d}" for i in range(5)]}))

    advanced = control(exotel_simulator, "POST", f"/campaigns/{made['id']}/advance", {"seconds": 150})
    assert advanced.status_code == 200 and advanced.json()["stats"]["dialled"] == 2
    assert campaign_cli(["finish", made["id"], "--url", exotel_simulator.url]) == 0
    assert '"status": "completed"' in capsys.readouterr().out
    listed = control(exotel_simulator, "GET", "/campaigns").json()
    assert listed["campaigns"][0]["stats"]["dialled"] == 5
    assert control(exotel_simulator, "POST", "/campaigns", {"pace": 3}).json()["pace"] == 3.0
    assert control(exotel_simulator, "POST", "/campaigns/nope/finish").status_code == 404
    assert campaign_cli(["finish", "nope", "--url", exotel_simulator.url]) == 1


def test_calls_made_are_handed_to_the_v1_calls_family_when_it_is_served(exotel_simulator):
    handed: list[dict] = []
    exotel_simulator.add_call_record = lambda **call: handed.append(call)  # the v1 Calls family's entry
    numbers = ["+919876500001", "+919876500002"]

    made = data(new_campaign(exotel_simulator, caller_id="08047112233", **{"from": numbers}))
    exotel_simulator.campaigns.finish(made["id"])

    assert [c["to"] for c in handed] == numbers
    assert {c["from_"] for c in handed} == {"08047112233"} and {c["direction"] for c in handed} == {
        "outbound-api"
    }
    assert [c["status"] for c in handed] == [outcome_of(n) for n in numbers]
    details = exotel_simulator.campaigns.call_details(made["id"])
    assert [c["sid"] for c in handed] == [d["call_sid"] for d in details]
    assert all(isinstance(c["date_created"], int) for c in handed)
