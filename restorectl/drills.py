"""`restorectl drills`: the restore drills as the journal recorded them, for people, scripts and managers.

    python -m restorectl drills                   # table, trend, days since the last success, next due
    python -m restorectl drills --json            # the same, one JSON object
    python -m restorectl drills --html drills.html  # one page with a chart of RTO and RPO against the objectives
    python -m restorectl drills --runbook         # the runbook's "Tested Restore" block, ready to paste

The journal is the deployed stack's (read as `history` reads it, restorectl/journal_view.py), or a
rehearsal's: `--from-rehearsal FILE` reads the output of `rehearse drill --json`, so the report
works offline; `rehearse drill` also ends by printing it.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from restorectl.paths import CDK_JSON

TREND_DRILLS = 12
DRILL_PK = "WORKFLOW#drill"


# ---------------------------------------------------------------------------------------- reading


def drill_runs(records: list[dict[str, Any]], source: str | None = None) -> list[dict[str, Any]]:
    """The journal's drill records, newest first: duplicates (a schedule retry that did nothing) left out."""
    runs = []
    for record in records:
        if record.get("pk", DRILL_PK) != DRILL_PK or record.get("workflow", "drill") != "drill":
            continue
        result: dict[str, Any] = record["result"] if isinstance(record.get("result"), dict) else {}
        if result.get("duplicate_of"):
            continue
        drilled = result.get("source_instance") or (record.get("input") or {}).get("source_instance")
        if source and drilled and drilled != source:
            continue
        runs.append(record)
    return sorted(runs, key=lambda r: str(r.get("started_at") or ""), reverse=True)


def records_from_rehearsal(path: Path) -> list[dict[str, Any]]:
    """The journal a `rehearse drill --json` run left in its world."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not readable as the JSON that `rehearse drill --json` prints: {exc}") from exc
    journal = ((document or {}).get("world") or {}).get("journal")
    if not isinstance(journal, list):
        raise ValueError(f"{path} holds no world.journal; write it with `restorectl rehearse drill --json > {path}`")
    return journal


def records_from_table(table: Any, limit: int) -> list[dict[str, Any]]:
    """The newest drill records of a journal table (one Query on the workflow's key, as `history` does)."""
    from restorectl.journal_view import history

    # Duplicates are skipped after reading, so read a few more than asked for.
    return history(table, "drill", limit * 2 + 10)


def overdue_days() -> int:
    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]["runbook"]
    return int(context.get("drill_overdue_days", 35))


# ---------------------------------------------------------------------------------------- the report


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _measure(run: dict[str, Any], name: str) -> dict[str, Any]:
    return ((run.get("result") or {}).get("measures") or {}).get(name) or {}


def _one_month_later(moment: datetime) -> datetime:
    """The runbook's cadence: 2025-11-02 -> 2025-12-02 (the last day of a shorter month when needed)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=moment.day)


def recordings_cell(recordings: dict[str, Any] | None) -> str:
    """`6/6 matched (12 KB)`, `nothing to check in irisx-recordings`, `FAILED 2/3 matched`, or `-` (a drill before the check)."""
    if not recordings:
        return "-"
    verdict = recordings.get("verdict")
    checked, matched = recordings.get("keys_checked") or 0, recordings.get("matched") or 0
    if verdict == "met":
        return f"{matched}/{checked} matched ({_bytes(recordings.get('bytes'))})"
    if verdict == "nothing to check":
        quiet = [str(b.get("bucket")) for b in recordings.get("buckets") or [] if b.get("status") == "nothing to check"]
        done = f"{matched}/{checked} matched; " if checked else ""
        return f"{done}nothing to check in {', '.join(quiet) or 'any bucket'}"
    if verdict == "failed":
        return f"FAILED {matched}/{checked} matched" if checked else "FAILED"
    return str(verdict or "-")


def _bytes(value: Any) -> str:
    size = float(value or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def row(run: dict[str, Any]) -> dict[str, Any]:
    result = run.get("result") or {}
    recordings = result.get("recordings") if isinstance(result.get("recordings"), dict) else None
    rto, rpo = _measure(run, "rto"), _measure(run, "rpo")
    failed = run.get("outcome") != "SUCCEEDED"
    if failed:
        what_failed = f"{run.get('error') or run.get('outcome')}: {result.get('cause') or run.get('cause') or ''}".strip()
    else:
        what_failed = ", ".join(result.get("missed") or [])
    return {
        "date": run.get("started_at"),
        "execution": run.get("execution_name"),
        "outcome": run.get("outcome"),
        "source_instance": result.get("source_instance"),
        "mode": result.get("mode"),
        "restore_point_requested": result.get("restore_point_requested"),
        "restore_point": result.get("restore_point"),
        "snapshot_id": result.get("snapshot_id"),
        "target_instance": result.get("target_instance"),
        "rto_seconds": rto.get("seconds"),
        "rto_objective_seconds": rto.get("objective_seconds"),
        "rto_verdict": rto.get("verdict"),
        "rpo_seconds": rpo.get("seconds"),
        "rpo_objective_seconds": rpo.get("objective_seconds"),
        "rpo_verdict": rpo.get("verdict"),
        "data_gap_seconds": rpo.get("data_gap_seconds"),
        "verdict": result.get("verdict") or ("failed" if failed else "unknown"),
        "torn_down": result.get("torn_down"),
        "recordings": recordings_cell(recordings),
        "recordings_verdict": (recordings or {}).get("verdict"),
        "recordings_summary": (recordings or {}).get("summary"),
        "recordings_checked": (recordings or {}).get("buckets"),
        "what_failed": what_failed,
        "validation_summary": result.get("validation_summary") or (run.get("validation") or {}).get("summary"),
    }


def report(records: list[dict[str, Any]], *, now: datetime, source: str | None = None, limit: int = 20) -> dict[str, Any]:
    runs = drill_runs(records, source)
    rows = [row(r) for r in runs[:limit]]
    recent_rto = [r["rto_seconds"] for r in (row(x) for x in runs[:TREND_DRILLS]) if isinstance(r["rto_seconds"], int | float)]
    successes = [r for r in runs if r.get("outcome") == "SUCCEEDED"]
    last_success = successes[0] if successes else None
    last_success_at = _time((last_success or {}).get("finished_at") or (last_success or {}).get("started_at"))
    threshold = overdue_days()
    days_since = round((now - last_success_at).total_seconds() / 86400, 1) if last_success_at else None
    last = runs[0] if runs else None
    if last_success_at is None:
        next_due, due_reason = now, "now: no drill has succeeded yet"
    elif last is not None and last.get("outcome") != "SUCCEEDED":
        next_due, due_reason = now, "now: the last drill failed, and a failed drill needs a re-test"
    else:
        next_due, due_reason = _one_month_later(last_success_at), "monthly: a month after the last success"
    trend_runs = len(runs[:TREND_DRILLS])
    return {
        "as_of": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source_instance": source,
        "drills": rows,
        "trend": {
            "drills": trend_runs,
            "succeeded": sum(1 for r in runs[:TREND_DRILLS] if r.get("outcome") == "SUCCEEDED"),
            "objectives_met": sum(1 for r in rows[:TREND_DRILLS] if r["verdict"] == "met"),
            "median_rto_seconds": round(statistics.median(recent_rto), 1) if recent_rto else None,
            "worst_rto_seconds": max(recent_rto) if recent_rto else None,
        },
        "last_success_at": last_success_at.strftime("%Y-%m-%dT%H:%M:%SZ") if last_success_at else None,
        "days_since_last_success": days_since,
        "overdue_after_days": threshold,
        "overdue": days_since is None or days_since > threshold,
        "next_due": next_due.strftime("%Y-%m-%d"),
        "next_due_reason": due_reason,
    }


# ---------------------------------------------------------------------------------------- text


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    if minutes >= 120:
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def _against(seconds: Any, objective: Any, verdict: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    if not isinstance(objective, int | float):
        return f"{_duration(seconds)} (no objective)"
    return f"{_duration(seconds)} / {_duration(objective)} {verdict}"


def _restore_point(r: dict[str, Any]) -> str:
    asked = r.get("restore_point_requested") or "-"
    point = r.get("restore_point") or "-"
    return point if asked in ("latest", point) else f"{point} ({asked})"


def text(rep: dict[str, Any]) -> str:
    from restorectl.journal_view import _table

    lines = []
    if rep["drills"]:
        headers = ["DATE", "RESTORE POINT", "MODE", "RTO / OBJECTIVE", "RPO / OBJECTIVE", "RECORDINGS", "VERDICT", "WHAT FAILED"]
        rows = [
            [
                str(r["date"] or "-"),
                _restore_point(r),
                str(r["mode"] or "-"),
                _against(r["rto_seconds"], r["rto_objective_seconds"], r["rto_verdict"]),
                _against(r["rpo_seconds"], r["rpo_objective_seconds"], r["rpo_verdict"]),
                r["recordings"],
                str(r["verdict"]),
                (r["what_failed"] or "")[:70],
            ]
            for r in rep["drills"]
        ]
        lines.append(_table(headers, rows))
    else:
        lines.append("the journal holds no drills yet")
    trend = rep["trend"]
    lines += [
        "",
        f"Last {trend['drills']} drills: {trend['succeeded']} succeeded, {trend['objectives_met']} met every objective; "
        f"RTO median {_duration(trend['median_rto_seconds'])}, worst {_duration(trend['worst_rto_seconds'])}",
        f"Last success: {rep['last_success_at'] or 'never'}"
        + (f" ({rep['days_since_last_success']:g} days ago)" if rep["days_since_last_success"] is not None else "")
        + (f"; OVERDUE (more than {rep['overdue_after_days']} days)" if rep["overdue"] else ""),
        f"Next drill due: {rep['next_due']} ({rep['next_due_reason']})",
    ]
    return "\n".join(lines)


def runbook_block(rep: dict[str, Any]) -> str:
    """The runbook's "Tested Restore" section, from the newest drill."""
    if not rep["drills"]:
        return "## Tested Restore\n\n**Last Test Date**: never (no drill in the journal)\n" + f"**Next Test Due**: {rep['next_due']}\n"
    last = rep["drills"][0]
    date = str(last["date"] or "")[:10]
    source = last["source_instance"] or "the source"
    if last["mode"] == "snapshot":
        restored = f"**Test Snapshot**: `{last['snapshot_id']}` of `{source}`, restored to `{last['target_instance']}`"
    else:
        restored = (
            f"**Test Restore**: point-in-time restore of `{source}` to {last['restore_point']} "
            f"(restore point: {last['restore_point_requested']}) as `{last['target_instance']}`"
        )
    if last["outcome"] == "SUCCEEDED":
        objectives = "all objectives met" if last["verdict"] == "met" else f"objectives MISSED: {last['what_failed']}"
        result = (
            f"**Result**: Restore validated against production ({last['validation_summary']}); "
            f"RTO {_against(last['rto_seconds'], last['rto_objective_seconds'], last['rto_verdict'])}, "
            f"RPO {_against(last['rpo_seconds'], last['rpo_objective_seconds'], last['rpo_verdict'])}; {objectives}; "
            + (f"{last['recordings_summary']}; " if last["recordings_summary"] else "")
            + f"temporary instance {'deleted' if last['torn_down'] else 'NOT confirmed deleted'}"
        )
    else:
        result = f"**Result**: Drill FAILED: {last['what_failed']}"
    return "\n".join(
        [
            "## Tested Restore",
            "",
            f"**Last Test Date**: {date}",
            restored,
            result,
            f"**Next Test Due**: {rep['next_due']} ({rep['next_due_reason']})",
            "",
        ]
    )


# ---------------------------------------------------------------------------------------- html


def chart_png(rep: dict[str, Any]) -> bytes:
    """RTO and RPO per drill, oldest first, each against its objective (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(reversed(rep["drills"]))
    labels = [str(r["date"] or "")[:10] for r in rows]
    positions = list(range(len(rows)))
    figure, (rto_axis, rpo_axis) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for axis, key, title in ((rto_axis, "rto", "RTO (minutes)"), (rpo_axis, "rpo", "RPO (minutes)")):
        values = [(r[f"{key}_seconds"] or 0) / 60 for r in rows]
        colours = [
            "#c0392b" if r["outcome"] != "SUCCEEDED" or r[f"{key}_verdict"] == "missed" else "#2e86c1" if r[f"{key}_seconds"] else "#bbbbbb"
            for r in rows
        ]
        axis.bar(positions, values, color=colours)
        objectives = [r[f"{key}_objective_seconds"] / 60 if isinstance(r[f"{key}_objective_seconds"], int | float) else None for r in rows]
        if any(o is not None for o in objectives):
            axis.step(
                positions,
                [o if o is not None else float("nan") for o in objectives],
                where="mid",
                color="#333333",
                linestyle="--",
                label="objective",
            )
            axis.legend(loc="lower left", framealpha=0.9)
        for position, r in zip(positions, rows, strict=True):
            if r["outcome"] != "SUCCEEDED":
                axis.annotate("failed", (position, 0), ha="center", va="bottom", color="#c0392b", fontsize=8)
        axis.set_ylabel(title)
        axis.grid(axis="y", alpha=0.3)
    rpo_axis.set_xticks(positions, labels, rotation=45, ha="right")
    figure.suptitle("Restore drills: measured against the runbook's objectives")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def html_page(rep: dict[str, Any]) -> str:
    image = base64.b64encode(chart_png(rep)).decode("ascii")
    escape = html.escape
    trend = rep["trend"]
    header_cells = "".join(
        f"<th>{h}</th>"
        for h in ("Date", "Restore point", "Mode", "RTO / objective", "RPO / objective", "Recordings", "Verdict", "What failed")
    )
    body_rows = "".join(
        "<tr class='{cls}'>{cells}</tr>".format(
            cls="bad" if r["verdict"] != "met" else "good",
            cells="".join(
                f"<td>{escape(str(value))}</td>"
                for value in (
                    r["date"] or "-",
                    _restore_point(r),
                    r["mode"] or "-",
                    _against(r["rto_seconds"], r["rto_objective_seconds"], r["rto_verdict"]),
                    _against(r["rpo_seconds"], r["rpo_objective_seconds"], r["rpo_verdict"]),
                    r["recordings"],
                    r["verdict"],
                    r["what_failed"] or "",
                )
            ),
        )
        for r in rep["drills"]
    )
    status = (
        f"OVERDUE: the last successful drill was {rep['days_since_last_success']} days ago"
        if rep["overdue"] and rep["days_since_last_success"] is not None
        else "OVERDUE: no drill has succeeded"
        if rep["overdue"]
        else f"Up to date: the last successful drill was {rep['days_since_last_success']} days ago"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>IRISX restore drills</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }}
tr.bad td {{ background: #fdecea; }}
.status {{ font-size: 1.2rem; font-weight: bold; }}
</style></head><body>
<h1>IRISX database restore drills</h1>
<p class="status">{escape(status)}</p>
<p>Next drill due: <b>{escape(rep["next_due"])}</b> ({escape(rep["next_due_reason"])}).
Over the last {trend["drills"]} drills: {trend["succeeded"]} succeeded and {trend["objectives_met"]} met every objective;
RTO median {_duration(trend["median_rto_seconds"])}, worst {_duration(trend["worst_rto_seconds"])}.</p>
<p>Each drill restores production to a temporary copy, validates it against production, measures how long that took (RTO)
and how much data a real restore would have lost (RPO), and deletes the copy. It also copies an older version of a few
call recordings per bucket to a scratch place, checks that each reads back byte for byte, and removes the copies.</p>
<img alt="RTO and RPO per drill against the objectives" src="data:image/png;base64,{image}" style="max-width:100%">
<table><thead><tr>{header_cells}</tr></thead><tbody>{body_rows}</tbody></table>
<p><small>As of {escape(rep["as_of"])}, from the restore runbook's journal.</small></p>
</body></html>
"""


# ---------------------------------------------------------------------------------------- command


def emit(rep: dict[str, Any], args: argparse.Namespace, out: Any = None) -> None:
    out = out or sys.stdout
    if args.html:
        Path(args.html).write_text(html_page(rep), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        print(json.dumps(rep, indent=2, default=str), file=out)
    elif args.runbook:
        print(runbook_block(rep), file=out)
    elif not args.html:
        print(text(rep), file=out)


def _as_of(text_value: str | None, records: list[dict[str, Any]], offline: bool) -> datetime:
    if text_value:
        moment = _time(text_value)
        if moment is None:
            raise ValueError(f"--as-of {text_value!r} is not an ISO-8601 UTC time")
        return moment
    if offline:
        # A rehearsal runs on a simulated clock: "now" is the moment its journal last changed.
        stamps = [t for r in records for t in (_time(r.get("finished_at")), _time(r.get("started_at"))) if t]
        if stamps:
            return max(stamps)
    return datetime.now(timezone.utc)


def run(args: argparse.Namespace) -> int:
    from restorectl.start import EXIT_SUCCEEDED, EXIT_USAGE, Deployment, aws_errors_as_exit_codes

    if args.from_rehearsal:
        try:
            records = records_from_rehearsal(Path(args.from_rehearsal))
            now = _as_of(args.as_of, records, offline=True)
        except ValueError as exc:
            print(f"restorectl: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        emit(report(records, now=now, source=args.source, limit=args.limit), args)
        return EXIT_SUCCEEDED

    @aws_errors_as_exit_codes
    def deployed(args: argparse.Namespace) -> int:
        from restorectl.journal_view import find_table

        table = find_table(Deployment.from_cdk_json(args.stack), args.region)
        records = records_from_table(table, args.limit)
        emit(report(records, now=_as_of(args.as_of, records, offline=False), source=args.source, limit=args.limit), args)
        return EXIT_SUCCEEDED

    return deployed(args)


def rehearsal_report(rehearsal: Any) -> str:
    """What `rehearse drill` prints at its end: the report of the rehearsal's own journal, as of its clock."""
    records = [r for r in rehearsal.journal.executions() if r.get("pk") == DRILL_PK]
    return text(report(records, now=rehearsal.clock.now()))


def add_parser(commands: Any, positive_int: Any) -> None:
    parser = commands.add_parser(
        "drills",
        help="the restore drills from the journal: RTO and RPO against objectives, trend, days since the last success",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", help="only drills of this source instance")
    parser.add_argument("--limit", type=positive_int, default=20, help="how many drills to list (default 20)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    output.add_argument("--runbook", action="store_true", help="print the runbook's Tested Restore block, ready to paste")
    parser.add_argument("--html", metavar="FILE", help="write a one-page report with a chart of RTO and RPO per drill")
    parser.add_argument("--from-rehearsal", metavar="FILE", help="read the journal of a `rehearse drill --json` output instead of AWS")
    parser.add_argument("--as-of", metavar="TIME", help="the moment days-since and next-due are counted from (default: now)")
    parser.add_argument("--stack", help="the stack's name (default: <name_prefix>-runbook from cdk.json)")
    parser.add_argument("--region", help="AWS region (default: the environment's)")
