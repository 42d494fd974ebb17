"""IAM fences every workflow shares."""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from stacks.arns import RdsArns
from stacks.settings import StackSettings


def deny_changes_to_source(settings: StackSettings) -> iam.PolicyStatement:
    """The second fence beside the code's own checks: whatever the input says, no step may delete,
    modify or (re)tag the production instance. Every role that can do any of these carries it."""
    return iam.PolicyStatement(
        effect=iam.Effect.DENY,
        actions=["rds:DeleteDBInstance", "rds:ModifyDBInstance", "rds:AddTagsToResource", "rds:RemoveTagsFromResource"],
        resources=[RdsArns.for_settings(settings).db(settings.source_instance)],
    )
