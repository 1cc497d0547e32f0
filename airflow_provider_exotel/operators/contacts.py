"""Operators for Exotel's v2 Contacts API: fetch contacts (all, or of one list), bulk-update, create
and sync them.

Public names only; each operator family lives in its own private module (``_fetch``,
``_bulk_update``, ``_create``, ``_sync``) over shared plumbing (``_base``, ``_files``,
``_progress``, ``_lineage``). The top level stays cheap (DAG parse): the hook, and with it
``requests``, ``tenacity`` and the HTTP provider, is imported only when a task runs.
"""

from __future__ import annotations

from airflow_provider_exotel.operators._bulk_update import (
    ExotelBulkUpdateContactsOperator,
    ExotelBulkUpdateFailedError,
)
from airflow_provider_exotel.operators._create import (
    ExotelCreateContactsFailedError,
    ExotelCreateContactsOperator,
)
from airflow_provider_exotel.operators._fetch import (
    MAX_XCOM_CONTACTS,
    ExotelFetchContactsOperator,
    ExotelFetchListContactsOperator,
)
from airflow_provider_exotel.operators._progress import PROGRESS_INTERVAL
from airflow_provider_exotel.operators._progress import Progress as _Progress  # noqa: F401 (tests)
from airflow_provider_exotel.operators._sync import (
    ExotelSyncContactsFailedError,
    ExotelSyncContactsOperator,
)

__all__ = [
    "MAX_XCOM_CONTACTS",
    "PROGRESS_INTERVAL",
    "ExotelBulkUpdateContactsOperator",
    "ExotelBulkUpdateFailedError",
    "ExotelCreateContactsFailedError",
    "ExotelCreateContactsOperator",
    "ExotelFetchContactsOperator",
    "ExotelFetchListContactsOperator",
    "ExotelSyncContactsFailedError",
    "ExotelSyncContactsOperator",
]
