"""The `snapshot` workflow (runbook "Creating Manual Snapshots"): what each of its steps may do in IAM.

Snapshots can only be created under the configured name prefix and only with the management tag;
DeleteDBSnapshot (retention, and removing a failed snapshot) is allowed only on snapshots that carry
the management tag AND were taken by this workflow, so automated snapshots and anyone else's are
out of reach in IAM as well as in code.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_iam as iam

from restore_runbook.contract import SNAPSHOT_WORKFLOW, TAG_WORKFLOW
from stacks import nag
from stacks.functions import StepPermissions
from stacks.permissions.rds import RdsArns, production_fence
from stacks.workflows.base import RegisteredWorkflow

DESCRIBE_REASON = (
    "Read-only describe/list of RDS snapshots and instances in this account and region: snapshot names "
    "are generated per execution and retention lists the source's snapshots"
)


def read_snapshots(arns: RdsArns, actions: list[str]) -> StepPermissions:
    """Read-only on instances and snapshots; also the in-place restore's, which waits for its final
    snapshot with this workflow's describe step."""
    resources = [arns.db(), arns.snapshot()]
    return StepPermissions(
        statements=[iam.PolicyStatement(actions=actions, resources=resources)],
        acknowledgements={nag.wildcard_resource(arn): DESCRIBE_REASON for arn in resources},
    )


class SnapshotWorkflow(RegisteredWorkflow):
    """`statemachines/snapshot.asl.json` and what each of its steps may do."""

    NAME = "snapshot"

    def steps(self) -> Mapping[str, StepPermissions]:
        read_and_list = ["rds:DescribeDBSnapshots", "rds:ListTagsForResource"]
        return {
            "check_snapshot_input": self._read(["rds:DescribeDBInstances", "rds:DescribeDBSnapshots"]),
            "start_snapshot": self._start_snapshot(),
            "describe_snapshot": self._read(["rds:DescribeDBSnapshots"]),
            "apply_retention": self._with_delete(self._read(read_and_list)),
            "cleanup_snapshot": self._with_delete(self._read(read_and_list)),
        }

    def _read(self, actions: list[str]) -> StepPermissions:
        return read_snapshots(self.arns, actions)

    def _own_snapshots(self) -> str:
        return self.arns.snapshot(f"{self.settings.snapshot.prefix}-*")

    def _start_snapshot(self) -> StepPermissions:
        request_tag = {"StringEquals": {f"aws:RequestTag/{self.settings.management_tag_key}": self.settings.management_tag_value}}
        create = iam.PolicyStatement(
            actions=["rds:CreateDBSnapshot"],
            resources=[*(self.arns.db(name) for name in self.settings.production_names), self._own_snapshots()],
            # Only snapshots tagged as this tool's, so retention and cleanup can recognise them later.
            conditions=request_tag,
        )
        # Tags in the create request are authorized as AddTagsToResource on the new snapshot: only snapshots
        # under the configured prefix, never the source instance (nor any other instance).
        tag_new_snapshot = iam.PolicyStatement(
            actions=["rds:AddTagsToResource"],
            resources=[self._own_snapshots()],
            conditions=request_tag,
        )
        base = self._read(["rds:DescribeDBSnapshots"])
        acknowledgements = dict(base.acknowledgements)
        acknowledgements[nag.wildcard_resource(self._own_snapshots())] = (
            "Snapshot names carry the time they were taken; creation and tagging are limited to the configured name prefix "
            "and to requests that carry the management tag"
        )
        return StepPermissions(
            statements=[*base.statements, create, tag_new_snapshot, *production_fence(self.settings)],
            acknowledgements=acknowledgements,
        )

    def _with_delete(self, base: StepPermissions) -> StepPermissions:
        settings = self.settings
        delete = iam.PolicyStatement(
            actions=["rds:DeleteDBSnapshot"],
            resources=[self._own_snapshots()],
            conditions={
                "StringEquals": {
                    f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value,
                    f"aws:ResourceTag/{TAG_WORKFLOW}": SNAPSHOT_WORKFLOW,
                }
            },
        )
        acknowledgements = dict(base.acknowledgements)
        acknowledgements[nag.wildcard_resource(self._own_snapshots())] = (
            "Retention deletes older snapshots by name prefix, and only those tagged as taken by this tool's "
            "snapshot workflow (tag condition); automated and other snapshots never match"
        )
        return StepPermissions(statements=[*base.statements, delete, *production_fence(self.settings)], acknowledgements=acknowledgements)
