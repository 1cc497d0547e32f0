"""Exotel operators: fetch contacts (all, or of one list) and bulk-update them."""

from __future__ import annotations

from airflow_provider_exotel.operators.contacts import (
    ExotelBulkUpdateContactsOperator,
    ExotelBulkUpdateFailedError,
    ExotelFetchContactsOperator,
    ExotelFetchListContactsOperator,
)

__all__ = [
    "ExotelBulkUpdateContactsOperator",
    "ExotelBulkUpdateFailedError",
    "ExotelFetchContactsOperator",
    "ExotelFetchListContactsOperator",
]
