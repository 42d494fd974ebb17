"""RDS ARNs and the fence around production (by name and by marker), for any workflow's step permissions.

The stack has a concrete account and region (from settings), so ARNs are written out instead of
built from tokens: policies read the same in the template, in `cdk diff` and in nag acknowledgements.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam

from restore_runbook.contract import ROLE_PRODUCTION, ROLE_REPLACED_PRODUCTION, SNAPSHOT_WORKFLOW, TAG_ROLE, TAG_WORKFLOW
from stacks import nag
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
# What the production marker fences by condition; deleting a marked instance is deny_deleting_production's.
MARKER_FENCED_ACTIONS = ("rds:ModifyDBInstance", "rds:AddTagsToResource", "rds:RemoveTagsFromResource")
MARKED = f"aws:ResourceTag/{TAG_ROLE}"


def _excepted(*, allow_rename: bool, allow_modify: bool) -> set[str]:
    excepted = set()
    if allow_rename:
        excepted |= {"rds:ModifyDBInstance", "rds:AddTagsToResource"}
    if allow_modify:
        excepted.add("rds:ModifyDBInstance")
    return excepted


def deny_changes_to_source(settings: StackSettings, *, allow_rename: bool = False, allow_modify: bool = False) -> iam.PolicyStatement:
    """The second fence beside the code's own checks: whatever the input says, no step may delete,
    modify or (re)tag a production instance by name: every one `production_instances` lists (the
    configured source always among them), which is also every source a workflow accepts.

    The one exception, named and tested (tests/infra/test_in_place_stack.py): renaming production is
    ModifyDBInstance on it, and the swap marks each instance's role with a tag first. So the in-place
    swap's rename steps take `allow_rename` (ModifyDBInstance and AddTagsToResource), and the step
    that re-applies production's settings to the new production takes `allow_modify`. Deleting
    production and removing its tags stay denied to them as to everyone."""
    excepted = _excepted(allow_rename=allow_rename, allow_modify=allow_modify)
    arns = RdsArns.for_settings(settings)
    return iam.PolicyStatement(
        effect=iam.Effect.DENY,
        actions=[a for a in SOURCE_FENCED_ACTIONS if a not in excepted],
        resources=[arns.db(name) for name in settings.production_names],
    )


def deny_changes_to_marked(
    settings: StackSettings, *, allow_rename: bool = False, allow_modify: bool = False, allow_unmark: bool = False
) -> list[iam.PolicyStatement]:
    """The fence that follows production wherever it runs: an instance marked production (a copy a cutover
    or a swap made production) or replaced production may not be modified, tagged or untagged, whatever
    its name. The same exceptions as by name (the swap's renames, the new production's settings), and one
    more: the rollback's delete step (`allow_unmark`) may remove the production marker, that key only, from
    a copy marked production, once every host is back on the original (checked in code). No role may
    untag or re-tag the production a swap replaced, nor delete either (deny_deleting_production)."""
    excepted = _excepted(allow_rename=allow_rename, allow_modify=allow_modify)
    actions = [a for a in MARKER_FENCED_ACTIONS if a not in excepted]
    db = RdsArns.for_settings(settings).db()
    if not allow_unmark:
        return [
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=actions,
                resources=[db],
                conditions={"StringEquals": {MARKED: [ROLE_PRODUCTION, ROLE_REPLACED_PRODUCTION]}},
            )
        ]
    return [
        iam.PolicyStatement(
            effect=iam.Effect.DENY,
            actions=actions,
            resources=[db],
            conditions={"StringEquals": {MARKED: ROLE_REPLACED_PRODUCTION}},
        ),
        iam.PolicyStatement(
            effect=iam.Effect.DENY,
            actions=[a for a in actions if a != "rds:RemoveTagsFromResource"],
            resources=[db],
            conditions={"StringEquals": {MARKED: ROLE_PRODUCTION}},
        ),
        # Removing any key but the marker from a production copy stays denied.
        iam.PolicyStatement(
            effect=iam.Effect.DENY,
            actions=["rds:RemoveTagsFromResource"],
            resources=[db],
            conditions={"StringEquals": {MARKED: ROLE_PRODUCTION}, "ForAnyValue:StringNotEquals": {"aws:TagKeys": [TAG_ROLE]}},
        ),
    ]


def deny_deleting_production(settings: StackSettings) -> iam.PolicyStatement:
    """Every role that may delete an instance carries this: after an in-place swap production runs on a
    copy that still has the management tag, and the production it replaced lives on under another name;
    after a cutover production runs on a copy too. All are marked by the role tag, and none may be
    deleted while marked (the rollback's delete step unmarks a cut-over copy first, see above)."""
    return iam.PolicyStatement(
        effect=iam.Effect.DENY,
        actions=["rds:DeleteDBInstance"],
        resources=[RdsArns.for_settings(settings).db()],
        conditions={"StringEquals": {MARKED: [ROLE_PRODUCTION, ROLE_REPLACED_PRODUCTION]}},
    )


def production_fence(
    settings: StackSettings, *, allow_rename: bool = False, allow_modify: bool = False, allow_unmark: bool = False
) -> list[iam.PolicyStatement]:
    """Every deny a role that can change RDS carries: production by name, production and replaced production
    by marker, and never deleting a marked instance. The exceptions are named (see the two functions above)."""
    return [
        deny_changes_to_source(settings, allow_rename=allow_rename, allow_modify=allow_modify),
        *deny_changes_to_marked(settings, allow_rename=allow_rename, allow_modify=allow_modify, allow_unmark=allow_unmark),
        deny_deleting_production(settings),
    ]


# A copy deleted with a final snapshot (rds.final_snapshot_name): not the in-place restore's snapshot of production.
COPY_FINAL_SNAPSHOTS = "*-final-*"


def final_snapshot_on_delete(settings: StackSettings) -> list[iam.PolicyStatement]:
    """What DeleteDBInstance with FinalDBSnapshotIdentifier needs, for a copy that may hold real writes:
    rds:CreateDBSnapshot on the instance (only one carrying the management tag) and on the new
    snapshot, and rds:AddTagsToResource on that snapshot when the instance copies its tags to it;
    rds:DescribeDBSnapshots on it, so a retried delete says whether the snapshot its first attempt took exists."""
    arns = RdsArns.for_settings(settings)
    final_snapshots = arns.snapshot(COPY_FINAL_SNAPSHOTS)
    managed = {f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value}
    return [
        iam.PolicyStatement(actions=["rds:DescribeDBSnapshots"], resources=[final_snapshots]),
        iam.PolicyStatement(actions=["rds:CreateDBSnapshot"], resources=[arns.db()], conditions={"StringEquals": managed}),
        iam.PolicyStatement(actions=["rds:CreateDBSnapshot"], resources=[final_snapshots]),
        # The copy's tags, management tag included, copied to the final snapshot (CopyTagsToSnapshot).
        iam.PolicyStatement(
            actions=["rds:AddTagsToResource"],
            resources=[final_snapshots],
            conditions={"StringEquals": {f"aws:RequestTag/{settings.management_tag_key}": settings.management_tag_value}},
        ),
        # The snapshot workflow's retention deletes snapshots tagged as its own: a final snapshot never may be.
        iam.PolicyStatement(
            effect=iam.Effect.DENY,
            actions=["rds:AddTagsToResource"],
            resources=[arns.snapshot()],
            conditions={"StringEquals": {f"aws:RequestTag/{TAG_WORKFLOW}": SNAPSHOT_WORKFLOW}},
        ),
    ]


def final_snapshot_acknowledgement(settings: StackSettings) -> dict[str, str]:
    return {
        nag.wildcard_resource(RdsArns.for_settings(settings).snapshot(COPY_FINAL_SNAPSHOTS)): (
            "DeleteDBInstance with a final snapshot creates (and copies the instance's tags to) a snapshot "
            "named <instance>-final-<time>, the instance named per execution, and a retried delete reads it; snapshots "
            "under that pattern only, never tagged as the snapshot workflow's (explicit Deny)"
        ),
    }
