"""Exotel operators: fetch contacts (all, or of one list), bulk-update, create and sync them."""

from __future__ import annotations

from airflow_provider_exotel.operators.contacts import (
    ExotelBulkUpdateContactsOperator,
    ExotelBulkUpdateFailedError,
    ExotelCreateContactsOperator,
    ExotelFetchContactsOperator,
    ExotelFetchListContactsOperator,
    ExotelSyncContactsOperator,
)

__all__ = [
    "ExotelBulkUpdateContactsOperator",
    "ExotelBulkUpdateFailedError",
    "ExotelCreateContactsOperator",
    "ExotelFetchContactsOperator",
    "ExotelFetchListContactsOperator",
    "ExotelSyncContactsOperator",
]
