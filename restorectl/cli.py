"""restorectl: start and follow the deployed workflows, or rehearse any of them on this machine.

    python -m restorectl rehearse restore --input '{"mode": "point-in-time"}'

Exit codes: 0 the execution succeeded, 1 it failed, 2 the command line was wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from restorectl.argtypes import json_input, positive_int, positive_number
from restorectl.paths import LAMBDAS, ROOT

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _injection(text: str) -> Any:
    from restorectl.lambda_bridge import Injection

    try:
        return Injection.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="restorectl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rehearse = commands.add_parser(
        "rehearse",
        help="run a workflow's real ASL and handlers on emulated AWS and a local PostgreSQL",
        description="Rehearse WORKFLOW on this machine: no AWS account needed.",
    )
    rehearse.add_argument("workflow", help="a workflow in statemachines/, e.g. restore")
    rehearse.add_argument("--input", type=json_input, default={}, help="the execution input, as JSON")
    rehearse.add_argument("--rows", type=positive_int, default=20000, help="rows in the calls table (others in proportion)")
    rehearse.add_argument("--restore-minutes", type=positive_number("minutes"), default=20.0, help="simulated duration of an RDS restore")
    rehearse.add_argument(
        "--restore-outcome",
        default="available",
        help="status an emulated restore ends in, e.g. incompatible-parameters (default: available)",
    )
    rehearse.add_argument(
        "--snapshot-minutes", type=positive_number("minutes"), default=8.0, help="simulated duration of a manual snapshot"
    )
    rehearse.add_argument(
        "--snapshot-outcome", default="available", help="status an emulated manual snapshot ends in, e.g. failed (default: available)"
    )
    rehearse.add_argument(
        "--inject",
        type=_injection,
        action="append",
        default=[],
        metavar="STATE=ERROR[:N][@after]",
        help=(
            "make Task STATE fail with ERROR on its first N invocations (all if N is omitted); with @after the handler "
            "runs first and the error is reported after it (a lost answer, a timeout after acting); repeatable"
        ),
    )
    rehearse.add_argument("--json", action="store_true", help="print one JSON object with the result and the emulated world")
    rehearse.add_argument("--app-hosts", type=positive_int, default=2, help="emulated API hosts carrying the app-host tag (default 2)")
    rehearse.add_argument(
        "--failing-host", action="append", default=[], metavar="NAME", help="this host's first pm2 restart fails (irisx-api-N); repeatable"
    )
    rehearse.add_argument(
        "--broken-host", action="append", default=[], metavar="NAME", help="every pm2 restart on this host fails (irisx-api-N); repeatable"
    )
    rehearse.add_argument(
        "--app-blocked-from-restored",
        action="store_true",
        help="the app cannot connect to restored instances (health fails after the swap)",
    )
    # Commands against the deployed stack: restorectl/start.py and restorectl/journal_view.py.
    from restorectl import journal_view, start

    start.add_parser(commands, json_input)
    journal_view.add_parsers(commands, positive_int)
    return parser


def rehearse(args: argparse.Namespace) -> int:
    from restorectl.harness import Rehearsal, RehearsalOptions, UnknownWorkflow, asl_path
    from restorectl.localpg import LocalPostgres

    try:
        asl_path(args.workflow)
    except UnknownWorkflow as exc:
        print(f"restorectl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    options = RehearsalOptions(
        calls_rows=args.rows,
        restore_minutes=args.restore_minutes,
        restore_outcome=args.restore_outcome,
        snapshot_minutes=args.snapshot_minutes,
        snapshot_outcome=args.snapshot_outcome,
        injections=args.inject,
        progress=sys.stderr,
        app_hosts=args.app_hosts,
        failing_hosts=tuple(args.failing_host),
        broken_hosts=tuple(args.broken_host),
        app_blocked_from_restored=args.app_blocked_from_restored,
    )
    print(
        f"rehearsing {args.workflow} with {args.rows} calls rows; a restore takes {args.restore_minutes:g} simulated minutes",
        file=sys.stderr,
    )
    began = time.monotonic()
    with LocalPostgres() as pg, Rehearsal(pg, options) as rehearsal:
        started = time.monotonic()
        result = rehearsal.run(args.workflow, args.input)
        ran = time.monotonic()
        copies = rehearsal.rds.copies_made
    print(
        f"wall time: start {started - began:.2f} s, execution {ran - started:.2f} s, teardown {time.monotonic() - ran:.2f} s; "
        f"{copies} database copies made",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(result.as_json(), indent=2, default=str))
    else:
        print_summary(result)
    return EXIT_SUCCEEDED if result.status == "SUCCEEDED" else EXIT_FAILED


def print_summary(result: Any) -> None:
    print(f"\n{result.workflow}: {result.status} after {result.simulated_seconds / 60:.1f} simulated minutes", file=sys.stderr)
    if result.status != "SUCCEEDED":
        print(f"error: {result.error}\ncause: {result.cause}", file=sys.stderr)
        return
    output = result.output or {}
    validation = output.get("validation") or {}
    for check in validation.get("checks", []):
        # a reported check (a count not measured in its box, amcheck absent) informs; it did not fail
        mark = "ok  " if check.get("passed") else "note" if check.get("status") == "reported" else "FAIL"
        print(f"  {mark} {check.get('name'):<20} {check.get('detail', '')}", file=sys.stderr)
    print(json.dumps(output, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    for path in (str(ROOT), str(LAMBDAS)):
        if path not in sys.path:
            sys.path.insert(0, path)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return int(exc.code or 0) and EXIT_USAGE
    from restorectl import journal_view, start

    handlers = {"rehearse": rehearse, "start": start.start, "history": journal_view.run_history, "status": journal_view.run_status}
    return handlers[args.command](args)
