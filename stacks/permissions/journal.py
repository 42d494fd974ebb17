"""What the journal steps of any workflow may do: the journal table, the lock, the notification topic.

Each workflow gets its own record-start, take-lock and record-outcome functions (the Workflow
construct builds one per workflow), scoped to this stack's table, topic and executions, and within
the table to the partition keys that workflow writes (`dynamodb:LeadingKeys`): its own execution
records (`WORKFLOW#<workflow>`), the locks it may take (`LOCK#<kind>:<resource>`, the kind and the
plan fields the lock is on as journal/workflows.py declares them, the resources from settings) and,
for a lock on a recordings prefix, the registry of prefixes held on each configured bucket
(`PREFIXES#s3:<bucket>`, journal/prefix_registry.py), whose entry every release removes.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from restore_runbook.contract import JOURNAL_DRILL_CLAIM_PK, JOURNAL_EXECUTION_PK, JOURNAL_LOCK_PK, JOURNAL_PREFIX_REGISTRY_PK
from restore_runbook.journal.workflows import WORKFLOWS, traits_of
from stacks import nag
from stacks.functions import StepPermissions
from stacks.journal import Journal
from stacks.permissions.rds import partition_of
from stacks.settings import StackSettings


def executions_arn(settings: StackSettings) -> str:
    """Every execution of this stack's state machines (all are named `<name_prefix>-<workflow>`)."""
    return f"arn:{partition_of(settings.region)}:states:{settings.region}:{settings.account}:execution:{settings.name_prefix}-*"


def execution_keys(workflow: str) -> list[str]:
    return [JOURNAL_EXECUTION_PK.format(workflow=workflow)]


def lock_keys(workflow: str, settings: StackSettings) -> list[str]:
    """The lock items `workflow` may take and release: on a listed production instance (rds, drill), or
    under a configured recordings bucket (s3). None for a workflow that takes no lock."""
    lock = traits_of(workflow).lock
    if lock is None:
        return []
    if lock.kind in ("rds", "drill"):
        names = [f"{lock.kind}:{name}" for name in settings.production_names]
    elif lock.kind == "s3":
        names = [f"s3:{bucket}/*" for bucket in settings.recordings_buckets]
    else:
        raise ValueError(f"the {workflow} workflow locks a {lock.kind!r} resource, which stacks/permissions/journal.py does not scope")
    return [JOURNAL_LOCK_PK.format(resource=name) for name in names]


def prefix_registry_keys(workflow: str, settings: StackSettings) -> list[str]:
    """The registries of held prefixes `workflow`'s lock enters: one per configured recordings bucket,
    for a lock on a recordings prefix (s3); none for any other."""
    lock = traits_of(workflow).lock
    if lock is None or lock.kind != "s3":
        return []
    return every_prefix_registry_key(settings)


def every_prefix_registry_key(settings: StackSettings) -> list[str]:
    return [JOURNAL_PREFIX_REGISTRY_PK.format(bucket=bucket) for bucket in settings.recordings_buckets]


def drill_claim_keys(settings: StackSettings) -> list[str]:
    return [JOURNAL_DRILL_CLAIM_PK.format(source=name) for name in settings.production_names]


def every_execution_key() -> list[str]:
    return [key for workflow in WORKFLOWS for key in execution_keys(workflow)]


def every_lock_key() -> list[str]:
    return [JOURNAL_LOCK_PK.format(resource="*")]


def journal_steps(journal: Journal, settings: StackSettings, workflow: str) -> dict[str, StepPermissions]:
    """The journal steps of `workflow` (handler module -> permissions), for its `steps`."""
    executions = executions_arn(settings)
    describe_holder = iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions])
    publish = journal.publish_statements()
    records, locks, registries = execution_keys(workflow), lock_keys(workflow, settings), prefix_registry_keys(workflow, settings)
    # A workflow without a lock still runs the shared end steps; they may then touch no lock item at all.
    lock_statements = lambda actions: [journal.table_statement(actions, locks)] if locks else []  # noqa: E731
    # Releasing a recordings lock removes its entry from the bucket's registry too (one conditional UpdateItem).
    registry_release = [journal.table_statement(["dynamodb:UpdateItem"], registries)] if registries else []
    return {
        "record_start": StepPermissions(statements=[journal.table_statement(["dynamodb:PutItem"], records)]),
        "take_lock": StepPermissions(
            statements=[*lock_statements(["dynamodb:PutItem", "dynamodb:GetItem"]), describe_holder],
            acknowledgements={
                nag.wildcard_resource(executions): (
                    "A lock names its holder execution only at run time; DescribeExecution is limited to "
                    "executions of this stack's state machines (name prefix)"
                )
            },
        ),
        # A success whose end record failed: only the lock's own item (read first: a lock kept for recovery stays) and the topic.
        "release_without_record": StepPermissions(
            statements=[*lock_statements(["dynamodb:GetItem", "dynamodb:DeleteItem"]), *registry_release, *publish]
        ),
        "record_outcome": StepPermissions(
            statements=[
                journal.table_statement(["dynamodb:GetItem", "dynamodb:UpdateItem"], records),
                *lock_statements(["dynamodb:GetItem", "dynamodb:DeleteItem"]),
                *registry_release,
                *publish,
            ]
        ),
    }
