"""The `in-place-restore` workflow (runbook Scenario 3, emergency): what each of its steps may do.

Renaming production is the one thing every other role is denied. Only the swap's rename steps and
the rename-back may do it, and the step that re-applies production's settings may modify the new
production, each by the explicit exception `production_fence(..., allow_rename/allow_modify)`;
deleting production or removing its tags stays denied to them, and no role of any workflow may
delete an instance marked as production or as the production a swap replaced.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_iam as iam

from restore_runbook.contract import SNAPSHOT_WORKFLOW, TAG_WORKFLOW
from stacks import nag, ssm_documents
from stacks.functions import StepPermissions
from stacks.permissions.hosts import AppHostPermissions
from stacks.permissions.monitoring import monitoring_step
from stacks.permissions.rds import (
    ROLE_PRODUCTION,
    ROLE_REPLACED_PRODUCTION,
    TAG_ROLE,
    partition_of,
    production_fence,
)
from stacks.permissions.restore import RestoreSteps, with_statements
from stacks.workflows.base import RegisteredWorkflow
from stacks.workflows.restore import RestoreWorkflow
from stacks.workflows.snapshot import read_snapshots

# The tags a swap writes (lambdas/restore_runbook/inplace/rename.py): tagging is limited to these keys.
SWAP_TAG_KEYS = [TAG_ROLE, "irisx-restore:swapped-by", "irisx-restore:swapped-at"]
FINAL_SNAPSHOTS = "*-pre-restore-*"


class InPlaceRestoreWorkflow(RegisteredWorkflow):
    """`statemachines/in-place-restore.asl.json` and what each of its steps may do."""

    NAME = "in-place-restore"

    def steps(self) -> Mapping[str, StepPermissions]:
        restore = RestoreSteps(self.settings)
        hosts = AppHostPermissions(self.settings)
        app_control = ssm_documents.APP_CONTROL
        describe = restore.describe(["rds:DescribeDBInstances"], [self.arns.db()])
        return {
            # Restore's input check, and the API hosts a revert would start again (found before anything changes).
            "check_in_place_input": hosts.step(
                find=True,
                extra=tuple(restore.check_restore_input().statements),
                acknowledgements=dict(restore.check_restore_input().acknowledgements),
            ),
            "start_final_snapshot": self._final_snapshot(),
            # The snapshot workflow's own describe step, with its permissions.
            "describe_snapshot": read_snapshots(self.arns, ["rds:DescribeDBSnapshots"]),
            # Restore's own steps, with restore's own permissions; the cleanup deletes the copy when a
            # failure comes before the swap (never production: see production_fence).
            "start_restore": restore.start_restore(),
            "describe_restore": restore.describe_restore(),
            "validate_restore": restore.validate_restore(),
            "cleanup_restore": self._cleanup(restore),
            # Before the stop, where each host's DB_HOST points: the document's read-only health action, sent to
            # the hosts that serve now (found again: the plan listed them a restore ago); then its results.
            "read_hosts_db_host": hosts.step(send=(app_control,), find=True),
            "check_hosts_serve_production": hosts.step(read=True),
            # The app on the API hosts: stopped before the swap, restarted after it (or after the rename-back).
            "stop_app_hosts": hosts.step(send=(app_control,)),
            # Finds the hosts again: the ones listed before the stop may have been replaced since.
            "start_app_hosts": hosts.step(send=(app_control,), find=True),
            # A failure after the start stops the app on the copy before renaming back; finds the hosts as the start did.
            "stop_started_app": hosts.step(send=(app_control,), find=True),
            "check_app_command": hosts.step(read=True),
            "check_app_health": hosts.step(send=(app_control,), read=True),
            # Renames are followed by resource id (DescribeDBInstances with a filter).
            "check_rename": describe,
            # Looks for app hosts again before the first rename: one that appeared since the stop still writes.
            "rename_production_away": self._finding_hosts(hosts, self._rename(describe, production=True, copies=False, replaced=False)),
            "rename_copy_to_production": self._rename(describe, production=True, copies=True, replaced=False),
            "rename_back": self._rename(describe, production=True, copies=True, replaced=True),
            "apply_production_settings": self._apply_production_settings(describe),
            # Monitoring follows production (shared with restore and rollback: stacks/permissions/monitoring.py).
            "carry_monitoring_over": monitoring_step(self.settings, carry_over=True),
            "carry_monitoring_back": monitoring_step(self.settings, carry_over=False),
            "report_in_place_restore": StepPermissions(statements=[]),
            "explain_in_place_failure": StepPermissions(statements=[]),
            # Says where both instances stand, by resource id.
            "explain_rename_back_failure": describe,
        }

    def _cleanup(self, restore: RestoreSteps) -> StepPermissions:
        """Restore's cleanup, which also looks at the final snapshot it keeps, so its words name what exists."""
        final = self.arns.snapshot(FINAL_SNAPSHOTS)
        permissions = with_statements(
            RestoreWorkflow.cleanup_permissions(restore), iam.PolicyStatement(actions=["rds:DescribeDBSnapshots"], resources=[final])
        )
        permissions.acknowledgements[nag.wildcard_resource(final)] = (  # type: ignore[index]
            "Reads (never changes) the final snapshot this execution took, whose name carries its time (<production>-pre-restore-<time>)"
        )
        return permissions

    # -- production's final snapshot ---------------------------------------------------------------

    def _final_snapshot(self) -> StepPermissions:
        s = self.settings
        managed = {"StringEquals": {f"aws:RequestTag/{s.management_tag_key}": s.management_tag_value}}
        final = self.arns.snapshot(FINAL_SNAPSHOTS)
        base = read_snapshots(self.arns, ["rds:DescribeDBSnapshots"])
        permissions = with_statements(
            base,
            # Of production only, under the final-snapshot name, tagged as this tool's.
            iam.PolicyStatement(actions=["rds:CreateDBSnapshot"], resources=[self.arns.db(s.source_instance), final], conditions=managed),
            iam.PolicyStatement(actions=["rds:AddTagsToResource"], resources=[final], conditions=managed),
            # The snapshot workflow's retention deletes snapshots tagged as its own: a final snapshot never may be.
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["rds:AddTagsToResource"],
                resources=[self.arns.snapshot()],
                conditions={"StringEquals": {f"aws:RequestTag/{TAG_WORKFLOW}": SNAPSHOT_WORKFLOW}},
            ),
            *production_fence(s),
        )
        permissions.acknowledgements[nag.wildcard_resource(final)] = (  # type: ignore[index]
            "The final snapshot's name carries the time it was taken (<production>-pre-restore-<time>); creating and "
            "tagging it needs the management tag in the request"
        )
        return permissions

    # -- the swap ----------------------------------------------------------------------------------

    def _rename(self, describe: StepPermissions, *, production: bool, copies: bool, replaced: bool) -> StepPermissions:
        """ModifyDBInstance (a rename is NewDBInstanceIdentifier) and the role tags the swap writes first:
        on production by its name, on copies this tool made, and on the production a swap replaced."""
        s = self.settings
        actions = ["rds:ModifyDBInstance", "rds:AddTagsToResource"]
        statements: list[iam.PolicyStatement] = []
        if production:
            # The explicit exception to the production fence (allow_rename below).
            statements.append(iam.PolicyStatement(actions=actions, resources=[self.arns.db(s.source_instance)]))
        if copies:
            statements.append(
                iam.PolicyStatement(
                    actions=actions,
                    resources=[self.arns.db()],
                    conditions={"StringEquals": {f"aws:ResourceTag/{s.management_tag_key}": s.management_tag_value}},
                )
            )
        if replaced:
            statements.append(
                iam.PolicyStatement(
                    actions=actions,
                    resources=[self.arns.db()],
                    conditions={"StringEquals": {f"aws:ResourceTag/{TAG_ROLE}": ROLE_REPLACED_PRODUCTION}},
                )
            )
        # Whatever else a role may tag, it may write no tag but the swap's (never the management tag).
        statements.append(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["rds:AddTagsToResource"],
                resources=[self.arns.db()],
                conditions={"ForAnyValue:StringNotEquals": {"aws:TagKeys": SWAP_TAG_KEYS}},
            )
        )
        permissions = with_statements(
            describe,
            *statements,
            *production_fence(s, allow_rename=True),
        )
        if copies or replaced:
            permissions.acknowledgements[nag.wildcard_resource(self.arns.db())] = (  # type: ignore[index]
                "Rename and role tags only on instances tagged as this tool's copies or as the production a swap replaced "
                "(tag conditions), besides production by name; describing any instance (names chosen per execution)"
            )
        return permissions

    @staticmethod
    def _finding_hosts(hosts: AppHostPermissions, permissions: StepPermissions) -> StepPermissions:
        return hosts.step(find=True, extra=tuple(permissions.statements), acknowledgements=dict(permissions.acknowledgements))

    def _apply_production_settings(self, describe: StepPermissions) -> StepPermissions:
        s = self.settings
        # The new production only: production's name, carrying the management tag (so never the
        # original, which has none) and marked production by the swap.
        modify = iam.PolicyStatement(
            actions=["rds:ModifyDBInstance"],
            resources=[self.arns.db(s.source_instance)],
            conditions={
                "StringEquals": {
                    f"aws:ResourceTag/{s.management_tag_key}": s.management_tag_value,
                    f"aws:ResourceTag/{TAG_ROLE}": ROLE_PRODUCTION,
                }
            },
        )
        # Enhanced Monitoring is re-enabled with production's own monitoring role, read at run time: passing
        # a role is allowed only to the RDS monitoring service.
        roles = f"arn:{partition_of(s.region)}:iam::{s.account}:role/*"
        pass_monitoring_role = iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[roles],
            conditions={"StringEquals": {"iam:PassedToService": "monitoring.rds.amazonaws.com"}},
        )
        permissions = with_statements(describe, modify, pass_monitoring_role, *production_fence(s, allow_modify=True))
        permissions.acknowledgements[nag.wildcard_resource(roles)] = (  # type: ignore[index]
            "Production's Enhanced Monitoring role is read from RDS at run time; PassRole only to monitoring.rds.amazonaws.com"
        )
        return permissions
