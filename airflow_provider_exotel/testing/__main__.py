"""Serve the Exotel simulator from the command line.

    python -m airflow_provider_exotel.testing --port 8089 --contacts 500 --lists 3 --list-size 50
    python -m airflow_provider_exotel.testing --contacts 2000 --account-limit 30 --account-window 60

Prints the base URL and an ``AIRFLOW_CONN_EXOTEL_DEFAULT`` connection JSON, then serves until
Ctrl-C or SIGTERM.

While it runs, a loopback-only control endpoint under ``/_control/`` changes it from outside (add or
delete contacts, change list membership, inject faults, read the request log), e.g.::

    curl -X POST http://127.0.0.1:8089/_control/contacts -d '{"count": 5, "list_sid": "list0"}'
    curl -X POST http://127.0.0.1:8089/_control/clock -d '{"advance": 3600}'

``GET /_control`` lists the endpoints; see :mod:`airflow_provider_exotel.testing.control`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from airflow_provider_exotel.testing._calls_facade import add_calls_arguments, apply_calls_arguments
from airflow_provider_exotel.testing._campaigns_cli import (
    add_campaign_arguments,
    campaign_cli,
    configure_campaigns,
)
from airflow_provider_exotel.testing._ratelimit import RESET_FORMATS
from airflow_provider_exotel.testing.control import ENDPOINTS
from airflow_provider_exotel.testing.simulator import ExotelSimulator


def _control_help() -> str:
    width = max(len(f"{m} {p}") for m, p, _ in ENDPOINTS)
    lines = [f"  {f'{m} {p}':<{width}}  {d}" for m, p, d in ENDPOINTS]
    return (
        "control endpoint (answers clients on 127.0.0.1 / ::1 only, no credentials; JSON bodies):\n"
        + "\n".join(lines)
        + "\n\nexample: curl -X POST http://127.0.0.1:8089/_control/contacts "
        + '-d \'{"count": 5, "list_sid": "list0"}\''
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m airflow_provider_exotel.testing",
        description="Run a local, stateful simulator of Exotel's v2 Contacts API.",
        epilog=_control_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8089, help="port to listen on; 0 picks a free one")
    p.add_argument("--contacts", type=int, default=0, help="number of contacts to seed")
    p.add_argument("--lists", type=int, default=0, help="number of lists to seed (list0, list1, ...)")
    p.add_argument("--list-size", type=int, default=50, help="contacts per seeded list")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    p.add_argument("--rate-limit", type=int, default=None, help="requests per minute (sliding window)")
    p.add_argument(
        "--account-limit",
        type=int,
        default=None,
        help="Exotel's account limit: requests per fixed window, with X-RateLimit-* headers",
    )
    p.add_argument(
        "--account-window", type=float, default=60.0, help="window of --account-limit in seconds (default 60)"
    )
    p.add_argument(
        "--hide-rate-limit-headers",
        action="store_true",
        help="enforce --account-limit without sending the X-RateLimit-* headers",
    )
    p.add_argument(
        "--rate-limit-reset-format",
        choices=RESET_FORMATS,
        default="epoch",
        help="X-RateLimit-Reset as epoch seconds (default), epoch milliseconds or seconds until the reset",
    )
    p.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        help="start the simulator's clock this many seconds ahead of real time (POST /_control/clock "
        "advances it while running)",
    )
    p.add_argument("--api-key", default="test-key")
    p.add_argument("--api-token", default="test-token")
    p.add_argument("--account-sid", default="acct1")
    p.add_argument("--seed", type=int, default=0, help="seed for deterministic data")
    p.add_argument(
        "--echo-headers",
        action="store_true",
        help="echo request headers in error bodies (simulates a leaky API)",
    )
    p.add_argument(
        "--duplicate-numbers",
        choices=("allow", "refuse"),
        default="allow",
        help="creating a number that exists makes a second contact (allow, default) or a per-item 409",
    )
    add_calls_arguments(p)
    p.add_argument("--ready-file", default=None, help="write the base URL to this file once listening")
    add_campaign_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["campaign"]:
        return campaign_cli(argv[1:])
    return _serve(argv)


def _bad_arguments(args: argparse.Namespace) -> str | None:
    """What is wrong with the serving arguments, or ``None``."""
    if args.list_size < 0 or args.contacts < 0 or args.lists < 0:
        return "counts must be non-negative"
    if (args.account_limit is not None and args.account_limit < 1) or args.account_window <= 0:
        return "--account-limit must be >= 1 and --account-window > 0"
    if not 0 <= args.clock_offset < float("inf"):
        return "--clock-offset must be a finite number >= 0"
    return None


def _build(args: argparse.Namespace) -> ExotelSimulator:
    """The simulator the arguments describe, seeded (not started)."""
    sim = ExotelSimulator(
        api_key=args.api_key,
        api_token=args.api_token,
        account_sid=args.account_sid,
        host=args.host,
        port=args.port,
        latency=args.latency_ms / 1000.0,
        rate_limit_per_minute=args.rate_limit,
        echo_headers_in_errors=args.echo_headers,
        seed=args.seed,
        account_limit=args.account_limit,
        account_window=args.account_window,
        rate_limit_headers=not args.hide_rate_limit_headers,
        duplicate_numbers=args.duplicate_numbers,
        rate_limit_reset_format=args.rate_limit_reset_format,
    )
    sim.clock.advance(args.clock_offset)
    configure_campaigns(sim, args)
    if args.contacts:
        sim.seed_contacts(args.contacts)
    if args.lists:
        sim.seed_lists(args.lists, args.list_size)
    apply_calls_arguments(sim, args)
    return sim


def _serve(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    problem = _bad_arguments(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    sim = _build(args)
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sim.start()
    try:
        print(
            f"Exotel simulator listening on {sim.url} (account {sim.account_sid}, "
            f"{len(sim)} contacts, {len(sim.lists)} lists)",
            flush=True,
        )
        # region and timezone spelled out: Airflow 3's Edit form shows only the extras a connection has
        printed = sim.connection_json(region="singapore", timezone=sim.calls_timezone)
        print(f"AIRFLOW_CONN_EXOTEL_DEFAULT='{printed}'", flush=True)
        print(f"Control endpoint (loopback only): {sim.url}/_control", flush=True)
        if args.ready_file:
            tmp = f"{args.ready_file}.tmp{os.getpid()}"
            with open(tmp, "w") as fh:
                fh.write(sim.url + "\n")
            os.replace(tmp, args.ready_file)
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
