"""The `rollback` workflow (runbook Rollback Procedure): what each of its steps may do in IAM.

It checks everything before it stops the app, points the hosts back, and only then deletes the
restored copy (a managed instance only, with a final snapshot; the source is denied).
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
from stacks.workflows.base import RegisteredWorkflow


class RollbackWorkflow(RegisteredWorkflow):
    """`statemachines/rollback.asl.json` and what each of its steps may do."""

    NAME = "rollback"

    def steps(self) -> Mapping[str, StepPermissions]:
        arns = self.arns
        hosts = AppHostPermissions(self.settings)
        describe_db = iam.PolicyStatement(actions=["rds:DescribeDBInstances", "rds:ListTagsForResource"], resources=[arns.db()])
        describe_ack = {
            nag.wildcard_resource(arns.db()): ("Read-only describe on RDS instances: the restored instance's name is given per execution")
        }
        managed = {f"aws:ResourceTag/{self.settings.management_tag_key}": self.settings.management_tag_value}
        delete = iam.PolicyStatement(actions=["rds:DeleteDBInstance"], resources=[arns.db()], conditions={"StringEquals": managed})
        # The one named exception to the production fence: a copy a cutover marked production loses the
        # marker (that key only) here, once every host is healthy on the original (checked in code first);
        # then it is an ordinary managed copy the statements above may unprotect and delete.
        unmark = iam.PolicyStatement(
            actions=["rds:RemoveTagsFromResource"],
            resources=[arns.db()],
            conditions={
                "StringEquals": {**managed, f"aws:ResourceTag/{TAG_ROLE}": ROLE_PRODUCTION},
                "ForAllValues:StringEquals": {"aws:TagKeys": [TAG_ROLE]},
            },
        )
        return {
            "check_rollback_input": hosts.step(find=True, extra=(describe_db,), acknowledgements=describe_ack),
            "stop_app_hosts": hosts.step(send=(ssm_documents.APP_CONTROL,)),
            # Before monitoring is carried back: an app host started since the rollback found its hosts may use the copy.
            "look_for_new_hosts": hosts.step(find=True),
            "check_app_command": hosts.step(read=True),
            # Looks for app hosts started since the rollback found its hosts first: one may use the copy.
            "delete_restored_instance": hosts.step(
                find=True,
                extra=(
                    describe_db,
                    delete,
                    unmark,
                    # A successful cutover turns deletion protection on for the copy; the rollback turns it off
                    # (only on an instance this tool created; the source is denied) once the hosts are back.
                    iam.PolicyStatement(actions=["rds:ModifyDBInstance"], resources=[arns.db()], conditions={"StringEquals": managed}),
                    *final_snapshot_on_delete(self.settings),
                    *production_fence(self.settings, allow_unmark=True),
                ),
                acknowledgements={
                    nag.wildcard_resource(arns.db()): (
                        "The restored instance is named per execution: describing any instance; unmarking (the production "
                        "marker key only), lifting deletion protection, the final snapshot and the delete only on instances "
                        "tagged as this tool's (tag conditions); production by name and anything still marked are denied"
                    ),
                    **final_snapshot_acknowledgement(self.settings),
                },
            ),
            "point_hosts_back": hosts.step(send=(ssm_documents.SET_DB_HOST,)),
            # Before the copy is deleted: only the alarms a carry-over made for it, only its id in subscriptions.
            "carry_monitoring_back": monitoring_step(self.settings, carry_over=False),
            "check_app_health": hosts.step(send=(ssm_documents.APP_CONTROL,), read=True),
            # After a failure past pm2 stop: the app restarted on the original, else on the copy (its endpoint read from RDS).
            # Finds the hosts again: one listed before the stop may have been replaced since.
            "restart_app": hosts.step(send=(ssm_documents.SET_DB_HOST,), find=True, extra=(describe_db,), acknowledgements=describe_ack),
            # Looks before it speaks: the copy as RDS shows it, and the restarts' results on each host.
            "explain_rollback_failure": hosts.step(read=True, extra=(describe_db,), acknowledgements=describe_ack),
        }
