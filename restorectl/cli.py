"""restorectl: start and follow the deployed workflows, or rehearse any of them on this machine.

    python -m restorectl rehearse restore --input '{"mode": "point-in-time"}'

Exit codes: 0 the execution succeeded, 1 it failed (or the rehearsal itself could not run), 2 the
command line was wrong. With --json, stdout carries exactly one JSON object, whatever the outcome;
everything else (progress, the handlers' logs) goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any, TextIO

from restorectl.argtypes import json_input, positive_int, positive_number
from restorectl.paths import LAMBDAS, ROOT

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _injection(text: str) -> Any:
    from restorectl.lambda_bridge import Injection

    try:
        return Injection.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _interruption(status: str) -> Any:
    from restorectl.lambda_bridge import Interruption

    def parse(text: str) -> Any:
        try:
            return Interruption.parse(text, status)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="restorectl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rehearse = commands.add_parser(
        "rehearse",
        help="run a workflow's real ASL and handlers on emulated AWS and a local PostgreSQL",
        description="Rehearse WORKFLOW on this machine: no AWS account needed.",
    )
    rehearse.add_argument("workflow", help="a workflow in statemachines/, e.g. restore")
    rehearse.add_argument(
        "--input",
        type=json_input,
        default={},
        help=(
            "the execution input, as JSON; rolling back a copy production was cut over to needs its name typed as confirm: "
            '\'{"restored_instance": "NAME", "confirm": "NAME"}\''
        ),
    )
    rehearse.add_argument("--rows", type=positive_int, default=20000, help="rows in the calls table (others in proportion)")
    rehearse.add_argument("--restore-minutes", type=positive_number("minutes"), default=20.0, help="simulated duration of an RDS restore")
    rehearse.add_argument(
        "--rename-minutes", type=positive_number("minutes"), default=10.0, help="simulated duration of an RDS instance rename"
    )
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
    rehearse.add_argument(
        "--abort-at",
        type=_interruption("ABORTED"),
        action="append",
        default=[],
        dest="interruptions",
        metavar="STATE",
        help="stop the execution (as StopExecution does) while Task STATE runs; the abandoned-execution function then runs",
    )
    rehearse.add_argument(
        "--time-out-at",
        type=_interruption("TIMED_OUT"),
        action="append",
        default=[],
        dest="interruptions",
        metavar="STATE",
        help="end the execution TIMED_OUT (its TimeoutSeconds ran out) while Task STATE runs; the abandoned-execution function then runs",
    )
    rehearse.add_argument(
        "--recordings",
        type=positive_int,
        default=50,
        help="recordings per emulated S3 recording bucket, with 30 days of history (default 50)",
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
        "--past-drills",
        type=positive_int,
        default=None,
        metavar="N",
        help="seed the journal with N past monthly drills (a trend for the drills report)",
    )
    rehearse.add_argument(
        "--app-blocked-from-restored",
        action="store_true",
        help="the app cannot connect to restored instances (health fails after the swap)",
    )
    # Commands against the deployed stack: restorectl/start.py and restorectl/journal_view.py.
    from restorectl import drills, journal_view, start, unlock

    start.add_parser(commands, json_input)
    journal_view.add_parsers(commands, positive_int)
    drills.add_parser(commands, positive_int)
    unlock.add_parser(commands)
    return parser


def rehearse(args: argparse.Namespace) -> int:
    from restorectl import drills
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
        rename_minutes=args.rename_minutes,
        injections=args.inject,
        interruptions=args.interruptions,
        progress=sys.stderr,
        app_hosts=args.app_hosts,
        failing_hosts=tuple(args.failing_host),
        broken_hosts=tuple(args.broken_host),
        app_blocked_from_restored=args.app_blocked_from_restored,
        past_drills=args.past_drills or 0,
        recordings=args.recordings,
    )
    print(
        f"rehearsing {args.workflow} with {args.rows} calls rows; a restore takes {args.restore_minutes:g} simulated minutes",
        file=sys.stderr,
    )
    began = time.monotonic()
    try:
        with stdout_to_stderr(), LocalPostgres() as pg, Rehearsal(pg, options) as rehearsal:
            started = time.monotonic()
            result = rehearsal.run(args.workflow, args.input)
            ran = time.monotonic()
            copies = rehearsal.rds.copies_made
            drill_report = drills.rehearsal_report(rehearsal) if args.workflow == "drill" else None
    except Exception as exc:  # with --json, a rehearsal that broke is still one JSON object on stdout
        if not args.json:
            raise
        traceback.print_exc()
        print(json.dumps(rehearsal_error(args.workflow, exc), indent=2, default=str))
        return EXIT_FAILED
    print(
        f"wall time: start {started - began:.2f} s, execution {ran - started:.2f} s, teardown {time.monotonic() - ran:.2f} s; "
        f"{copies} database copies made",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(result.as_json(), indent=2, default=str))
    else:
        print_summary(result)
        if drill_report:
            print(f"\nrestore drills in this rehearsal's journal (restorectl drills):\n{drill_report}", file=sys.stderr)
    return EXIT_SUCCEEDED if result.status == "SUCCEEDED" else EXIT_FAILED


def rehearsal_error(workflow: str, exc: BaseException) -> dict[str, Any]:
    """The --json object when the rehearsal itself broke (no execution result): status ERROR."""
    return {
        "workflow": workflow,
        "status": "ERROR",
        "output": None,
        "error": type(exc).__name__,
        "cause": str(exc),
        "path": [],
        "world": {},
    }


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[TextIO]:
    """While the rehearsal runs, whatever would reach stdout goes to stderr; yields the real stdout.

    stdout is the result's alone (one JSON object with --json). The handlers' Powertools Logger
    writes to the sys.stdout of the moment it was built, through a logging.StreamHandler holding
    that object, and child processes write to file descriptor 1. So three things are moved for the
    duration and put back after: sys.stdout itself, every logging handler holding the real stdout,
    and descriptor 1 (onto descriptor 2).
    """
    real = sys.stdout
    real.flush()
    handlers = [
        handler
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is real
    ]
    for handler in handlers:
        handler.setStream(sys.stderr)
    saved_fd: int | None = None
    with contextlib.suppress(OSError):  # a closed descriptor 1 or 2: nothing to move
        sys.stderr.flush()
        saved_fd = os.dup(1)
        os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield real
    finally:
        with contextlib.suppress(OSError, ValueError):
            real.flush()  # anything still buffered in the real stdout object goes to stderr, too
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)
        for handler in handlers:
            handler.setStream(real)


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
    from restorectl import drills, journal_view, start, unlock

    handlers = {
        "rehearse": rehearse,
        "start": start.start,
        "history": journal_view.run_history,
        "status": journal_view.run_status,
        "drills": drills.run,
        "unlock": unlock.run_unlock,
    }
    return handlers[args.command](args)
