"""RDS ARNs and the fence around the source instance, for any workflow's step permissions.

The stack has a concrete account and region (from settings), so ARNs are written out instead of
built from tokens: policies read the same in the template, in `cdk diff` and in nag acknowledgements.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam

from restore_runbook.contract import ROLE_PRODUCTION, ROLE_REPLACED_PRODUCTION, TAG_ROLE
from stacks.settings import StackSettings


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class RdsArns:
    partition: str
    region: str
    account: str

    @classmethod
    def for_settings(cls, settings: StackSettings) -> RdsArns:
        return cls(partition_of(settings.region), settings.region, settings.account)

    def _arn(self, resource_type: str, name: str) -> str:
        return f"arn:{self.partition}:rds:{self.region}:{self.account}:{resource_type}:{name}"

    def db(self, name: str = "*") -> str:
        return self._arn("db", name)

    def snapshot(self, name: str = "*") -> str:
        return self._arn("snapshot", name)

    def auto_backup(self, name: str = "*") -> str:
        return self._arn("auto-backup", name)

    def subnet_group(self, name: str) -> str:
        return self._arn("subgrp", name)

    def parameter_group(self, name: str = "*") -> str:
        return self._arn("pg", name)

    def option_group(self, name: str = "*") -> str:
        return self._arn("og", name)


SOURCE_FENCED_ACTIONS = ("rds:DeleteDBInstance", "rds:ModifyDBInstance", "rds:AddTagsToResource", "rds:RemoveTagsFromResource")


def deny_changes_to_source(settings: StackSettings, *, allow_rename: bool = False, allow_modify: bool = False) -> iam.PolicyStatement:
    """The second fence beside the code's own checks: whatever the input says, no step may delete,
    modify or (re)tag the production instance. Every role that can do any of these carries it.

    The one exception, named and tested (tests/infra/test_in_place_stack.py): renaming production is
    ModifyDBInstance on it, and the swap marks each instance's role with a tag first. So the in-place
    swap's rename steps take `allow_rename` (ModifyDBInstance and AddTagsToResource), and the step
    that re-applies production's settings to the new production takes `allow_modify`. Deleting
    production and removing its tags stay denied to them as to everyone."""
    excepted = set()
    if allow_rename:
        excepted |= {"rds:ModifyDBInstance", "rds:AddTagsToResource"}
    if allow_modify:
        excepted.add("rds:ModifyDBInstance")
    return iam.PolicyStatement(
        effect=iam.Effect.DENY,
        actions=[a for a in SOURCE_FENCED_ACTIONS if a not in excepted],
        resources=[RdsArns.for_settings(settings).db(settings.source_instance)],
    )


def deny_deleting_production(settings: StackSettings) -> iam.PolicyStatement:
    """Every role that may delete an instance carries this: after an in-place swap production runs on a
    copy that still has the management tag, and the production it replaced lives on under another name.
    Both are marked by the role tag, and neither may ever be deleted by this tool."""
    return iam.PolicyStatement(
        effect=iam.Effect.DENY,
        actions=["rds:DeleteDBInstance"],
        resources=[RdsArns.for_settings(settings).db()],
        conditions={"StringEquals": {f"aws:ResourceTag/{TAG_ROLE}": [ROLE_PRODUCTION, ROLE_REPLACED_PRODUCTION]}},
    )
