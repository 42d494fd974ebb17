"""IAM statements for carrying monitoring over to the instance production runs on, and back.

Shared by `restore` (after a cutover), `rollback` (before the copy is deleted) and the in-place
swap (which keeps the name, so only reads and reports). Alarms are found at run time by their
`DBInstanceIdentifier` dimension and event subscriptions by their source ids, so both need a
wildcard; what may be written is narrowed by CloudWatch's tag conditions: an alarm is created only
when the request carries the carried-from tag, and deleted only when the alarm carries it.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from restore_runbook.contract import TAG_CARRIED_FROM
from stacks import nag
from stacks.functions import StepPermissions
from stacks.permissions.rds import partition_of
from stacks.settings import StackSettings


def monitoring_step(settings: StackSettings, *, carry_over: bool) -> StepPermissions:
    """carry_over=True: copy alarms and add identifiers to subscriptions; False: undo exactly that."""
    partition = partition_of(settings.region)
    alarms = f"arn:{partition}:cloudwatch:{settings.region}:{settings.account}:alarm:*"
    subscriptions = f"arn:{partition}:rds:{settings.region}:{settings.account}:es:*"
    statements = [
        iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"], resources=[alarms]),
        iam.PolicyStatement(actions=["rds:DescribeEventSubscriptions"], resources=[subscriptions]),
    ]
    if carry_over:
        statements += [
            # Only alarms that say where they were carried from: a new name, never an overwrite of another's.
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"],
                resources=[alarms],
                conditions={"Null": {f"aws:RequestTag/{TAG_CARRIED_FROM}": "false"}},
            ),
            iam.PolicyStatement(actions=["rds:AddSourceIdentifierToSubscription"], resources=[subscriptions]),
        ]
    else:
        statements += [
            # Only the alarms a carry-over created (they carry its tag).
            iam.PolicyStatement(
                actions=["cloudwatch:DeleteAlarms"],
                resources=[alarms],
                conditions={"Null": {f"aws:ResourceTag/{TAG_CARRIED_FROM}": "false"}},
            ),
            iam.PolicyStatement(actions=["rds:RemoveSourceIdentifierFromSubscription"], resources=[subscriptions]),
        ]
    return StepPermissions(
        statements=statements,
        acknowledgements={
            nag.wildcard_resource(alarms): (
                "The alarms on an instance are found at run time by their DBInstanceIdentifier dimension; creating "
                "and deleting is limited by the carried-from tag to the alarms a carry-over made"
            ),
            nag.wildcard_resource(subscriptions): "Event subscriptions listing an instance are found at run time by their source ids",
        },
    )
