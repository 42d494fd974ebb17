"""The `restore` workflow (runbook scenarios 1 and 2): what each of its steps may do in IAM.

Least privilege per step. The one destructive call, DeleteDBInstance, is allowed only on instances
carrying the tool's management tag, and the source instance is explicitly denied any change.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_iam as iam

from restore_runbook.contract import ROLE_PRODUCTION, TAG_ROLE
from stacks import nag, ssm_documents
from stacks.functions import StepPermissions
from stacks.permissions.hosts import AppHostPermissions
from stacks.permissions.monitoring import monitoring_step
from stacks.permissions.rds import final_snapshot_acknowledgement, final_snapshot_on_delete, production_fence
from stacks.permissions.restore import RestoreSteps, with_statements
from stacks.workflows.base import RegisteredWorkflow


class RestoreWorkflow(RegisteredWorkflow):
    """`statemachines/restore.asl.json` and what each of its steps may do."""

    NAME = "restore"

    @property
    def restore_steps(self) -> RestoreSteps:
        return RestoreSteps(self.settings)

    def steps(self) -> Mapping[str, StepPermissions]:
        return {
            # Shared with the workflows that run restore's own steps (stacks/permissions/restore.py).
            "check_restore_input": self.restore_steps.check_restore_input(),
            "start_restore": self.restore_steps.start_restore(),
            "describe_restore": self.restore_steps.describe_restore(),
            "validate_restore": self.restore_steps.validate_restore(),
            # Reads the validated copy as the validate step does (same secret, same network), only longer.
            "warm_restored_copy": self.restore_steps.validate_restore(),
            "cleanup_restore": self._cleanup_restore(),
            **self._cutover_steps(),
            "protect_new_production": self._protect_new_production(),
            # After a healthy cutover: the source's alarms copied for the new production, its id added to subscriptions.
            "carry_monitoring_over": monitoring_step(self.settings, carry_over=True),
        }

    # -- shared statements -------------------------------------------------------------------------

    def _protect_new_production(self) -> StepPermissions:
        # Deletion protection on, and the production marker, for the copy production now runs on: only a
        # copy this tool made, and only the marker key with the production value. Once marked, the fence
        # denies this role (as every other) any further change to it.
        key, value = self.settings.management_tag_key, self.settings.management_tag_value
        managed = {f"aws:ResourceTag/{key}": value}
        return StepPermissions(
            statements=[
                iam.PolicyStatement(
                    actions=["rds:DescribeDBInstances", "rds:ListTagsForResource"],
                    resources=[self.arns.db()],
                ),
                iam.PolicyStatement(actions=["rds:ModifyDBInstance"], resources=[self.arns.db()], conditions={"StringEquals": managed}),
                iam.PolicyStatement(
                    actions=["rds:AddTagsToResource"],
                    resources=[self.arns.db()],
                    conditions={
                        "StringEquals": {**managed, f"aws:RequestTag/{TAG_ROLE}": ROLE_PRODUCTION},
                        "ForAllValues:StringEquals": {"aws:TagKeys": [TAG_ROLE]},
                    },
                ),
                *production_fence(self.settings),
            ],
            acknowledgements={
                nag.wildcard_resource(self.arns.db()): (
                    f"Describing the cut-over copy, and ModifyDBInstance (deletion protection) and the {TAG_ROLE}={ROLE_PRODUCTION} "
                    f"tag only on instances tagged {key}={value} (copies this tool made); production by name and anything "
                    "already marked are denied"
                )
            },
        )

    # -- one method per step -----------------------------------------------------------------------

    def _cutover_steps(self) -> dict[str, StepPermissions]:
        """Cutover on the API hosts and its automatic rollback (stacks/permissions/hosts.py)."""
        hosts = AppHostPermissions(self.settings)
        describe_source = self.restore_steps.describe(["rds:DescribeDBInstances"], [self.arns.db()])
        set_db_host, app_control = ssm_documents.SET_DB_HOST, ssm_documents.APP_CONTROL
        return {
            # Reads the target's tags first: a drill's temporary copy is never a cutover target.
            "start_cutover": hosts.step(
                send=(set_db_host,),
                find=True,
                list_sent=True,
                extra=tuple(describe_source.statements),
                acknowledgements=dict(describe_source.acknowledgements),
            ),
            "check_app_command": hosts.step(read=True),
            # Health only reads: deletion protection for the new production is ProtectNewProduction's.
            "check_app_health": hosts.step(send=(app_control,), read=True),
            # Reads the cutover's own output for each host's previous DB_HOST; the source's endpoint as fallback.
            # Without a cutover record (its start failed after sending) every tagged host is sent back.
            "revert_cutover": hosts.step(
                send=(set_db_host,),
                read=True,
                find=True,
                extra=tuple(describe_source.statements),
                acknowledgements=dict(describe_source.acknowledgements),
            ),
            "explain_rollback_failure": StepPermissions(statements=[]),
        }

    def _cleanup_restore(self) -> StepPermissions:
        # After a reverted cutover the copy may hold what the app wrote to it: it is deleted with a final snapshot.
        permissions = with_statements(self.cleanup_permissions(self.restore_steps), *final_snapshot_on_delete(self.settings))
        permissions.acknowledgements.update(final_snapshot_acknowledgement(self.settings))  # type: ignore[attr-defined]
        return permissions

    @staticmethod
    def cleanup_permissions(restore: RestoreSteps) -> StepPermissions:
        """Also the in-place restore's cleanup (the same handler): a managed copy, never production."""
        settings = restore.settings
        tag = {f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value}
        delete = iam.PolicyStatement(
            actions=["rds:DeleteDBInstance"],
            resources=[restore.arns.db()],
            conditions={"StringEquals": tag},
        )
        read = restore.describe(["rds:DescribeDBInstances", "rds:ListTagsForResource"], [restore.arns.db()])
        permissions = with_statements(read, delete, *production_fence(settings))
        permissions.acknowledgements[nag.wildcard_resource(restore.arns.db())] = (  # type: ignore[index]
            "Describing any instance, and deleting one only when it carries the management tag (a copy this tool made); "
            "production by name and anything marked production are denied"
        )
        return permissions
