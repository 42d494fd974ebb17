"""The `restore` workflow (runbook scenarios 1 and 2): what each of its steps may do in IAM.

Least privilege per step. The one destructive call, DeleteDBInstance, is allowed only on instances
carrying the tool's management tag, and the source instance is explicitly denied any change.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_iam as iam

from stacks import nag, ssm_documents
from stacks.functions import StepPermissions
from stacks.permissions.hosts import AppHostPermissions
from stacks.permissions.rds import deny_changes_to_source
from stacks.workflows.base import RegisteredWorkflow

DESCRIBE_REASON = (
    "Read-only describe/list on RDS resources in this account and region: the target instance and "
    "snapshot names are chosen per execution, so they cannot be listed at deploy time"
)


class RestoreWorkflow(RegisteredWorkflow):
    """`statemachines/restore.asl.json` and what each of its steps may do."""

    NAME = "restore"

    def steps(self) -> Mapping[str, StepPermissions]:
        return {
            "check_restore_input": self._check_restore_input(),
            "start_restore": self._start_restore(),
            "describe_restore": self._describe_restore(),
            "validate_restore": self._validate_restore(),
            # Reads the validated copy as the validate step does (same secret, same network), only longer.
            "warm_restored_copy": self._validate_restore(),
            "cleanup_restore": self._cleanup_restore(),
            **self._cutover_steps(),
            "protect_new_production": self._protect_new_production(),
        }

    # -- shared statements -------------------------------------------------------------------------

    def _describe(self, actions: list[str], resources: list[str]) -> StepPermissions:
        """Read-only statement plus the acknowledgement of each wildcard ARN in it."""
        return StepPermissions(
            statements=[iam.PolicyStatement(actions=actions, resources=resources)],
            acknowledgements={nag.wildcard_resource(arn): DESCRIBE_REASON for arn in resources if "*" in arn},
        )

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

    def _with(self, base: StepPermissions, *extra: iam.PolicyStatement, **overrides: object) -> StepPermissions:
        return StepPermissions(
            statements=[*base.statements, *extra],
            acknowledgements=dict(base.acknowledgements),
            **overrides,  # type: ignore[arg-type]
        )

    # -- one method per step -----------------------------------------------------------------------

    def _cutover_steps(self) -> dict[str, StepPermissions]:
        """Cutover on the API hosts and its automatic rollback (stacks/permissions/hosts.py)."""
        hosts = AppHostPermissions(self.settings)
        describe_source = self._describe(["rds:DescribeDBInstances"], [self.arns.db()])
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

    def _check_restore_input(self) -> StepPermissions:
        # The source's restore window, its snapshots and automated backups, and whether the target
        # name is already taken (which means describing any instance name).
        return self._describe(
            [
                "rds:DescribeDBInstances",
                "rds:DescribeDBSnapshots",
                "rds:DescribeDBInstanceAutomatedBackups",
                "rds:ListTagsForResource",
            ],
            [self.arns.db(), self.arns.snapshot(), self.arns.auto_backup()],
        )

    def _start_restore(self) -> StepPermissions:
        tag = {f"aws:RequestTag/{self.settings.management_tag_key}": self.settings.management_tag_value}
        create = iam.PolicyStatement(
            actions=["rds:RestoreDBInstanceToPointInTime", "rds:RestoreDBInstanceFromDBSnapshot"],
            resources=[
                self.arns.db(),
                self.arns.snapshot(),
                self.arns.subnet_group(self.settings.db_subnet_group_name),
                self.arns.parameter_group(),
                self.arns.option_group(),
            ],
            # Only requests that tag the new instance as this tool's are allowed, so cleanup can find it.
            conditions={"StringEquals": tag},
        )
        # Tags passed in a create request are authorized as AddTagsToResource on the new instance: db ARNs
        # only (never snapshots, subnet/parameter/option groups), only requests carrying the management tag,
        # and never the source (explicit Deny below). RDS has no create-only condition key (like
        # ec2:CreateAction) and target names are the caller's choice, so no ARN pattern narrows it further.
        tag_new_instance = iam.PolicyStatement(
            actions=["rds:AddTagsToResource"],
            resources=[self.arns.db()],
            conditions={"StringEquals": tag},
        )
        read = self._describe(
            ["rds:DescribeDBInstances", "rds:DescribeDBSnapshots", "rds:ListTagsForResource"],
            [self.arns.db(), self.arns.snapshot()],
        )
        permissions = self._with(read, create, tag_new_instance, deny_changes_to_source(self.settings))
        permissions.acknowledgements.update(
            {
                nag.wildcard_resource(self.arns.parameter_group()): (
                    "Restores copy the source's parameter group, whose name is read from RDS at run time; "
                    "the request must carry the management tag"
                ),
                nag.wildcard_resource(self.arns.option_group()): (
                    "Restores copy the source's option group, whose name is read from RDS at run time; "
                    "the request must carry the management tag"
                ),
            }
        )
        # db:* and snapshot:* in the create statement are the same ARNs as in the describe statement,
        # so their acknowledgement (from _describe) covers both; the create is fenced by the tag condition.
        return permissions

    def _describe_restore(self) -> StepPermissions:
        return self._describe(["rds:DescribeDBInstances"], [self.arns.db()])

    def _validate_restore(self) -> StepPermissions:
        secret = self.settings.db_secret_arn
        read_secret = iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"],
            # A full ARN ends in a 6-character suffix that a configured partial ARN lacks.
            resources=[secret, f"{secret}-??????"],
        )
        base = self._describe(["rds:DescribeDBInstances"], [self.arns.db()])
        # Connecting and querying a freshly restored database takes longer than an API call.
        # Freshly restored volumes load blocks from S3 on first read: exact counts over a cold copy
        # need room (each statement is capped by statement_timeout_ms, 60 s by default).
        return self._with(base, read_secret, timeout=Duration.minutes(10), in_vpc=True)

    def _cleanup_restore(self) -> StepPermissions:
        tag = {f"aws:ResourceTag/{self.settings.management_tag_key}": self.settings.management_tag_value}
        delete = iam.PolicyStatement(
            actions=["rds:DeleteDBInstance"],
            resources=[self.arns.db()],
            conditions={"StringEquals": tag},
        )
        read = self._describe(["rds:DescribeDBInstances", "rds:ListTagsForResource"], [self.arns.db()])
        return self._with(read, delete, deny_changes_to_source(self.settings))
