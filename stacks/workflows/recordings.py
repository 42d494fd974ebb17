"""The `recordings-restore` workflow (runbook "S3 Recordings Backup"): its work bucket, and what each
of its steps may do in the configured recordings buckets and nowhere else.

Never a permanent delete by accident: only the undelete step's role may DeleteObjectVersion (it
removes delete markers, and its code refuses a version that is a recording); the copy/hide step may
add a version or a delete marker, which keeps every older version. The plan and the per-batch
results live in a bucket of the stack's own, whose name only these functions are told.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from restore_runbook.contract import DRILL_SCRATCH_PREFIX
from stacks import nag
from stacks.functions import FunctionDefaults, StepPermissions
from stacks.permissions.journal import executions_arn, prefix_registry_keys
from stacks.permissions.rds import partition_of
from stacks.permissions.s3 import bucket_arn, objects_arn
from stacks.workflows.base import RegisteredWorkflow, WorkflowContext

# `recordings_work_bucket` in lambdas/restore_runbook/settings.py: derived (the stack's bucket), so its
# variable is written for these functions only.
ENV_WORK_BUCKET = "RECORDINGS_WORK_BUCKET"
PLANS, RESULTS = "plans/*", "results/*"
SCRATCH = f"{DRILL_SCRATCH_PREFIX}*"
# Plans and results are evidence of what a restore did; three months covers any incident review.
WORK_RETENTION = Duration.days(90)
# The drill removes its scratch copies itself (twice); this only catches what a crashed drill left.
SCRATCH_RETENTION = Duration.days(1)

OBJECTS_REASON = (
    "Object keys of the configured recordings buckets are chosen per execution (a key, a prefix); the statement names those buckets only"
)
WORK_REASON = "The work bucket's objects are named per execution under plans/ and results/; this stack's own bucket only"
SCRATCH_REASON = (
    f"A drill's scratch copies of recordings are named per execution and key under {DRILL_SCRATCH_PREFIX}; "
    "this stack's own work bucket only"
)


class RecordingsRestoreWorkflow(RegisteredWorkflow):
    """`statemachines/recordings-restore.asl.json`, its work bucket, and what each of its steps may do."""

    NAME = "recordings-restore"

    def __init__(self, scope: Construct, context: WorkflowContext) -> None:
        super().__init__(scope, context)
        self._grant_distributed_map()

    def function_defaults(self, context: WorkflowContext) -> FunctionDefaults:
        self.work_bucket = self._build_work_bucket()
        return self.with_work_bucket(context.functions)

    def with_work_bucket(self, defaults: FunctionDefaults) -> FunctionDefaults:
        """`defaults` plus the work bucket's name (for the drill's recordings steps too)."""
        return replace(defaults, environment={**defaults.environment, ENV_WORK_BUCKET: self.work_bucket.bucket_name})

    def steps(self) -> Mapping[str, StepPermissions]:
        journal = self.context.journal
        executions = executions_arn(self.settings)
        return {
            "check_recordings_input": self._recordings(["s3:GetBucketVersioning"], read=True),
            # The registry of prefixes held on the configured buckets (a consistent read, a conditional
            # write), and whether each overlapping holder still runs.
            "check_overlapping_restores": StepPermissions(
                statements=[
                    journal.table_statement(["dynamodb:GetItem", "dynamodb:PutItem"], prefix_registry_keys(self.NAME, self.settings)),
                    iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions]),
                ],
                acknowledgements={
                    nag.wildcard_resource(executions): (
                        "A registry entry names its holder execution only at run time; DescribeExecution is limited to "
                        "executions of this stack's state machines (name prefix)"
                    ),
                },
            ),
            # Pages through ListObjectVersions for up to 15 minutes per invocation (the ASL loops for more).
            "plan_recordings_page": replace(
                self._recordings(["s3:ListBucketVersions"], read=True, work_write=(PLANS,)), timeout=Duration.minutes(15), memory_size=1024
            ),
            # Holds the whole plan in memory to cut it into batches.
            "write_recordings_plan": replace(self._work(read=(PLANS,), write=(PLANS,)), timeout=Duration.minutes(5), memory_size=2048),
            "apply_recordings_batch": self._batch_function(
                self._recordings(
                    [],
                    read=True,
                    objects=[
                        "s3:GetObjectTagging",
                        "s3:GetObjectVersionTagging",
                        # A copy of a version (CopyObject, or the multipart copy over 5 GB) is a new current version;
                        # TaggingDirective COPY writes the tags on it.
                        "s3:PutObject",
                        "s3:PutObjectTagging",
                        "s3:AbortMultipartUpload",
                        # Hiding a key created after the time: DeleteObject WITHOUT a version id adds a delete
                        # marker in a versioned bucket and removes nothing (the input check requires versioning).
                        "s3:DeleteObject",
                    ],
                    work_write=(RESULTS,),
                )
            ),
            # The one role that may DeleteObjectVersion: undelete removes delete markers, nothing else.
            "undelete_recordings_batch": self._batch_function(
                self._recordings([], read=True, objects=["s3:DeleteObjectVersion"], work_write=(RESULTS,))
            ),
            # A batch's child failed: its error and cause, written beside the results (crashed-<batch>.json).
            "record_batch_crash": self._work(read=(), write=(RESULTS,)),
            "aggregate_recordings_results": replace(
                self._work(read=(PLANS, RESULTS), write=(RESULTS,)), timeout=Duration.minutes(5), memory_size=1024
            ),
            # Counts the plan's entries for its message.
            "explain_recordings_failure": self._work(read=(PLANS,), write=()),
        }

    # -- the work bucket ---------------------------------------------------------------------------

    def _build_work_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "WorkBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            # Every key is written once per execution (plans/<execution>/, results/<execution>/): nothing to roll back.
            versioned=False,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-plans", prefix="plans/", expiration=WORK_RETENTION),
                s3.LifecycleRule(id="expire-results", prefix="results/", expiration=WORK_RETENTION),
                s3.LifecycleRule(id="expire-drill-scratch", prefix=DRILL_SCRATCH_PREFIX, expiration=SCRATCH_RETENTION),
                s3.LifecycleRule(id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            bucket,
            "AwsSolutions-S1",
            "Only this stack's recordings functions and the state machine's ItemReader read or write it; every "
            "execution that does is in the journal and the Step Functions history, which is the audit trail",
        )
        return bucket

    def _work(self, *, read: tuple[str, ...], write: tuple[str, ...]) -> StepPermissions:
        statements = [
            # A missing part or result reads as NoSuchKey (reported), not AccessDenied, only with ListBucket.
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.work_bucket.bucket_arn]),
        ]
        if read:
            statements.append(iam.PolicyStatement(actions=["s3:GetObject"], resources=[self._work_objects(p) for p in read]))
        if write:
            statements.append(iam.PolicyStatement(actions=["s3:PutObject"], resources=[self._work_objects(p) for p in write]))
        acks = {nag.wildcard_resource(self._work_objects_id(p)): WORK_REASON for p in {*read, *write}}
        return StepPermissions(statements=statements, acknowledgements=acks)

    def _work_objects(self, pattern: str) -> str:
        return self.work_bucket.arn_for_objects(pattern)

    def _work_objects_id(self, pattern: str) -> str:
        return f"<{self._logical_id(self.work_bucket)}.Arn>/{pattern}"

    # -- what the drill's recordings check may do (stacks/workflows/drill.py) ------------------------

    def drill_check_permissions(self) -> StepPermissions:
        """Read every version of the configured buckets (never write there); copy, read back and delete
        only under the work bucket's scratch prefix. The copy is recordings-restore's own (CopyObject with
        the tags, multipart over 5 GB), so it needs what that copy needs on its target."""
        source = self._recordings(["s3:ListBucketVersions"], read=True, objects=["s3:GetObjectTagging", "s3:GetObjectVersionTagging"])
        scratch = [
            # The copy's HEAD of a scratch key not written yet reads 404 only with ListBucket (else 403).
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.work_bucket.bucket_arn]),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:PutObjectTagging", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[self._work_objects(SCRATCH)],
            ),
        ]
        return StepPermissions(
            statements=[*source.statements, *scratch],
            acknowledgements={**source.acknowledgements, nag.wildcard_resource(self._work_objects_id(SCRATCH)): SCRATCH_REASON},
            # Copies and reads back a few recordings per bucket, each at most 256 MiB, twice.
            timeout=Duration.minutes(5),
            memory_size=512,
        )

    def drill_scratch_removal_permissions(self) -> StepPermissions:
        """List and delete under the scratch prefix of the work bucket, nothing else."""
        return StepPermissions(
            statements=[
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[self.work_bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [SCRATCH]}},
                ),
                iam.PolicyStatement(actions=["s3:DeleteObject"], resources=[self._work_objects(SCRATCH)]),
            ],
            acknowledgements={nag.wildcard_resource(self._work_objects_id(SCRATCH)): SCRATCH_REASON},
        )

    # -- the recordings buckets --------------------------------------------------------------------

    @staticmethod
    def _batch_function(permissions: StepPermissions) -> StepPermissions:
        """A Distributed Map child: one batch of copies or undeletes (a copy over 5 GB is a multipart copy)."""
        return replace(permissions, timeout=Duration.minutes(5), memory_size=512)

    def _recordings(
        self, bucket_actions: list[str], *, read: bool, objects: list[str] | None = None, work_write: tuple[str, ...] = ()
    ) -> StepPermissions:
        """Statements on the configured recordings buckets only (a target bucket must be one of them too)."""
        buckets = self.settings.recordings_buckets
        listing = ["s3:ListBucket", *bucket_actions] if read else bucket_actions
        object_actions = [*(["s3:GetObject", "s3:GetObjectVersion"] if read else []), *(objects or [])]
        statements = []
        if listing:
            # ListBucket: HeadObject of a key that does not exist answers 404 (reported), not 403.
            statements.append(iam.PolicyStatement(actions=listing, resources=[bucket_arn(self.settings, b) for b in buckets]))
        if object_actions:
            statements.append(iam.PolicyStatement(actions=object_actions, resources=[objects_arn(self.settings, b) for b in buckets]))
        acks = {nag.wildcard_resource(objects_arn(self.settings, b)): OBJECTS_REASON for b in buckets} if object_actions else {}
        permissions = StepPermissions(statements=statements, acknowledgements=acks)
        if work_write:
            work = self._work(read=(), write=work_write)
            permissions = StepPermissions(
                statements=[*permissions.statements, *work.statements],
                acknowledgements={**permissions.acknowledgements, **work.acknowledgements},
            )
        return permissions

    # -- the Distributed Map -----------------------------------------------------------------------

    def _grant_distributed_map(self) -> None:
        """What CDK's DistributedMap would add, by hand (the definition is the ASL file): the state machine
        starts its own child executions, watches and stops them, and reads the plan through the ItemReader."""
        s = self.settings
        arn = f"arn:{partition_of(s.region)}:states:{s.region}:{s.account}"
        # Its own ARN written out: referring to the state machine from its own role's policy is a cycle.
        own = f"{arn}:stateMachine:{s.name_prefix}-{self.NAME}"
        children = f"{arn}:execution:{s.name_prefix}-{self.NAME}/*"
        role = self.state_machine.role
        role.add_to_principal_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[own]))
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"], resources=[children])
        )
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[self._work_objects(PLANS)]))
        nag.acknowledge(
            self.state_machine,
            nag.wildcard_resource(children),
            "The Distributed Map's child executions are named by Step Functions (<state machine>/<map run>:<id>); "
            "this state machine's own children only",
        )
        nag.acknowledge(
            self.state_machine, nag.wildcard_resource(self._work_objects_id(PLANS)), f"The ItemReader reads the plan: {WORK_REASON}"
        )

    def _logical_id(self, construct: Construct) -> str:
        return Stack.of(self).get_logical_id(construct.node.default_child)  # type: ignore[arg-type]
