"""`restorectl drills`: the table, the JSON, the HTML page with its chart, and the runbook's Tested Restore block."""

from __future__ import annotations

import base64
import json
import random
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from restorectl import cli, drills, emulated_drills

pytestmark = pytest.mark.unit

SOURCE = "irisx-prod-rds-postgres"
NOW = datetime(2025, 12, 10, 9, 0, tzinfo=timezone.utc)


def journal(count: int = 13) -> list[dict]:
    """A year of monthly drills as the journal holds them (one failed, some slow), plus a duplicate start."""
    rng = random.Random(3)  # noqa: S311 - a reproducible invented history
    times = emulated_drills.scheduled_times_before(NOW, count)
    records = [emulated_drills.past_drill(started, SOURCE, index, rng) for index, started in enumerate(times)]
    duplicate = {**records[-1], "execution_name": "retry", "sk": records[-1]["sk"] + "-retry"}
    duplicate["result"] = {"duplicate_of": records[-1]["execution_arn"], "source_instance": SOURCE, "message": "did nothing"}
    return [*records, duplicate]


def test_the_table_lists_drills_newest_first_with_rto_and_rpo_against_objectives_and_what_failed():
    rep = drills.report(journal(), now=NOW)

    output = drills.text(rep)

    lines = output.splitlines()
    assert lines[0].split() == [
        "DATE",
        "RESTORE",
        "POINT",
        "MODE",
        "RTO",
        "/",
        "OBJECTIVE",
        "RPO",
        "/",
        "OBJECTIVE",
        "RECORDINGS",
        "VERDICT",
        "WHAT",
        "FAILED",
    ]
    assert lines[1].startswith("2025-12-02T10:00:00Z")  # newest first; the duplicate start is not a drill
    assert len([line for line in lines if re.match(r"^\d{4}-\d\d-\d\dT", line)]) == 13
    assert " / 30m00s met" in output and " / 30m00s missed" in output and " / 5m00s met" in output
    # each drill also copied and compared three recordings per bucket (the failed one's database failed, not those)
    assert len([line for line in lines if " 6/6 matched (" in line]) == 13
    failed = next(line for line in lines if " failed " in line)
    assert "ValidationFailed: 1 of 6 checks failed" in failed
    assert "RTO median" in output and "worst" in output
    assert "Last success: 2025-12-02T10:" in output and "(7.9 days ago)" in output
    assert "Next drill due: 2026-01-02 (monthly: a month after the last success)" in output


def test_the_json_has_every_drill_the_trend_days_since_and_next_due():
    rep = drills.report(journal(), now=NOW)

    document = json.loads(json.dumps(rep))

    assert len(document["drills"]) == 13
    assert {d["verdict"] for d in document["drills"]} == {"met", "missed", "failed"}
    # The invented history misses only on slow restores (every fifth), the way real drills would.
    assert {tuple(d["what_failed"].split(", ")) for d in document["drills"] if d["verdict"] == "missed"} == {("rto",)}
    newest = document["drills"][0]
    assert newest["rto_objective_seconds"] == 1800 and newest["rpo_objective_seconds"] == 300
    assert newest["restore_point_requested"] == "latest" and newest["torn_down"] is True
    trend = document["trend"]
    assert trend["drills"] == 12 and trend["succeeded"] == 11
    rtos = [d["rto_seconds"] for d in document["drills"][:12] if d["rto_seconds"] is not None]
    assert trend["worst_rto_seconds"] == max(rtos)
    assert min(rtos) <= trend["median_rto_seconds"] <= max(rtos)
    assert (document["days_since_last_success"], document["overdue"], document["next_due"]) == (7.9, False, "2026-01-02")


def test_a_source_filter_and_a_limit():
    records = journal()
    assert drills.report(records, now=NOW, source="irisx-other")["drills"] == []
    assert len(drills.report(records, now=NOW, limit=3)["drills"]) == 3


def test_overdue_and_failed_last_drills_are_due_now():
    records = journal()
    late = drills.report(records, now=datetime(2026, 2, 1, tzinfo=timezone.utc))
    assert late["overdue"] is True and late["days_since_last_success"] > 35
    failed_last = [r for r in records if r["outcome"] == "FAILED"]
    rep = drills.report(failed_last, now=NOW)
    assert rep["overdue"] is True and rep["next_due_reason"].startswith("now: no drill has succeeded")
    assert drills.report([], now=NOW)["next_due"] == "2025-12-10"


def test_the_html_page_embeds_a_real_chart_of_rto_and_rpo_against_the_objectives(tmp_path: Path):
    page = drills.html_page(drills.report(journal(), now=NOW))

    (encoded,) = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    png = base64.b64decode(encoded)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert "<table>" in page and "ValidationFailed" in page and "Next drill due" in page
    assert "Up to date: the last successful drill was 7.9 days ago" in page


def test_the_runbook_block_is_ready_to_paste_into_the_runbook():
    block = drills.runbook_block(drills.report(journal(), now=NOW))

    lines = block.splitlines()
    assert lines[0] == "## Tested Restore" and lines[1] == ""
    assert lines[2] == "**Last Test Date**: 2025-12-02"
    assert lines[3].startswith(f"**Test Restore**: point-in-time restore of `{SOURCE}` to 2025-12-02T09:5")
    assert "(restore point: latest) as `irisx-prod-rds-postgres-drill-20251202-100000`" in lines[3]
    assert lines[4].startswith("**Result**: Restore validated against production (all 6 checks passed); RTO ")
    assert lines[4].endswith("; 3/3 matched in irisx-recordings (1880209 bytes); temporary instance deleted")
    assert lines[5] == "**Next Test Due**: 2026-01-02 (monthly: a month after the last success)"


def test_a_failed_last_drill_says_so_in_the_runbook_block():
    records = [r for r in journal() if r["outcome"] == "FAILED"]
    block = drills.runbook_block(drills.report(records, now=NOW))
    assert "**Result**: Drill FAILED: ValidationFailed: 1 of 6 checks failed" in block


@pytest.mark.parametrize(
    ("day", "expected"),
    [("2025-11-02", "2025-12-02"), ("2025-01-31", "2025-02-28"), ("2025-12-15", "2026-01-15"), ("2024-01-30", "2024-02-29")],
)
def test_next_due_is_one_calendar_month_later_like_the_runbooks(day, expected):
    moment = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
    assert drills._one_month_later(moment).strftime("%Y-%m-%d") == expected


def test_the_command_reads_a_rehearsals_journal_offline_in_every_output(tmp_path: Path, capsys):
    saved = tmp_path / "rehearsal.json"
    saved.write_text(json.dumps({"workflow": "drill", "status": "SUCCEEDED", "world": {"journal": journal()}}, default=str))
    page = tmp_path / "drills.html"

    assert cli.main(["drills", "--from-rehearsal", str(saved)]) == 0
    table = capsys.readouterr().out
    assert cli.main(["drills", "--from-rehearsal", str(saved), "--json", "--html", str(page)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert cli.main(["drills", "--from-rehearsal", str(saved), "--runbook"]) == 0
    block = capsys.readouterr().out

    assert table.startswith("DATE") and "RTO median" in table
    # Offline, "now" is when the rehearsal's journal last changed (it ran on a simulated clock).
    assert document["days_since_last_success"] == 0.0 and len(document["drills"]) == 13
    assert page.stat().st_size > 10_000
    assert block.startswith("## Tested Restore")


def test_an_unreadable_rehearsal_file_is_a_usage_error(tmp_path: Path, capsys):
    (tmp_path / "x.json").write_text("{}")
    assert cli.main(["drills", "--from-rehearsal", str(tmp_path / "x.json")]) == 2
    assert "holds no world.journal" in capsys.readouterr().err


def test_past_drills_are_seeded_on_the_schedules_first_tuesdays_before_the_start():
    times = emulated_drills.scheduled_times_before(datetime(2025, 11, 2, 12, 0, tzinfo=timezone.utc), 3)
    assert [t.strftime("%Y-%m-%d %H:%M %a") for t in times] == ["2025-08-05 10:00 Tue", "2025-09-02 10:00 Tue", "2025-10-07 10:00 Tue"]


def test_durations_read_as_minutes_and_long_ones_as_hours():
    assert (drills._duration(1270), drills._duration(6 * 3600 + 53 * 60), drills._duration(None)) == ("21m10s", "6h53m", "-")
