"""Command line of the simulator's campaigns family (standard library only).

Serving flags (``python -m airflow_provider_exotel.testing …``): ``--campaign-pace`` (calls per
second of simulator time, default 1) and ``--status-spelling old|new`` (``in-progress`` or the
newer pages' ``InProgress``).

Controlling a running simulator through its control endpoint::

    python -m airflow_provider_exotel.testing campaign show [<id>] [--url http://127.0.0.1:8089]
    python -m airflow_provider_exotel.testing campaign advance <id> --seconds 600
    python -m airflow_provider_exotel.testing campaign finish <id>
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

__all__ = ["add_campaign_arguments", "campaign_cli", "configure_campaigns"]


def add_campaign_arguments(parser: argparse.ArgumentParser) -> None:
    """The serving flags of the campaigns family."""
    parser.add_argument(
        "--campaign-pace",
        type=float,
        default=1.0,
        help="calls per second (simulator time) a running campaign makes (default 1)",
    )
    parser.add_argument(
        "--status-spelling",
        choices=("old", "new"),
        default="old",
        help="campaign statuses as the old pages (in-progress, default) or the newer ones (InProgress)",
    )


def configure_campaigns(sim: Any, args: argparse.Namespace) -> None:
    """Apply the serving flags to ``sim.campaigns``."""
    if not args.campaign_pace > 0:
        raise SystemExit("--campaign-pace must be > 0")
    sim.campaigns.pace = float(args.campaign_pace)
    sim.campaigns.status_spelling = args.status_spelling


def campaign_cli(argv: Sequence[str]) -> int:
    """``campaign show|advance|finish``: talk to a running simulator's control endpoint."""
    p = argparse.ArgumentParser(prog="python -m airflow_provider_exotel.testing campaign")
    p.add_argument("command", choices=("show", "advance", "finish"))
    p.add_argument("campaign_id", nargs="?", default=None)
    p.add_argument("--seconds", type=float, default=60.0, help="advance: seconds of running time")
    p.add_argument("--url", default="http://127.0.0.1:8089", help="the simulator's base URL")
    args = p.parse_args(list(argv))
    if args.command != "show" and not args.campaign_id:
        p.error(f"{args.command} needs a campaign id")
    path = "/_control/campaigns" + (f"/{args.campaign_id}" if args.campaign_id else "")
    body: dict[str, Any] | None = None
    if args.command == "advance":
        path, body = path + "/advance", {"seconds": args.seconds}
    elif args.command == "finish":
        path, body = path + "/finish", {}
    request = urllib.request.Request(
        args.url.rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            print(json.dumps(json.load(answer), indent=2))
    except urllib.error.HTTPError as exc:
        print(exc.read().decode(errors="replace"), file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"cannot reach the simulator at {args.url}: {exc.reason}", file=sys.stderr)
        return 1
    return 0
