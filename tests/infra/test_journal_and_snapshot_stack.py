"""What the synthesized stack guarantees for the journal, the notifications and the snapshot workflow."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.workflow import handler_module

from .conftest import Synthesized
from .test_stack import as_list, function_role, restore_cleanup_role, role_policies, roles_allowing

pytestmark = pytest.mark.infra


def the_table(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    ((table_id, table),) = synthesized.of_type("AWS::DynamoDB::GlobalTable").items()
    return table_id, table["Properties"]


def test_the_journal_is_point_in_time_recoverable_deletion_protected_and_on_demand(synthesized: Synthesized) -> None:
    table_id, props = the_table(synthesized)
    (replica,) = props["Replicas"]
    assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert replica["DeletionProtectionEnabled"] is True
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert [i["IndexName"] for i in props["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert synthesized.resources[table_id]["DeletionPolicy"] == "Retain"


def test_the_key_schema_is_the_one_the_rehearsal_and_the_steps_use(synthesized: Synthesized) -> None:
    from restorectl.emulated_journal import table_definition

    _, props = the_table(synthesized)
    rehearsed = table_definition("x")
    assert props["KeySchema"] == rehearsed["KeySchema"]
    assert props["GlobalSecondaryIndexes"][0]["KeySchema"] == rehearsed["GlobalSecondaryIndexes"][0]["KeySchema"]


def test_the_topic_is_encrypted_and_refuses_plain_http(synthesized: Synthesized) -> None:
    (topic,) = synthesized.of_type("AWS::SNS::Topic").values()
    # encrypted with the stack's own rotating key, which CloudWatch alarm actions may use (the AWS
    # managed SNS key would silently drop every alarm notification)
    ((key_id, key),) = synthesized.of_type("AWS::KMS::Key").items()
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    (policy,) = synthesized.of_type("AWS::SNS::TopicPolicy").values()
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    # cdk.json lists no subscribers; each listed address would become an e-mail subscription
    assert len(synthesized.of_type("AWS::SNS::Subscription")) == len(synthesized.settings.notify_emails)


def test_only_the_record_outcome_steps_publish_and_only_to_the_topic(synthesized: Synthesized) -> None:
    ((topic_id, _),) = synthesized.of_type("AWS::SNS::Topic").items()
    publishers = roles_allowing(synthesized, "sns:Publish")
    expected = {
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in synthesized.of_type("AWS::Lambda::Function").values()
        if handler_module(f["Properties"]["Handler"])
        # the drill sweep says what it deleted
        in ("record_outcome", "release_without_record", "record_abandoned_execution", "sweep_drill_instances")
    }
    # restore's, rollback's, snapshot's, drill's, recordings-restore's and in-place-restore's end record,
    # the fallback of each of those six when that record cannot be written, the one for executions
    # that timed out or were aborted, and the drill sweep
    assert publishers == expected and len(expected) == 14
    for role in publishers:
        for statement in role_policies(synthesized)[role]:
            if "sns:Publish" in as_list(statement["Action"]):
                assert statement["Resource"] == {"Ref": topic_id}


def test_journal_writes_are_scoped_to_the_journal_table(synthesized: Synthesized) -> None:
    table_id, _ = the_table(synthesized)
    for role, statements in role_policies(synthesized).items():
        for statement in statements:
            if any(a.startswith("dynamodb:") for a in as_list(statement["Action"])):
                # the table, or (the status-change function's Query of the locks by holder) its lock index only;
                # the recordings overlap check reads no index (an index read is eventually consistent)
                lock_index = {"Fn::Join": ["", [{"Fn::GetAtt": [table_id, "Arn"]}, "/index/gsi1"]]}
                assert statement["Resource"] in ({"Fn::GetAtt": [table_id, "Arn"]}, lock_index), role
                if statement["Resource"] == lock_index:
                    assert as_list(statement["Action"]) == ["dynamodb:Query"], role


def test_snapshots_are_deleted_only_by_retention_and_cleanup_and_only_when_tagged_as_this_workflows(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    allowed = {function_role(synthesized, "apply_retention"), function_role(synthesized, "cleanup_snapshot")}
    assert roles_allowing(synthesized, "rds:DeleteDBSnapshot") == allowed
    for role in allowed:
        (delete,) = [s for s in role_policies(synthesized)[role] if "rds:DeleteDBSnapshot" in as_list(s["Action"])]
        assert delete["Resource"] == f"arn:aws:rds:{settings.region}:{settings.account}:snapshot:{settings.snapshot.prefix}-*"
        assert delete["Condition"] == {
            "StringEquals": {
                f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value,
                "aws:ResourceTag/irisx-restore:workflow": "snapshot",
            }
        }


def test_snapshots_are_created_only_of_the_source_under_the_prefix_and_tagged(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    start = function_role(synthesized, "start_snapshot")
    # and the rollback's delete, whose DeleteDBInstance keeps a final snapshot of the copy (see below)
    delete = function_role(synthesized, "delete_restored_instance")
    # and the restore's cleanup after a reverted cutover, which keeps a final snapshot of the copy the hosts used
    cleanup = restore_cleanup_role(synthesized)
    # and the in-place restore's final snapshot of production (tests/infra/test_in_place_stack.py)
    final = function_role(synthesized, "start_final_snapshot")
    assert roles_allowing(synthesized, "rds:CreateDBSnapshot") == {start, delete, cleanup, final}
    for statement in [*role_policies(synthesized)[delete], *role_policies(synthesized)[cleanup]]:
        if statement["Effect"] == "Allow" and "rds:CreateDBSnapshot" in as_list(statement["Action"]):
            (resource,) = as_list(statement["Resource"])
            if ":db:" in resource:  # only of an instance this tool created
                assert statement["Condition"] == {
                    "StringEquals": {f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value}
                }
            else:
                assert resource == f"arn:aws:rds:{settings.region}:{settings.account}:snapshot:*-final-*"
    (create,) = [s for s in role_policies(synthesized)[start] if "rds:CreateDBSnapshot" in as_list(s["Action"])]
    assert sorted(as_list(create["Resource"])) == sorted(
        [
            f"arn:aws:rds:{settings.region}:{settings.account}:db:{settings.source_instance}",
            f"arn:aws:rds:{settings.region}:{settings.account}:snapshot:{settings.snapshot.prefix}-*",
        ]
    )
    assert create["Condition"] == {"StringEquals": {f"aws:RequestTag/{settings.management_tag_key}": settings.management_tag_value}}


def test_the_deletes_that_keep_a_final_snapshot_may_read_it_so_a_retry_can_say_it_exists(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    finals = f"arn:aws:rds:{settings.region}:{settings.account}:snapshot:*-final-*"
    for role in (function_role(synthesized, "delete_restored_instance"), restore_cleanup_role(synthesized)):
        reads = [
            s
            for s in role_policies(synthesized)[role]
            if s["Effect"] == "Allow" and "rds:DescribeDBSnapshots" in as_list(s["Action"]) and finals in as_list(s["Resource"])
        ]
        assert reads, f"{role} cannot read the final snapshot its delete takes"


def test_the_lock_step_may_describe_only_this_stacks_executions(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    executions = f"arn:aws:states:{settings.region}:{settings.account}:execution:{settings.name_prefix}-"
    sweep = function_role(synthesized, "sweep_drill_instances")
    overlap = function_role(synthesized, "check_overlapping_restores")
    (recordings_machine,) = [
        m["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        for m in synthesized.of_type("AWS::StepFunctions::StateMachine").values()
        if m["Properties"]["StateMachineName"] == "irisx-restore-recordings-restore"
    ]
    for role in roles_allowing(synthesized, "states:DescribeExecution"):
        for statement in role_policies(synthesized)[role]:
            if "states:DescribeExecution" in as_list(statement["Action"]):
                # the drill sweep asks only about drill executions (the one that made a copy); the
                # recordings state machine only about its own Distributed Map children
                expected = {sweep: f"{executions}drill:*", recordings_machine: f"{executions}recordings-restore/*"}
                assert statement["Resource"] == expected.get(role, f"{executions}*")
    lockers = {
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in synthesized.of_type("AWS::Lambda::Function").values()
        if handler_module(f["Properties"]["Handler"]) == "take_lock"
    }
    # restore's, rollback's, drill's, recordings-restore's and in-place-restore's lock, the sweep, the
    # recordings overlap check (a lock's holder), the recordings state machine (its children) and the
    # status-change function (how an execution whose record reads RUNNING really ended)
    status_change = next(
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in synthesized.of_type("AWS::Lambda::Function").values()
        if handler_module(f["Properties"]["Handler"]) == "record_abandoned_execution"
    )
    assert roles_allowing(synthesized, "states:DescribeExecution") == {*lockers, sweep, overlap, recordings_machine, status_change}
    assert len(lockers) == 5


def test_the_cli_finds_the_snapshot_workflow_the_journal_and_the_topic_by_outputs(synthesized: Synthesized) -> None:
    outputs = synthesized.template.to_json()["Outputs"]
    machines = {m["Properties"]["StateMachineName"]: k for k, m in synthesized.of_type("AWS::StepFunctions::StateMachine").items()}
    assert outputs["SnapshotStateMachineArn"]["Value"] == {"Ref": machines["irisx-restore-snapshot"]}
    table_id, _ = the_table(synthesized)
    assert outputs["JournalTableName"]["Value"] == {"Ref": table_id}
    ((topic_id, _),) = synthesized.of_type("AWS::SNS::Topic").items()
    assert outputs["NotificationTopicArn"]["Value"] == {"Ref": topic_id}


def test_settings_for_snapshots_and_notifications_are_checked_by_name(runbook_context: dict[str, Any]) -> None:
    from stacks.settings import StackSettings

    for key, value, message in [
        ("snapshot_keep_last", {"pre-migratoin": 3}, "names 'pre-migratoin'"),
        ("snapshot_keep_last", {"upgrade": 0}, "expected a positive whole number"),
        ("notify_emails", ["not-an-address"], "expected a list of e-mail addresses"),
        ("snapshot_prefix", "IRISX", "snapshot_prefix"),
    ]:
        with pytest.raises(ValueError, match=message):
            StackSettings.from_context({**runbook_context, key: value})
    with_subscriber = StackSettings.from_context({**runbook_context, "notify_emails": ["oncall@irisx.example"]})
    assert with_subscriber.notify_emails == ("oncall@irisx.example",)
