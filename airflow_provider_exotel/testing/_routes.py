"""Routing as a table: an endpoint family is a module that registers its routes.

A route is ``(method, pattern, handler)`` below one of the API's bases:

=======  ==================================  ===========================================
base     prefix                              budget family (``set_account_limit(family=)``)
=======  ==================================  ===========================================
``v2``   ``/v2/accounts/<account_sid>/``     ``"campaign"`` (contacts, lists, campaigns)
``v1``   ``/v1/Accounts/<account_sid>/``     ``"voice"`` (calls)
=======  ==================================  ===========================================

A pattern is the path below the base; ``<name>`` matches one path segment (or the part of one,
as in ``"Calls/<call_sid>.json"``) and is handed to the handler in ``request.params``; empty
segments and a trailing ``/`` are ignored. The handler takes an :class:`ApiRequest` and returns
``(status, body)`` or ``(status, body, headers)`` (a ``Content-Type`` there replaces JSON's), or raises
:class:`~airflow_provider_exotel.testing._envelopes.ApiError`. A path that matches a pattern with
another method answers 405, one that matches none 404; where patterns overlap the first registered
wins; two registrations of one ``(method, base, pattern)`` are an error unless ``replace=True``.

An endpoint family is a class built with the simulator and registering its routes::

    class CampaignsFamily:
        def __init__(self, sim):  # sim.clock, sim.store, sim.faults, sim.one_object_as_list ...
            self.sim = sim
            self.campaigns = {}

        def register(self, routes):
            routes.add("POST", "campaigns", self.create, name="campaigns")
            routes.add("GET", "campaigns/<campaign_id>", self.get, name="a campaign")
            routes.add("GET", "Calls.json", self.calls, base="v1")

        def create(self, request):
            ...
            return 200, one_object(campaign, "POST")

It is added to ``ENDPOINT_FAMILIES`` in ``testing/simulator.py`` (every simulator serves it) or
to one simulator with ``sim.add_family(CampaignsFamily)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_exotel.testing._envelopes import ApiError

if TYPE_CHECKING:
    from airflow_provider_exotel.testing._requestlog import RecordedRequest

__all__ = ["BASES", "Answer", "ApiRequest", "EndpointFamily", "Route", "RouteTable"]

#: base name -> (first path segment, second segment as matched (case-insensitive), budget family)
BASES: dict[str, tuple[str, str, str]] = {
    "v2": ("v2", "accounts", "campaign"),
    "v1": ("v1", "accounts", "voice"),
}

Answer = tuple[int, bytes] | tuple[int, bytes, dict[str, str]]


@dataclass
class ApiRequest:
    """One API request as a handler sees it.

    ``body`` is the parsed JSON body (``None`` when empty, ``INVALID_JSON`` when not JSON);
    ``params`` the pattern's ``<name>`` parts; ``record`` the request log entry (a handler may set
    ``batch_size`` / ``json_body``).
    """

    method: str
    path: str
    query: dict[str, str]
    body: Any
    record: RecordedRequest
    base: str = "v2"
    params: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ApiRequest], Answer]


class EndpointFamily(Protocol):
    """What ``ENDPOINT_FAMILIES`` / ``sim.add_family`` expect: built with the simulator."""

    def register(self, routes: RouteTable) -> None: ...


@dataclass(frozen=True)
class Route:
    method: str
    base: str
    pattern: str
    handler: Handler
    name: str
    regex: re.Pattern[str]


def _compile(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"<([A-Za-z_][A-Za-z0-9_]*)>", "/".join(s for s in pattern.split("/") if s))
    rx = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(rx)


class RouteTable:
    """The simulator's routes: ``add`` them, ``resolve`` a request to one."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def __iter__(self) -> Iterator[Route]:
        return iter(list(self._routes))

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        base: str = "v2",
        name: str | None = None,
        replace: bool = False,
    ) -> Route:
        """Serve ``method pattern`` (below ``base``) with ``handler``.

        :param name: how a 405 names the resource (default: the pattern).
        :param replace: replace an existing route of the same method, base and pattern.
        """
        if base not in BASES:
            raise ValueError(f"unknown base {base!r}; expected one of {sorted(BASES)}")
        route = Route(method.upper(), base, pattern.strip("/"), handler, name or pattern, _compile(pattern))
        for i, old in enumerate(self._routes):
            if (old.method, old.base, old.regex.pattern) == (route.method, base, route.regex.pattern):
                if not replace:
                    raise ValueError(f"{route.method} {base}:{pattern} is already routed")
                self._routes[i] = route
                return route
        self._routes.append(route)
        return route

    @staticmethod
    def split(path: str, account_sid: str) -> tuple[str, str]:
        """``(base, rest)`` of an API path; 404 when it is below no base or another account."""
        segs = [s for s in path.split("/") if s]
        for base, (version, accounts, _family) in BASES.items():
            if len(segs) >= 3 and segs[0] == version and segs[1].lower() == accounts:
                if segs[2] != account_sid:
                    raise ApiError(404, "Account not found")
                return base, "/".join(segs[3:])
        raise ApiError(404, f"No route for {path}")

    def resolve(self, method: str, base: str, rest: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route serving ``method`` on ``rest`` (below ``base``) and its params; 404 / 405."""
        other: Route | None = None
        for route in self._routes:
            if route.base != base:
                continue
            match = route.regex.fullmatch(rest)
            if match is None:
                continue
            if route.method == method:
                return route, match.groupdict()
            other = other or route
        if other is not None:
            raise ApiError(405, f"{method} not allowed on {other.name}")
        raise ApiError(404, f"No route for {path}")
