"""Monitoring follows production: after a `restore` cutover, and back when `rollback` undoes it.

The real ASL and handlers on emulated AWS: CloudWatch alarms and their tags are moto's, RDS event
subscriptions are moto's with the source-identifier calls emulated (restorectl/emulated_monitoring.py),
and the world the rehearsal reports lists both.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.workflow.conftest import SOURCE, endpoint_of, instance_ids, start_tagged_host_before, tags_of

pytestmark = pytest.mark.workflow

SNAPSHOT_CUTOVER = {"mode": "snapshot", "cutover": True}
FAST = {"calls_rows": 300, "restore_minutes": 3}
ONCALL = "arn:aws:sns:us-east-1:123456789012:irisx-oncall"
CPU_ALARM = f"{SOURCE}-cpu-high"
OTHER_ALARM = "irisx-reporting-cpu-high"


def watch_production_and_another_instance() -> None:
    """Production's CPU alarm and event subscription, and an alarm and a subscription of another instance."""
    cloudwatch, rds = boto3.client("cloudwatch"), boto3.client("rds")
    for name, instance in ((CPU_ALARM, SOURCE), (OTHER_ALARM, "irisx-reporting")):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            AlarmDescription="CPU above 80% for 10 minutes",
            Namespace="AWS/RDS",
            MetricName="CPUUtilization",
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": instance}],
            Statistic="Average",
            Period=300,
            EvaluationPeriods=2,
            Threshold=80.0,
            ComparisonOperator="GreaterThanThreshold",
            AlarmActions=[ONCALL],
            OKActions=[ONCALL],
            Tags=[{"Key": "team", "Value": "platform"}],
        )
    rds.create_event_subscription(SubscriptionName="irisx-prod-events", SnsTopicArn=ONCALL, SourceType="db-instance", SourceIds=[SOURCE])
    rds.create_event_subscription(
        SubscriptionName="irisx-reporting-events", SnsTopicArn=ONCALL, SourceType="db-instance", SourceIds=["irisx-reporting"]
    )


def alarms_in(world: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in world["alarms"]}


def subscriptions_in(world: dict[str, Any]) -> dict[str, list[str]]:
    return {s["name"]: s["source_ids"] for s in world["event_subscriptions"]}


def journal_record(result: Any, workflow: str) -> dict[str, Any]:
    (record,) = [r for r in result.world["journal"] if r["pk"] == f"WORKFLOW#{workflow}"]
    return record


def notification_for(result: Any, workflow: str) -> dict[str, str]:
    (notification,) = [n for n in result.world["notifications"] if n["subject"] == f"[irisx-restore] {workflow} SUCCEEDED"]
    return notification


def same_but_the_instance(alarm: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in alarm.items() if k not in ("name", "instances", "tags")}


def test_alarms_and_event_subscriptions_are_carried_over_after_a_restore_cutover_and_undone_by_rollback(rehearsal):
    # Given production with a CPU alarm and an event subscription, and another instance with its own
    world = rehearsal(**FAST)
    watch_production_and_another_instance()
    before = world.describe_world()

    # When a restore with cutover succeeds
    restored = world.run("restore", SNAPSHOT_CUTOVER)

    # Then monitoring was carried over once production ran healthy and protected on the copy
    assert restored.status == "SUCCEEDED", restored.cause
    target = restored.output["target_instance"]
    states = restored.states()
    assert states.index("IsRestoredHealthy") < states.index("ProtectNewProduction") < states.index("CarryMonitoringOver")
    assert states.index("CarryMonitoringOver") < states.index("RestoreSucceeded")
    assert "MonitoringNotCarriedOver" not in states
    # And CloudWatch holds a twin of production's alarm for the new instance: same thresholds, actions and tags
    alarms = alarms_in(restored.world)
    twin_name = f"{target}-cpu-high"
    assert sorted(alarms) == sorted([CPU_ALARM, OTHER_ALARM, twin_name])
    original, twin = alarms[CPU_ALARM], alarms[twin_name]
    assert twin["instances"] == [target]
    assert same_but_the_instance(twin) == same_but_the_instance(original)
    assert (twin["threshold"], twin["alarm_actions"], twin["ok_actions"]) == (80.0, [ONCALL], [ONCALL])
    assert twin["tags"]["team"] == "platform" and twin["tags"]["irisx-restore:carried-from"] == SOURCE
    # the old alarm is kept as it was (the source still runs), the other instance's too
    assert alarms[CPU_ALARM] == alarms_in(before)[CPU_ALARM] and alarms[OTHER_ALARM] == alarms_in(before)[OTHER_ALARM]
    # And production's event subscription lists the new instance too; the other one is untouched
    assert subscriptions_in(restored.world) == {"irisx-prod-events": [SOURCE, target], "irisx-reporting-events": ["irisx-reporting"]}
    # And the output lists the alarms created and the old ones kept; the journal and the notification say it
    monitoring = restored.output["monitoring"]
    assert monitoring["carried_over"] is True
    assert monitoring["alarms_created"] == [{"from": CPU_ALARM, "to": twin_name}]
    assert monitoring["old_alarms_kept"] == [CPU_ALARM]
    assert monitoring["subscriptions_added"] == ["irisx-prod-events"]
    left_behind = journal_record(restored, "restore")["left_behind"]
    assert left_behind.startswith(f"production now runs on {target}")
    assert f"monitoring followed production to {target}: 1 alarm(s) on {SOURCE} copied" in left_behind
    assert f"Left behind: {left_behind}" in notification_for(restored, "restore")["message"]

    # Given an alarm the on-call engineer made by hand for the new production meanwhile
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName="hand-made: restored connections",
        Namespace="AWS/RDS",
        MetricName="DatabaseConnections",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": target}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=500.0,
        ComparisonOperator="GreaterThanThreshold",
    )

    # When the rollback workflow undoes the restore
    rolled_back = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then monitoring is carried back after every host is healthy on the original, before the copy is deleted
    assert rolled_back.status == "SUCCEEDED", rolled_back.cause
    states = rolled_back.states()
    assert states.index("IsOriginalHealthy") < states.index("CarryMonitoringBack") < states.index("DeleteRestoredInstance")
    assert "MonitoringNotCarriedBack" not in states
    assert instance_ids(rolled_back.world) == [SOURCE]
    # And only the tool's twin is gone: production's and the other instance's alarms are exactly as before, the hand-made one kept
    alarms = alarms_in(rolled_back.world)
    assert sorted(alarms) == sorted([CPU_ALARM, OTHER_ALARM, "hand-made: restored connections"])
    assert alarms[CPU_ALARM] == alarms_in(before)[CPU_ALARM] and alarms[OTHER_ALARM] == alarms_in(before)[OTHER_ALARM]
    # And the subscriptions list what they listed before the restore
    assert subscriptions_in(rolled_back.world) == subscriptions_in(before)
    # And the output and the journal say what was undone, and which alarm still watches the deleted copy
    monitoring = rolled_back.output["monitoring"]
    assert monitoring["carried_back"] is True
    assert (monitoring["alarms_deleted"], monitoring["subscriptions_removed"]) == ([twin_name], ["irisx-prod-events"])
    assert monitoring["other_alarms_on_copy"] == ["hand-made: restored connections"]
    left_behind = journal_record(rolled_back, "rollback")["left_behind"]
    assert f"monitoring watches {SOURCE} only again: 1 alarm(s) made for {target} deleted" in left_behind
    assert f"alarms NOT made by this tool still watch {target}: hand-made: restored connections" in left_behind


def test_a_failed_monitoring_carry_over_still_succeeds_and_says_what_to_do_by_hand(rehearsal):
    # Given production with an alarm and a subscription, and a carry-over step that fails
    world = rehearsal(**FAST, inject=["CarryMonitoringOver=RuntimeError"])
    watch_production_and_another_instance()
    before = world.describe_world()

    # When a restore with cutover runs
    result = world.run("restore", SNAPSHOT_CUTOVER)

    # Then the restore succeeds: the app is healthy on the validated, protected copy
    assert result.status == "SUCCEEDED", result.cause
    target = result.output["target_instance"]
    states = result.states()
    assert states.index("CarryMonitoringOver") < states.index("MonitoringNotCarriedOver") < states.index("RestoreSucceeded")
    assert "RevertCutover" not in states and "CleanUpAfterFailure" not in states
    assert [h["health"] for h in result.world["app_hosts"]] == ["connected"] * 2
    assert result.output["cutover"]["health"]["deletion_protection"]["enabled"] is True
    # And monitoring is as it was: nothing watches the new production yet
    assert result.world["alarms"] == before["alarms"]
    assert result.world["event_subscriptions"] == before["event_subscriptions"]
    # And the output names the error, and the journal and the notification say what to do by hand
    monitoring = result.output["monitoring"]
    assert (monitoring["carried_over"], monitoring["error"]) == (False, "RuntimeError")
    assert (monitoring["from_instance"], monitoring["to_instance"]) == (SOURCE, target)
    assert monitoring["cause"]
    left_behind = journal_record(result, "restore")["left_behind"]
    assert left_behind.startswith(f"production now runs on {target}")
    assert f"monitoring was NOT carried over to {target} (RuntimeError" in left_behind
    assert f"copy each CloudWatch alarm whose DBInstanceIdentifier is {SOURCE} for {target}" in left_behind
    assert f"add {target} to every RDS event subscription listing {SOURCE}" in left_behind
    assert f"Left behind: {left_behind}" in notification_for(result, "restore")["message"]


# moto warns that CloudWatch's model has no AccessDenied shape; botocore still raises it as a ClientError with that code.
@pytest.mark.filterwarnings("ignore:Exception\\(CloudWatchException\\) with code AccessDenied:UserWarning")
def test_a_failed_carry_back_still_deletes_the_copy_succeeds_and_names_the_alarms_left_behind(rehearsal, monkeypatch):
    # Given a restore cut over to, with production's alarm and subscription carried over
    world = rehearsal(**FAST)
    watch_production_and_another_instance()
    restored = world.run("restore", SNAPSHOT_CUTOVER)
    assert restored.status == "SUCCEEDED", restored.cause
    target = restored.output["target_instance"]
    twin_name = f"{target}-cpu-high"
    carried = restored.world
    # and CloudWatch refusing to delete alarms (as IAM would, were the carried-from tag missing)
    from moto.cloudwatch.exceptions import CloudWatchException
    from moto.cloudwatch.models import CloudWatchBackend

    def refuse(backend: Any, alarm_names: list[str]) -> None:
        raise CloudWatchException("AccessDenied", "User is not authorized to perform: cloudwatch:DeleteAlarms")

    monkeypatch.setattr(CloudWatchBackend, "delete_alarms", refuse)

    # When the rollback workflow runs
    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then the rollback still succeeds: every host is healthy on the original, and the copy is deleted with its final snapshot
    assert result.status == "SUCCEEDED", result.cause
    states = result.states()
    assert states.index("CarryMonitoringBack") < states.index("MonitoringNotCarriedBack") < states.index("DeleteRestoredInstance")
    assert states[-2:] == ["RollbackSucceeded", "RecordSuccess"]
    assert instance_ids(result.world) == [SOURCE]
    assert [h["health"] for h in result.world["app_hosts"]] == ["connected"] * 2
    assert result.output["deleted"].startswith(f"deleted {target} (final snapshot")
    # And the alarms are as the carry-over left them; production's own is untouched
    assert result.world["alarms"] == carried["alarms"]
    # And the output names the error and the alarm still there; the journal and the notification say what to clean up
    monitoring = result.output["monitoring"]
    assert (monitoring["carried_back"], monitoring["error"]) == (False, "MonitoringCarryOverFailed")
    assert f"deleting alarms {twin_name} failed: AccessDenied" in monitoring["cause"]
    assert f"'alarms_still_there': ['{twin_name}']" in monitoring["cause"]
    left_behind = journal_record(result, "rollback")["left_behind"]
    assert left_behind.startswith(f"deleted {target}")
    assert "monitoring was NOT carried back (MonitoringCarryOverFailed" in left_behind
    assert f"the CloudWatch alarms tagged irisx-restore:carried-from={SOURCE} whose DBInstanceIdentifier is {target} remain" in left_behind
    assert f"Left behind: {left_behind}" in notification_for(result, "rollback")["message"]


def test_a_host_started_before_the_carry_back_keeps_the_copy_with_its_alarms_and_subscriptions(rehearsal):
    from tests.workflow.invariants import locks

    # Given a restore cut over to, with production's alarm and subscription carried over
    world = rehearsal(**FAST)
    watch_production_and_another_instance()
    restored = world.run("restore", SNAPSHOT_CUTOVER)
    assert restored.status == "SUCCEEDED", restored.cause
    target = restored.output["target_instance"]
    carried = restored.world
    # and an app host an autoscaling group starts once the hosts the rollback found are healthy on the original
    started = start_tagged_host_before(world, "LookForNewHosts")

    # When the rollback workflow runs
    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then it stops before carrying anything back: the copy the new host may use is kept, and nothing was deleted
    assert started, "the rollback never reached LookForNewHosts"
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    states = result.states()
    assert states[states.index("IsOriginalHealthy") :][-6:] == [
        "LookForNewHosts",
        "MonitoringLeftOnCopy",
        "ExplainDeleteFailure",
        "CopyNotDeleted",
        "RecordFailure",
        "RollbackFailed",
    ]
    assert "CarryMonitoringBack" not in states and "DeleteRestoredInstance" not in states
    assert sorted(instance_ids(result.world)) == sorted([SOURCE, target])
    assert tags_of(target)["irisx-restore:role"] == "production"
    assert boto3.client("rds").describe_db_instances(DBInstanceIdentifier=target)["DBInstances"][0]["DeletionProtection"] is True
    # And the copy is still watched as the cutover left it: its twin alarm, and the subscription listing it
    assert result.world["alarms"] == carried["alarms"]
    assert subscriptions_in(result.world)["irisx-prod-events"] == [SOURCE, target]
    # And the cause names the new host, the refusal, and the monitoring as it is
    assert f"app host(s) {started[0]} appeared since the rollback found its hosts" in result.cause
    assert "the deletion was refused as unsafe" in result.cause
    assert f"monitoring was NOT carried back, as the copy is kept: the alarms and RDS event subscriptions that watch {target} still do" in (
        result.cause
    )
    # And the hosts it found serve from the original; the lock is released and the journal says the same
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(endpoint_of(SOURCE), "connected")] * 2
    assert locks(result.world) == []
    (record,) = [r for r in result.world["journal"] if r.get("workflow") == "rollback" and "outcome" in r]
    assert (record["outcome"], record["cause"]) == ("FAILED", result.cause)
    boto3.client("ec2").terminate_instances(InstanceIds=started)


def test_a_rollback_of_a_copy_never_cut_over_to_finds_no_monitoring_to_undo(rehearsal):
    # Given a restore without cutover: nothing was carried over
    world = rehearsal(**FAST)
    watch_production_and_another_instance()
    before = world.describe_world()
    target = world.run("restore", {"mode": "snapshot"}).output["target_instance"]

    result = world.run("rollback", {"restored_instance": target})

    assert result.status == "SUCCEEDED", result.cause
    assert result.output["monitoring"]["alarms_deleted"] == [] and result.output["monitoring"]["subscriptions_removed"] == []
    assert result.world["alarms"] == before["alarms"]
    assert result.world["event_subscriptions"] == before["event_subscriptions"]
