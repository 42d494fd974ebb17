"""Cutover in `restore` and the `rollback` workflow, executed end to end on emulated API hosts.

The real ASL and handlers; SSM Run Command runs the project's own document scripts under a real
shell in a per-host sandbox; each host's app is a real health server connecting to PostgreSQL.
"""

from __future__ import annotations

import pytest

from restorectl.lambda_bridge import Injection
from tests.workflow.conftest import (
    SOURCE,
    endpoint_of,
    instance_ids,
    start_tagged_host,
    start_tagged_host_before,
    state_output,
    tags_of,
    terminate_host_before,
)
from tests.workflow.redrives import assert_each_redrive_refused

pytestmark = pytest.mark.workflow

SNAPSHOT_CUTOVER = {"mode": "snapshot", "cutover": True}


def env_path(world, host):
    return host.path(world.app_hosts.env_file)


def env_text(world, host) -> str:
    return env_path(world, host).read_bytes().decode()


def without_db_host(text: str) -> list[str]:
    return [line for line in text.split("\n") if not line.startswith("DB_HOST=")]


@pytest.mark.parametrize("hosts", [1, 2])
def test_cutover_points_every_api_host_at_the_validated_copy_and_keeps_the_rest_of_env(rehearsal, hosts):
    # Given IRISX with `hosts` API hosts on the production database
    world = rehearsal(calls_rows=300, restore_minutes=3, app_hosts=hosts)
    source_host = endpoint_of(SOURCE)
    before = {h.instance_id: env_text(world, h) for h in world.app_hosts.hosts}

    # When an engineer restores the latest snapshot with cutover
    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then the execution succeeds through validation, the swap and the health check
    assert result.status == "SUCCEEDED", result.cause
    states = result.states()
    assert states.index("ValidateRestore") < states.index("ShouldCutOver") < states.index("StartCutover") < states.index("CheckCutover")
    assert states.index("CheckHealthOnRestored") < states.index("RestoreSucceeded")
    assert "RevertCutover" not in states
    target = result.output["target_instance"]
    restored_host = result.output["endpoint"]["address"]
    assert result.output["cutover"]["target_db_host"] == restored_host

    # And every host's .env names the restored endpoint, every other line byte for byte as before
    for host in world.app_hosts.hosts:
        after = env_text(world, host)
        assert f"\nDB_HOST={restored_host}\n" in after
        assert without_db_host(after) == without_db_host(before[host.instance_id])
        assert not after.endswith("\n")  # the last line still has no newline
        backups = list(env_path(world, host).parent.glob(".env.bak.*"))
        assert len(backups) == 1 and backups[0].read_bytes().decode() == before[host.instance_id]
        assert not list(env_path(world, host).parent.glob(".set_db_host.*"))  # no temporary file left
        # the previous DB_HOST is recorded for the rollback
        assert result.output["cutover"]["results"][host.instance_id]["output"]["previous_db_host"] == source_host

    # And the app answers from the restored database, a real connection
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(restored_host, "connected")] * hosts
    assert instance_ids(result.world) == sorted([SOURCE, target])
    # And only the project's documents ran, only on the tagged hosts
    assert {c["document"] for c in world.app_hosts.commands_run} == {"irisx-restore-set-db-host", "irisx-restore-app-control"}


def test_a_failed_swap_on_one_of_two_hosts_rolls_both_back_and_deletes_the_copy(rehearsal):
    # Given two API hosts, the second of which fails its first pm2 restart
    world = rehearsal(calls_rows=300, restore_minutes=3, failing_hosts=("irisx-api-2",))
    source_host = endpoint_of(SOURCE)

    # When a restore with cutover runs
    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then it fails with the original error, naming the host
    assert result.status == "FAILED"
    assert result.error == "CutoverFailed"
    failing = world.app_hosts.hosts[1].instance_id
    assert failing in result.cause and "pm2 restart irisx-api failed" in result.cause
    states = result.states()
    assert (
        states.index("CheckCutover")
        < states.index("RevertCutover")
        < states.index("CheckHealthOnOriginal")
        < states.index("CleanUpAfterFailure")
    )
    assert "CheckHealthOnRestored" not in states

    # And both hosts are back on the original endpoint and healthy there, the copy deleted
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(source_host, "connected")] * 2
    assert instance_ids(result.world) == [SOURCE]
    # with a final snapshot: the host whose swap worked served from it until it was pointed back
    assert_deleted_keeping_what_the_app_wrote(world, result)


def test_a_cleanup_retried_after_its_delete_was_taken_still_names_the_final_snapshot_holding_the_copy(rehearsal):
    # Given a cutover whose second host fails its swap, and a cleanup whose answer is lost once after it
    # deleted the copy (Lambda's client error, which the state retries: the retry finds the copy gone)
    world = rehearsal(
        calls_rows=300, restore_minutes=3, failing_hosts=("irisx-api-2",), inject=["CleanUpAfterFailure=Lambda.SdkClientException:1@after"]
    )

    # When the restore with cutover runs
    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then the cleanup ran twice, and the execution fails with the original error
    assert result.status == "FAILED" and result.error == "CutoverFailed"
    assert result.states().count("CleanUpAfterFailure") == 1
    assert [i["error"] for i in result.invocations if i["state"] == "CleanUpAfterFailure"] == ["Lambda.SdkClientException", None]
    # And the cause names the one final snapshot the first attempt took (the second looks for the same name), not "nothing was created"
    target = state_output(result, "CheckRestoreInput")["plan"]["target_instance"]
    (final,) = [s for s in result.world["db_snapshots"] if s["id"].startswith(f"{target}-final-")]
    assert final["status"] == "creating"  # the retry came seconds later
    assert f"[cleanup: {target} does not exist; its final snapshot {final['id']} is being taken (creating): " in (result.cause)
    assert "nothing was created" not in result.cause
    assert instance_ids(result.world) == [SOURCE]


def cut_over_to_a_copy(rehearsal, **options):
    """A world whose production a restore has cut over to a copy; (the world, the copy's name)."""
    world = rehearsal(calls_rows=300, restore_minutes=3, **options)
    restored = world.run("restore", SNAPSHOT_CUTOVER)
    assert restored.status == "SUCCEEDED", restored.cause
    return world, restored.output["target_instance"]


def assert_deleted_keeping_what_the_app_wrote(world, result) -> None:
    target = state_output(result, "CheckRestoreInput")["plan"]["target_instance"]
    (final,) = [s for s in result.world["db_snapshots"] if s["id"].startswith(f"{target}-final-")]
    assert final["status"] in ("creating", "available")
    hosts = ", ".join(sorted(h.instance_id for h in world.app_hosts.hosts))
    assert (
        f"[cleanup: deleted {target} (final snapshot {final['id']}, its automated backups kept): this execution's cutover "
        f"ran the app on it until {hosts} were pointed back, so it may hold what the app wrote]"
    ) in result.cause


def test_health_failure_after_a_good_swap_rolls_back_and_keeps_the_original_error(rehearsal):
    # Given hosts that cannot reach restored instances (as with a missing security group rule)
    world = rehearsal(calls_rows=300, restore_minutes=3, app_blocked_from_restored=True)
    source_host = endpoint_of(SOURCE)

    # When a restore with cutover runs
    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then the swap itself succeeds, the health check fails after its bounded retries
    assert result.status == "FAILED"
    assert result.error == "HealthCheckFailed"
    assert "not healthy on the restored database" in result.cause and "database='error'" in result.cause
    states = result.states()
    assert states.count("CheckHealthOnRestored") >= 2
    assert states.index("CheckHealthOnRestored") < states.index("RevertCutover") < states.index("CleanUpAfterFailure")

    # And every host is back on production and healthy, the copy deleted with a final snapshot (the app ran on it)
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(source_host, "connected")] * 2
    assert instance_ids(result.world) == [SOURCE]
    assert_deleted_keeping_what_the_app_wrote(world, result)


@pytest.mark.parametrize("when", ["before-the-revert", "between-its-look-and-its-send"])
def test_a_host_terminated_after_a_good_swap_is_left_out_of_the_revert_and_the_others_go_back(rehearsal, monkeypatch, when):
    import boto3

    from restore_runbook.hosts import ssm

    # Given hosts that cannot reach restored instances, so the health check after the swap fails,
    # and an autoscaling group that terminates the first host before the revert, or just after the
    # revert looked at which hosts still exist
    world = rehearsal(calls_rows=300, restore_minutes=3, app_blocked_from_restored=True)
    source_host = endpoint_of(SOURCE)
    if when == "before-the-revert":
        gone = terminate_host_before(world, "irisx-api-1", "RevertCutover")
    else:
        gone = next(h.instance_id for h in world.app_hosts.hosts if h.name == "irisx-api-1")
        look = ssm.not_terminated
        looks: list[list[str]] = []

        def terminated_right_after_the_first_look(hosts: list[str]) -> list[str]:
            there = look(hosts)
            looks.append(there)
            if len(looks) == 1:
                boto3.client("ec2").terminate_instances(InstanceIds=[gone])
            return there

        monkeypatch.setattr(ssm, "not_terminated", terminated_right_after_the_first_look)
    kept = next(h.instance_id for h in world.app_hosts.hosts if h.instance_id != gone)

    # When a restore with cutover runs
    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then the revert is sent to the host still there (SSM would refuse a command naming the terminated
    # one for every host), which is healthy on production again, and the copy goes with its final snapshot
    assert (result.status, result.error) == ("FAILED", "HealthCheckFailed"), result.cause
    states = result.states()
    assert states.index("RevertCutover") < states.index("CheckHealthOnOriginal") < states.index("CleanUpAfterFailure")
    revert = state_output(result, "RevertCutover")["rollback"]
    assert (revert["terminated_since_cutover"], revert["hosts"]) == ([gone], [kept])
    if when != "before-the-revert":  # the first send named both and SSM refused it; the resend names the one left
        assert looks == [sorted([gone, kept]), [kept]]
    assert [c["hosts"] for c in revert["commands"]] == [[kept]]
    (serving,) = [h for h in result.world["app_hosts"] if h["id"] == kept]
    assert (serving["db_host"], serving["health"]) == (source_host, "connected")
    assert instance_ids(result.world) == [SOURCE]
    assert [s for s in result.world["db_snapshots"] if "-final-" in s["id"]]


def test_when_every_host_the_cutover_reached_is_terminated_the_revert_fails_naming_them_and_keeps_the_copy(rehearsal):
    # Given a health check that fails after the swap, and both hosts terminated before the revert
    world = rehearsal(calls_rows=300, restore_minutes=3, app_blocked_from_restored=True)
    gone = sorted(terminate_host_before(world, name, "RevertCutover") for name in ("irisx-api-1", "irisx-api-2"))

    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then nothing can confirm that no host uses the copy: RollbackFailed names the hosts, the copy is kept
    assert (result.status, result.error) == ("FAILED", "RollbackFailed"), result.cause
    assert result.states()[-4:] == ["RevertCutover", "ExplainRollbackFailure", "RecordFailure", "RestoreFailedWithOriginalError"]
    assert f"every API host the cutover reached ({', '.join(gone)}) has been terminated since" in result.cause
    assert len(instance_ids(result.world)) == 2
    assert "was NOT deleted" in result.cause


def test_a_rollback_that_cannot_restart_a_host_fails_with_rollback_failed_naming_every_host(rehearsal):
    # Given a host whose pm2 never restarts
    world = rehearsal(calls_rows=300, restore_minutes=3, broken_hosts=("irisx-api-2",))
    source_host = endpoint_of(SOURCE)
    good, broken = world.app_hosts.hosts

    # When a restore with cutover runs
    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then the execution fails with RollbackFailed, whose cause says where each host points
    assert result.status == "FAILED"
    assert result.error == "RollbackFailed"
    assert good.instance_id in result.cause and broken.instance_id in result.cause
    assert f"DB_HOST={source_host}" in result.cause
    assert "original error CutoverFailed" in result.cause
    assert "was NOT deleted" in result.cause
    assert "CleanUpAfterFailure" not in result.states()

    # And the restored copy is kept: a host may still use it
    target = next(i["id"] for i in result.world["db_instances"] if i["id"] != SOURCE)
    assert instance_ids(result.world) == sorted([SOURCE, target])
    hosts = {h["id"]: h for h in result.world["app_hosts"]}
    assert hosts[good.instance_id] == {**hosts[good.instance_id], "db_host": source_host, "health": "connected"}


def test_an_injected_error_in_the_revert_ends_in_rollback_failed_and_keeps_the_copy(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3, app_blocked_from_restored=True, inject=["CheckRevert=Lambda.ServiceException"])

    result = world.run("restore", SNAPSHOT_CUTOVER)

    assert result.status == "FAILED"
    assert result.error == "RollbackFailed"
    assert "Lambda.ServiceException" in result.cause and "original error HealthCheckFailed" in result.cause
    assert len(instance_ids(result.world)) == 2
    # and a redrive resumed at the explanation refuses there, touching nothing
    assert_each_redrive_refused(world, result, only=["ExplainRollbackFailure"])


def test_without_cutover_no_host_is_touched(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3)

    result = world.run("restore", {"mode": "snapshot"})

    assert result.status == "SUCCEEDED", result.cause
    assert result.output["cutover"] is None
    assert world.app_hosts.commands_run == []


def db_hosts(world) -> dict[str, str | None]:
    return {h.instance_id: world.app_hosts.db_host_of(h) for h in world.app_hosts.hosts}


def cutover_sends(world, db_host: str) -> list[dict]:
    return [
        c for c in world.app_hosts.commands_run if c["document"] == "irisx-restore-set-db-host" and c["parameters"]["DbHost"] == [db_host]
    ]


def restore_journal(result) -> dict:
    (record,) = [r for r in result.world["journal"] if r["pk"] == "WORKFLOW#restore"]
    return record


def test_a_cutover_whose_start_step_fails_after_sending_points_every_host_back_to_production_and_keeps_nothing_pointed_at_a_deleted_copy(
    rehearsal,
):
    # Given two API hosts on production, and a StartCutover whose Lambda times out after it sent the command
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["StartCutover=Sandbox.Timedout@after"])
    source_host = endpoint_of(SOURCE)

    # When a restore with cutover runs
    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then the command did reach both hosts, and the workflow fails with the start step's error
    assert result.status == "FAILED"
    assert result.error == "Sandbox.Timedout"
    sent = [c for c in world.app_hosts.commands_run if c["document"] == "irisx-restore-set-db-host"]
    assert sent[0]["parameters"]["DbHost"] != [source_host]
    # And a missing cutover record is treated as unknown: the rollback points every tagged host back
    # at the source's endpoint and checks health there before the copy is deleted
    states = result.states()
    assert states.index("RevertCutover") < states.index("CheckRevert") < states.index("CheckHealthOnOriginal")
    assert states.index("CheckHealthOnOriginal") < states.index("CleanUpAfterFailure")
    assert len(cutover_sends(world, source_host)) == 2
    # And no host points at the deleted copy: both are on production and healthy there
    assert instance_ids(result.world) == [SOURCE]
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(source_host, "connected")] * 2


def test_a_retried_cutover_start_does_not_send_twice_or_record_the_copy_as_the_previous_host(rehearsal):
    # Given a StartCutover whose first answer is lost after it sent the command (Lambda retries it),
    # and hosts that cannot use the restored instance, so the cutover must be rolled back
    world = rehearsal(
        calls_rows=300, restore_minutes=3, app_blocked_from_restored=True, inject=["StartCutover=Lambda.ServiceException:1@after"]
    )
    source_host = endpoint_of(SOURCE)

    # When a restore with cutover runs
    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then the retry followed the command already sent instead of sending another
    assert [i["error"] for i in result.invocations if i["state"] == "StartCutover"] == ["Lambda.ServiceException", None]
    to_copy = [
        c
        for c in world.app_hosts.commands_run
        if c["document"] == "irisx-restore-set-db-host" and c["parameters"]["DbHost"] != [source_host]
    ]
    assert len(to_copy) == 2  # one per host, once
    # And the rollback put both hosts back on production (not on the copy), healthy, and deleted the copy
    assert result.status == "FAILED"
    assert result.error == "HealthCheckFailed"
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(source_host, "connected")] * 2
    assert instance_ids(result.world) == [SOURCE]


def test_a_successful_retried_cutover_start_records_production_as_every_hosts_previous_db_host(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["StartCutover=Lambda.ServiceException:1@after"])
    source_host = endpoint_of(SOURCE)

    result = world.run("restore", SNAPSHOT_CUTOVER)

    assert result.status == "SUCCEEDED", result.cause
    cutover = result.output["cutover"]
    assert cutover["reused_command"] is True
    assert {h: r["output"]["previous_db_host"] for h, r in cutover["results"].items()} == dict.fromkeys(db_hosts(world), source_host)
    assert len(cutover_sends(world, cutover["target_db_host"])) == 2  # one per host, once


def test_a_cutover_sent_twice_anyway_is_reverted_to_production_not_to_the_copy(rehearsal, monkeypatch):
    # Given a retried StartCutover that cannot find its first command (as when ssm:ListCommands is not
    # allowed yet), so the hosts run the cutover twice and report the copy as their previous DB_HOST
    from restore_runbook.hosts import ssm

    monkeypatch.setattr(ssm, "find_sent_command", lambda document, marker: None)
    world = rehearsal(
        calls_rows=300, restore_minutes=3, app_blocked_from_restored=True, inject=["StartCutover=Lambda.ServiceException:1@after"]
    )
    source_host = endpoint_of(SOURCE)

    # When the restore with cutover fails its health check and rolls back
    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then the second send happened, yet the revert treats "previous = the copy" as unknown: production
    assert result.error == "HealthCheckFailed"
    restored = [
        c
        for c in world.app_hosts.commands_run
        if c["document"] == "irisx-restore-set-db-host" and c["parameters"]["DbHost"] != [source_host]
    ]
    assert len(restored) == 4
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(source_host, "connected")] * 2
    assert instance_ids(result.world) == [SOURCE]


def test_a_successful_cutover_protects_the_new_production_instance_and_says_production_runs_on_it(rehearsal):
    import boto3

    # Given IRISX on production
    world = rehearsal(calls_rows=300, restore_minutes=3)
    rds = boto3.client("rds")
    source_protection = rds.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]["DeletionProtection"]

    # When a restore with cutover succeeds
    result = world.run("restore", SNAPSHOT_CUTOVER)
    assert result.status == "SUCCEEDED", result.cause
    target = result.output["target_instance"]

    # Then the instance production now uses has deletion protection on, the old one is untouched
    assert rds.describe_db_instances(DBInstanceIdentifier=target)["DBInstances"][0]["DeletionProtection"] is True
    assert rds.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]["DeletionProtection"] is source_protection
    assert result.output["cutover"]["health"]["deletion_protection"] == {
        "instance": target,
        "enabled": True,
        "marked": True,
        "detail": f"turned on for {target}, marked irisx-restore:role=production",
    }
    # And the production marker followed it, so the IAM fence by marker covers it; the old one keeps its tags
    assert tags_of(target).get("irisx-restore:role") == "production"
    assert "irisx-restore:role" not in tags_of(SOURCE)
    # And the journal and the notification say production runs on it, never that it may be deleted
    record = restore_journal(result)
    assert record["left_behind"].startswith(f"production now runs on {target}")
    assert f"the old instance {SOURCE} is untouched" in record["left_behind"]
    assert "or delete it" not in record["left_behind"]
    (notification,) = [n for n in result.world["notifications"] if "restore SUCCEEDED" in n["subject"]]
    assert f"Left behind: production now runs on {target}" in notification["message"]


def test_a_restore_without_cutover_still_offers_keep_cut_over_or_delete(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3)

    result = world.run("restore", {"mode": "snapshot"})

    assert result.status == "SUCCEEDED", result.cause
    target = result.output["target_instance"]
    assert restore_journal(result)["left_behind"] == f"the restored instance {target} (keep it, cut over to it, or delete it)"


def test_a_rollback_that_fails_after_hosts_changed_names_every_host_and_its_db_host_in_cause_and_left_behind(rehearsal):
    # Given hosts that cannot use the copy, and a revert check that fails after the revert was sent
    world = rehearsal(calls_rows=300, restore_minutes=3, app_blocked_from_restored=True, inject=["CheckRevert=Lambda.ServiceException"])
    source_host = endpoint_of(SOURCE)

    # When the restore with cutover rolls back and the rollback fails
    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then RollbackFailed names every host with the DB_HOST it had and where the rollback sent it
    assert result.error == "RollbackFailed"
    record = restore_journal(result)
    for host in world.app_hosts.hosts:
        assert f"{host.instance_id}: DB_HOST=" in result.cause
        assert host.instance_id in record["left_behind"]
    assert f"the rollback to {source_host} was sent" in result.cause
    assert "was NOT deleted" in record["left_behind"]
    assert len(instance_ids(result.world)) == 2


# -- the rollback workflow ---------------------------------------------------------------------------------


def test_rollback_workflow_stops_points_back_restarts_checks_health_and_deletes_the_copy_last(rehearsal):
    # Given a restore that was cut over to and must now be undone
    world, target = cut_over_to_a_copy(rehearsal)
    source_host = endpoint_of(SOURCE)

    # When the rollback workflow runs on the restored instance, its name typed as confirm
    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then each runbook step ran, in order
    assert result.status == "SUCCEEDED", result.cause
    states = result.states()
    for earlier, later in (
        ("StopApp", "PointDbHostBackAndRestart"),
        ("PointDbHostBackAndRestart", "CheckHealthOnOriginal"),
        ("CheckHealthOnOriginal", "DeleteRestoredInstance"),
    ):
        assert states.index(earlier) < states.index(later)
    # And the copy is gone, every host is on production and healthy, the output says what was done per host
    assert instance_ids(result.world) == [SOURCE]
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(source_host, "connected")] * 2
    assert result.output["original_endpoint"] == source_host
    assert result.output["deleted"].startswith(f"deleted {target}")
    assert set(result.output["hosts"]) == {h.instance_id for h in world.app_hosts.hosts}
    assert all(h["healthy"] for h in result.output["health"].values())


@pytest.mark.parametrize("which", ["source", "unmanaged"])
def test_rollback_workflow_refuses_the_source_and_unmanaged_instances_touching_nothing(rehearsal, which):
    import boto3

    world = rehearsal(calls_rows=300, restore_minutes=3)
    if which == "source":
        name = SOURCE
    else:
        name = "irisx-reporting-replica"
        boto3.client("rds").create_db_instance(
            DBInstanceIdentifier=name,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername="postgres",
            MasterUserPassword="not-used-by-the-rehearsal",
        )
    before = sorted(i["id"] for i in world.describe_world()["db_instances"])

    result = world.run("rollback", {"restored_instance": name})

    assert result.status == "FAILED"
    assert result.error == "InvalidInput"
    assert "nothing was touched" in result.cause.lower()
    assert instance_ids(result.world) == before
    assert world.app_hosts.commands_run == []
    assert [h["health"] for h in result.world["app_hosts"]] == ["connected"] * 2


def test_rolling_back_a_copy_production_never_ran_on_after_a_cutover_to_another_is_refused_keeping_the_hosts_on_it(rehearsal):
    # Given a copy restored and kept without cutover, then a second restore cut over to (production runs on it)
    world = rehearsal(calls_rows=300, restore_minutes=3)
    kept = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-kept-copy"})
    assert kept.status == "SUCCEEDED", kept.cause
    serving = world.run("restore", {**SNAPSHOT_CUTOVER, "target_instance": "irisx-serving-copy"})
    assert serving.status == "SUCCEEDED", serving.cause
    serving_endpoint = endpoint_of("irisx-serving-copy")
    assert {h["db_host"] for h in serving.world["app_hosts"]} == {serving_endpoint}
    commands_before = len(world.app_hosts.commands_run)

    # When someone rolls back the first copy (no confirm needed: production never ran on it)
    result = world.run("rollback", {"restored_instance": "irisx-kept-copy", "requested_by": "ana"})

    # Then it is refused before anything is touched, naming the copy production runs on and what to do
    assert (result.status, result.error) == ("FAILED", "UnsafeOperation"), result.cause
    assert "production was cut over to irisx-serving-copy" in result.cause and "Nothing was touched" in result.cause
    assert f"give original_endpoint {serving_endpoint}" in result.cause
    assert "StopApp" not in result.states() and len(world.app_hosts.commands_run) == commands_before
    # And the hosts stay on the copy production runs on, both copies exist, and the lock is free
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(serving_endpoint, "connected")] * 2
    assert {"irisx-kept-copy", "irisx-serving-copy"} <= set(instance_ids(result.world))
    assert not [r for r in result.world["journal"] if r["pk"].startswith("LOCK#")]

    # And given the serving copy's endpoint as the one to keep, the first copy is rolled back with the hosts kept on it
    again = world.run("rollback", {"restored_instance": "irisx-kept-copy", "original_endpoint": serving_endpoint})
    assert again.status == "SUCCEEDED", again.cause
    assert [(h["db_host"], h["health"]) for h in again.world["app_hosts"]] == [(serving_endpoint, "connected")] * 2
    assert "irisx-kept-copy" not in instance_ids(again.world) and "irisx-serving-copy" in instance_ids(again.world)


def test_a_cutover_names_the_warm_pool_hosts_it_could_not_reach_so_none_starts_on_the_old_database_unnoticed(rehearsal):
    import boto3

    # Given a warm pool's app host, stopped in EC2: no SSM command reaches it, and it starts with its own .env
    world = rehearsal(calls_rows=300, restore_minutes=3)
    parked = start_tagged_host(world, stopped=True)

    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then the running hosts are cut over, and the success record and its notice name the parked host and what to do
    assert result.status == "SUCCEEDED", result.cause
    restored_host = result.output["endpoint"]["address"]
    assert {h["db_host"] for h in result.world["app_hosts"]} == {restored_host}
    (record,) = [r for r in result.world["journal"] if r["pk"] == "WORKFLOW#restore"]
    assert f"WARNING: app host(s) {parked} are stopped in EC2" in record["left_behind"]
    assert f"set DB_HOST={restored_host} on them before they start" in record["left_behind"]
    (notice,) = [n for n in result.world["notifications"] if "restore SUCCEEDED" in n["subject"]]
    assert parked in notice["message"]
    boto3.client("ec2").terminate_instances(InstanceIds=[parked])


def test_rollback_workflow_without_stopping_first_skips_only_the_stop(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3)
    target = world.run("restore", {"mode": "snapshot"}).output["target_instance"]

    result = world.run("rollback", {"restored_instance": target, "stop_app_first": False})

    assert result.status == "SUCCEEDED", result.cause
    assert "StopApp" not in result.states()
    assert {"DeleteRestoredInstance", "PointDbHostBackAndRestart", "CheckHealthOnOriginal"} <= set(result.states())
    assert instance_ids(result.world) == [SOURCE]
    assert [h["health"] for h in result.world["app_hosts"]] == ["connected"] * 2


def test_rollback_workflow_that_cannot_restart_a_host_fails_with_rollback_failed_naming_it(rehearsal):
    # Given a restored copy and a host whose pm2 never restarts
    world = rehearsal(calls_rows=300, restore_minutes=3, broken_hosts=("irisx-api-2",))
    target = world.run("restore", {"mode": "snapshot"}).output["target_instance"]
    good, broken = world.app_hosts.hosts

    # When the rollback workflow runs
    result = world.run("rollback", {"restored_instance": target})

    # Then it fails with RollbackFailed, naming both hosts and where they point
    assert result.status == "FAILED"
    assert result.error == "RollbackFailed"
    assert broken.instance_id in result.cause and good.instance_id in result.cause
    assert "pm2 restart irisx-api failed" in result.cause
    assert result.states()[-1] == "RollbackFailed"


def test_an_injected_failure_in_the_rollback_workflow_is_reported_as_rollback_failed(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["DeleteRestoredInstance=UnsafeOperation"])
    target = world.run("restore", {"mode": "snapshot"}).output["target_instance"]

    result = world.run("rollback", {"restored_instance": target})

    assert result.status == "FAILED"
    assert result.error == "RollbackFailed"
    assert "UnsafeOperation" in result.cause
    # The delete comes last: the hosts were already back on the original and healthy when it failed
    states = result.states()
    assert states.index("PointDbHostBackAndRestart") < states.index("CheckHealthOnOriginal") < states.index("DeleteRestoredInstance")
    assert sorted(instance_ids(result.world)) == sorted([SOURCE, target])
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(endpoint_of(SOURCE), "connected")] * 2
    assert f"{target} was NOT deleted" in result.cause and "healthy" in result.cause


def test_the_rollback_workflow_deletes_the_copy_only_after_every_host_is_healthy_on_the_original_keeping_a_final_snapshot(rehearsal):
    import re

    # Given a restore that was cut over to: the copy is production now, taking writes
    world, target = cut_over_to_a_copy(rehearsal)

    # When the rollback workflow runs on it, its name typed as confirm
    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then the copy is deleted once, after the last health check, which found every host healthy on the original
    assert result.status == "SUCCEEDED", result.cause
    states = result.states()
    assert states.count("DeleteRestoredInstance") == 1
    delete_at = states.index("DeleteRestoredInstance")
    assert max(i for i, s in enumerate(states) if s == "CheckHealthOnOriginal") < delete_at
    # (with only the look for new hosts and the monitoring carry-back between the health check that passed and the delete)
    assert states[delete_at - 3 : delete_at] == ["IsOriginalHealthy", "LookForNewHosts", "CarryMonitoringBack"]
    assert states[delete_at + 1 :] == ["RollbackSucceeded", "RecordSuccess"]
    assert all(h["healthy"] for h in result.output["health"].values())
    # And a final snapshot of the copy is kept, named <instance>-final-YYYYMMDD-HHMMSS, and the output says so
    finals = [s["id"] for s in result.world["db_snapshots"] if s["id"].startswith(f"{target}-final-")]
    assert len(finals) == 1 and re.fullmatch(rf"{re.escape(target)}-final-\d{{8}}-\d{{6}}", finals[0])
    # (a copy production was cut over to may also have had its deletion protection lifted first)
    assert result.output["deleted"].startswith(f"deleted {target} (final snapshot {finals[0]}, its automated backups kept)")
    assert instance_ids(result.world) == [SOURCE]


def test_a_rollback_delete_retried_after_rds_took_it_says_the_final_snapshot_keeps_the_copy(rehearsal):
    # Given production on a copy, and a rollback whose delete answer is lost once after RDS took the delete
    world, target = cut_over_to_a_copy(rehearsal)
    world.bridge.injections[:] = [Injection.parse("DeleteRestoredInstance=Lambda.SdkClientException:1@after")]

    # When the rollback runs
    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then the retry finds the copy gone and says where its data is: the one final snapshot the first attempt took
    assert result.status == "SUCCEEDED", result.cause
    assert [i["error"] for i in result.invocations if i["state"] == "DeleteRestoredInstance"] == ["Lambda.SdkClientException", None]
    (final,) = [s for s in result.world["db_snapshots"] if s["id"].startswith(f"{target}-final-")]
    assert final["status"] == "creating"  # the retry came seconds later
    assert result.output["deleted"] == f"{target} does not exist; its final snapshot {final['id']} is being taken (creating)"
    assert instance_ids(result.world) == [SOURCE]


@pytest.mark.parametrize("state", ["running", "stopped"], ids=["started", "in-a-warm-pool"])
def test_a_host_started_during_the_rollback_keeps_the_copy_it_may_use_and_is_named(rehearsal, state):
    import boto3

    from tests.workflow.invariants import locks

    # Given a copy production was cut over to, and an app host an autoscaling group starts while the
    # rollback runs: after the rollback found its hosts, before it deletes the copy
    world, target = cut_over_to_a_copy(rehearsal)
    ec2 = boto3.client("ec2")
    # (after LookForNewHosts found none, while monitoring was carried back; stopped: a warm pool's host)
    started = start_tagged_host_before(world, "DeleteRestoredInstance", stopped=state == "stopped")

    # When the rollback runs
    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then the copy is not deleted (no final snapshot either): the new host was never pointed back
    assert started, "the rollback never reached DeleteRestoredInstance"
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    states = result.states()
    assert states[-7:] == [
        "LookForNewHosts",
        "CarryMonitoringBack",
        "DeleteRestoredInstance",
        "ExplainDeleteFailure",
        "CopyNotDeleted",
        "RecordFailure",
        "RollbackFailed",
    ]
    copy = next(i for i in result.world["db_instances"] if i["id"] == target)
    assert copy["status"] == "available"
    assert not [s for s in result.world["db_snapshots"] if s["id"].startswith(f"{target}-final-")]
    # (still marked production and protected from deletion: refused before the rollback unmarks it)
    assert tags_of(target)["irisx-restore:role"] == "production"
    assert boto3.client("rds").describe_db_instances(DBInstanceIdentifier=target)["DBInstances"][0]["DeletionProtection"] is True
    # And the cause names the new host, the hosts the rollback did point back, and the copy as RDS has it
    assert f"app host(s) {started[0]} appeared since the rollback found its hosts" in result.cause
    assert "delete it by hand" not in result.cause and "the deletion was refused as unsafe" in result.cause
    planned = [h.instance_id for h in world.app_hosts.hosts]
    assert f"({', '.join(sorted(planned))})" in result.cause
    assert f"{target} was NOT deleted" in result.cause
    # And the hosts it found serve from the original; the lock is released and the journal says the same
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(endpoint_of(SOURCE), "connected")] * 2
    assert locks(result.world) == []
    (record,) = [r for r in result.world["journal"] if r.get("workflow") == "rollback" and "outcome" in r]
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", "RollbackFailed", result.cause)
    ec2.terminate_instances(InstanceIds=started)


def test_a_look_for_new_hosts_that_fails_keeps_the_copy_and_says_to_check_the_hosts_not_to_delete_it(rehearsal):
    # Given a copy production was cut over to, and a rollback whose look for new hosts fails (EC2 throttled, say)
    # (the restore has no such state: the injection fires in the rollback only)
    world, target = cut_over_to_a_copy(rehearsal, inject=["LookForNewHosts=RuntimeError"])

    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then nothing was carried back or deleted, and the cause does not send anyone to delete a copy
    # a host may use: it says the copy is still marked and protected and what to check
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    assert result.states()[-5:] == ["MonitoringLeftOnCopy", "ExplainDeleteFailure", "CopyNotDeleted", "RecordFailure", "RollbackFailed"]
    assert target in instance_ids(result.world) and tags_of(target)["irisx-restore:role"] == "production"
    assert "delete it by hand" not in result.cause
    assert (
        f"{target} was NOT deleted" in result.cause
        and "it is still marked production and protected from deletion, as the rollback failed before it began deleting it; "
        "check that no app host uses it (every tagged host's DB_HOST), then run the rollback again"
        in result.cause
    )


def test_a_warm_pool_host_stopped_since_before_the_rollback_does_not_hold_it_up_and_is_named(rehearsal):
    import boto3

    # Given a copy production was cut over to, and a warm pool's app host, stopped in EC2 all along
    world, target = cut_over_to_a_copy(rehearsal)
    parked = start_tagged_host(world, stopped=True)

    # When the rollback runs
    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then it is not taken for a host that appeared since: the copy is deleted (final snapshot kept) as usual
    assert result.status == "SUCCEEDED", result.cause
    assert instance_ids(result.world) == [SOURCE]
    # And the output names it, since no command reached it: its DB_HOST is for a person to check
    assert (
        f"NOT pointed back, stopped in EC2 since before the rollback: {parked} (a warm pool's, say): check their DB_HOST names "
        f"{endpoint_of(SOURCE)} before they start"
    ) in result.output["deleted"]
    boto3.client("ec2").terminate_instances(InstanceIds=[parked])


def test_a_warm_pool_host_that_starts_during_the_rollback_keeps_the_copy(rehearsal):
    import json

    import boto3

    # Given a copy production was cut over to, a warm pool's host stopped when the rollback begins,
    # and started (as a scale-out would) before the rollback looks for new hosts
    world, target = cut_over_to_a_copy(rehearsal)
    parked = start_tagged_host(world, stopped=True)
    ec2 = boto3.client("ec2")
    answer = world.bridge.answer

    def start_it_before_the_look(function_name, body, headers):
        if json.loads(body or "{}").get("context", {}).get("state") == "LookForNewHosts":
            ec2.start_instances(InstanceIds=[parked])
        return answer(function_name, body, headers)

    world.bridge.answer = start_it_before_the_look  # type: ignore[method-assign]

    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then its .env, never pointed back, may name the copy: the copy is kept, marked and protected
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    assert "LookForNewHosts" in result.states() and "DeleteRestoredInstance" not in result.states()
    assert f"app host(s) {parked} appeared since the rollback found its hosts" in result.cause
    assert target in instance_ids(result.world) and tags_of(target)["irisx-restore:role"] == "production"
    ec2.terminate_instances(InstanceIds=[parked])


@pytest.mark.parametrize(
    ("options", "restore_input"),
    [
        # a host that cannot restart fails the cutover too, so that copy was restored without one
        (dict(broken_hosts=("irisx-api-2",)), {"mode": "snapshot"}),
        (dict(inject=["PointDbHostBackAndRestart=Lambda.Unknown"]), SNAPSHOT_CUTOVER),
    ],
    ids=["host-cannot-restart", "point-back-errors"],
)
def test_when_pointing_back_fails_the_rollback_workflow_does_not_delete_the_copy(rehearsal, options, restore_input):
    # Given a restored copy, and a rollback whose pointing back fails
    world = rehearsal(calls_rows=300, restore_minutes=3, **options)
    restored = world.run("restore", restore_input)
    assert restored.status == "SUCCEEDED", restored.cause
    target = restored.output["target_instance"]

    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then it fails with RollbackFailed, and the copy every host was using still exists, with no final snapshot taken
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    assert "DeleteRestoredInstance" not in result.states()
    assert sorted(instance_ids(result.world)) == sorted([SOURCE, target])
    assert next(i for i in result.world["db_instances"] if i["id"] == target)["status"] == "available"
    assert not [s for s in result.world["db_snapshots"] if s["id"].startswith(f"{target}-final-")]


def test_rehearse_cli_reports_app_hosts_in_the_world_and_takes_the_host_options():
    import json
    import subprocess
    import sys

    from restorectl.paths import ROOT

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "restorectl",
            "rehearse",
            "restore",
            "--json",
            "--rows",
            "300",
            "--restore-minutes",
            "3",
            "--app-hosts",
            "1",
            "--app-blocked-from-restored",
            "--input",
            '{"mode": "snapshot", "cutover": true}',
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert run.returncode == 1, run.stderr
    result = json.loads(run.stdout)
    assert result["error"] == "HealthCheckFailed"
    (host,) = result["world"]["app_hosts"]
    assert set(host) >= {"id", "db_host", "health"}
    assert host["health"] == "connected" and host["db_host"].startswith(SOURCE + ".")
    assert "CheckHealthOnRestored" in run.stderr
