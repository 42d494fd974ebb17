"""A validated copy is read once before the app meets it, so the first queries do not pay S3's lazy loading."""

from __future__ import annotations

import pytest

from tests.workflow.conftest import SOURCE, instance_ids
from tests.workflow.test_cutover_workflow import endpoint_of

pytestmark = pytest.mark.workflow

CUTOVER = {"mode": "snapshot", "cutover": True}


def test_a_cutover_warms_the_validated_copy_first_and_reports_what_it_read(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3)

    result = world.run("restore", CUTOVER)

    assert result.status == "SUCCEEDED", result.cause
    states = result.states()
    assert states.index("ValidateRestore") < states.index("WarmRestoredCopy") < states.index("StartCutover")
    warm = result.output["warm"]
    assert warm["method"] == "pg_prewarm" and warm["stopped_at_budget"] is False
    assert warm["mb_read"] > 0 and warm["missing_tables"] == []
    assert {r["table"] for r in warm["relations"]} >= {"calls", "tenants"}


def test_a_restore_without_cutover_does_not_warm(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3)

    result = world.run("restore", {"mode": "snapshot"})

    assert result.status == "SUCCEEDED", result.cause
    assert "WarmRestoredCopy" not in result.states()
    assert result.output["warm"] is None


def test_a_warm_up_that_fails_stops_before_any_host_is_touched_and_removes_the_copy(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["WarmRestoredCopy=RuntimeError"])

    result = world.run("restore", CUTOVER)

    assert (result.status, result.error) == ("FAILED", "RuntimeError")
    states = result.states()
    assert states.index("WarmRestoredCopy") < states.index("CleanUpAfterFailure")
    assert "StartCutover" not in states
    assert instance_ids(result.world) == [SOURCE]
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(endpoint_of(SOURCE), "connected")] * 2
    # (no host ever used the copy, so it goes as the throwaway it was: no final snapshot)
    assert not [s for s in result.world["db_snapshots"] if "-final-" in s["id"]]
    assert "(no final snapshot: it was a throwaway copy)" in result.cause
