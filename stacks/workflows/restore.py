"""The `restore` workflow (runbook scenarios 1 and 2): what each of its steps may do in IAM.

Least privilege per step. The one destructive call, DeleteDBInstance, is allowed only on instances
carrying the tool's management tag, and the source instance is explicitly denied any change.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_iam as iam

from stacks import nag, ssm_documents
from stacks.functions import StepPermissions
from stacks.permissions.hosts import AppHostPermissions
from stacks.permissions.monitoring import monitoring_step
from stacks.permissions.rds import deny_changes_to_source, deny_deleting_production
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
        # Deletion protection on, for the copy production now runs on: only a copy this tool made.
        key, value = self.settings.management_tag_key, self.settings.management_tag_value
        return StepPermissions(
            statements=[
                iam.PolicyStatement(
                    actions=["rds:ModifyDBInstance"],
                    resources=[self.arns.db()],
                    conditions={"StringEquals": {f"aws:ResourceTag/{key}": value}},
                ),
                deny_changes_to_source(self.settings),
            ],
            acknowledgements={
                nag.wildcard_resource(self.arns.db()): (
                    f"ModifyDBInstance only on instances tagged {key}={value} (copies this tool made), "
                    "to turn deletion protection on once production runs on the copy; the source is denied"
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
        return self.cleanup_permissions(self.restore_steps)

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
        return with_statements(read, delete, deny_changes_to_source(settings), deny_deleting_production(settings))
