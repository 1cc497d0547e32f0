"""Testing helpers: a stateful Exotel API simulator (stdlib only) and a pytest plugin.

    from airflow_provider_exotel.testing import ExotelSimulator, Fault

Run standalone with ``python -m airflow_provider_exotel.testing --port 8089 --contacts 500``.
The simulator's layout (store, wire, faults, endpoint families) is described in
:mod:`airflow_provider_exotel.testing.simulator`.
"""

from __future__ import annotations

from airflow_provider_exotel.testing._clock import SimClock
from airflow_provider_exotel.testing.simulator import ExotelSimulator, Fault, RecordedRequest

__all__ = ["ExotelSimulator", "Fault", "RecordedRequest", "SimClock"]
