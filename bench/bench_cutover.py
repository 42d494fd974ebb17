"""How long cutover and automatic rollback take, on two emulated API hosts.

Rehearses the real `restore` workflow with `"cutover": true` and measures, per run, from the end of
validation ("validated") to the last health check that found every host healthy:
- cutover: validated -> healthy on the restored database (set-db-host on both hosts, poll, health);
- rollback after a health failure: the hosts cannot reach the copy, so the bounded health retries run
  out, then revert -> healthy on the original database again;
- rollback after a failed swap: one host's pm2 restart fails, so revert starts right after the swap.

Simulated seconds are what the workflow's own Wait states and poll intervals add up to (the
production timing model: settings' command_poll_seconds, health_check_interval_seconds, and 4 s per
emulated SSM command); real seconds are this machine running the real scripts, shells and servers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from restorectl.harness import Rehearsal, RehearsalOptions  # noqa: E402
from restorectl.localpg import LocalPostgres  # noqa: E402


def run(pg: LocalPostgres, start_state: str, end_state: str, **options: object) -> dict[str, float | str]:
    with Rehearsal(pg, RehearsalOptions(calls_rows=500, restore_minutes=10, app_hosts=2, **options)) as rehearsal:  # type: ignore[arg-type]
        marks: list[tuple[str, float, float]] = []
        original = rehearsal.bridge.answer

        def answer(function_name, body, response_headers):  # type: ignore[no-untyped-def]
            import json

            state = (json.loads(body or "{}").get("context") or {}).get("state")
            result = original(function_name, body, response_headers)
            marks.append((state, rehearsal.clock.waited_seconds, time.monotonic()))
            return result

        rehearsal.bridge.answer = answer  # type: ignore[method-assign]
        result = rehearsal.run("restore", {"mode": "snapshot", "cutover": True})
        first = next(m for m in marks if m[0] == start_state)
        last = [m for m in marks if m[0] == end_state][-1]
        healthy = [h["health"] for h in result.world["app_hosts"]]
        return {
            "status": f"{result.status} {result.error or ''}".strip(),
            "simulated_s": last[1] - first[1],
            "real_s": last[2] - first[2],
            "transitions": len(result.path),
            "ssm_commands": len(rehearsal.app_hosts.commands_run),
            "hosts": ",".join(healthy),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases = [
        ("cutover: validated -> healthy on restored", "ValidateRestore", "CheckHealthOnRestored", {}),
        (
            "rollback after health failure: validated -> healthy on original",
            "ValidateRestore",
            "CheckHealthOnOriginal",
            {"app_blocked_from_restored": True},
        ),
        ("  of which revert -> healthy on original", "RevertCutover", "CheckHealthOnOriginal", {"app_blocked_from_restored": True}),
        (
            "rollback after a failed swap: validated -> healthy on original",
            "ValidateRestore",
            "CheckHealthOnOriginal",
            {"failing_hosts": ("irisx-api-2",)},
        ),
    ]
    with LocalPostgres() as pg:
        run(pg, "ValidateRestore", "CheckHealthOnRestored")  # warm the cluster's template databases
        rows = []
        for label, start, end, options in cases:
            samples = [run(pg, start, end, **options) for _ in range(args.repeat)]
            best = min(samples, key=lambda s: float(s["real_s"]))
            rows.append((label, samples[0], best, sorted(float(s["real_s"]) for s in samples)[len(samples) // 2]))
    print("cutover and automatic rollback on two emulated API hosts (restore workflow, cutover=true)")
    print(f"{'phase':<66} {'simulated':>10} {'real median':>12} {'transitions':>12} {'ssm cmds':>9}  outcome / host health")
    for label, sample, _best, median in rows:
        print(
            f"{label:<66} {sample['simulated_s']:>9.0f}s {median:>11.2f}s {sample['transitions']:>12} {sample['ssm_commands']:>9}"
            f"  {sample['status']} / {sample['hosts']}"
        )


if __name__ == "__main__":
    main()
