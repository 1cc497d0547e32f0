"""Provider metadata read by Airflow's ProvidersManager (``apache_airflow_provider`` entry point).

Kept free of heavy imports: Airflow calls it while discovering providers.
"""

from __future__ import annotations

from typing import Any

#: Region names offered by the connection form, the default first (hooks/contacts.py maps them to hosts).
REGION_CHOICES = ("singapore", "mumbai")
#: Shown as the Account SID field's suggestion (and in its placeholder on Airflow 2.x).
ACCOUNT_SID_EXAMPLE = "your_account_sid"

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
        "account_sid": ACCOUNT_SID_EXAMPLE,
        "region": "singapore or mumbai",
    },
}

#: Airflow 3.2+ builds the extra fields of the connection form from this (JSON-schema per field).
#: What reaches the form there: ``label`` (the title), ``description``, the schema's ``default`` (the
#: field's initial value), ``enum`` + ``values_display`` (a dropdown with readable labels) and
#: ``examples`` (suggestions, and a "Start typing to see options" placeholder). ``ui-field-behaviour``
#: placeholders only reach the standard fields. Region is a plain string enum with a default: no
#: ``null`` option, and the form starts on ``singapore`` instead of saving ``"region": null``.
CONN_FIELDS: dict[str, Any] = {
    "account_sid": {
        "label": "Account SID",
        "description": "Your Exotel account SID (API settings page of the Exotel dashboard). Required.",
        "schema": {"type": "string", "minLength": 1, "examples": [ACCOUNT_SID_EXAMPLE]},
    },
    "region": {
        "label": "Region",
        "description": "singapore (api.exotel.com, default) or mumbai (api.in.exotel.com). "
        "Ignored when API host is set.",
        "schema": {
            "type": "string",
            "enum": list(REGION_CHOICES),
            "default": REGION_CHOICES[0],
            "values_display": {
                "singapore": "Singapore (api.exotel.com)",
                "mumbai": "Mumbai (api.in.exotel.com)",
            },
        },
    },
}


def _modules(kind: str, *names: str) -> list[dict[str, Any]]:
    """The provider-info entry listing ``airflow_provider_exotel.<kind>.<name>`` modules."""
    return [
        {
            "integration-name": "Exotel",
            "python-modules": [f"airflow_provider_exotel.{kind}.{n}" for n in names],
        }
    ]


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
        "hooks": _modules("hooks", "contacts", "campaigns"),
        "operators": _modules("operators", "contacts", "campaigns"),
        "sensors": _modules("sensors", "contacts", "campaigns"),
        "triggers": _modules("triggers", "contacts", "campaigns"),
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
