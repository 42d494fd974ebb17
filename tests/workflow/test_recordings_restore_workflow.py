"""The `recordings-restore` workflow end to end: statemachines/recordings-restore.asl.json with its real
handlers, on moto's versioned S3 seeded with 30 days of overwrites and deletes.

A Distributed Map's children run their own Retry and Catch in moto as in AWS (each child is an
execution of its own): a batch whose function crashes is caught into RecordBatchCrash, which keeps
its error beside the results (or, when that fails too, into BatchLeftNoResult). moto's
history has no events of the children; the harness records each child's own history
(restorectl/emulated_map_children.py, `result.child_paths("ApplyPlan")`), so these tests assert on
the child's path too. What moto cannot prove: it ignores ToleratedFailurePercentage and swallows a
child that fails uncaught (the Map succeeds, the item's result is null); the ASL sets the
tolerance to 100.0 so that the aggregation, not the Map, always decides, and these tests show the
aggregation fails the execution from the missing result file. ItemBatcher is not used at all (moto
rejects it): the plan is already batches. The multipart path (> 5 GB) and the
exact wire encoding of CopySource are tested at the function level, in tests/unit/test_recordings_apply.py.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import boto3
import pytest

from restorectl.emulated_recordings import BAD_DEPLOY_AGO, ODD_NAMES, wav_body

pytestmark = pytest.mark.workflow

BUCKET = "irisx-recordings"
OTHER_BUCKET = "irisx-prod-recordings-672e7c49"


def bad_deploy_time(world: Any) -> str:
    return (world.clock.now() - BAD_DEPLOY_AGO).strftime("%Y-%m-%dT%H:%M:%SZ")


def body(key: str, version_id: str | None = None) -> bytes:
    kwargs = {"VersionId": version_id} if version_id else {}
    return boto3.client("s3").get_object(Bucket=BUCKET, Key=key, **kwargs)["Body"].read()


def recordings_of(world: Any, bucket: str = BUCKET) -> dict[str, dict[str, Any]]:
    return world.recordings.state(bucket)


def journal_of(result: Any) -> list[dict[str, Any]]:
    return [r for r in result.world["journal"] if r.get("workflow") == "recordings-restore" and r["pk"].startswith("WORKFLOW#")]


def assert_nothing_permanently_deleted(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> None:
    for key, entry in before.items():
        assert set(entry["versions"]) <= set(after[key]["versions"]), f"a version of {key} was deleted"


def test_a_prefix_is_restored_as_it_was_before_the_bad_deploy(rehearsal):
    # Given the recordings bucket 6 hours after a bad deploy overwrote and deleted recordings
    world = rehearsal(calls_rows=2000, recordings=50)
    seeded = world.recordings.seeded[BUCKET]
    before = recordings_of(world)

    # When on-call restores the prefix as it was just before the deploy
    result = world.run(
        "recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "as_of": bad_deploy_time(world), "requested_by": "oncall"}
    )

    # Then the plan came first, the Map applied it, and every planned change was made
    assert result.status == "SUCCEEDED", result.cause
    states = result.states()
    assert states.index("WriteRecordingsPlan") < states.index("ApplyPlan") < states.index("AggregateRecordingsResults")
    report = result.output["report"]
    assert report["failed"] == 0 and report["applied"] == report["planned"] > 0 and report["batches_without_result"] == 0
    assert report["plan_location"].startswith("s3://irisx-restore-recordings-work-")
    assert report["cost_estimate"]["usd_total"] > 0 and report["bytes_copied"] > 0

    # And each key holds what it held at that time: overwritten and deleted ones are back, others untouched
    after = recordings_of(world)
    for key, pattern in seeded.history.items():
        call = seeded.calls[key]
        if pattern == "created-after":
            assert body(key) == wav_body(call, "new") and key in report["created_after_sample"]
        elif pattern == "overwritten":
            assert body(key) == wav_body(call, "v1b")
        else:
            assert body(key) == wav_body(call, "v1"), (key, pattern)
        if pattern in ("untouched", "deleted"):
            assert after[key]["versions"] == before[key]["versions"]  # no copy: unchanged, or its marker removed
        if pattern == "deleted":
            assert after[key]["markers"] == [] and after[key]["current"] == before[key]["versions"][0]
        else:
            assert after[key]["markers"] == before[key]["markers"]  # only the undelete removes markers
    # Keys with a space, a plus and non-ASCII in their names went through like the others
    odd = [k for k in seeded.keys if k.rsplit("/", 1)[-1] in ODD_NAMES]
    assert len(odd) == 3 and body(odd[1]) == wav_body(seeded.calls[odd[1]], "v1b")
    assert_nothing_permanently_deleted(before, after)
    # And the other bucket was not touched
    assert recordings_of(world, OTHER_BUCKET) == world.recordings.state(OTHER_BUCKET)

    # And the journal holds the run, and the lock on s3:<bucket>/<prefix> is released
    (record,) = journal_of(result)
    assert record["outcome"] == "SUCCEEDED" and record["requested_by"] == "oncall"
    assert record["lock_release"] == f"released the lock on s3://{BUCKET}/recordings/"

    # When the same request runs again, Then it plans nothing and changes nothing
    again = world.run("recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "as_of": bad_deploy_time(world)})
    assert again.status == "SUCCEEDED", again.cause
    assert again.output["totals_planned"]["entries"] == 0 and again.output["report"]["applied"] == 0
    assert "ApplyPlan" not in again.states()
    assert recordings_of(world) == after


def test_a_dry_run_reports_the_plan_and_changes_nothing(rehearsal):
    world = rehearsal(calls_rows=2000, recordings=30)
    before = recordings_of(world)

    result = world.run("recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "as_of": bad_deploy_time(world), "dry_run": True})

    assert result.status == "SUCCEEDED", result.cause
    assert result.output["dry_run"] is True
    totals = result.output["totals"]
    assert totals["actions"]["copy"] > 0 and totals["actions"]["undelete"] > 0 and totals["bytes_to_copy"] > 0
    assert "ApplyPlan" not in result.states() and result.states()[-2:] == ["PlannedOnly", "RecordSuccess"]
    assert recordings_of(world) == before
    plan = json.loads(
        boto3.client("s3")
        .get_object(Bucket=result.output["plan_location"].split("/")[2], Key=result.output["plan_location"].split("/", 3)[3])["Body"]
        .read()
    )
    assert sum(len(batch["entries"]) for batch in plan) == totals["entries"]


def test_undelete_removes_only_the_markers_placed_after_the_time(rehearsal):
    world = rehearsal(calls_rows=2000, recordings=30)
    seeded = world.recordings.seeded[BUCKET]
    before = recordings_of(world)

    result = world.run("recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "undelete_after": bad_deploy_time(world)})

    assert result.status == "SUCCEEDED", result.cause
    after = recordings_of(world)
    assert result.output["report"]["per_action"] == {"undelete": {"applied": 10, "skipped": 0, "failed": 0}}
    for key, pattern in seeded.history.items():
        assert after[key]["versions"] == before[key]["versions"]  # nothing copied, nothing deleted
        if pattern in ("deleted", "overwritten-then-deleted"):
            assert after[key]["markers"] == [] and after[key]["current"] is not None
        else:
            assert after[key]["markers"] == before[key]["markers"]
    assert result.output["report"]["bytes_copied"] == 0


def test_one_version_is_made_current_again_and_copied_beside_it(rehearsal):
    world = rehearsal(calls_rows=2000, recordings=12)
    seeded = world.recordings.seeded[BUCKET]
    key = next(k for k, p in seeded.history.items() if p == "overwritten")
    oldest = recordings_of(world)[key]["versions"][-1]

    same_key = world.run("recordings-restore", {"bucket": BUCKET, "key": key, "version_id": oldest, "reason": "customer complaint"})
    beside = world.run("recordings-restore", {"bucket": BUCKET, "key": key, "version_id": oldest, "target_key": key + ".restored"})

    assert same_key.status == "SUCCEEDED", same_key.cause
    assert beside.status == "SUCCEEDED", beside.cause
    assert body(key) == body(key + ".restored") == wav_body(seeded.calls[key], "v1")
    assert len(recordings_of(world)[key]["versions"]) == 4  # v1, v1b, bad, and the copy: nothing deleted
    again = world.run("recordings-restore", {"bucket": BUCKET, "key": key, "version_id": oldest})
    assert again.output["totals_planned"]["left_as_is"]["same-content"] == 1 and len(recordings_of(world)[key]["versions"]) == 4


def test_keys_created_after_the_time_are_hidden_only_when_asked(rehearsal):
    world = rehearsal(calls_rows=2000, recordings=12)
    seeded = world.recordings.seeded[BUCKET]
    before = recordings_of(world)

    result = world.run(
        "recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "as_of": bad_deploy_time(world), "hide_created_after": True}
    )

    assert result.status == "SUCCEEDED", result.cause
    after = recordings_of(world)
    created = [k for k, p in seeded.history.items() if p == "created-after"]
    assert created and result.output["report"]["per_action"]["hide"]["applied"] == len(created)
    for key in created:
        assert after[key]["current"] is None and len(after[key]["markers"]) == 1 and after[key]["versions"] == before[key]["versions"]
    assert_nothing_permanently_deleted(before, after)


@pytest.mark.parametrize(
    ("make_input", "error", "words"),
    [
        (
            lambda w, k, v: {"bucket": "irisx-backups", "prefix": "recordings/", "as_of": bad_deploy_time(w)},
            "InvalidInput",
            "not a recordings bucket",
        ),
        (lambda w, k, v: {"bucket": BUCKET, "key": k, "version_id": "3HL4kqtJlcpXroDTDmJ"}, "RecordingVersionNotFound", "has no version"),
        (lambda w, k, v: {"bucket": BUCKET, "key": k + ".other", "version_id": v}, "RecordingVersionNotFound", "has no version"),
        (lambda w, k, v: {"bucket": BUCKET, "prefix": "recordings/", "as_of": "2025-11-03T00:00:00Z"}, "RestoreTimeOutOfRange", "future"),
        (lambda w, k, v: {"bucket": BUCKET, "prefix": "recordings/", "as_of": "2025-09-30T00:00:00Z"}, "RestoreTimeOutOfRange", "30 days"),
        (
            lambda w, k, v: {"bucket": BUCKET, "prefix": "r/", "as_of": bad_deploy_time(w), "key": k, "version_id": v},
            "InvalidInput",
            "exactly one",
        ),
    ],
    ids=[
        "unknown-bucket",
        "missing-version",
        "another-keys-version",
        "as-of-in-the-future",
        "as-of-before-retention",
        "conflicting-fields",
    ],
)
def test_bad_inputs_are_refused_before_anything_changes(rehearsal, make_input, error, words):
    world = rehearsal(calls_rows=2000, recordings=6)
    key = world.recordings.seeded[BUCKET].keys[0]
    version = recordings_of(world)[key]["versions"][0]
    before = recordings_of(world)

    result = world.run("recordings-restore", make_input(world, key, version))

    assert result.status == "FAILED" and result.error == error and words in result.cause
    assert "TakeLock" not in result.states() and "PlanRecordingsPage" not in result.states()
    assert recordings_of(world) == before
    (record,) = journal_of(result)
    assert record["outcome"] == "FAILED" and record["error"] == error
    assert "no recording was changed" in record["left_behind"]


def test_a_plan_larger_than_one_page_loops_the_planner_and_restores_the_same(rehearsal):
    world = rehearsal(
        calls_rows=2000,
        recordings=30,
        settings_overrides={"RECORDINGS_LIST_PAGE_SIZE": "7", "RECORDINGS_PAGES_PER_INVOCATION": "2", "RECORDINGS_BATCH_SIZE": "4"},
    )
    seeded = world.recordings.seeded[BUCKET]

    result = world.run("recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "as_of": bad_deploy_time(world)})

    assert result.status == "SUCCEEDED", result.cause
    assert result.states().count("PlanRecordingsPage") >= 3
    totals = result.output["totals_planned"]
    assert totals["pages"] > 5 and totals["keys"] == 30
    report = result.output["report"]
    assert report["failed"] == 0 and report["applied"] == totals["entries"]
    location = report["plan_location"].removeprefix("s3://").split("/", 1)
    batches = json.loads(boto3.client("s3").get_object(Bucket=location[0], Key=location[1])["Body"].read())
    # batches do not straddle planner rounds, so a round may end in a short one
    assert len(batches) == report["batches"] >= -(-totals["entries"] // 4) and all(1 <= len(b["entries"]) <= 4 for b in batches)
    for key, pattern in seeded.history.items():
        expected = {"created-after": "new", "overwritten": "v1b"}.get(pattern, "v1")
        assert body(key) == wav_body(seeded.calls[key], expected)


def test_an_item_that_cannot_be_restored_fails_the_execution_by_name_and_the_rest_is_restored(rehearsal):
    # Given an overwritten recording whose old version sits in Glacier (a copy needs a restore first)
    world = rehearsal(calls_rows=2000, recordings=12)
    s3 = boto3.client("s3")
    with world.recordings.s3_clock.at(world.clock.now() - timedelta(days=3)):
        s3.put_object(Bucket=BUCKET, Key="recordings/9/cold.wav", Body=b"cold", StorageClass="GLACIER")
    with world.recordings.s3_clock.at(world.clock.now() - timedelta(hours=2)):
        s3.put_object(Bucket=BUCKET, Key="recordings/9/cold.wav", Body=b"bad")
    seeded = world.recordings.seeded[BUCKET]

    result = world.run("recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "as_of": bad_deploy_time(world)})

    # Then the execution fails with the named error and the key in the cause, not silently
    assert result.status == "FAILED"
    assert result.error == "RecordingsRestoreIncomplete"
    assert "recordings/9/cold.wav" in result.cause and "GLACIER" in result.cause and "summary.json" in result.cause
    assert result.states()[-3:] == ["ExplainRecordingsFailure", "RecordFailure", "RecordingsRestoreFailedWithOriginalError"]
    # And every other key was restored
    for key, pattern in seeded.history.items():
        expected = {"created-after": "new", "overwritten": "v1b"}.get(pattern, "v1")
        assert body(key) == wav_body(seeded.calls[key], expected)
    (record,) = journal_of(result)
    assert record["outcome"] == "FAILED" and record["lock_release"].startswith("released the lock")
    assert "may be restored" in record["left_behind"] and "no version was deleted" in record["left_behind"]


def planned_batches(world: Any) -> list[dict[str, Any]]:
    """The one plan this world's restore wrote to the work bucket (plans/<execution>/batches.json)."""
    s3 = boto3.client("s3")
    work_bucket = world.recordings.work_bucket
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=work_bucket, Prefix="plans/")["Contents"] if o["Key"].endswith("/batches.json")]
    batches: list[dict[str, Any]] = json.loads(s3.get_object(Bucket=work_bucket, Key=key)["Body"].read())
    return batches


def keys_of(batch: dict[str, Any]) -> set[str]:
    return {entry["key"] for entry in batch["entries"]}


def assert_failed_by_name_with_lock_released_and_journal_closed(result: Any) -> None:
    assert result.status == "FAILED" and result.error == "RecordingsRestoreIncomplete", (result.error, result.cause)
    assert result.states()[-5:] == [
        "ApplyPlan",
        "AggregateRecordingsResults",
        "ExplainRecordingsFailure",
        "RecordFailure",
        "RecordingsRestoreFailedWithOriginalError",
    ]
    (record,) = journal_of(result)
    assert record["outcome"] == "FAILED" and record["error"] == "RecordingsRestoreIncomplete"
    assert record["lock_release"] == f"released the lock on s3://{BUCKET}/recordings/"
    assert [r for r in result.world["journal"] if str(r["pk"]).startswith("LOCK#")] == []


def test_a_copy_batch_whose_function_crashes_on_every_attempt_is_caught_in_its_child_and_fails_the_restore_by_name(rehearsal):
    """The child retries Lambda's transient error, then its Catch takes it to RecordBatchCrash: the
    child ends well, so the Map does not fail (in AWS either); the batch left no result file, and the
    aggregation fails the execution for it, counting every entry of the batch as not restored and
    naming the error the child's crash record kept."""
    # Given a prefix to restore as it was before the bad deploy, and a copy function that never answers
    world = rehearsal(calls_rows=2000, recordings=12, inject=["ApplyRecordingsBatch=Lambda.ServiceException"])
    seeded = world.recordings.seeded[BUCKET]
    before = recordings_of(world)

    result = world.run("recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "as_of": bad_deploy_time(world)})

    # Then the copy batch's child retried, was caught into RecordBatchCrash, and the undelete batch's child ran
    batches = planned_batches(world)
    assert [b["kind"] for b in batches] == ["change", "undelete"]
    copy_batch, undelete_batch = batches
    assert result.child_paths("ApplyPlan") == [
        ["IsUndeleteBatch", "ApplyRecordingsBatch", "RecordBatchCrash"],
        ["IsUndeleteBatch", "UndeleteRecordingsBatch"],
    ]
    copy_child = result.map_children[0]
    assert [e["type"] for e in copy_child.history].count("LambdaFunctionFailed") == 6  # the first attempt and MaxAttempts 5
    assert copy_child.path[1]["error"] == "Lambda.ServiceException"
    assert [i["state"] for i in result.invocations].count("ApplyRecordingsBatch") == 6
    # And the parent went from the aggregation to the failure end, by name, with the batch counted as failed
    assert_failed_by_name_with_lock_released_and_journal_closed(result)
    copied, undeleted = len(copy_batch["entries"]), len(undelete_batch["entries"])
    assert f"{copied} of {copied + undeleted} planned recording changes were not made" in result.cause
    assert f"{undeleted} applied" in result.cause
    assert f"batches [0] left no result ({copied} entries; their child failed: Lambda.ServiceException in batch [0]" in result.cause
    # And in the bucket: not one key of the crashed batch changed, every key of the undelete batch is back
    after = recordings_of(world)
    for key in keys_of(copy_batch):
        assert after[key] == before[key], key
    for key in keys_of(undelete_batch):
        assert after[key]["markers"] == [] and after[key]["versions"] == before[key]["versions"], key
        assert body(key) == wav_body(seeded.calls[key], {"overwritten-then-deleted": "v1b"}.get(seeded.history[key], "v1"))
    assert_nothing_permanently_deleted(before, after)


def test_an_undelete_batch_whose_function_crashes_leaves_its_markers_and_the_other_batches_undelete(rehearsal):
    # Given an undelete of the prefix in batches of 4, and an undelete function that crashes once (whichever batch runs first)
    world = rehearsal(
        calls_rows=2000, recordings=30, settings_overrides={"RECORDINGS_BATCH_SIZE": "4"}, inject=["UndeleteRecordingsBatch=RuntimeError:1"]
    )
    before = recordings_of(world)

    result = world.run("recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "undelete_after": bad_deploy_time(world)})

    # Then exactly one child was caught into RecordBatchCrash, and the others undeleted their batch
    batches = planned_batches(world)
    assert len(batches) >= 3 and {b["kind"] for b in batches} == {"undelete"}
    paths = result.child_paths("ApplyPlan")
    assert len(paths) == len(batches)
    crashed = [child.index for child in result.map_children if child.states()[-1] == "RecordBatchCrash"]
    assert len(crashed) == 1
    (crashed_index,) = crashed
    assert paths[crashed_index] == ["IsUndeleteBatch", "UndeleteRecordingsBatch", "RecordBatchCrash"]
    assert result.map_children[crashed_index].path[1]["error"] == "RuntimeError"
    assert all(path == ["IsUndeleteBatch", "UndeleteRecordingsBatch"] for i, path in enumerate(paths) if i != crashed_index)
    # And the parent failed by name, counting the crashed batch's entries as not restored
    assert_failed_by_name_with_lock_released_and_journal_closed(result)
    lost = len(batches[crashed_index]["entries"])
    total = sum(len(b["entries"]) for b in batches)
    assert f"{lost} of {total} planned recording changes were not made" in result.cause
    assert f"{total - lost} applied" in result.cause
    assert (
        f"batches [{crashed_index}] left no result ({lost} entries; their child failed: RuntimeError in batch [{crashed_index}]: "
        in result.cause
    )
    assert (
        "RuntimeError injected by the rehearsal into UndeleteRecordingsBatch" in result.cause
    )  # the child's own cause, from its crash record
    # And in the bucket: the crashed batch's keys keep their delete markers, every other batch's are gone
    after = recordings_of(world)
    for index, batch in enumerate(batches):
        for key in keys_of(batch):
            if index == crashed_index:
                assert after[key] == before[key] and after[key]["markers"], key
            else:
                assert after[key]["markers"] == [] and after[key]["current"] is not None, key
    assert_nothing_permanently_deleted(before, after)


def test_a_batch_whose_crash_cannot_be_recorded_either_still_fails_the_restore_and_says_the_reason_is_unknown(rehearsal):
    # Given a copy function that crashes on every attempt, and a crash recorder that fails too
    world = rehearsal(calls_rows=2000, recordings=12, inject=["ApplyRecordingsBatch=RuntimeError", "RecordBatchCrash=RuntimeError"])
    before = recordings_of(world)

    result = world.run("recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "as_of": bad_deploy_time(world)})

    # Then the copy child went on from the failed recorder to BatchLeftNoResult, the undelete child ran
    copy_batch, undelete_batch = planned_batches(world)
    assert result.child_paths("ApplyPlan") == [
        ["IsUndeleteBatch", "ApplyRecordingsBatch", "RecordBatchCrash", "BatchLeftNoResult"],
        ["IsUndeleteBatch", "UndeleteRecordingsBatch"],
    ]
    # And the restore failed by name, the batch's entries counted, the reason said to be unknown
    assert_failed_by_name_with_lock_released_and_journal_closed(result)
    copied = len(copy_batch["entries"])
    assert (
        f"batches [0] left no result ({copied} entries; their child failed: no crash record (the child's catcher failed too)"
        in result.cause
    )
    # And the crashed batch's keys are as they were, the undelete batch's are back
    after = recordings_of(world)
    assert all(after[key] == before[key] for key in keys_of(copy_batch))
    assert all(after[key]["markers"] == [] for key in keys_of(undelete_batch))
    assert_nothing_permanently_deleted(before, after)


def registry_entries(world_described: dict[str, Any], bucket: str = BUCKET) -> dict[str, str]:
    """The prefixes held on `bucket` (journal/prefix_registry.py) and who holds each."""
    items = [r for r in world_described["journal"] if r["pk"] == f"PREFIXES#s3:{bucket}"]
    return {resource: entry["holder"] for item in items for resource, entry in (item.get("holders") or {}).items()}


def lock_items(world_described: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in world_described["journal"] if r["pk"].startswith("LOCK#")]


def test_an_overlapping_restore_started_while_one_runs_is_refused_by_name_changes_nothing_and_releases_its_own_lock(rehearsal):
    # Given a restore of recordings/ that holds its prefix and is planning (held at its first planner page)
    world = rehearsal(calls_rows=2000, recordings=12)
    tenant_prefix = world.recordings.seeded[BUCKET].keys[0].rsplit("/", 1)[0] + "/"
    reached, release = threading.Event(), threading.Event()
    answer = world.bridge.answer

    def held_answer(function_name: str, body: Any, headers: Any) -> bytes:
        event = json.loads(body or "{}")
        if event.get("context", {}).get("state") == "PlanRecordingsPage" and not release.is_set():
            reached.set()
            release.wait(timeout=60)
        return answer(function_name, body, headers)

    world.bridge.answer = held_answer  # type: ignore[method-assign]
    first = world.start(
        "recordings-restore", {"bucket": BUCKET, "prefix": "recordings/", "as_of": bad_deploy_time(world), "requested_by": "ana"}
    )
    assert reached.wait(timeout=60), "the first restore never reached its planner"
    before = recordings_of(world)

    # When a restore of a tenant's prefix inside it starts meanwhile (its exact lock is a different key, so TakeLock lets it by)
    second = world.run(
        "recordings-restore", {"bucket": BUCKET, "prefix": tenant_prefix, "as_of": bad_deploy_time(world), "requested_by": "ben"}
    )

    # Then it is refused by name at the overlap check, naming the running restore, before it plans anything
    assert (second.status, second.error) == ("FAILED", "OperationInProgress")
    assert first.rsplit(":", 1)[-1] in second.cause and "requested by ana" in second.cause and "overlaps" in second.cause
    assert second.states()[:5] == ["RecordRequest", "RecordStart", "CheckRecordingsInput", "TakeLock", "CheckOverlappingRestores"]
    assert "PlanRecordingsPage" not in second.states()
    # And nothing changed in S3, its own lock was released, and the first still holds its lock and its prefix
    assert recordings_of(world) == before
    (refused,) = [r for r in journal_of(second) if r["execution_arn"] != first]
    assert refused["outcome"] == "FAILED" and refused["lock_release"] == f"released the lock on s3://{BUCKET}/{tenant_prefix}"
    assert [lock["holder"] for lock in lock_items(second.world)] == [first]
    assert registry_entries(second.world) == {f"s3:{BUCKET}/recordings/": first}

    # And the first goes on to restore and releases both its lock and its prefix
    release.set()
    done = world.follow("recordings-restore", first)
    assert done.status == "SUCCEEDED", done.cause
    assert lock_items(done.world) == [] and registry_entries(done.world) == {}


@pytest.mark.parametrize("holder", ["finished", "unknown-for-longer-than-any-run"])
def test_a_prefix_left_held_by_an_execution_that_ended_is_taken_over_and_the_restore_proceeds(rehearsal, holder):
    # Given the registry still lists recordings/ as held by an execution that has ended without releasing it
    world = rehearsal(calls_rows=2000, recordings=8)
    if holder == "finished":
        stale_arn = world.start(
            "recordings-restore", {"bucket": BUCKET, "prefix": "recordings/none/", "undelete_after": bad_deploy_time(world)}
        )
        assert world.follow("recordings-restore", stale_arn).status == "SUCCEEDED"
        acquired_at = world.clock.now()
    else:
        stale_arn = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-recordings-restore:crashed-long-ago"
        acquired_at = world.clock.now() - timedelta(days=2)
    boto3.resource("dynamodb").Table(world.journal.table_name).put_item(
        Item={
            "pk": f"PREFIXES#s3:{BUCKET}",
            "sk": "REGISTRY",
            "bucket": BUCKET,
            "holders": {
                f"s3:{BUCKET}/recordings/": {
                    "holder": stale_arn,
                    "workflow": "recordings-restore",
                    "requested_by": "someone",
                    "acquired_at": acquired_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            },
            "version": 7,
        }
    )

    # When a restore of a prefix inside it starts
    tenant_prefix = world.recordings.seeded[BUCKET].keys[0].rsplit("/", 1)[0] + "/"
    result = world.run("recordings-restore", {"bucket": BUCKET, "prefix": tenant_prefix, "as_of": bad_deploy_time(world)})

    # Then the stale entry is dropped, the restore runs, and at its end nothing is held
    assert result.status == "SUCCEEDED", result.cause
    assert "PlanRecordingsPage" in result.states()
    assert lock_items(result.world) == [] and registry_entries(result.world) == {}
