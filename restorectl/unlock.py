"""`restorectl unlock RESOURCE`: release a lock by hand, after putting right what its holder left.

A workflow stopped half-way through changing production (aborted, timed out: see
lambdas/restore_runbook/journal/abandoned.py) keeps its lock, marked as needing recovery, and every
later workflow on that resource is refused until a person runs this. It refuses while the holder
still runs; it prints what the holder said needed recovery.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from restorectl.journal_view import find_table
from restorectl.start import EXIT_FAILED, EXIT_SUCCEEDED, Deployment, aws_errors_as_exit_codes


@aws_errors_as_exit_codes
def run_unlock(args: argparse.Namespace) -> int:
    from restore_runbook.common.errors import OperationInProgress
    from restore_runbook.journal.lock import unlock
    from restore_runbook.journal.table import JournalSettings

    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    table = find_table(Deployment.from_cdk_json(args.stack), args.region)
    try:
        result = unlock(resource=args.resource, settings=JournalSettings(table_name=table.name, topic_arn=""))
    except OperationInProgress as exc:
        print(f"restorectl: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(result["detail"])
        if result.get("needed_recovery"):
            print(f"it had been kept because: {result['needed_recovery']}")
    return EXIT_SUCCEEDED


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "unlock",
        help="release a lock by hand (after putting right what a stopped workflow left); refused while its holder runs",
    )
    parser.add_argument("resource", help="the lock's resource as `restorectl status` shows it, e.g. rds:irisx-prod-rds-postgres")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--stack", help="the stack's name (default: <name_prefix>-runbook from cdk.json)")
    parser.add_argument("--region", help="AWS region (default: the environment's)")
