"""A second fault on a failure path: the explanation, record, release or cleanup step fails after a
first failure, or the rename-back / restart-on-copy branch is taken. Each still ends with the app
serving, the lock released, the journal closed and the ORIGINAL error named."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from restorectl.lambda_bridge import Injection
from tests.workflow.conftest import SOURCE, instance_ids
from tests.workflow.test_cutover_workflow import endpoint_of
from tests.workflow.test_journal_workflow import executions, locks
from tests.workflow.test_rollback_never_leaves_the_app_stopped import a_cut_over_copy, hosts_of

pytestmark = pytest.mark.workflow

QUICK = {"calls_rows": 300, "restore_minutes": 3}
FAST_IN_PLACE = {"calls_rows": 300, "restore_minutes": 3, "snapshot_minutes": 2, "rename_minutes": 2}
CONFIRMED = {"confirm": SOURCE, "mode": "point-in-time", "reason": "bad migration", "requested_by": "ana"}


def went(result: Any, here: str, there: str) -> bool:
    """Whether the execution ever went from state `here` straight to state `there`."""
    states = result.states()
    return (here, there) in set(itertools.pairwise(states))


def failed_at(result: Any, state: str) -> list[str | None]:
    return [step["error"] for step in result.path if step["state"] == state]


def on_the_original(result: Any) -> list[tuple[str, str]]:
    return [(endpoint_of(SOURCE), "connected")] * len(result.world["app_hosts"])


def then_inject(world: Any, *faults: str) -> None:
    """Faults for the next execution only (the restore that set the scene ran without them)."""
    world.bridge.injections.extend(Injection.parse(text) for text in faults)


def block_connections(world: Any, instance: str) -> None:
    database = world.rds.resolve(endpoint_of(instance))
    with world.pg.connect("postgres", autocommit=True) as admin, admin.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')


# ---------------------------------------------------------------------------------------- restore


def kept_for_recovery(result: Any, workflow: str, words: str) -> None:
    """Production's lock is kept, marked as needing recovery on `words`, and the record and its notice say so."""
    (lock,) = locks(result)
    assert lock["needs_recovery"].startswith(words), lock["needs_recovery"]
    (record,) = executions(result, workflow)
    assert record["lock_release"].startswith(f"KEPT the lock on {SOURCE}, marked as needing recovery")
    assert f"restorectl unlock rds:{SOURCE}" in record["left_behind"]


def test_a_restore_whose_end_record_and_lock_release_both_fail_still_succeeds_and_the_reconciler_frees_the_lock(rehearsal):
    # Given a restore that succeeds, and both the end record and the release-without-record failing
    world = rehearsal(**QUICK, inject=["RecordSuccess=RuntimeError", "ReleaseWithoutRecord=RuntimeError"])

    result = world.run("restore", {"mode": "snapshot"})

    # Then the restore still succeeds: the copy exists and is what the output names
    assert result.status == "SUCCEEDED", result.cause
    assert result.states()[-3:] == ["RecordSuccess", "ReleaseWithoutRecord", "SucceededWithoutJournal"]
    assert failed_at(result, "ReleaseWithoutRecord") == ["RuntimeError"]
    assert result.output["target_instance"] in instance_ids(result.world)
    # And the status-change function closed the record and released the lock the workflow could not
    (record,) = executions(result, "restore")
    assert record["outcome"] == "SUCCEEDED" and record["reconciled"]["was"] == "RUNNING"
    assert record["lock_release"] == f"released the lock on {SOURCE}"
    assert locks(result) == []
    # and, since the workflow could not, it announced the success
    assert [n for n in result.world["notifications"] if "restore SUCCEEDED" in n["subject"]]


def test_a_revert_that_cannot_start_ends_in_rollback_failed_naming_the_hosts_left_on_the_copy(rehearsal):
    # Given a cutover whose health check fails (the app cannot reach the copy), and a revert step that crashes
    world = rehearsal(**QUICK, app_blocked_from_restored=True, inject=["RevertCutover=RuntimeError"])

    result = world.run("restore", {"mode": "snapshot", "cutover": True})

    # Then it is explained as a failed rollback, naming each host and where its DB_HOST points
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    result.states()
    assert went(result, "RevertCutover", "ExplainRollbackFailure")
    target = next(i for i in instance_ids(result.world) if i != SOURCE)
    for host in result.world["app_hosts"]:
        assert host["db_host"] == endpoint_of(target)
        assert host["id"] in result.cause
    assert endpoint_of(target) in result.cause
    # And the copy the hosts use is kept, the journal closed with the same words, and production's lock kept
    # for the person finishing by hand: no other workflow may move the hosts meanwhile
    assert sorted(instance_ids(result.world)) == sorted([SOURCE, target])
    (record,) = executions(result, "restore")
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", "RollbackFailed", result.cause)
    kept_for_recovery(result, "restore", f"the rollback of the cutover to {target} failed")


def test_a_revert_whose_answer_was_lost_is_not_said_to_have_sent_nothing(rehearsal):
    # Given a cutover whose health check fails, and a revert step that points the hosts back, then loses its answer
    world = rehearsal(**QUICK, app_blocked_from_restored=True, inject=["RevertCutover=RuntimeError@after"])

    result = world.run("restore", {"mode": "snapshot", "cutover": True})

    # Then the hosts really are back on the original, and the cause does not claim no rollback was sent
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    assert {h["db_host"] for h in result.world["app_hosts"]} == {endpoint_of(SOURCE)}
    assert "no rollback sent" not in result.cause
    assert "a rollback may have been sent before its step failed: check it" in result.cause


def test_a_health_check_on_the_original_that_crashes_ends_in_rollback_failed_with_the_hosts_back_on_the_original(rehearsal):
    # Given a cutover that fails its health check and is reverted, then a health check on the original that crashes
    world = rehearsal(**QUICK, app_blocked_from_restored=True, inject=["CheckHealthOnOriginal=RuntimeError"])

    result = world.run("restore", {"mode": "snapshot", "cutover": True})

    # Then it fails as RollbackFailed (nobody confirmed the original's health), the hosts already back on the original
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    result.states()
    assert went(result, "CheckHealthOnOriginal", "ExplainRollbackFailure")
    assert hosts_of(result) == on_the_original(result)
    assert "RuntimeError injected by the rehearsal into CheckHealthOnOriginal" in result.cause
    (record,) = executions(result, "restore")
    assert record["outcome"] == "FAILED" and record["cause"] == result.cause
    # And, with the app's health on the original never confirmed, production's lock is kept for a person
    kept_for_recovery(result, "restore", "the rollback of the cutover to")


def test_a_revert_with_nothing_to_wait_for_goes_straight_to_the_health_of_the_original(rehearsal):
    # Given API hosts whose .env is a symlink, which the cutover script refuses before it reads anything
    world = rehearsal(**QUICK)
    for host in world.app_hosts.hosts:
        env = host.path(world.app_hosts.env_file)
        real = env.with_name(".env.real")
        env.rename(real)
        env.symlink_to(real.name)

    result = world.run("restore", {"mode": "snapshot", "cutover": True})

    # Then the cutover fails, the revert finds no host changed and sends nothing, and the original's health
    # is checked at once
    assert (result.status, result.error) == ("FAILED", "CutoverFailed")
    assert went(result, "RevertCutover", "IsRevertSent") and went(result, "IsRevertSent", "CheckHealthOnOriginal")
    assert "WaitForRevert" not in result.states()
    # And the app never left the original, the copy is cleaned up, the lock released
    assert hosts_of(result) == on_the_original(result)
    assert instance_ids(result.world) == [SOURCE]
    assert locks(result) == []
    (record,) = executions(result, "restore")
    assert (record["outcome"], record["error"]) == ("FAILED", "CutoverFailed")


def test_a_failed_rollback_whose_explanation_also_fails_still_records_rollback_failed(rehearsal):
    # Given a revert that crashes, and the step that explains it crashing too
    world = rehearsal(**QUICK, app_blocked_from_restored=True, inject=["RevertCutover=RuntimeError", "ExplainRollbackFailure=RuntimeError"])

    result = world.run("restore", {"mode": "snapshot", "cutover": True})

    # Then the execution still fails with the revert's error, through RollbackExplanationUnavailable
    assert result.status == "FAILED"
    result.states()
    assert went(result, "ExplainRollbackFailure", "RollbackExplanationUnavailable")
    assert "RuntimeError" in (result.error or "") + (result.cause or "")
    assert "RevertCutover" in result.cause
    # And the copy the hosts still use is kept, the journal closed FAILED, and, as nobody could look at the
    # hosts, production's lock kept for a person
    assert len(instance_ids(result.world)) == 2
    (record,) = executions(result, "restore")
    assert record["outcome"] == "FAILED"
    kept_for_recovery(result, "restore", "the rollback of the cutover failed and no step could look at the hosts afterwards")


# ---------------------------------------------------------------------------------------- rollback


def test_a_rollback_whose_restart_on_the_original_crashes_starts_the_app_on_the_copy(rehearsal):
    # Given a cut-over copy, a health check on the original that crashes, then a restart on the original that crashes
    world = rehearsal(**QUICK)
    target = a_cut_over_copy(world)
    then_inject(world, "CheckHealthOnOriginal=RuntimeError", "RestartAppOnOriginal=RuntimeError")

    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then the app is started again on the copy the hosts used, and the rollback fails naming that
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    result.states()
    assert went(result, "RestartAppOnOriginal", "RestartAppOnCopy")
    assert hosts_of(result) == [(endpoint_of(target), "connected")] * 2
    assert "app running and healthy (restored database)" in result.cause
    assert sorted(instance_ids(result.world)) == sorted([SOURCE, target])
    assert locks(result) == []
    (record,) = executions(result, "rollback")
    assert (record["outcome"], record["cause"]) == ("FAILED", result.cause)


@pytest.mark.parametrize("state", ["RestartAppOnCopy", "CheckRestartOnCopy", "CheckHealthAfterRestartOnCopy"])
def test_a_rollback_whose_restart_on_the_copy_crashes_too_names_where_every_host_stands(rehearsal, state):
    # Given a cut-over copy and an original that no longer accepts connections, and a crash on the way back to the copy
    world = rehearsal(**QUICK)
    target = a_cut_over_copy(world)
    block_connections(world, SOURCE)
    then_inject(world, f"{state}=RuntimeError")

    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then it is explained right there, as RollbackFailed naming each host and its DB_HOST
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    result.states()
    assert went(result, state, "ExplainRollbackFailure")
    # (each host's DB_HOST as the cause says it is where the host's .env really points)
    for host in result.world["app_hosts"]:
        assert f"{host['id']}: DB_HOST={host['db_host']}" in result.cause
    # And the copy, which may serve production, is kept; the journal closed with the same words; and with the app
    # not confirmed on one database everywhere, production's lock kept for the person finishing by hand
    assert sorted(instance_ids(result.world)) == sorted([SOURCE, target])
    (record,) = executions(result, "rollback")
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", "RollbackFailed", result.cause)
    kept_for_recovery(result, "rollback", "the rollback failed with the app not confirmed running on one database on every host")


def test_a_rollback_whose_end_record_and_release_fail_still_succeeds_and_is_reconciled(rehearsal):
    world = rehearsal(**QUICK)
    target = a_cut_over_copy(world)
    then_inject(world, "RecordSuccess=RuntimeError", "ReleaseWithoutRecord=RuntimeError")

    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # The rollback did its work: the copy is gone (final snapshot kept), the app is back on the original
    assert result.status == "SUCCEEDED", result.cause
    assert result.states()[-3:] == ["RecordSuccess", "ReleaseWithoutRecord", "SucceededWithoutJournal"]
    assert instance_ids(result.world) == [SOURCE]
    assert hosts_of(result) == on_the_original(result)
    # and the reconciler closed the record and released the lock
    (record,) = executions(result, "rollback")
    assert record["outcome"] == "SUCCEEDED" and record["reconciled"]["was"] == "RUNNING"
    assert locks(result) == []


@pytest.mark.parametrize(("first", "explainer"), [("DeleteRestoredInstance", "ExplainDeleteFailure"), ("TakeLock", "ExplainLockRefusal")])
def test_a_rollback_failure_whose_explanation_fails_is_still_rollback_failed_and_journaled(rehearsal, first, explainer):
    world = rehearsal(**QUICK)
    target = a_cut_over_copy(world)
    then_inject(world, f"{first}=RuntimeError", f"{explainer}=RuntimeError")

    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    assert result.status == "FAILED"
    result.states()
    assert went(result, explainer, "RollbackExplanationUnavailable")
    assert f"into {first}" in result.cause
    # The app serves: on the original after a failed delete (the rollback got that far), untouched on the copy after the lock
    expected = endpoint_of(SOURCE) if first == "DeleteRestoredInstance" else endpoint_of(target)
    assert hosts_of(result) == [(expected, "connected")] * 2
    assert target in instance_ids(result.world)
    assert locks(result) == []
    (record,) = executions(result, "rollback")
    assert record["outcome"] == "FAILED"


# ---------------------------------------------------------------------------------------- snapshot


def test_a_snapshot_whose_end_record_and_release_fail_still_succeeds_with_its_snapshot_available(rehearsal):
    world = rehearsal(inject=["RecordSuccess=RuntimeError", "ReleaseWithoutRecord=RuntimeError"])

    result = world.run("snapshot", {"reason": "pre-migration"})

    assert result.status == "SUCCEEDED", result.cause
    assert result.states()[-3:] == ["RecordSuccess", "ReleaseWithoutRecord", "SucceededWithoutJournal"]
    snapshot = next(s for s in result.world["db_snapshots"] if s["id"] == result.output["snapshot_id"])
    assert snapshot["status"] == "available"
    (record,) = executions(result, "snapshot")
    assert record["outcome"] == "SUCCEEDED" and record["reconciled"]["was"] == "RUNNING"


def test_a_snapshot_start_that_fails_after_rds_accepted_says_the_snapshot_exists_and_leaves_it_to_finish(rehearsal):
    # Given a start step whose answer is lost after RDS accepted the create
    world = rehearsal(inject=["StartSnapshot=RuntimeError@after"])

    result = world.run("snapshot", {"reason": "pre-migration"})

    # Then the failure's cause says the snapshot exists, being created by this execution, and what was done with it
    assert (result.status, result.error) == ("FAILED", "RuntimeError")
    result.states()
    assert went(result, "StartSnapshot", "CleanUpAfterFailure")
    (record,) = executions(result, "snapshot")
    (snapshot,) = [s for s in result.world["db_snapshots"] if s["tags"].get("irisx-restore:execution") == record["execution_arn"]]
    assert snapshot["status"] == "creating"
    assert "nothing was created" not in result.cause
    assert f"left snapshot {snapshot['id']} (created by this execution although its start step did not report it) 'creating'" in (
        result.cause
    )
    assert record["outcome"] == "FAILED" and snapshot["id"] in record["left_behind"]


# ---------------------------------------------------------------------------------------- drill


def test_a_failed_drill_whose_explanation_fails_is_still_recorded_and_alarmed(rehearsal):
    world = rehearsal(**QUICK, inject=["ExplainFailure=RuntimeError"])

    result = world.run("drill", {"restore_point": "yesterday"})

    # The original error is not at hand once its explanation failed: StepFailed, never a Step Functions name
    assert (result.status, result.error) == ("FAILED", "StepFailed")
    assert "the drill failed and so did the step that explains it (RuntimeError" in result.cause
    result.states()
    assert went(result, "ExplainFailure", "ExplanationUnavailable")
    assert instance_ids(result.world) == [SOURCE]
    assert locks(result) == []
    (record,) = executions(result, "drill")
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", "StepFailed", result.cause)
    assert [n for n in result.world["notifications"] if "drill FAILED" in n["subject"]]


def test_a_duplicate_drill_start_whose_record_fails_still_ends_without_doing_anything(rehearsal):
    # Given a drill that ran for a scheduled time, and a schedule retry for the same time whose record step fails
    world = rehearsal(**QUICK, inject=["RecordDuplicate=RuntimeError"])
    scheduled = {"scheduled_time": "2025-12-02T10:00:00Z", "requested_by": "EventBridge Scheduler"}
    first = world.run("drill", scheduled)
    assert first.status == "SUCCEEDED", first.cause

    retry = world.run("drill", scheduled)

    # Then the retry ends at once through DuplicateWithoutJournal: no restore, no lock taken
    assert retry.status == "SUCCEEDED"
    assert retry.states()[-2:] == ["RecordDuplicate", "DuplicateWithoutJournal"]
    assert not {"TakeLock", "StartRestore"} & set(retry.states())
    assert instance_ids(retry.world) == [SOURCE]
    assert locks(retry) == []
    # and its record, left RUNNING by the failed step, was reconciled
    (record,) = [r for r in executions(retry, "drill") if r.get("reconciled")]
    assert record["outcome"] == "SUCCEEDED"


# ---------------------------------------------------------------------------------------- recordings-restore


def test_a_failed_recordings_restore_whose_explanation_and_record_fail_keeps_its_original_error(rehearsal):
    world = rehearsal(inject=["ExplainRecordingsFailure=RuntimeError", "RecordFailure=RuntimeError"])

    result = world.run(
        "recordings-restore", {"bucket": "not-a-recordings-bucket", "prefix": "recordings/", "as_of": "2025-10-25T00:00:00Z"}
    )

    assert (result.status, result.error) == ("FAILED", "InvalidInput")
    states = result.states()
    assert went(result, "ExplainRecordingsFailure", "ExplainFailed")
    assert states[-2:] == ["RecordFailure", "RecordingsRestoreFailedWithOriginalError"]
    assert locks(result) == []
    (record,) = executions(result, "recordings-restore")
    assert (record["outcome"], record["error"]) == ("FAILED", "InvalidInput") and record["reconciled"]["was"] == "RUNNING"


# ---------------------------------------------------------------------------------------- in-place-restore


def test_an_in_place_restore_failing_before_the_stop_whose_cleanup_fails_keeps_production_and_says_so(rehearsal):
    world = rehearsal(**FAST_IN_PLACE, inject=["ValidateRestore=RuntimeError", "CleanUpAfterFailure=RuntimeError"])

    result = world.run("in-place-restore", CONFIRMED)

    assert (result.status, result.error) == ("FAILED", "RuntimeError")
    states = result.states()
    assert went(result, "CleanUpAfterFailure", "CleanupFailed")
    assert "StopApp" not in states
    # Production was never touched and serves; the copy the cleanup could not remove is still there
    assert SOURCE in instance_ids(result.world) and len(instance_ids(result.world)) == 2
    assert hosts_of(result) == on_the_original(result)
    assert locks(result) == []
    (record,) = executions(result, "in-place-restore")
    assert record["outcome"] == "FAILED"


def test_an_in_place_restore_refused_whose_record_fails_still_fails_with_confirmation_required(rehearsal):
    world = rehearsal(**FAST_IN_PLACE, inject=["RecordFailure=RuntimeError"])

    result = world.run("in-place-restore", {"mode": "point-in-time", "confirm": "irisx-prod"})

    assert (result.status, result.error) == ("FAILED", "ConfirmationRequired")
    assert result.states()[-2:] == ["RecordFailure", "InPlaceRestoreFailed"]
    assert failed_at(result, "RecordFailure") == ["RuntimeError"]
    assert instance_ids(result.world) == [SOURCE]
    (record,) = executions(result, "in-place-restore")
    assert (record["outcome"], record["error"]) == ("FAILED", "ConfirmationRequired")


@pytest.mark.parametrize(
    ("second", "after"),
    [
        ("CarryMonitoringBack", "RestartOnOriginal"),
        ("RestartOnOriginal", "StartAppAfterFailedRenameBack"),
        ("CheckHealthOnOriginal", "StartAppAfterFailedRenameBack"),
        ("ExplainInPlaceFailure", "ExplanationUnavailable"),
    ],
)
def test_an_in_place_restore_renamed_back_survives_a_second_fault_on_the_way_and_the_app_serves(rehearsal, second, after):
    # Given a swap that fails when the copy is being renamed to production, and a fault in the way back
    world = rehearsal(**FAST_IN_PLACE, inject=["RenameCopyToProduction=RuntimeError", f"{second}=RuntimeError"])

    result = world.run("in-place-restore", CONFIRMED)

    # Then the workflow takes the next safe step, and ends with the app serving on production's name
    assert result.status == "FAILED"
    result.states()
    assert went(result, second, after)
    assert not [h for h in result.world["app_hosts"] if h["health"] != "connected"], "the app is never left stopped"
    assert {h["db_host"] for h in result.world["app_hosts"]} == {endpoint_of(SOURCE)}
    assert SOURCE in instance_ids(result.world)
    assert locks(result) == []
    (record,) = executions(result, "in-place-restore")
    assert record["outcome"] == "FAILED" and record["error"] == result.error


def test_when_the_rename_back_fails_before_anything_was_renamed_the_app_starts_and_is_healthy_on_production(rehearsal):
    # Given a stop step that crashes before stopping anything, and a rename-back that crashes too
    world = rehearsal(**FAST_IN_PLACE, inject=["StopApp=RuntimeError", "RenameBack=RuntimeError"])

    result = world.run("in-place-restore", CONFIRMED)

    # Then the app is started and found healthy, and the explanation says the rename back failed
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    result.states()
    assert went(result, "IsHealthyAfterFailedRenameBack", "ExplainRenameBackFailure")
    assert hosts_of(result) == on_the_original(result)
    assert locks(result) == []


@pytest.mark.parametrize(
    ("second", "after"),
    [("StartAppAfterFailedRenameBack", "ExplainRenameBackFailure"), ("ExplainRenameBackFailure", "RenameBackExplanationUnavailable")],
)
def test_a_failed_rename_back_with_a_second_fault_still_ends_in_rollback_failed_journaled(rehearsal, second, after):
    world = rehearsal(**FAST_IN_PLACE, inject=["StopApp=RuntimeError", "RenameBack=RuntimeError", f"{second}=RuntimeError"])

    result = world.run("in-place-restore", CONFIRMED)

    assert result.status == "FAILED"
    result.states()
    assert went(result, second, after)
    # StopApp crashed before acting, so the app kept serving production throughout
    assert hosts_of(result) == on_the_original(result)
    (record,) = executions(result, "in-place-restore")
    assert record["outcome"] == "FAILED"
    if after == "ExplainRenameBackFailure":
        # The explanation looked: production's name is on the original, but the start after the failed rename-back
        # crashed, so nothing confirmed the app: production's lock is kept for a person
        kept_for_recovery(result, "in-place-restore", f"production's name {SOURCE} is back on the original production, but the app")
    else:
        # Nothing could look at where the names stand: production's lock is kept for a person to release
        (lock,) = locks(result)
        assert lock["needs_recovery"].startswith("renaming back failed and no step could look at the instances")
        assert record["lock_release"].startswith(f"KEPT the lock on {SOURCE}, marked as needing recovery")
        assert f"restorectl unlock rds:{SOURCE}" in record["left_behind"]


def test_a_final_snapshot_start_that_fails_after_rds_accepted_says_the_final_snapshot_is_kept(rehearsal):
    # Given a final-snapshot step whose answer is lost after RDS accepted the create
    world = rehearsal(**FAST_IN_PLACE, inject=["StartFinalSnapshot=RuntimeError@after"])

    result = world.run("in-place-restore", CONFIRMED)

    # Then nothing else was created, production serves, and the cause says the final snapshot exists and is kept
    assert (result.status, result.error) == ("FAILED", "RuntimeError")
    assert instance_ids(result.world) == [SOURCE]
    assert hosts_of(result) == on_the_original(result)
    (snapshot,) = [s for s in result.world["db_snapshots"] if "-pre-restore-" in s["id"]]
    assert f"kept the final snapshot {snapshot['id']} of production (creating)" in result.cause
    assert "no final snapshot was taken" not in result.cause
    assert locks(result) == []


def test_a_recordings_plan_that_vanished_before_the_apply_fails_the_restore_by_name_changing_nothing(rehearsal):
    # Given a plan written to the work bucket and gone (deleted by a lifecycle rule or a person) before the Map reads it
    import boto3

    world = rehearsal(recordings=12)
    answer = world.bridge.answer

    def answer_then_lose_the_plan(function_name: str, body: Any, headers: Any) -> bytes:
        reply = answer(function_name, body, headers)
        if json.loads(body or "{}").get("context", {}).get("state") == "WriteRecordingsPlan" and not headers.get("x-amz-function-error"):
            plan = json.loads(reply)
            boto3.client("s3").delete_object(Bucket=plan["work_bucket"], Key=plan["plan_key"])
        return reply

    world.bridge.answer = answer_then_lose_the_plan  # type: ignore[method-assign]
    before = world.recordings.state("irisx-recordings")

    result = world.run(
        "recordings-restore", {"bucket": "irisx-recordings", "prefix": "recordings/", "undelete_after": "2025-10-20T00:00:00Z"}
    )

    # Then the Map fails, its Step Functions error named at the head of the cause (a Fail state may not
    # re-raise a States.* name), the failure is explained, and nothing was restored
    assert (result.status, result.error) == ("FAILED", "StepFailed")
    assert result.cause.startswith("States.") and "The specified key does not exist" in result.cause
    assert went(result, "ApplyPlan", "ExplainRecordingsFailure")
    assert "ApplyRecordingsBatch" not in {i["state"] for i in result.invocations}
    assert world.recordings.state("irisx-recordings") == before
    assert locks(result) == []
    (record,) = executions(result, "recordings-restore")
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", result.error, result.cause)


def test_a_failed_drill_whose_end_record_fails_still_fails_with_its_own_error_and_is_reconciled(rehearsal):
    # Given a drill whose restore RDS fails, and a failure-record step that fails too
    world = rehearsal(**QUICK, restore_outcome="incompatible-parameters", inject=["RecordFailure=RuntimeError"])

    result = world.run("drill", {"requested_by": "scheduler"})

    # Then the drill fails with the error that ended it, not the journal's, through RecordFailure's catch
    assert (result.status, result.error) == ("FAILED", "RestoreFailed")
    assert went(result, "RecordFailure", "DrillFailed")
    assert failed_at(result, "RecordFailure") == ["RuntimeError"]
    # And its copy is gone, and the status-change function closed the record and released the drill's lock
    assert instance_ids(result.world) == [SOURCE]
    assert locks(result) == []
    (record,) = executions(result, "drill")
    assert (record["outcome"], record["error"]) == ("FAILED", "RestoreFailed")
    assert record["reconciled"]["was"] == "RUNNING"


@pytest.mark.parametrize(
    ("delete_minutes", "cleanup", "listed"),
    [
        # As RDS does: the deleted copy is listed `deleting` for minutes, and the retry finds it going.
        (5, "irisx-crashed-start is already being deleted", {"irisx-crashed-start": "deleting"}),
        # Gone by the time the retry looks (as moto does at once): the retry cannot tell, and says what may have happened.
        (
            0,
            "irisx-crashed-start does not exist, so nothing is left to delete; an earlier attempt of this cleanup may have deleted "
            "it (if this execution's restore request ever reached RDS)",
            {},
        ),
    ],
)
def test_a_copy_whose_start_crashed_and_whose_cleanup_answer_was_lost_is_never_said_to_be_never_made(
    rehearsal, delete_minutes, cleanup, listed
):
    # Given a restore whose StartRestore made the copy and crashed before answering, and a cleanup that
    # deleted that copy and lost its answer
    world = rehearsal(
        **QUICK,
        delete_minutes=delete_minutes,
        inject=["StartRestore=RuntimeError@after", "CleanUpAfterFailure=Lambda.SdkClientException:1@after"],
    )

    result = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-crashed-start"})

    # Then the retried cleanup says what it sees, never "nothing was created": this execution made the copy
    assert (result.status, result.error) == ("FAILED", "RuntimeError")
    assert [i["error"] for i in result.invocations if i["state"] == "CleanUpAfterFailure"] == ["Lambda.SdkClientException", None]
    assert result.cause.endswith(f"[cleanup: {cleanup}]"), result.cause
    assert "nothing was created" not in result.cause
    # And the world is what the words say: the copy is going or gone, production untouched, the lock released
    assert {i["id"]: i["status"] for i in result.world["db_instances"]} == {SOURCE: "available", **listed}
    assert locks(result) == []
    (record,) = executions(result, "restore")
    assert record["outcome"] == "FAILED" and cleanup in record["cause"]
