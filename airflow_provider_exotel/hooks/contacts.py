"""ExotelContactsHook — the public hook of the ``exotel`` connection (a façade).

Its methods live in private modules beneath it, each readable alone:

- ``_base``: the connection resolved once into immutable settings, ``_request``, test connection;
- ``_transport``: the only code that speaks HTTP (budget → send → 429 wait → decode → check → retry);
- ``_retry``: the retry policy (declared once, with tenacity) and error classification;
- ``_budget``: the request budget of each endpoint family, shared by every thread of the hook;
- ``_answers``: one rule for a bulk item's outcome, one-object envelopes, page parsing;
- ``_batches``: result classes, the per-item resend loop and the batch runner;
- ``_paging``: the paging engine shared by every endpoint that pages;
- ``_incremental``: ``created_from``/``created_to`` reads and resumed exports (about
  ``k/19 + 2·log2(N) + 3`` requests for k of N contacts);
- ``_contacts``, ``_lists``: the resource methods;
- ``_secrets``: masking and redaction.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_exotel._new_contacts import MAX_BULK_CREATE, MAX_LIST_ADD
from airflow_provider_exotel._validation import (
    MAX_BULK_UPDATE,
    MAX_PAGE_SIZE,
    UPDATABLE_FIELDS,
    validate_contact,
    validate_contacts,
)
from airflow_provider_exotel.hooks._base import (
    DEFAULT_HOST,
    REGIONS,
    TEST_CONNECTION_TIMEOUT,
    ExotelBaseHook,
    Settings,
)
from airflow_provider_exotel.hooks._batches import (
    BulkCreateResult,
    BulkResult,
    BulkUpdateResult,
    unknown_batch,
)
from airflow_provider_exotel.hooks._contacts import ContactsMixin
from airflow_provider_exotel.hooks._incremental import ResumePoint
from airflow_provider_exotel.hooks._lists import ListsMixin
from airflow_provider_exotel.hooks._transport import RATE_LIMIT_CODE


class ExotelContactsHook(ContactsMixin, ListsMixin, ExotelBaseHook):
    """Talk to Exotel's v2 Contacts API through an ``exotel`` Airflow connection.

    Connection: login = API key, password = API token, host = API host (empty for
    ``api.exotel.com``; a full base URL such as ``http://127.0.0.1:8089`` is accepted), schema
    ``https`` by default, extra ``account_sid`` (required) and optionally ``region``
    (``singapore``/``mumbai``), ``timeout``, ``requests_per_minute``, ``verify`` and ``timezone``.

    :param exotel_conn_id: id of the ``exotel`` connection.
    :param timeout: seconds to wait for each HTTP request (connect and read), > 0 and <= 3600. The
        connection extra ``timeout`` is used when this is left at its default.
    :param retry_limit: retries after the first attempt for 5xx, connection errors, timeouts and
        unreadable bodies (so ``retry_limit + 1`` attempts at most), 0..50. A 429 is not counted:
        it is waited out under ``rate_limit_wait``.
    :param retry_delay: first backoff in seconds (0..600); doubles per retry with jitter, capped at
        60 s. A ``Retry-After`` header wins.
    :param requests_per_minute: a fixed cap (1..60000) shared by all threads of this hook (also the
        connection extra ``requests_per_minute``); the hook also paces itself from the
        ``X-RateLimit-*`` headers and the 429s it meets. The tighter applies.
    :param concurrency: requests in flight at most, for paging and bulk calls, 1..32.
    :param rate_limit_wait: seconds one request may wait for the account's budget before
        :class:`ExotelRateLimitError` is raised, 0..86400 (0: raise at the first 429); default 900.
    """

    conn_name_attr = "exotel_conn_id"
    default_conn_name = "exotel_default"
    conn_type = "exotel"
    hook_name = "Exotel"

    # ---------------------------------------------------------------------------- connection form
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel the standard connection fields (Airflow 2.x form; 3.2+ reads provider info).

        Same content as the provider info's ``ui-field-behaviour``, with the 2.x key spelling.
        """
        from airflow_provider_exotel.get_provider_info import UI_FIELD_BEHAVIOUR

        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow 2.x; 3.2+ reads the provider info's conn-fields)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        from airflow_provider_exotel.get_provider_info import CONN_FIELDS

        # Not InputRequired: Airflow 2.x puts every provider's extra fields in one form, so a required
        # field here would block saving connections of every other type. The hook names a missing
        # account_sid clearly instead. A default shows on Add and on Edit of an extra without the key.
        return {
            name: StringField(
                lazy_gettext(field["label"]),
                widget=BS3TextFieldWidget(),
                description=field["description"],
                default=field["schema"].get("default"),
            )
            for name, field in CONN_FIELDS.items()
        }


__all__ = [
    "DEFAULT_HOST",
    "MAX_BULK_CREATE",
    "MAX_BULK_UPDATE",
    "MAX_LIST_ADD",
    "MAX_PAGE_SIZE",
    "RATE_LIMIT_CODE",
    "REGIONS",
    "TEST_CONNECTION_TIMEOUT",
    "UPDATABLE_FIELDS",
    "BulkCreateResult",
    "BulkResult",
    "BulkUpdateResult",
    "ExotelBaseHook",
    "ExotelContactsHook",
    "ResumePoint",
    "Settings",
    "unknown_batch",
    "validate_contact",
    "validate_contacts",
]
