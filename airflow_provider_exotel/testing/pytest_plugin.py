"""pytest plugin (entry point ``exotel``) providing Exotel simulator fixtures.

* ``exotel_simulator`` - a started, empty :class:`ExotelSimulator`; ``AIRFLOW_CONN_EXOTEL_DEFAULT``
  points at it for the duration of the test.
* ``exotel_simulator_factory`` - ``factory(**kwargs) -> started ExotelSimulator``; all are stopped
  at teardown.

Does not import Airflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_exotel.testing.simulator import ExotelSimulator


@pytest.fixture
def exotel_simulator_factory() -> Iterator[Callable[..., ExotelSimulator]]:
    from airflow_provider_exotel.testing.simulator import ExotelSimulator

    started: list[ExotelSimulator] = []

    def factory(**kwargs: Any) -> ExotelSimulator:
        sim = ExotelSimulator(**kwargs).start()
        started.append(sim)
        return sim

    yield factory
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def exotel_simulator(
    exotel_simulator_factory: Callable[..., ExotelSimulator], monkeypatch: pytest.MonkeyPatch
) -> ExotelSimulator:
    sim = exotel_simulator_factory()
    monkeypatch.setenv("AIRFLOW_CONN_EXOTEL_DEFAULT", sim.connection_json())
    return sim
