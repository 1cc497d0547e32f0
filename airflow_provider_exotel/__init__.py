"""Apache Airflow provider for Exotel's v2 Contacts API."""

from __future__ import annotations

__version__ = "0.1.0"
