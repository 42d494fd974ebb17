"""The `restore` workflow (runbook scenarios 1 and 2): what each of its steps may do in IAM.

Least privilege per step. The one destructive call, DeleteDBInstance, is allowed only on instances
carrying the tool's management tag, and the source instance is explicitly denied any change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks import nag
from stacks.arns import RdsArns
from stacks.cutover import AppHostPermissions
from stacks.fences import deny_changes_to_source
from stacks.settings import StackSettings
from stacks.workflow import FunctionDefaults, StepPermissions, Workflow

DESCRIBE_REASON = (
    "Read-only describe/list on RDS resources in this account and region: the target instance and "
    "snapshot names are chosen per execution, so they cannot be listed at deploy time"
)


class RestoreWorkflow(Construct):
    """Builds the restore state machine from `statemachines/restore.asl.json` and its step functions."""

    WORKFLOW_NAME = "restore"

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        defaults: FunctionDefaults,
        asl_path: Path,
        manifest_path: Path,
        journal_steps: Mapping[str, StepPermissions] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._arns = RdsArns.for_settings(settings)
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        self.workflow = Workflow(
            self,
            "Workflow",
            workflow_name=self.WORKFLOW_NAME,
            asl_path=asl_path,
            manifest=manifest,
            steps={
                "check_restore_input": self._check_restore_input(),
                "start_restore": self._start_restore(),
                "describe_restore": self._describe_restore(),
                "validate_restore": self._validate_restore(),
                "cleanup_restore": self._cleanup_restore(),
                # Cutover on the API hosts and its automatic rollback (stacks/cutover.py).
                **AppHostPermissions(settings).restore_steps(self._describe(["rds:DescribeDBInstances"], [self._arns.db()])),
                "protect_new_production": self._protect_new_production(),
                # Journal, per-source lock and notification (stacks/journal.py).
                **(journal_steps or {}),
            },
            defaults=defaults,
        )
        self.state_machine = self.workflow.state_machine
        self.functions = self.workflow.functions

    # -- shared statements -------------------------------------------------------------------------

    def _describe(self, actions: list[str], resources: list[str]) -> StepPermissions:
        """Read-only statement plus the acknowledgement of each wildcard ARN in it."""
        return StepPermissions(
            statements=[iam.PolicyStatement(actions=actions, resources=resources)],
            acknowledgements={nag.wildcard_resource(arn): DESCRIBE_REASON for arn in resources if "*" in arn},
        )

    def _protect_new_production(self) -> StepPermissions:
        # Deletion protection on, for the copy production now runs on: only a copy this tool made.
        key, value = self._settings.management_tag_key, self._settings.management_tag_value
        return StepPermissions(
            statements=[
                iam.PolicyStatement(
                    actions=["rds:ModifyDBInstance"],
                    resources=[self._arns.db()],
                    conditions={"StringEquals": {f"aws:ResourceTag/{key}": value}},
                ),
                deny_changes_to_source(self._settings),
            ],
            acknowledgements={
                nag.wildcard_resource(self._arns.db()): (
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
            [self._arns.db(), self._arns.snapshot(), self._arns.auto_backup()],
        )

    def _start_restore(self) -> StepPermissions:
        tag = {f"aws:RequestTag/{self._settings.management_tag_key}": self._settings.management_tag_value}
        create = iam.PolicyStatement(
            actions=["rds:RestoreDBInstanceToPointInTime", "rds:RestoreDBInstanceFromDBSnapshot"],
            resources=[
                self._arns.db(),
                self._arns.snapshot(),
                self._arns.subnet_group(self._settings.db_subnet_group_name),
                self._arns.parameter_group(),
                self._arns.option_group(),
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
            resources=[self._arns.db()],
            conditions={"StringEquals": tag},
        )
        read = self._describe(
            ["rds:DescribeDBInstances", "rds:DescribeDBSnapshots", "rds:ListTagsForResource"],
            [self._arns.db(), self._arns.snapshot()],
        )
        permissions = self._with(read, create, tag_new_instance, deny_changes_to_source(self._settings))
        permissions.acknowledgements.update(
            {
                nag.wildcard_resource(self._arns.parameter_group()): (
                    "Restores copy the source's parameter group, whose name is read from RDS at run time; "
                    "the request must carry the management tag"
                ),
                nag.wildcard_resource(self._arns.option_group()): (
                    "Restores copy the source's option group, whose name is read from RDS at run time; "
                    "the request must carry the management tag"
                ),
            }
        )
        # db:* and snapshot:* in the create statement are the same ARNs as in the describe statement,
        # so their acknowledgement (from _describe) covers both; the create is fenced by the tag condition.
        return permissions

    def _describe_restore(self) -> StepPermissions:
        return self._describe(["rds:DescribeDBInstances"], [self._arns.db()])

    def _validate_restore(self) -> StepPermissions:
        secret = self._settings.db_secret_arn
        read_secret = iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"],
            # A full ARN ends in a 6-character suffix that a configured partial ARN lacks.
            resources=[secret, f"{secret}-??????"],
        )
        base = self._describe(["rds:DescribeDBInstances"], [self._arns.db()])
        # Connecting and querying a freshly restored database takes longer than an API call.
        # Freshly restored volumes load blocks from S3 on first read: exact counts over a cold copy
        # need room (each statement is capped by statement_timeout_ms, 60 s by default).
        return self._with(base, read_secret, timeout=Duration.minutes(10), in_vpc=True)

    def _cleanup_restore(self) -> StepPermissions:
        tag = {f"aws:ResourceTag/{self._settings.management_tag_key}": self._settings.management_tag_value}
        delete = iam.PolicyStatement(
            actions=["rds:DeleteDBInstance"],
            resources=[self._arns.db()],
            conditions={"StringEquals": tag},
        )
        read = self._describe(["rds:DescribeDBInstances", "rds:ListTagsForResource"], [self._arns.db()])
        return self._with(read, delete, deny_changes_to_source(self._settings))
