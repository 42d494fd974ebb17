"""Restoring a prefix of recordings: the workflow against the runbook's one-object-at-a-time CLI loop.

Seeds both emulated recording buckets (restorectl/emulated_recordings.py: 30 days of overwrites and
deletes) with about --versions object versions and delete markers, then, on the same world:
- workflow: the real `recordings-restore` ASL and handlers, `as_of` just before the bad deploy;
  plan throughput is versions listed and decided per second (PlanRecordingsPage + WriteRecordingsPlan),
  apply throughput is planned entries applied per second (the Distributed Map over batches);
- runbook loop: what "via AWS Console or CLI" means per key, emulated with boto3 in the same world,
  on the other recordings bucket (seeded alike: the same keys, sizes and mix of histories), before
  the workflow runs: list-object-versions --prefix KEY, get-object --version-id V to a local file,
  then put it back (aws s3 cp), or delete-object --version-id for a marker. Each `aws` command also
  pays the CLI's start-up, measured here as a Python process importing boto3 and building a client.
  It runs on --loop-keys keys spread evenly over the bucket (each key costs about two CLI start-ups,
  so 30 k keys would take hours); its rates per key are what the table compares.

    python bench/bench_recordings.py                     # 2,000 versions per bucket, about 20 seconds
    python bench/bench_recordings.py --versions 100000   # the issue's size: about 7 minutes on 2 loaded cores

The rehearsal answers ListObjectVersions through moto's own code, handed only the keys a page can
hold (restorectl/emulated_recordings.py: fast_version_listing); moto alone deep-copies the whole
bucket on every call, which made 100 k versions take hours.

Both run in-process on moto, so the absolute speeds are this machine's; the ratio, the request
counts and the cost are what carry over. State transitions and Lambda invocations are counted
from the execution (the bridge sees every invoke, the Map's children included); the cost uses the
price table in lambdas/restore_runbook/recordings/report.py (PRICES_USD, with source and date).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from restore_runbook.recordings.report import TRANSITIONS_PER_CHILD  # noqa: E402
from restorectl import harness  # noqa: E402
from restorectl.emulated_recordings import BAD_DEPLOY_AGO  # noqa: E402
from restorectl.harness import Rehearsal, RehearsalOptions  # noqa: E402
from restorectl.localpg import LocalPostgres  # noqa: E402

BUCKET = "irisx-recordings"
# The runbook loop's bucket: the other configured one, seeded with the same keys and histories.
LOOP_BUCKET = "irisx-prod-recordings-672e7c49"
# Seeded items (versions + markers) per key, from the six histories (2.17 on average).
ITEMS_PER_KEY = 13 / 6
LOOP_KEYS = 300


def mark_states(rehearsal: Rehearsal, marks: list[tuple[str | None, float, float]]) -> None:
    original = rehearsal.bridge.answer

    def answer(function_name, body, response_headers):  # type: ignore[no-untyped-def]
        state = (json.loads(body or "{}").get("context") or {}).get("state")
        started = time.monotonic()
        result = original(function_name, body, response_headers)
        marks.append((state, started, time.monotonic()))
        return result

    rehearsal.bridge.answer = answer  # type: ignore[method-assign]


def cli_startup_seconds(samples: int = 3) -> float:
    code = "import boto3; boto3.client('s3', region_name='us-east-1')"
    best = float("inf")
    for _ in range(samples):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.monotonic() - started)
    return best


def both(pg: LocalPostgres, keys: int, batch_size: int, loop_keys: int, startup_s: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """One world: the runbook loop on LOOP_BUCKET, then the workflow on BUCKET."""
    overrides = {"RECORDINGS_BATCH_SIZE": str(batch_size)}
    seeding = time.monotonic()
    with Rehearsal(pg, RehearsalOptions(calls_rows=500, recordings=keys, settings_overrides=overrides)) as rehearsal:
        seeded_s = time.monotonic() - seeding
        loop = runbook_loop(rehearsal, loop_keys, startup_s)
        return workflow(rehearsal, seeded_s), loop


def workflow(rehearsal: Rehearsal, seeded_s: float) -> dict[str, Any]:
    seeded = rehearsal.recordings.seeded[BUCKET]
    marks: list[tuple[str | None, float, float]] = []
    mark_states(rehearsal, marks)
    as_of = (rehearsal.clock.now() - BAD_DEPLOY_AGO).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = time.monotonic()
    result = rehearsal.run("recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "as_of": as_of})
    total_s = time.monotonic() - started
    if result.status != "SUCCEEDED":
        raise SystemExit(f"workflow {result.status}: {result.error}: {result.cause}")
    plan_marks = [m for m in marks if m[0] in ("PlanRecordingsPage", "WriteRecordingsPlan")]
    apply_marks = [m for m in marks if m[0] in ("ApplyRecordingsBatch", "UndeleteRecordingsBatch")]
    totals, report = result.output["totals_planned"], result.output["report"]
    items = totals["versions"] + totals["delete_markers"]
    plan_s = plan_marks[-1][2] - plan_marks[0][1]
    apply_s = apply_marks[-1][2] - apply_marks[0][1] if apply_marks else 0.0
    # Transitions: the parent's states from its history (moto keeps the children's apart), and each
    # child's by the model: its Choice and its Task.
    children = len(apply_marks)
    transitions = len(result.path) + TRANSITIONS_PER_CHILD * children
    return {
        "keys": len(seeded.keys),
        "items": items,
        "entries": totals["entries"],
        "applied": report["applied"],
        "seed_s": seeded_s,
        "plan_s": plan_s,
        "apply_s": apply_s,
        "total_s": total_s,
        "transitions": transitions,
        "invocations": len(result.invocations),
        "batches": report["batches"],
        "report": report,
    }


def runbook_loop(rehearsal: Rehearsal, sample: int, startup_s: float) -> dict[str, Any]:
    """The runbook's manual recovery, per key that needs it, with the same decisions the plan makes,
    on `sample` keys spread evenly over LOOP_BUCKET."""
    import boto3

    from restore_runbook.recordings import plan as planner
    from restore_runbook.recordings.request import check_shape
    from restore_runbook.settings import RunbookSettings

    all_keys = rehearsal.recordings.seeded[LOOP_BUCKET].keys
    step = max(1, len(all_keys) // max(sample, 1))
    keys = all_keys[::step][:sample]
    s3 = boto3.client("s3")
    as_of = rehearsal.clock.now() - BAD_DEPLOY_AGO
    request = check_shape(
        {"bucket": LOOP_BUCKET, "prefix": "recordings/", "as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ")},
        RunbookSettings.from_env(),
        rehearsal.clock.now(),
    )
    requests = {"list": 0, "get": 0, "put": 0, "delete": 0}
    commands = 0
    restored = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / "recording.wav"
        for key in keys:
            # aws s3api list-object-versions --bucket B --prefix KEY
            page = s3.list_object_versions(Bucket=LOOP_BUCKET, Prefix=key)
            requests["list"] += 1
            commands += 1
            history = planner._items(page).get(key, [])
            action, entry = planner.decide(key, history, request)
            if action == planner.COPY:
                # aws s3api get-object --version-id V local ; aws s3 cp local s3://B/KEY
                local.write_bytes(s3.get_object(Bucket=LOOP_BUCKET, Key=key, VersionId=entry["version_id"])["Body"].read())
                s3.put_object(Bucket=LOOP_BUCKET, Key=key, Body=local.read_bytes(), ContentType="audio/wav")
                requests["get"] += 1
                requests["put"] += 1
                commands += 2
                restored += 1
            elif action == planner.UNDELETE_ACTION:
                for marker in entry["markers"]:  # aws s3api delete-object --version-id MARKER
                    s3.delete_object(Bucket=LOOP_BUCKET, Key=key, VersionId=marker)
                    requests["delete"] += 1
                    commands += 1
                restored += 1
    api_s = time.monotonic() - started
    total_s = api_s + commands * startup_s
    return {"keys": len(keys), "restored": restored, "requests": requests, "commands": commands, "api_s": api_s, "total_s": total_s}


def print_workflow(wf: dict[str, Any]) -> None:
    scale = 10_000 / wf["keys"]
    print(
        f"recordings-restore as_of, {wf['keys']} keys, {wf['items']} versions+markers seeded per bucket (seeding took {wf['seed_s']:.0f} s)"
    )
    print(f"  plan:  {wf['items']} listed and decided in {wf['plan_s']:.1f} s = {wf['items'] / wf['plan_s']:.0f} versions/s")
    apply_rate = wf["applied"] / max(wf["apply_s"], 1e-9)
    print(f"  apply: {wf['applied']} changes in {wf['batches']} batches in {wf['apply_s']:.1f} s = {apply_rate:.0f} entries/s")
    print(f"  per 10 k keys: {wf['transitions'] * scale:.0f} state transitions, {wf['invocations'] * scale:.0f} Lambda invocations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=2_000, help="object versions and markers to seed per bucket (default 2000)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--loop-keys", type=int, default=LOOP_KEYS, help=f"keys the runbook loop restores (default {LOOP_KEYS})")
    args = parser.parse_args()
    load_before = os.getloadavg()
    began = time.monotonic()
    from restore_runbook.recordings.report import PRICES_USD, estimate_cost

    keys = max(12, round(args.versions / ITEMS_PER_KEY))
    # The harness stops an execution after 300 real seconds so a test cannot hang; 100 k versions
    # take longer than that on a small shared machine.
    harness.EXECUTION_REAL_TIMEOUT_SECONDS = 3600
    startup_s = cli_startup_seconds()
    with LocalPostgres() as pg:
        wf, loop = both(pg, keys, args.batch_size, min(keys, args.loop_keys), startup_s)
        print_workflow(wf)

    cost = wf["report"]["cost_estimate"]
    # Scale what this run planned to one million restored keys, at the same mix of actions.
    m = 1_000_000 / max(wf["applied"], 1)
    wf_cost = estimate_cost(
        pages=math.ceil(wf["items"] * m / 1000),
        copies=round(wf["report"]["per_action"].get("copy", {}).get("applied", 0) * m),
        multipart_parts=0,
        undelete_markers=round(cost["requests"]["delete"] * m),
        hides=0,
        entries=1_000_000,
        batches=math.ceil(1_000_000 / args.batch_size),
        plan_invocations=max(1, math.ceil(wf["items"] * m / 200_000)),
    )
    lr = loop["requests"]
    lm = 1_000_000 / max(loop["restored"], 1)
    loop_usd = (lr["list"] + lr["put"]) * lm / 1000 * PRICES_USD["s3_put_copy_post_list_per_1000"] + lr["get"] * lm / 1000 * PRICES_USD[
        "s3_get_head_per_1000"
    ]
    rows = [
        ("keys restored (world size)", f"{wf['applied']} ({wf['keys']} keys)", f"{loop['restored']} ({loop['keys']} keys)"),
        (
            "wall time, this machine (s)",
            f"{wf['total_s']:.1f}",
            f"{loop['total_s']:.1f} ({loop['api_s']:.1f} API + {loop['commands']} x {startup_s:.2f} CLI start)",
        ),
        ("keys per second", f"{wf['applied'] / wf['total_s']:.0f}", f"{loop['restored'] / loop['total_s']:.1f}"),
        (
            "S3 requests per restored key",
            f"{sum(cost['requests'].values()) / max(wf['applied'], 1):.2f}",
            f"{sum(lr.values()) / max(loop['restored'], 1):.2f}",
        ),
        ("USD per million keys restored", f"{wf_cost['usd_total']:.2f}", f"{loop_usd:.2f} + data out if run off AWS"),
        (
            "  of which S3 / Step Functions / Lambda",
            f"{wf_cost['usd']['s3_requests']:.2f} / {wf_cost['usd']['step_functions']:.2f} / {wf_cost['usd']['lambda']:.2f}",
            "all S3",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n  {'':<{width}}  {'workflow':>22}  runbook CLI loop")
    for name, a, b in rows:
        print(f"  {name:<{width}}  {a:>22}  {b}")
    ratio = (wf["applied"] / wf["total_s"]) / max(loop["restored"] / loop["total_s"], 1e-9)
    print(f"\n  workflow / CLI loop throughput: {ratio:.1f}x here (both in-process on moto; on AWS the Map runs 40 batches at a time)")
    print(f"  note: the CLI loop restored {loop['keys']} keys spread over the other bucket of the same world (same keys and histories);")
    print("  the loop's time is its API calls on moto plus each `aws` command's start-up, measured above.")
    load_after = os.getloadavg()
    print(
        f"  ran {time.monotonic() - began:.0f} s; load average (1/5/15 min) {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}"
        f" before, {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} after, on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
