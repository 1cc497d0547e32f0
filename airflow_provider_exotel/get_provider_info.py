"""Provider metadata read by Airflow's ProvidersManager (``apache_airflow_provider`` entry point).

Kept free of heavy imports: Airflow calls it while discovering providers.
"""

from __future__ import annotations

from typing import Any

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": [],
    "relabeling": {
        "login": "API key",
        "password": "API token",
        "host": "API host (optional)",
    },
    "placeholders": {
        "login": "API key from the Exotel dashboard (API settings)",
        "password": "API token",
        "host": "empty = api.exotel.com; or a full URL such as http://127.0.0.1:8089",
        "schema": "https",
        "port": "optional",
        "account_sid": "your Exotel account SID",
        "region": "singapore or mumbai",
    },
}

CONN_FIELDS: dict[str, Any] = {
    "account_sid": {
        "label": "Account SID",
        "description": "Your Exotel account SID (API settings page of the Exotel dashboard). Required.",
        "schema": {"type": "string", "minLength": 1},
    },
    "region": {
        "label": "Region",
        "description": "singapore (api.exotel.com, default) or mumbai (api.in.exotel.com). "
        "Ignored when API host is set.",
        "schema": {"type": ["string", "null"], "enum": ["singapore", "mumbai", None]},
    },
}


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_exotel import __version__

    return {
        "package-name": "airflow-provider-exotel",
        "name": "Exotel",
        "description": "Hook, operators, sensor and trigger for Exotel's v2 Contacts API.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Exotel",
                "external-doc-url": "https://developer.exotel.com/api/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Exotel", "python-modules": ["airflow_provider_exotel.hooks.contacts"]}
        ],
        "operators": [
            {"integration-name": "Exotel", "python-modules": ["airflow_provider_exotel.operators.contacts"]}
        ],
        "sensors": [
            {"integration-name": "Exotel", "python-modules": ["airflow_provider_exotel.sensors.contacts"]}
        ],
        "triggers": [
            {"integration-name": "Exotel", "python-modules": ["airflow_provider_exotel.triggers.contacts"]}
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_exotel.hooks.contacts.ExotelContactsHook",
                "hook-name": "Exotel",
                "connection-type": "exotel",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
