"""Testing helpers: a stateful Exotel v2 Contacts API simulator (stdlib only) and a pytest plugin.

    from airflow_provider_exotel.testing import ExotelSimulator, Fault

Run standalone with ``python -m airflow_provider_exotel.testing --port 8089 --contacts 500``.
"""

from __future__ import annotations

from airflow_provider_exotel.testing.simulator import ExotelSimulator, Fault, RecordedRequest

__all__ = ["ExotelSimulator", "Fault", "RecordedRequest"]
