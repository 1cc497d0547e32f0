"""What the connection form and the Providers page are told about the Exotel connection type.

Airflow 3.2+ builds the form from the provider info's ``conn-fields`` (rendered by the UI's
FlexibleForm: a ``type`` without ``"null"`` is a required field, red while empty; ``examples`` turn a
text input into a "Start typing to see options" suggestion box whose suggestions can be saved); the
metadata is read here exactly as the API server's ``GET /ui/connections/hook_meta`` builds it.
Airflow 2.x builds the Flask form from ``ExotelContactsHook.get_connection_form_widgets()``.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest
from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

from airflow_provider_exotel.get_provider_info import get_provider_info

AIRFLOW_3 = Version(AIRFLOW_VERSION).major >= 3
PYPI_PAGE = "https://pypi.org/project/airflow-provider-exotel/"
README = Path(__file__).resolve().parent.parent.parent / "README.md"


def _required_in_form(schema: dict[str, Any]) -> bool:
    """The UI's rule (FlexibleForm isParamRequired): a type is given and ``"null"`` is not among it."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


@pytest.fixture(scope="module")
def exotel_meta() -> dict[str, Any]:
    if not AIRFLOW_3:
        pytest.skip("Airflow 2.x builds the form from the hook's widgets")
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    by_type = {m.connection_type: m.model_dump() for m in HookMetaService.hook_meta_data()}
    return by_type["exotel"]


def test_providers_page_links_to_the_pypi_project_page_the_readme_names() -> None:
    assert get_provider_info()["documentation-url"] == PYPI_PAGE
    assert PYPI_PAGE in README.read_text(encoding="utf-8")
    # Airflow 3 takes the link from the installed package's "Documentation" Project-URL instead
    urls = importlib.metadata.metadata("airflow-provider-exotel").get_all("Project-URL") or []
    assert f"Documentation, {PYPI_PAGE}" in urls


def test_account_sid_is_a_plain_text_field_with_a_hint_and_no_value_to_save(exotel_meta) -> None:
    field = exotel_meta["extra_fields"]["account_sid"]
    schema = field["schema"]
    assert schema["title"] == "Account SID"
    assert "examples" not in schema  # no suggestion box offering a placeholder as a value
    assert "enum" not in schema and "format" not in schema
    assert not _required_in_form(schema)  # not red before anything is typed
    assert field["value"] is None  # nothing pre-filled that could be saved by mistake
    assert "API settings" in field["description"] and "Required" in field["description"]


def test_region_starts_on_its_default_and_offers_both_regions(exotel_meta) -> None:
    field = exotel_meta["extra_fields"]["region"]
    assert field["value"] == "singapore"
    assert field["schema"]["enum"] == ["singapore", "mumbai"]
    assert set(field["schema"]["values_display"]) == {"singapore", "mumbai"}
    assert "singapore" in field["description"] and "mumbai" in field["description"]


def test_timezone_is_a_text_field_defaulting_to_kolkata(exotel_meta) -> None:
    field = exotel_meta["extra_fields"]["timezone"]
    assert field["schema"]["title"] == "Time zone"
    assert field["value"] == "Asia/Kolkata"
    assert not _required_in_form(field["schema"])
    assert "examples" not in field["schema"]
    assert "IANA" in field["description"]


def test_standard_field_hints_are_hints_not_values(exotel_meta) -> None:
    fields = exotel_meta["standard_fields"]
    assert fields["login"]["placeholder"].startswith("API key")
    assert "api.exotel.com" in fields["host"]["placeholder"]


@pytest.mark.skipif(AIRFLOW_3, reason="Airflow 2.x Flask form")
def test_2x_form_has_account_sid_region_and_timezone_with_defaults() -> None:
    from airflow.providers_manager import ProvidersManager

    widgets = ProvidersManager().connection_form_widgets
    fields = {name: widgets[f"extra__exotel__{name}"].field for name in ("account_sid", "region", "timezone")}
    assert {n: str(f.args[0]) for n, f in fields.items()} == {
        "account_sid": "Account SID",
        "region": "Region",
        "timezone": "Time zone",
    }
    assert fields["account_sid"].kwargs.get("default") is None
    assert fields["region"].kwargs["default"] == "singapore"
    assert fields["timezone"].kwargs["default"] == "Asia/Kolkata"
    placeholders = ProvidersManager().field_behaviours["exotel"]["placeholders"]
    assert "your_account_sid" not in placeholders.values()
