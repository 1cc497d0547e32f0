"""Provider metadata read by Airflow's ProvidersManager (``apache_airflow_provider`` entry point).

Kept free of heavy imports: Airflow calls it while discovering providers.
"""

from __future__ import annotations

from typing import Any

#: Region names offered by the connection form, the default first (hooks/contacts.py maps them to hosts).
REGION_CHOICES = ("singapore", "mumbai")
#: The account's time zone (IANA name) when the connection has no ``timezone`` extra: call records'
#: timestamps carry no offset and are read in it.
DEFAULT_TIMEZONE = "Asia/Kolkata"
#: Where the package's documentation lives (the Providers page links to it).
DOCUMENTATION_URL = "https://pypi.org/project/airflow-provider-exotel/"

ACCOUNT_SID_HELP = (
    "Required. The account SID from the API settings page of the Exotel dashboard "
    "(the <sid> in https://api.exotel.com/v2/accounts/<sid>/)."
)
REGION_HELP = (
    "singapore (api.exotel.com, default) or mumbai (api.in.exotel.com). Ignored when API host is set."
)
TIMEZONE_HELP = (
    f"IANA time zone of the account (e.g. {DEFAULT_TIMEZONE}, Asia/Singapore): call records' timestamps "
    f"are read in it. Empty = {DEFAULT_TIMEZONE}."
)

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": [],
    "relabeling": {
        "login": "API key",
        "password": "API token",
        "host": "API host (optional)",
    },
    # Airflow 2.x shows these in the inputs; Airflow 3 only for the standard fields (the extra
    # fields' hints are the conn-fields descriptions below). Hints, never values one could save.
    "placeholders": {
        "login": "API key from the Exotel dashboard (API settings)",
        "password": "API token",
        "host": "empty = api.exotel.com; or a full URL such as http://127.0.0.1:8089",
        "schema": "https",
        "port": "optional",
        "account_sid": "from the API settings page of the Exotel dashboard",
        "region": "singapore or mumbai",
        "timezone": DEFAULT_TIMEZONE,
    },
}

#: Airflow 3.2+ builds the extra fields of the connection form from this (JSON schema per field;
#: rendered by the UI's FlexibleForm, as DAG params are). What reaches the form: ``label`` (title),
#: ``description`` (the hint under the field), ``default`` (initial value on Add), ``enum`` +
#: ``values_display`` (a dropdown). A ``type`` without ``"null"`` marks the field required (red while
#: empty); ``examples`` turns a text field into a suggestion box ("Start typing to see options") whose
#: suggestions can be saved as values — so Account SID is a plain, nullable text field with its hint
#: in the description (the hook names a missing one clearly). Region has a default and no null
#: option, so the form starts on ``singapore`` instead of saving ``"region": null``.
CONN_FIELDS: dict[str, Any] = {
    "account_sid": {
        "label": "Account SID",
        "description": ACCOUNT_SID_HELP,
        "schema": {"type": ["string", "null"]},
    },
    "region": {
        "label": "Region",
        "description": REGION_HELP,
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
    "timezone": {
        "label": "Time zone",
        "description": TIMEZONE_HELP,
        "schema": {"type": ["string", "null"], "default": DEFAULT_TIMEZONE},
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
        "description": "Hooks, operators, sensors and triggers for Exotel: contacts, lists, calling "
        "campaigns and call records.",
        "versions": [__version__],
        "documentation-url": DOCUMENTATION_URL,
        "integrations": [
            {
                "integration-name": "Exotel",
                "external-doc-url": "https://developer.exotel.com/api/",
                "tags": ["service"],
            }
        ],
        "hooks": _modules("hooks", "contacts", "campaigns", "calls"),
        "operators": _modules("operators", "contacts", "campaigns", "calls"),
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
