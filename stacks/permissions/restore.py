"""The restore steps' permissions, for every workflow that runs them: `restore` itself, and `drill`
(and `in-place-restore`), which reuse restore's check/start/describe/validate handlers. One builder,
so a step's role cannot differ between two workflows that run the same code.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam

from stacks import nag
from stacks.functions import StepPermissions
from stacks.permissions.rds import RdsArns, production_fence
from stacks.settings import StackSettings

DESCRIBE_REASON = (
    "Read-only describe/list on RDS resources in this account and region: the target instance and "
    "snapshot names are chosen per execution, so they cannot be listed at deploy time"
)


def with_statements(base: StepPermissions, *extra: iam.PolicyStatement, **overrides: object) -> StepPermissions:
    return StepPermissions(
        statements=[*base.statements, *extra],
        acknowledgements=dict(base.acknowledgements),
        **overrides,  # type: ignore[arg-type]
    )


class RestoreSteps:
    """What restore's own steps may do, whichever workflow runs them."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.arns = RdsArns.for_settings(settings)

    def describe(self, actions: list[str], resources: list[str]) -> StepPermissions:
        """Read-only statement plus the acknowledgement of each wildcard ARN in it."""
        return StepPermissions(
            statements=[iam.PolicyStatement(actions=actions, resources=resources)],
            acknowledgements={nag.wildcard_resource(arn): DESCRIBE_REASON for arn in resources if "*" in arn},
        )

    def check_restore_input(self) -> StepPermissions:
        # The source's restore window, its snapshots and automated backups, and whether the target
        # name is already taken (which means describing any instance name).
        return self.describe(
            [
                "rds:DescribeDBInstances",
                "rds:DescribeDBSnapshots",
                "rds:DescribeDBInstanceAutomatedBackups",
                "rds:ListTagsForResource",
            ],
            [self.arns.db(), self.arns.snapshot(), self.arns.auto_backup()],
        )

    def start_restore(self) -> StepPermissions:
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
        # and never production, by name or by marker (explicit Denies below). RDS has no create-only condition key (like
        # ec2:CreateAction) and target names are the caller's choice, so no ARN pattern narrows it further.
        tag_new_instance = iam.PolicyStatement(
            actions=["rds:AddTagsToResource"],
            resources=[self.arns.db()],
            conditions={"StringEquals": tag},
        )
        read = self.describe(
            ["rds:DescribeDBInstances", "rds:DescribeDBSnapshots", "rds:ListTagsForResource"],
            [self.arns.db(), self.arns.snapshot()],
        )
        permissions = with_statements(read, create, tag_new_instance, *production_fence(self.settings))
        permissions.acknowledgements.update(
            {
                # The same wildcards as the describe statement's, so one reason must speak for the create too.
                nag.wildcard_resource(self.arns.db()): (
                    "Describing any instance (names chosen per execution), and restoring to and tagging a new instance whose name "
                    "is chosen per execution, only in requests that carry the management tag; production is denied by name and marker"
                ),
                nag.wildcard_resource(self.arns.snapshot()): (
                    "Describing any snapshot of the source, and restoring from one chosen at run time ('latest'), only in requests "
                    "that carry the management tag"
                ),
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
        return permissions

    def describe_restore(self) -> StepPermissions:
        return self.describe(["rds:DescribeDBInstances"], [self.arns.db()])

    def validate_restore(self) -> StepPermissions:
        secret = self.settings.db_secret_arn
        read_secret = iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"],
            # A full ARN ends in a 6-character suffix that a configured partial ARN lacks.
            resources=[secret, f"{secret}-??????"],
        )
        base = self.describe(["rds:DescribeDBInstances"], [self.arns.db()])
        # Connecting and querying a freshly restored database takes longer than an API call.
        # Freshly restored volumes load blocks from S3 on first read: exact counts over a cold copy
        # need room (each statement is capped by statement_timeout_ms, 60 s by default).
        return with_statements(base, read_secret, timeout=Duration.minutes(10), in_vpc=True)
